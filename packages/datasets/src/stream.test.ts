import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, type Batch, type DataCursor, type DataSource } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, fromArrays, gaussianNoise, streamData, type Sample, type StreamSource } from "./index.js";

/** A generator source of `n` samples: x = [i, -i], y = i % 3; counts what it reads. */
function counting(n: number, options: { seekable?: boolean; bad?: (i: number) => Sample | undefined } = {}) {
  const stats = { opened: [] as number[], read: 0 };
  const source: StreamSource = {
    size: n,
    ...(options.seekable ? { seekable: true } : {}),
    async *open(_epoch, start) {
      stats.opened.push(start);
      for (let i = start; i < n; i++) {
        stats.read++;
        yield options.bad?.(i) ?? { x: [i, -i], y: i % 3 };
      }
    },
  };
  return { source, stats };
}

async function collect(src: DataSource, cursor: DataCursor) {
  const out: { xs: number[]; ys: number[] }[] = [];
  for await (const b of src.batches(cursor) as AsyncIterable<Batch>) {
    out.push({ xs: Array.from(await b.xs.data()), ys: Array.from(await b.ys.data()) });
    tf.dispose([b.xs, b.ys]);
  }
  return out;
}

describe("streamData", () => {
  it("batches a stream exactly like an unshuffled DataLoader over the same samples", async () => {
    const { source } = counting(23);
    const stream = streamData(source, { batchSize: 5, sampleShape: [2], numClasses: 3 });
    expect(stream.batchesPerEpoch).toBe(5);
    const ds = fromArrays({ x: Array.from({ length: 23 }, (_, i) => [i, -i]), y: Array.from({ length: 23 }, (_, i) => i % 3), numClasses: 3 });
    const loader = new DataLoader(ds, { batchSize: 5, shuffle: false });
    await expectNoLeaks(async () => expect(await collect(stream, { epoch: 0, batchIndex: 0 })).toEqual(await collect(loader, { epoch: 0, batchIndex: 0 })));
    const dropped = await collect(streamData(counting(23).source, { batchSize: 5, sampleShape: [2], numClasses: 3, dropLast: true }), { epoch: 0, batchIndex: 0 });
    expect(dropped.length).toBe(4);
  });

  it("resumes by reading past earlier samples, or by seeking when the source can; same batches either way", async () => {
    const opts = { batchSize: 4, sampleShape: [2], numClasses: 3, transforms: [gaussianNoise({ std: 1 })] };
    const full = await collect(streamData(counting(20).source, opts), { epoch: 1, batchIndex: 0 });
    const replay = counting(20);
    expect(await collect(streamData(replay.source, opts), { epoch: 1, batchIndex: 3 })).toEqual(full.slice(3));
    expect(replay.stats).toEqual({ opened: [0], read: 20 });
    const seek = counting(20, { seekable: true });
    expect(await collect(streamData(seek.source, opts), { epoch: 1, batchIndex: 3 })).toEqual(full.slice(3));
    expect(seek.stats).toEqual({ opened: [12], read: 8 });
  });

  it("a shuffle buffer gives a seeded permutation per epoch", async () => {
    const opts = { batchSize: 10, sampleShape: [2], numClasses: 3, shuffleBuffer: 8, seed: 4 };
    const order = async (epoch: number) => (await collect(streamData(counting(30).source, opts), { epoch, batchIndex: 0 })).flatMap((b) => b.xs.filter((_, k) => k % 2 === 0));
    const e0 = await order(0);
    expect([...e0].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(e0).not.toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(await order(0)).toEqual(e0);
    expect(await order(1)).not.toEqual(e0);
    const resumed = (await collect(streamData(counting(30).source, opts), { epoch: 0, batchIndex: 2 })).flatMap((b) => b.xs.filter((_, k) => k % 2 === 0));
    expect(resumed).toEqual(e0.slice(20));
  });

  it("bad samples are DataErrors naming their index in the epoch", async () => {
    const cases: [(i: number) => Sample | undefined, string, number][] = [
      [(i) => (i === 7 ? { x: [NaN, 0], y: 0 } : undefined), "NON_FINITE_INPUT", 7],
      [(i) => (i === 9 ? { x: [1, 2, 3], y: 0 } : undefined), "RAGGED_SAMPLE", 9],
      [(i) => (i === 6 ? { x: [1, 2], y: 5 } : undefined), "LABEL_OUT_OF_RANGE", 6],
      [(i) => (i === 11 ? { x: [1, 2], y: 0.5 } : undefined), "LABEL_NOT_INTEGER", 11],
    ];
    for (const [bad, code, index] of cases) {
      const src = streamData(counting(12, { bad }).source, { batchSize: 4, sampleShape: [2], numClasses: 3 });
      const err = await collect(src, { epoch: 0, batchIndex: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataError);
      expect([(err as DataError).code, (err as DataError).sampleIndex]).toEqual([code, index]);
    }
  });

  it("regression targets, unknown size, and early stop without leaks", async () => {
    const source: StreamSource = {
      *open() {
        for (let i = 0; i < 1000; i++) yield { x: [i], y: [i * 2, i * 3] };
      },
    };
    const stream = streamData(source, { batchSize: 8, sampleShape: [1], labelShape: [2] });
    expect(stream.batchesPerEpoch).toBeUndefined();
    await expectNoLeaks(async () => {
      let n = 0;
      for await (const b of stream.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>) {
        expect(b.ys.shape).toEqual([8, 2]);
        tf.dispose([b.xs, b.ys]);
        await new Promise((r) => setTimeout(r, 1));
        if (++n === 3) break;
      }
    });
  });

  it("options are checked up front", () => {
    const { source } = counting(4);
    expect(() => streamData(source, { batchSize: 2, sampleShape: [2], seed: 0.1 })).toThrow(OptionsError);
    expect(() => streamData(source, { batchSize: 2, sampleShape: [2], oneHot: true })).toThrow(/numClasses/);
  });
});
