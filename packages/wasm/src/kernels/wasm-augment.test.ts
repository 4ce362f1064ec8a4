import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ensureKernelThreads } from "../node/kernel-threads.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { AUGMENT_JOIN, AUGMENT_POST, AUGMENT_RELEASE, augmentPending, disableAugmentKernels, enableAugmentKernels, type AugmentPostAttrs } from "./wasm-augment.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";
import { setSimdKernelsEnabled } from "./index.js";

// FitloopAugmentPost / Join / Release called directly: the gather and shift against a plain JS
// reference (the noise, with @fitloop/datasets' tables, is tested bit for bit against its host
// path in packages/datasets/src/kernel-batches.test.ts), bad attributes, and the references a job
// holds while a batch is being made.

const [H, W, C, N] = [5, 7, 3, 20];
const F = H * W * C;

function dataset(seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: N * F }, () => ((s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) >>> 0), (s % 10000) / 10000));
}

/** out(s, r, x, ch) = data[idx[s]](r - dy, x - dx, ch), or fill outside the image. */
function reference(data: Float32Array, indices: Int32Array, shifts: Int32Array | undefined, fill: number): Float32Array {
  const out = new Float32Array(indices.length * F);
  for (let s = 0; s < indices.length; s++) {
    const dy = shifts?.[2 * s] ?? 0;
    const dx = shifts?.[2 * s + 1] ?? 0;
    for (let r = 0; r < H; r++)
      for (let x = 0; x < W; x++)
        for (let ch = 0; ch < C; ch++) {
          const sr = r - dy;
          const sx = x - dx;
          out[s * F + (r * W + x) * C + ch] = sr >= 0 && sr < H && sx >= 0 && sx < W ? data[indices[s]! * F + (sr * W + sx) * C + ch]! : Math.fround(fill);
        }
  }
  return out;
}

