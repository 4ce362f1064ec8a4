import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { readmeExample } from "../../../../scripts/readme-example.js";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Runs the README's example as a user would (tsx, this package's dependencies); the progress goes to stderr, so both streams are returned. */
async function runExample(): Promise<{ stdout: string; stderr: string }> {
  const file = join(pkg, `.readme-example-${process.pid}.ts`);
  writeFileSync(file, readmeExample(pkg));
  try {
    return await promisify(execFile)(join(pkg, "node_modules", ".bin", "tsx"), ["--conditions=@fitloop/source", file], { cwd: pkg, timeout: 120_000 });
  } finally {
    rmSync(file, { force: true });
  }
}

describe("README", () => {
  it("the example runs as written: stderr is a pipe here, so plain lines: one every 8 batches and one per epoch with validation", async () => {
    const { stdout, stderr } = await runExample();
    expect(stderr).not.toMatch(/\x1b/);
    const lines = stderr.split("\n").filter((l) => l.startsWith("Epoch "));
    expect(lines).toHaveLength(6);
    for (const e of [1, 2, 3]) {
      expect(lines[2 * e - 2]).toMatch(new RegExp(`^Epoch ${e}/3 -  8/16 - ETA [\\d.]+s - [\\d.]+ samples/s - loss: [\\d.]+ - acc: [\\d.]+$`));
      expect(lines[2 * e - 1]).toMatch(new RegExp(`^Epoch ${e}/3 - 16/16 - [\\d.]+s [\\d.]+ms/step - [\\d.]+ samples/s - loss: [\\d.]+ - acc: [\\d.]+ - lr: 0\\.02000 - val_loss: [\\d.]+ - val_acc: [\\d.]+$`));
    }
    // the line shows what the history holds: the last epoch's val_acc, 4 digits there, 3 in the example's own print
    const valAcc = Number(/val_acc: ([\d.]+)$/.exec(lines[5]!)![1]);
    const printed = /^completed: val_acc ([\d.]+)$/m.exec(stdout);
    expect(printed).not.toBeNull();
    expect(Math.abs(valAcc - Number(printed![1]))).toBeLessThanOrEqual(0.0006);
    expect(valAcc).toBeGreaterThan(0.8); // it learnt

    // the README's terminal samples are this example's output: its batch count, its epochs' values
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    let fence: string | undefined; // the open code block's language ("" for a plain block)
    const plain: string[] = [];
    for (const l of readme.split("\n")) {
      if (l.startsWith("```")) fence = fence === undefined ? l.slice(3) : undefined;
      else if (fence === "") plain.push(l);
    }
    const samples = plain.filter((l) => /^Epoch \d\/\d - +\d+\/\d+ \[/.test(l));
    expect(samples.length).toBeGreaterThanOrEqual(4);
    const values = (l: string) => l.slice(l.indexOf(" - loss: "));
    for (const sample of samples) {
      const [, epoch, of, done, total] = /^Epoch (\d)\/(\d) - +(\d+)\/(\d+) /.exec(sample)!;
      expect([of, total], sample).toEqual(["3", "16"]);
      if (done === "16") expect(values(sample), sample).toBe(values(lines[2 * Number(epoch) - 1]!));
    }
    expect(readme).toContain(`\n${printed![0]}\n`);
  });
});
