import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { metrics as layerMetrics } from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { isSparseCrossentropyEnabled, registerWasmKernels, restoreWasmKernels, SPARSE_CE, SPARSE_CE_GRAD, type SparseCrossentropyAttrs } from "./index.js";
// This package does not depend on @fitloop/core: its source, for the path through core's loss (test only).
import { resolveLoss } from "../../../core/src/losses.js";
import { values } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

/**
 * `FitloopSparseCrossentropy` and its gradient on wasm against the tfjs composite (reshape, floor,
 * cast, oneHot, tfjs-layers' categoricalCrossentropy) on the cpu backend, directly and through core.
 */

const EPS = 1e-7;
const ATTRS: SparseCrossentropyAttrs = { epsilon: EPS };

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") await useTestBackend("wasm", { threads: false, kernelThreads: false });
  else await useTestBackend("cpu");
}

interface Case {
  name: string;
  n: number;
  c: number;
  probs: Float32Array;
  labels: number[];
  dtype: "int32" | "float32";
}

/** Positive probabilities, row i summing to `rowSum(i)`; `edit` may overwrite entries afterwards. */
function probsOf(n: number, c: number, seed: number, rowSum: (i: number) => number = () => 1): Float32Array {
  const v = values(n * c, seed);
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.abs(v[i * c + j]!) + 0.05;
    for (let j = 0; j < c; j++) out[i * c + j] = ((Math.abs(v[i * c + j]!) + 0.05) / s) * rowSum(i);
  }
  return out;
}

const labelsOf = (n: number, c: number, seed: number): number[] => Array.from(values(n, seed), (v) => Math.min(c - 1, Math.floor(((v + 1) / 2) * c)));

const CASES: Case[] = [];
for (const [n, c] of [[1, 2], [7, 10], [64, 100], [7, 2], [64, 10], [1, 100]] as const) {
  for (const dtype of ["int32", "float32"] as const) CASES.push({ name: `N=${n} C=${c} ${dtype}`, n, c, probs: probsOf(n, c, n * 131 + c), labels: labelsOf(n, c, n + c), dtype });
}
CASES.push({ name: "float labels 3.0 and 2.7 (floored)", n: 4, c: 5, probs: probsOf(4, 5, 9), labels: [3.0, 2.7, 0.5, 4.99], dtype: "float32" });
CASES.push({ name: "rows summing to 0.5 and 3", n: 6, c: 10, probs: probsOf(6, 10, 17, (i) => (i % 2 ? 3 : 0.5)), labels: [0, 3, 9, 9, 4, 1], dtype: "int32" });
{
  // exact 0 and 1 in rows: q = 1 (clipped from above), q = 0 (clipped from below), and clipped rows next to ordinary ones
  const p = probsOf(5, 4, 23);
  p.set([0, 1, 0, 0], 0);
  p.set([0, 1, 0, 0], 4);
  p.set([0.5, 0.5, 0, 0], 8);
  CASES.push({ name: "probs hitting the clip (exact 0 and 1)", n: 5, c: 4, probs: p, labels: [1, 0, 2, 3, 1], dtype: "float32" });
}
CASES.push({ name: "out-of-range int32 labels -1 and C", n: 4, c: 3, probs: probsOf(4, 3, 31), labels: [-1, 3, 2, 0], dtype: "int32" });
CASES.push({ name: "out-of-range float32 labels -1, -0.5 and C", n: 4, c: 3, probs: probsOf(4, 3, 37), labels: [-1, 3, -0.5, 1], dtype: "float32" });

const tensorsOf = (k: Case): { labels: tf.Tensor1D; probs: tf.Tensor2D } => ({ labels: tf.tensor1d(k.labels, k.dtype), probs: tf.tensor2d(k.probs, [k.n, k.c]) });

/** The tfjs composite core falls back to (written out here, independent of core's code). */
function composite(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const flat = tf.reshape(yTrue, [-1]);
    const labels = flat.dtype === "int32" ? flat : tf.cast(tf.floor(flat), "int32");
    return layerMetrics.categoricalCrossentropy(tf.reshape(tf.oneHot(labels, yPred.shape[yPred.shape.length - 1]!), yPred.shape), yPred);
  });
}