const post = (attrs: Partial<AugmentPostAttrs>): tf.Tensor => tf.engine().runKernel(AUGMENT_POST, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
const join = (x: tf.Tensor): tf.Tensor => tf.engine().runKernel(AUGMENT_JOIN, { x }, {}) as tf.Tensor;

describe("FitloopAugmentPost / Join (gather and shift in the background)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    expect((await ensureKernelThreads(2)).pool, "kernel threads").toBeDefined();
  });
  afterAll(() => setKernelThreadsEnabled(true));

  const owner = {};
  const data = dataset(1);

  it.each([
    ["on the kernel threads", true],
    ["on the calling thread at the join (no threads)", false],
  ])("gathers and shifts as the reference, %s, for shifts inside, at and beyond the image", async (_, threads) => {
    setKernelThreadsEnabled(threads as boolean);
    const stats = () => (kernelThreadPool() as unknown as { stats(): { backgroundTasks: number } }).stats().backgroundTasks;
    const tasksBefore = stats();
    for (let round = 0; round < 30; round++) {
      const n = 1 + ((round * 7) % 17);
      const indices = Int32Array.from({ length: n }, (_, s) => (s * 13 + round * 5) % N);
      const shifts = Int32Array.from({ length: 2 * n }, (_, k) => ((k * 5 + round * 3) % 15) - 7); // -7..7: beyond H = 5 and W = 7 too
      const fill = round % 3 === 0 ? 0 : 0.3 + round;
      const posted = post({ data, owner, indices, shifts, h: H, w: W, c: C, fill, outShape: [n, H, W, C] });
      const xs = join(posted);
      posted.dispose();
      const got = xs.dataSync() as Float32Array;
      const want = reference(data, indices, round % 4 === 0 ? undefined : shifts, fill);
      if (round % 4 === 0) {
        // the same without shifts: a plain gather
        const plain = join(post({ data, owner, indices, h: H, w: W, c: C, fill, outShape: [n, F] }));
        expect(Array.from(plain.dataSync())).toEqual(Array.from(want));
        tf.dispose(plain);
      } else {
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        expect(bad, `round ${round}: first wrong value`).toBe(-1);
      }
      xs.dispose();
    }
    if (threads) expect(stats(), "the pool ran the tasks").toBeGreaterThan(tasksBefore);
    else expect(stats(), "no pool: the join ran them").toBe(tasksBefore);
    setKernelThreadsEnabled(true);
  });

  it("normalises per feature after the gather as JavaScript does (float64, rounded once), features not a multiple of 4", () => {
    const indices = Int32Array.of(7, 2, 19);
    const mean = Float32Array.from({ length: F }, (_, k) => ((k * 37) % 101) / 97);
    const invStd = Float32Array.from({ length: F }, (_, k) => 1 / (0.1 + ((k * 13) % 29) / 7));
    const b = post({ data, owner, indices, h: H, w: W, c: C, fill: 0, outShape: [3, F], normalize: { mean, invStd } });
    const xs = join(b);
    const want = reference(data, indices, undefined, 0);
    for (let i = 0; i < want.length; i++) want[i] = (want[i]! - mean[i % F]!) * invStd[i % F]!;
    expect(Array.from(xs.dataSync())).toEqual(Array.from(want));
    tf.dispose([b, xs]);
  });

  it("refuses bad attributes with the attribute's name, before any work", () => {
    const ok: Partial<AugmentPostAttrs> = { data, owner, indices: Int32Array.of(0, 1), h: H, w: W, c: C, fill: 0, outShape: [2, F] };
    const ids = tf.engine().backend.numDataIds();
    const cases: [Partial<AugmentPostAttrs>, RegExp][] = [
      [{ data: Array.from(data) as unknown as Float32Array }, /data must be a Float32Array/],
      [{ owner: undefined }, /owner must be an object/],
      [{ indices: Int32Array.of(0, N) }, /indices\[1\] = 20 is outside the data's 20 samples/],
      [{ indices: Int32Array.of(-1) }, /indices\[0\] = -1/],
      [{ indices: new Int32Array(0) }, /indices must be an Int32Array of at least one row/],
      [{ w: 6 }, /data has 2100 values, not whole samples of h \* w \* c = 90/],
      [{ c: 0 }, /c must be an integer >= 1/],
      [{ outShape: [3, F] }, /outShape \[3,105\] must be \[2, \.\.\.\] with 210 values/],
      [{ shifts: Int32Array.of(1, 2) }, /shifts must be an Int32Array of 4 values/],
      [{ fill: "0" as unknown as number }, /fill must be a number/],
      [{ noise: { std: -1, lo: 0, hi: 1, states: new Int32Array(16), tables: { kn: new Int32Array(512), wn: new Float64Array(512), slow: new Float64Array(2304) } } }, /noise.std must be a finite number >= 0/],
      [{ noise: { std: 1, lo: 1, hi: 0, states: new Int32Array(16), tables: { kn: new Int32Array(512), wn: new Float64Array(512), slow: new Float64Array(2304) } } }, /noise.lo must be <= noise.hi/],
      [{ noise: { std: 1, lo: 0, hi: 1, states: new Int32Array(32), tables: { kn: new Int32Array(512), wn: new Float64Array(512), slow: new Float64Array(2304) } } }, /noise.states must be an Int32Array of 16 words per chunk of 4096 features \(16\)/],
      [{ noise: { std: 1, lo: 0, hi: 1, states: new Int32Array(16), tables: { kn: new Int32Array(511), wn: new Float64Array(512), slow: new Float64Array(2304) } } }, /noise.tables must hold/],
      [{ normalize: { mean: new Float32Array(F), invStd: new Float32Array(F - 1) } }, /normalize must hold mean and invStd, Float32Arrays of 105 values/],
    ];
    for (const [change, message] of cases) expect(() => post({ ...ok, ...change }), String(message)).toThrow(message);
    expect(augmentPending()).toBe(false);
    expect(tf.engine().backend.numDataIds(), "nothing allocated").toBe(ids);
  });

  it("a posted tensor disposed before its join is freed at the join of the next post, with the engine's entry", async () => {
    const indices = Int32Array.of(3, 1, 4, 1, 5);
    const attrs = { data, owner, indices, h: H, w: W, c: C, fill: 0, outShape: [5, F] };
    const ids = tf.engine().backend.numDataIds();
    const buffers = tf.memory().numDataBuffers;
    await expectNoLeaks(() => {
      post(attrs).dispose(); // the job still writes it: the buffer stays until the next post joins the job
      expect(augmentPending()).toBe(true);
      const b = post(attrs);
      const xs = join(b);
      b.dispose();
      expect(Array.from(xs.dataSync())).toEqual(Array.from(reference(data, indices, undefined, 0)));
      xs.dispose();
      expect(augmentPending()).toBe(false);
    });
    expect(tf.engine().backend.numDataIds()).toBe(ids);
    expect(tf.memory().numDataBuffers).toBe(buffers);
  });

  it("reads the owner's data once: a change shows only after FitloopAugmentRelease (a new copy)", () => {
    const mine = {};
    const local = dataset(2);
    const attrs: Partial<AugmentPostAttrs> = { data: local, owner: mine, indices: Int32Array.of(0), h: H, w: W, c: C, fill: 0, outShape: [1, F] };
    const first = (): number => {
      const b = post(attrs);
      const xs = join(b);
      const v = xs.dataSync()[0]!;
      tf.dispose([b, xs]);
      return v;
    };
    const before = first();
    local[0] = 42;
    expect(first(), "the copy made at the first post").toBe(before);
    tf.engine().runKernel(AUGMENT_RELEASE, {}, { owner: mine } as unknown as tf.NamedAttrMap);
    expect(first()).toBe(42);
    // another array for the same owner: a new copy
    attrs.data = dataset(3);
    expect(first()).toBe(attrs.data[0]);
    tf.engine().runKernel(AUGMENT_RELEASE, {}, { owner: mine } as unknown as tf.NamedAttrMap);
    tf.engine().runKernel(AUGMENT_RELEASE, {}, { owner: {} } as unknown as tf.NamedAttrMap); // unknown owners: nothing to do
  });

  it("are unregistered while fitloop's SIMD kernels are off (they have no JS twin), and back after", () => {
    setSimdKernelsEnabled(false);
    try {
      expect(tf.getKernel(AUGMENT_POST, "wasm"), "a loader then takes its host path").toBeUndefined();
      expect(tf.getKernel(AUGMENT_JOIN, "wasm")).toBeUndefined();
    } finally {
      setSimdKernelsEnabled(true);
    }
    expect(tf.getKernel(AUGMENT_POST, "wasm")).toBeDefined();
    expect(tf.getKernel(AUGMENT_RELEASE, "wasm")).toBeDefined();
  });

  it("disableAugmentKernels finishes a batch being made first", () => {
    const posted = post({ data, owner, indices: Int32Array.of(1, 2), h: H, w: W, c: C, fill: 0, outShape: [2, F] });
    expect(augmentPending()).toBe(true);
    disableAugmentKernels();
    try {
      expect(augmentPending()).toBe(false);
      expect(tf.getKernel(AUGMENT_POST, "wasm")).toBeUndefined();
      expect(Array.from(posted.dataSync())).toEqual(Array.from(reference(data, Int32Array.of(1, 2), undefined, 0)));
    } finally {
      posted.dispose();
      enableAugmentKernels();
    }
  });
});
