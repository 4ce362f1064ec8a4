import { afterAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, IdxError, MNIST_FILES, encodeIdx, parseIdx, streamData, type IdxArray } from "../index.js";
import { loadFashionMnist, loadMnist, openIdxStream, readIdxFile, writeIdxFile } from "./index.js";

const root = mkdtempSync(join(tmpdir(), "fitloop-idx-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** `n` fake 28x28 digits: pixel (r, c) of image i is (i * 7 + r * 3 + c) % 256; label i % 10. */
function fake(n: number): { images: IdxArray; labels: IdxArray } {
  const px = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) for (let p = 0; p < 784; p++) px[i * 784 + p] = (i * 7 + Math.floor(p / 28) * 3 + (p % 28)) % 256;
  return { images: { dtype: "uint8", dims: [n, 28, 28], data: px }, labels: { dtype: "uint8", dims: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 10) } };
}

/** Writes a train/test pair into a fresh directory, gzipped or not. */
function writeSet(name: string, n: number, gzip: boolean): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const { images, labels } = fake(n);
  for (const split of ["train", "test"] as const) {
    const f = MNIST_FILES[split];
    const ext = gzip ? ".gz" : "";
    writeIdxFile(join(dir, f.images + ext), images, { gzip });
    writeIdxFile(join(dir, f.labels + ext), labels, { gzip });
  }
  return dir;
}

function thrown(fn: () => unknown): IdxError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(IdxError);
    return e as IdxError;
  }
  throw new Error("expected an IdxError");
}

describe("IDX encode / parse", () => {
  it("round-trips every IDX type", () => {
    const cases: IdxArray[] = [
      { dtype: "uint8", dims: [2, 3], data: Uint8Array.from([0, 1, 2, 253, 254, 255]) },
      { dtype: "int8", dims: [3], data: Int8Array.from([-128, 0, 127]) },
      { dtype: "int16", dims: [2], data: Int16Array.from([-30000, 30000]) },
      { dtype: "int32", dims: [1, 2], data: Int32Array.from([-2e9, 2e9]) },
      { dtype: "float32", dims: [2], data: Float32Array.from([1.5, -0.25]) },
      { dtype: "float64", dims: [2], data: Float64Array.from([Math.PI, -1e300]) },
    ];
    for (const c of cases) {
      const back = parseIdx(encodeIdx(c), "x");
      expect([back.dtype, back.dims, Array.from(back.data)]).toEqual([c.dtype, c.dims, Array.from(c.data)]);
    }
    // big-endian header as in the MNIST files
    expect(Array.from(encodeIdx(fake(1).labels).subarray(0, 8))).toEqual([0, 0, 8, 1, 0, 0, 0, 1]);
  });
});

