import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { fromArrays, fromTensors, sampleX, subset } from "./index.js";

/** The DataError thrown by `fn` (fails the test if none). */
function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error("expected a DataError");
}

describe("fromArrays", () => {
  it("takes nested rows and infers the sample shape", () => {
    const ds = fromArrays({ x: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], y: [0, 1], numClasses: 2 });
    expect(ds.sampleShape).toEqual([2, 2]);
    expect(ds.size).toBe(2);
    expect(Array.from(sampleX(ds, 1))).toEqual([5, 6, 7, 8]);
    expect(ds.y).toBeInstanceOf(Int32Array);
  });

  it("takes a flat Float32Array with sampleShape without copying it", () => {
    const x = new Float32Array(12);
    const ds = fromArrays({ x, y: [0, 1, 2], sampleShape: [2, 2], numClasses: 3 });
    expect(ds.x).toBe(x);
    expect(ds.size).toBe(3);
  });

  it("regression targets: flat scalars or one vector per sample", () => {
    const a = fromArrays({ x: [[1], [2]], y: [0.5, 1.5] });
    expect(a.numClasses).toBeUndefined();
    expect(a.labelShape).toEqual([]);
    expect(Array.from(a.y)).toEqual([0.5, 1.5]);
    const b = fromArrays({ x: [[1], [2]], y: [[1, 2], [3, 4]] });
    expect(b.labelShape).toEqual([2]);
  });

  it("NaN or Inf in inputs: NON_FINITE_INPUT naming the sample", () => {
    const e = dataError(() => fromArrays({ x: [[0, 1], [2, 3], [4, NaN]], y: [0, 0, 0], numClasses: 1 }));
    expect(e.code).toBe("NON_FINITE_INPUT");
    expect(e.sampleIndex).toBe(2);
    expect(e.message).toMatch(/sample 2/);
    expect(dataError(() => fromArrays({ x: new Float32Array([0, 1, Infinity, 0]), sampleShape: [2], y: [0, 0], numClasses: 1 })).sampleIndex).toBe(1);
  });

  it("allowNonFinite keeps NaN (for a data report of raw data)", () => {
    expect(fromArrays({ x: [[NaN]], y: [0], numClasses: 1, allowNonFinite: true }).size).toBe(1);
  });

  it("labels out of range, not integers, or of the wrong type name the sample", () => {
    const x = [[0], [1], [2], [3]];
    const range = dataError(() => fromArrays({ x, y: [0, 1, 3, 1], numClasses: 3 }));
    expect([range.code, range.sampleIndex]).toEqual(["LABEL_OUT_OF_RANGE", 2]);
    expect(range.message).toMatch(/\[0, 2\]/);
    expect(dataError(() => fromArrays({ x, y: [0, -1, 0, 0], numClasses: 3 })).sampleIndex).toBe(1);
    const frac = dataError(() => fromArrays({ x, y: [0, 1, 1, 1.5], numClasses: 3 }));
    expect([frac.code, frac.sampleIndex]).toEqual(["LABEL_NOT_INTEGER", 3]);
    const type = dataError(() => fromArrays({ x, y: [0, "1", 1, 1] as unknown as number[], numClasses: 3 }));
    expect([type.code, type.sampleIndex]).toEqual(["LABEL_WRONG_TYPE", 1]);
    const oneHot = dataError(() => fromArrays({ x: [[0], [1]], y: [[1, 0], [0, 1]], numClasses: 2 }));
    expect(oneHot.code).toBe("LABEL_WRONG_TYPE");
    expect(oneHot.message).toMatch(/one-hot/);
    expect(dataError(() => fromArrays({ x, y: [0, NaN, 0, 0], numClasses: 3 })).sampleIndex).toBe(1);
  });

  it("ragged rows: RAGGED_SAMPLE naming the first odd one, at any depth", () => {
    const e = dataError(() => fromArrays({ x: [[1, 2], [3, 4], [5], [6, 7]], y: [0, 0, 0, 0], numClasses: 1 }));
    expect([e.code, e.sampleIndex]).toEqual(["RAGGED_SAMPLE", 2]);
    const deep = dataError(() => fromArrays({ x: [[[1, 2], [3, 4]], [[1, 2], [3]]], y: [0, 0], numClasses: 1 }));
    expect([deep.code, deep.sampleIndex]).toEqual(["RAGGED_SAMPLE", 1]);
    const flat = dataError(() => fromArrays({ x: [1, 2, 3, 4, 5], sampleShape: [2], y: [0, 0, 0], numClasses: 1 }));
    expect([flat.code, flat.sampleIndex]).toEqual(["RAGGED_SAMPLE", 2]);
  });

  it("non-numbers in inputs: INPUT_WRONG_TYPE naming the sample", () => {
    const e = dataError(() => fromArrays({ x: [[1, 2], [3, "4"]] as unknown as number[][], y: [0, 0], numClasses: 1 }));
    expect([e.code, e.sampleIndex]).toEqual(["INPUT_WRONG_TYPE", 1]);
  });

  it("empty data, length mismatch and a missing sample shape are typed errors", () => {
    expect(dataError(() => fromArrays({ x: [], y: [], sampleShape: [2], numClasses: 2 })).code).toBe("EMPTY_DATA");
    expect(dataError(() => fromArrays({ x: [[1], [2]], y: [0], numClasses: 2 })).code).toBe("LENGTH_MISMATCH");
    expect(dataError(() => fromArrays({ x: [1, 2], y: [0, 1], numClasses: 2 })).code).toBe("MISSING_SAMPLE_SHAPE");
  });
});

describe("fromTensors and subset", () => {
  it("copies tensors into typed arrays without leaking", async () => {
    const xs = tf.tensor([[1, 2], [3, 4], [5, 6]]);
    const ys = tf.tensor([2, 0, 1]);
    await expectNoLeaks(async () => {
      const ds = await fromTensors(xs, ys, { numClasses: 3 });
      expect(Array.from(ds.x)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(Array.from(ds.y)).toEqual([2, 0, 1]);
    });
    const targets = tf.ones([3, 2]);
    const reg = await fromTensors(xs, targets);
    expect(reg.labelShape).toEqual([2]);
    tf.dispose([xs, ys, targets]);
  });

  it("subset copies the rows in the given order and checks the indices", () => {
    const ds = fromArrays({ x: [[0], [10], [20], [30]], y: [0, 1, 0, 1], numClasses: 2 });
    const s = subset(ds, [3, 1]);
    expect(Array.from(s.x)).toEqual([30, 10]);
    expect(Array.from(s.y)).toEqual([1, 1]);
    expect(dataError(() => subset(ds, [4])).code).toBe("INDEX_OUT_OF_RANGE");
  });
});