const kernel = (yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor => tf.engine().runKernel(SPARSE_CE, { probs: yPred, labels: yTrue }, ATTRS as unknown as tf.NamedAttrMap) as tf.Tensor;

type Loss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

interface Results {
  loss: Float32Array;
  grad: Float32Array;
  logitGrad: Float32Array;
}

/** The loss, the gradient of its mean w.r.t. probs, and w.r.t. logits through a softmax (logits = log probs). */
function run(k: Case, loss: Loss): Results {
  return tf.tidy(() => {
    const { labels, probs } = tensorsOf(k);
    const value = loss(labels, probs);
    const grad = tf.grad((p: tf.Tensor) => tf.mean(loss(labels, p)))(probs);
    const logits = tf.log(tf.add(probs, 1e-3));
    const logitGrad = tf.grad((z: tf.Tensor) => tf.mean(loss(labels, tf.softmax(z))))(logits);
    return { loss: value.dataSync() as Float32Array, grad: grad.dataSync() as Float32Array, logitGrad: logitGrad.dataSync() as Float32Array };
  });
}

function expectMatches(actual: Results, expected: Results, label: string): void {
  expectClose(actual.loss, expected.loss, `${label}: loss`, 1e-6);
  expectClose(actual.grad, expected.grad, `${label}: d/dprobs`, 1e-6);
  expectClose(actual.logitGrad, expected.logitGrad, `${label}: d/dlogits`, 1e-5);
  // where tfjs's gradient is exactly 0 (clipped, out of range) so is ours
  expected.grad.forEach((g, i) => {
    if (g === 0) expect(actual.grad[i], `${label}: d/dprobs[${i}] is 0 in tfjs`).toBe(0);
  });
}

const kernelNames = async (f: () => tf.Tensor): Promise<string[]> => {
  const info = await tf.profile(() => f());
  tf.dispose(info.result as tf.Tensor);
  return info.kernels.map((k) => k.name);
};

const numDataIds = (): number => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();

describe("FitloopSparseCrossentropy on wasm", () => {
  let expected: Results[];
  beforeAll(async () => {
    await use("cpu");
    expected = CASES.map((k) => run(k, composite));
    await use("wasm");
  });
  afterAll(async () => {
    registerWasmKernels();
    await use("cpu");
  });

  it("is registered by useWasm on wasm only, with its gradient", () => {
    expect(isSparseCrossentropyEnabled()).toBe(true);
    expect(tf.getKernel(SPARSE_CE, "wasm")).toBeDefined();
    expect(tf.getKernel(SPARSE_CE_GRAD, "wasm")).toBeDefined();
    expect(tf.getKernel(SPARSE_CE, "cpu")).toBeUndefined();
    expect(tf.getGradient(SPARSE_CE)?.inputsToSave).toEqual(["probs", "labels"]);
  });

  it("core's loss on cpu is the composite (the reference below)", async () => {
    await use("cpu");
    const k = CASES[3]!;
    expectMatches(run(k, resolveLoss("sparseCategoricalCrossentropy")), expected[3]!, k.name);
    await use("wasm");
  });

  it.each(CASES.map((k, i) => [k.name, i] as const))("matches the tfjs composite on cpu (values, gradients w.r.t. probs and logits): %s", (name, i) => {
    expectMatches(run(CASES[i]!, kernel), expected[i]!, name);
  });

  it("gives +0 loss and zero gradient for out-of-range labels (-1, C, NaN)", () => {
    const k: Case = { name: "NaN", n: 4, c: 3, probs: probsOf(4, 3, 41), labels: [NaN, -1, 3, 1], dtype: "float32" };
    const { loss, grad } = run(k, kernel);
    expect(Array.from(loss.slice(0, 3))).toEqual([0, 0, 0]);
    expect(Object.is(loss[0], 0)).toBe(true);
    expect(loss[3]).toBeGreaterThan(0);
    expect(Array.from(grad.slice(0, 9))).toEqual(new Array<number>(9).fill(0));
    expect(grad.slice(9).some((g) => g !== 0)).toBe(true);
  });

  it("through core: resolveLoss('sparseCategoricalCrossentropy') runs one kernel forward and one backward, with the composite's values", async () => {
    const loss = resolveLoss("sparseCategoricalCrossentropy");
    for (const i of [2, 5, 12, 14]) expectMatches(run(CASES[i]!, loss), expected[i]!, `core: ${CASES[i]!.name}`);
    const { labels, probs } = tensorsOf(CASES[4]!);
    expect(await kernelNames(() => loss(labels, probs))).toEqual([SPARSE_CE]);
    // labels [N, 1]: a reshape, then the kernel
    const column = tf.reshape(labels, [-1, 1]);
    expect(await kernelNames(() => loss(column, probs))).toEqual(["Reshape", SPARSE_CE]);
    expectClose(tf.tidy(() => loss(column, probs).dataSync()), expected[4]!.loss, "core, labels [N, 1]", 1e-6);
    const backward = await kernelNames(() => tf.grad((p: tf.Tensor) => tf.sum(loss(labels, p)))(probs));
    expect(backward).toContain(SPARSE_CE_GRAD);
    expect(backward.filter((name) => ["OneHot", "ClipByValue", "Log", "RealDiv"].includes(name))).toEqual([]);
    tf.dispose([labels, probs, column]);
  });

  it("leaks no tensors or wasm buffers, through core and directly", async () => {
    const loss = resolveLoss("sparseCategoricalCrossentropy");
    const { labels, probs } = tensorsOf(CASES[8]!); // N=64 C=10, as v
    const v = tf.variable(tf.zeros([64, 10]), true, `sparse_ce_test_${Math.random()}`);
    const before = numDataIds();
    await expectNoLeaks(() => {
      tf.tidy(() => loss(labels, probs)).dispose();
      tf.grad((p: tf.Tensor) => tf.mean(loss(labels, p)))(probs).dispose();
      const { value, grads } = tf.variableGrads(() => tf.mean(loss(labels, tf.softmax(v))) as tf.Scalar, [v]);
      value.dispose();
      tf.dispose(grads);
    });
    expect(numDataIds()).toBe(before);
    tf.dispose([labels, probs, v]);
  });

  it("probs of rank 3 go through core's composite fallback; a direct call with bad input throws a clear Error and leaves nothing behind", async () => {
    const loss = resolveLoss("sparseCategoricalCrossentropy");
    const probs3 = tf.tensor3d(probsOf(6, 4, 43), [2, 3, 4]);
    const labels3 = tf.tensor2d([0, 1, 2, 3, 1, 0], [2, 3], "int32");
    await use("cpu");
    const ref = tf.tidy(() => {
      const [l, p] = [tf.tensor2d([0, 1, 2, 3, 1, 0], [2, 3], "int32"), tf.tensor3d(probsOf(6, 4, 43), [2, 3, 4])];
      return { loss: composite(l, p).dataSync().slice(), grad: tf.grad((x: tf.Tensor) => tf.mean(composite(l, x)))(p).dataSync().slice() };
    });
    await use("wasm");
    expect(await kernelNames(() => loss(labels3, probs3))).not.toContain(SPARSE_CE);
    await expectNoLeaks(() => {
      const value = tf.tidy(() => loss(labels3, probs3));
      expectClose(value.dataSync(), ref.loss, "rank 3 loss", 1e-6);
      value.dispose();
      const g = tf.grad((x: tf.Tensor) => tf.mean(loss(labels3, x)))(probs3);
      expectClose(g.dataSync(), ref.grad, "rank 3 grad", 1e-6);
      g.dispose();
    });
    const [p2, lInt, lBool, lShort, dy] = [tf.tensor2d(probsOf(3, 4, 47), [3, 4]), tf.tensor1d([0, 1, 2], "int32"), tf.tensor1d([true, false, true], "bool"), tf.tensor1d([0, 1], "int32"), tf.ones([3])];
    const [tensors, ids] = [tf.memory().numTensors, numDataIds()];
    const call = (name: string, inputs: tf.NamedTensorMap, attrs: object = ATTRS) => () => tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap);
    expect(call(SPARSE_CE, { probs: probs3, labels: lInt })).toThrowError(/'probs'.*rank 2/);
    expect(call(SPARSE_CE, { probs: tf.cast(p2, "int32"), labels: lInt })).toThrowError(/'probs'/);
    expect(call(SPARSE_CE, { probs: p2, labels: lBool })).toThrowError(/'labels'.*int32 or float32/);
    expect(call(SPARSE_CE, { probs: p2, labels: lShort })).toThrowError(/'labels'.*\[3\]/);
    expect(call(SPARSE_CE, { probs: p2, labels: lInt }, {})).toThrowError(/'epsilon'/);
    expect(call(SPARSE_CE_GRAD, { dy: tf.ones([2]), probs: p2, labels: lInt })).toThrowError(/'dy'/);
    expect(call(SPARSE_CE_GRAD, { dy, probs: p2, labels: lShort })).toThrowError(/'labels'/);
    // the cast and ones above are the only new tensors
    expect(tf.memory().numTensors).toBe(tensors + 2);
    expect(numDataIds()).toBe(ids + 2);
    tf.dispose([probs3, labels3, p2, lInt, lBool, lShort, dy]);
  });

  it("after restoreWasmKernels() core computes the composite again (no Fitloop kernel); registerWasmKernels() enables it again", async () => {
    const loss = resolveLoss("sparseCategoricalCrossentropy");
    const { labels, probs } = tensorsOf(CASES[8]!);
    restoreWasmKernels();
    try {
      expect(isSparseCrossentropyEnabled()).toBe(false);
      expect(tf.getKernel(SPARSE_CE, "wasm")).toBeUndefined();
      const names = await kernelNames(() => loss(labels, probs));
      expect(names.filter((n) => n.startsWith("Fitloop"))).toEqual([]);
      expect(names).toContain("OneHot");
      expectMatches(run(CASES[8]!, loss), expected[8]!, "restored");
    } finally {
      registerWasmKernels();
    }
    expect(isSparseCrossentropyEnabled()).toBe(true);
    expect(await kernelNames(() => loss(labels, probs))).toEqual([SPARSE_CE]);
    tf.dispose([labels, probs]);
  });
});