describe("MNIST / Fashion-MNIST IDX files", () => {
  it("files written by the test read back (plain and gzipped) as [28, 28, 1] images in [0, 1]", () => {
    for (const gzip of [false, true]) {
      const dir = writeSet(gzip ? "gz" : "plain", 30, gzip);
      const ds = loadMnist({ dir, split: "test" });
      const { images, labels } = fake(30);
      expect(ds.size).toBe(30);
      expect(ds.sampleShape).toEqual([28, 28, 1]);
      expect(Array.from(ds.x.subarray(0, 784 * 2)).map((v) => Math.round(v * 255))).toEqual(Array.from(images.data.subarray(0, 784 * 2)));
      expect(Array.from(ds.y)).toEqual(Array.from(labels.data));
      expect(loadMnist({ dir, scale: false }).x[1]).toBe(1);
      expect(loadFashionMnist({ dir }).classNames![9]).toBe("Ankle boot");
    }
  });

  it("a missing file names the file, what the directory holds and the four expected names", () => {
    const dir = writeSet("partial", 5, false);
    rmSync(join(dir, MNIST_FILES.train.labels));
    const e = thrown(() => loadMnist({ dir }));
    expect(e.code).toBe("IDX_MISSING");
    expect(e.message).toMatch(/train-labels-idx1-ubyte\[\.gz\]/);
    for (const name of ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]) expect(e.message).toContain(name);
    expect(e.message).toMatch(/it contains: t10k-images/);
    expect(thrown(() => loadMnist({ dir: join(root, "nope") })).message).toMatch(/does not exist/);
  });

  it("bad magic numbers, truncated files, count mismatches, bad labels and corrupt gzip are caught", () => {
    const dir = writeSet("bad", 6, false);
    const f = MNIST_FILES.train;
    const imagesPath = join(dir, f.images);
    const good = readFileSync(imagesPath);

    writeFileSync(imagesPath, encodeIdx(fake(6).labels)); // a label file where images belong
    const magic = thrown(() => loadMnist({ dir }));
    expect(magic.message).toMatch(/magic number is 0x00000801, expected 0x00000803/);
    expect(magic.file).toBe(imagesPath);

    writeFileSync(imagesPath, good.subarray(0, good.length - 10));
    expect(thrown(() => loadMnist({ dir })).message).toMatch(/truncated: dims \[6, 28, 28\] of uint8 need 4720 bytes, the file has 4710/);

    writeFileSync(imagesPath, encodeIdx(fake(5).images));
    expect(thrown(() => loadMnist({ dir })).message).toMatch(/5 images but train-labels-idx1-ubyte has 6 labels/);

    writeFileSync(imagesPath, good);
    writeFileSync(join(dir, f.labels), encodeIdx({ dtype: "uint8", dims: [6], data: Uint8Array.from([0, 1, 2, 12, 4, 5]) }));
    const label = (() => {
      try {
        loadMnist({ dir });
      } catch (e) {
        return e as { code: string; sampleIndex: number };
      }
    })();
    expect([label?.code, label?.sampleIndex]).toEqual(["LABEL_OUT_OF_RANGE", 3]);

    writeFileSync(join(dir, "broken.gz"), gzipSync(good).subarray(0, 100));
    expect(thrown(() => readIdxFile(join(dir, "broken.gz"))).message).toMatch(/corrupt gzip/);
    writeFileSync(join(dir, "junk"), "hello world");
    expect(thrown(() => readIdxFile(join(dir, "junk"))).message).toMatch(/bad IDX magic/);
  });
});

describe("openIdxStream (files read in chunks)", () => {
  for (const gzip of [false, true]) {
    it(`${gzip ? "gzipped" : "plain"} files stream the same samples as loadMnist, and resume at a batch`, async () => {
      const dir = writeSet(gzip ? "stream-gz" : "stream", 37, gzip);
      const src = await openIdxStream({ dir, split: "train", chunkBytes: 1000 }); // chunks split records
      expect([src.size, src.seekable]).toEqual([37, !gzip]);
      const opts = { batchSize: 8, sampleShape: src.sampleShape, numClasses: src.numClasses };
      const read = async (batchIndex: number) => {
        const out: number[][] = [];
        for await (const b of streamData(src, opts).batches({ epoch: 0, batchIndex }) as AsyncIterable<Batch>) {
          out.push([...(await b.xs.data()), ...(await b.ys.data())]);
          tf.dispose([b.xs, b.ys]);
        }
        return out;
      };
      const loader = new DataLoader(loadMnist({ dir }), { batchSize: 8, shuffle: false });
      const want: number[][] = [];
      for (let b = 0; b < loader.batchesPerEpoch; b++) {
        const batch = loader.batch(0, b);
        want.push([...(await batch.xs.data()), ...(await batch.ys.data())]);
        tf.dispose([batch.xs, batch.ys]);
      }
      await expectNoLeaks(async () => expect(await read(0)).toEqual(want), { warmup: 1, iterations: 2 });
      expect(await read(3)).toEqual(want.slice(3));
    });
  }
});
