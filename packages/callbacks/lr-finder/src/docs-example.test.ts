import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: a sweep with four suggestions and an ok verdict, then 1cycle with valley as its peak learns the digits", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const sweep = /^sweep: (\w+) after (\d+) steps$/m.exec(out)!;
    expect(["completed", "diverged"]).toContain(sweep[1]);
    expect(Number(sweep[2])).toBeGreaterThan(50);
    const points = [...out.matchAll(/^ {2}lr ([\d.e+-]+) loss ([\d.]+) smoothed ([\d.]+)$/gm)];
    expect(points[0]![1]).toBe("1.0e-4"); // startLr
    expect(points.length).toBeGreaterThanOrEqual(3);
    const lr = (name: string) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, "m").exec(out)![1]);
    for (const name of ["valley", "steep", "minimum", "slide"]) expect(lr(name)).toBeGreaterThan(1e-4);
    expect(lr("valley")).toBeGreaterThan(1e-3); // Adam on MNIST: a few 1e-3
    expect(lr("valley")).toBeLessThan(3e-2);
    expect(out).toMatch(/^confidence: ok$/m);
    const epochs = [...out.matchAll(/^epoch (\d) loss ([\d.]+) val_acc ([\d.]+)$/gm)];
    expect(epochs).toHaveLength(3);
    expect(Number(epochs[2]![2])).toBeLessThan(Number(epochs[0]![2]));
    expect(Number(epochs[2]![3])).toBeGreaterThan(0.9);
  });
});
