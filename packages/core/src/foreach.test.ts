import { afterEach, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { axpyTensors, FitloopError, lerpTensors, scaleTensors } from "./index.js";
import { expectNoLeaks } from "./testing/index.js";

/** The foreach operations' contract on a backend without fused kernels (cpu: tfjs ops). */

const read = (ts: tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()));

describe("axpyTensors and lerpTensors (tfjs ops where no fused kernel is registered)", () => {
  afterEach(async () => {
    await tf.setBackend("cpu");
  });

  it("compute y + a * x (times scale) and a + (b - a) * t (or / t with divide) pairwise, as new tensors in order, the scalar a number or a tensor", async () => {
    await tf.setBackend("cpu");
    tf.tidy(() => {
      const ys = [tf.tensor1d([1, 2, 3]), tf.tensor2d([[10]])];
      const xs = [tf.tensor1d([1, -1, 0.5]), tf.tensor2d([[4]])];
      expect(read(axpyTensors(ys, xs, 2))).toEqual([[3, 0, 4], [18]]);
      expect(read(axpyTensors(ys, xs, tf.scalar(-0.5)))).toEqual([[0.5, 2.5, 2.75], [8]]);
      expect(read(axpyTensors(ys, xs, 2, { scale: 0.5 }))).toEqual([[1.5, 0, 2], [9]]);
      expect(read(lerpTensors(ys, xs, 0.25))).toEqual([[1, 1.25, 2.375], [8.5]]);
      expect(read(lerpTensors(ys, xs, tf.scalar(4), { divide: true }))).toEqual([[1, 1.25, 2.375], [8.5]]);
      const out = axpyTensors(ys, xs, 1);
      expect(out.map((t) => t.shape)).toEqual([[3], [1, 1]]);
      expect(out[0]).not.toBe(ys[0]); // new tensors, also where the result equals an input
      expect(lerpTensors([], [], 0.5)).toEqual([]);
    });
  });

  it("donate changes nothing without a fused kernel: new tensors, the donated ones as they were", async () => {
    await tf.setBackend("cpu");
    tf.tidy(() => {
      const ys = [tf.tensor1d([1, 2])];
      const out = axpyTensors(ys, [tf.tensor1d([1, 1])], 1, { donate: true, scale: 2 });
      expect(out[0]!.dataId).not.toBe(ys[0]!.dataId);
      expect(read(out)).toEqual([[4, 6]]);
      expect(read(ys)).toEqual([[1, 2]]);
      expect(read(lerpTensors(ys, [tf.tensor1d([3, 4])], 2, { donate: true, divide: true }))).toEqual([[2, 3]]);
    });
  });

  it("divide is a true float32 division (tf.div), which * (1 / t) is not for every value", async () => {
    await tf.setBackend("cpu");
    tf.tidy(() => {
      const a = [tf.zeros([4096])];
      const b = [tf.tensor1d(Float32Array.from({ length: 4096 }, (_, i) => (i + 1) * 0.1 + 1 / (i + 3)))];
      const divided = lerpTensors(a, b, 3, { divide: true })[0]!.dataSync();
      expect(Array.from(divided)).toEqual(Array.from(tf.div(b[0]!, 3).dataSync()));
      const multiplied = lerpTensors(a, b, 1 / 3)[0]!.dataSync();
      expect(Array.from(multiplied)).not.toEqual(Array.from(divided)); // the reason for divide: the bits differ somewhere
    });
  });

  it("refuse lists that do not pair up (naming the index) and non-scalar scalars, with typed errors, before any work", async () => {
    await tf.setBackend("cpu");
    const a = [tf.zeros([2, 3]), tf.zeros([4])];
    const b = [tf.zeros([2, 3]), tf.zeros([2, 2])];
    const c = [tf.zeros([2, 3]), tf.zeros([4], "int32")];
    const v = tf.zeros([2]);
    const before = tf.memory().numTensors;
    const refused = (fn: () => unknown, code: string, message: RegExp) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(FitloopError);
      expect((err as FitloopError).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    };
    refused(() => axpyTensors(a, b, 1), "TENSOR_MISMATCH", /axpyTensors: tensor 1 is float32 \[4\] in ys and float32 \[2, 2\] in xs/);
    refused(() => lerpTensors(a, c, 1), "TENSOR_MISMATCH", /lerpTensors: tensor 1 is float32 \[4\] in as and int32 \[4\] in bs/);
    refused(() => lerpTensors(a, a.slice(1), 1), "TENSOR_MISMATCH", /lerpTensors: 2 tensors in as and 1 in bs/);
    refused(() => lerpTensors([], [], v as tf.Scalar), "INVALID_SCALAR", /lerpTensors: t must be a number or a scalar tensor/); // also with nothing to do
    refused(() => axpyTensors(a, a, v as tf.Scalar), "INVALID_SCALAR", /axpyTensors: a must be a number or a scalar tensor, got a tensor of shape \[2\]/);
    refused(() => lerpTensors(a, a, "0.5" as unknown as number), "INVALID_SCALAR", /lerpTensors: t must be a number or a scalar tensor, got string/);
    refused(() => axpyTensors(a, a, 1, { scale: v as unknown as number }), "INVALID_SCALAR", /axpyTensors: options.scale must be a number, got object/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...a, ...b, ...c, v]);
  });

  it("NaN and Infinity propagate; other dtypes follow tfjs's type promotion; no tensors are left behind", async () => {
    await tf.setBackend("cpu");
    tf.tidy(() => {
      expect(read(axpyTensors([tf.tensor1d([1, Number.NaN])], [tf.tensor1d([Number.POSITIVE_INFINITY, 0])], 1))).toEqual([[Number.POSITIVE_INFINITY, Number.NaN]]);
      expect(read(lerpTensors([tf.tensor1d([1, 2])], [tf.tensor1d([3, 4])], Number.NaN))).toEqual([[Number.NaN, Number.NaN]]);
      const ints = lerpTensors([tf.tensor1d([0, 4], "int32")], [tf.tensor1d([4, 8], "int32")], 0.5)[0]!;
      expect([ints.dtype, Array.from(ints.dataSync())]).toEqual(["float32", [2, 6]]);
    });
    const xs = [tf.ones([5, 3]), tf.ones([7])];
    const s = tf.scalar(3);
    await expectNoLeaks(() => {
      tf.dispose(axpyTensors(xs, xs, 2));
      tf.dispose(axpyTensors(xs, xs, s));
      tf.tidy(() => void lerpTensors(xs, scaleTensors(xs, s), 0.5));
      tf.dispose(lerpTensors(xs, xs, s, { divide: true }));
    });
    tf.dispose([...xs, s]);
  });
});
