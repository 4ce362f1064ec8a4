import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: the warmup's rate per step, beta1, step times, throughput and an eta that ends at 0", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const steps = [...out.matchAll(/^step (\d+) lr ([\d.]+) beta1 ([\d.]+) step_time ([\d.]+) ms eta ([\d.]+) s$/gm)];
    expect(steps.map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(steps.map((m) => m[2])).toEqual(["0.0025", "0.0050", "0.0075", "0.0100", "0.0125", "0.0150", "0.0175", "0.0200"]);
    expect(steps.every((m) => m[3] === "0.9")).toBe(true);
    expect(steps.every((m) => Number(m[4]) > 0)).toBe(true);
    expect(Number(steps[7]![5])).toBeGreaterThan(0); // three more epochs to go
    const epochs = [...out.matchAll(/^epoch (\d) lr ([\d.]+) (\d+) samples\/s, mean step ([\d.]+) ms, epoch ([\d.]+) s, eta ([\d.]+) s$/gm)];
    expect(epochs.map((m) => m[1])).toEqual(["0", "1", "2", "3"]);
    expect(epochs.map((m) => m[2])).toEqual(["0.02", "0.02", "0.02", "0.02"]);
    expect(epochs.every((m) => Number(m[3]) > 0 && Number(m[4]) > 0 && Number(m[5]) > 0)).toBe(true);
    expect(epochs[3]![6]).toBe("0.000");
    expect(Number(epochs[0]![6])).toBeGreaterThan(0);
  });
});
