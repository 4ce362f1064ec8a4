import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("README", () => {
  it("the example runs as written: stops 5 epochs after the best val_loss and restores that epoch's weights", async () => {
    const out = await runReadmeExample(packageDir);
    const epochs = [...out.matchAll(/^epoch (\d+) val_loss ([\d.]+)$/gm)].map((m) => Number(m[2]));
    const best = epochs.indexOf(Math.min(...epochs));
    expect(best).toBeGreaterThan(2); // it learns for a while first...
    expect(epochs).toHaveLength(best + 6); // ...then stops after 5 epochs without improvement
    const reason = `val_loss did not improve by more than 0 for 5 epochs; best ${epochs[best]} at epoch ${best}`;
    expect(out).toContain(`stopped: EarlyStopping: ${reason}`);
    expect(out).toContain(`best epoch ${best} (val_loss ${epochs[best]!.toFixed(4)}), stopped at the end of epoch ${best + 5}`);
    expect(out).toContain(`val_loss of the restored model ${epochs[best]!.toFixed(4)}`);
  });

  it("the pure-function example prints what its comment says", async () => {
    const blocks = [...readFileSync(join(packageDir, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const snippet = blocks.find((b) => b.includes("earlyStoppingStep("))!;
    const file = join(packageDir, `.readme-snippet-${process.pid}.ts`);
    writeFileSync(file, snippet);
    try {
      const tsx = join(packageDir, "..", "..", "..", "node_modules", ".bin", "tsx");
      const { stdout } = await promisify(execFile)(tsx, ["--conditions=@fitloop/source", file], { cwd: packageDir, timeout: 60_000 });
      const expected = /console\.log\(r\.decision\.kind, r\.decision\.reason\); \/\/ (\w+) "(.*)"/.exec(snippet)!;
      expect(stdout.trim()).toBe(`${expected[1]} ${expected[2]}`);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
