import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

describe("demo", () => {
  it("trains an MLP on the embedded MNIST digits on wasm and beats 85 % validation accuracy in one epoch", async () => {
    const tsx = join(here, "..", "node_modules", ".bin", "tsx");
    const { stdout } = await run(tsx, ["--conditions=@fitloop/source", join(here, "main.ts"), "--epochs", "1"], { cwd: join(here, ".."), timeout: 120_000 });
    expect(stdout).toMatch(/10000 embedded MNIST digits \(9000 train \/ 1000 validation\), backend wasm/);
    const acc = Number(/validation accuracy ([\d.]+) %/.exec(stdout)?.[1]);
    expect(acc).toBeGreaterThan(85);
  });
});
