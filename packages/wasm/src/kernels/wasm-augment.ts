import * as tf from "@tensorflow/tfjs-core";
import { getKernel, registerKernel, unregisterKernel, util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { runInBackground, type BackgroundJob, type KernelCall } from "./kernel-threads.js";
import { augmentSimd, embeddedModuleValidates, simdKernelsEnabled, type AugmentSimdExports, type EmscriptenWasm, type SimdKernels } from "./simd/index.js";
import { asKernelFunc, WASM, type KernelArgs, type WasmHeapBackend } from "./wasm-util.js";

/**
 * A data loader's augmented batch, made in the background in tfjs-wasm's memory (`augment.wat`).
 *
 * `FitloopAugmentPost` returns the batch's tensor at once and posts the work that fills it (gather
 * the rows and shift each image, then add gaussian noise: chunks of 4096 in up to four parts that may
 * run at once, then normalise per feature) to the kernel threads: an idle worker makes it
 * while the training step runs (between the step's own jobs), so the step hardly pays for it.
 * `FitloopAugmentJoin` waits for the work (running what no worker has started on the calling
 * thread) and returns the finished tensor. Without kernel threads the work runs at the join.
 *
 * @fitloop/datasets' `DataLoader` uses them when the backend has them (asking by kernel name, as
 * `@fitloop/core` does for its fused kernels) and its transforms can be written as these steps
 * (`randomShift` / `randomCrop`, then `gaussianNoise`): it draws the same numbers as on the host and
 * passes them here, so the batch has the same bits. The noise is datasets' own kernel
 * (`normal.wat`, built into augment.wat), whose tables and generator state it passes as well.
 *
 * Between post and join the tensor holds no values yet: join it before any other use. Posting joins
 * the batch posted before, if any (one batch is made at a time), at its end: a caller that posts
 * batch b + 1 before it joins b (the loader does) does the JavaScript of b + 1 while a kernel thread
 * finishes b, and b's join then only hands it over. The job holds a reference to its output until
 * the join, so disposing it early cannot free memory a worker still writes.
 *
 * The data set is passed as a `Float32Array` with an `owner` object (the loader): the kernel copies it
 * into the heap at the owner's first post and keeps the copy for later posts of that owner, until
 * `FitloopAugmentRelease` or until the owner is garbage-collected. No tensor is made for it (the
 * engine's tensor count does not change), and the copy is freed only when no job uses it.
 */
export const AUGMENT_POST = "FitloopAugmentPost";
export const AUGMENT_JOIN = "FitloopAugmentJoin";
export const AUGMENT_RELEASE = "FitloopAugmentRelease";

/** The tables of datasets' noise kernel, laid out as its memory region (normal.wat). */
export interface AugmentNoiseTables {
  /** 512 int32 `kn` by table index (sign << 8 | layer). */
  kn: Int32Array;
  /** 512 float64 signed widths / 2^23 (`wn`): the fast table's ws = f32(wn * std). */
  wn: Float64Array;
  /** The slow pass's 2304 float64 from the region's byte 65536: wn[512], fn[256], loA, loB, hiA, hiB, loC, hiC [256 each]. */
  slow: Float64Array;
}

export interface AugmentNoiseStep {
  std: number;
  /** The clip bounds (float32; +-Infinity for none). */
  lo: number;
  hi: number;
  /**
   * The four xoroshiro128+ generators' state for each chunk of 4096 features of the batch, 16 int32
   * per chunk (s0 of generators 0-3 as low/high pairs, then s1; datasets' `chunkStates`).
   */
  states: Int32Array;
  tables: AugmentNoiseTables;
}

/** Attributes of `FitloopAugmentPost` (no inputs). */
export interface AugmentPostAttrs {
  /** The data set's features, N samples of h * w * c (read once per owner: see `owner`). */
  data: Float32Array;
  /** Whose copy of `data` this is: the copy is made at its first post and kept until `FitloopAugmentRelease` or its collection. */
  owner: object;
  /** The batch's rows of `data`, in batch order. */
  indices: Int32Array;
  /** (dy, dx) per sample: shift each image (its uncovered pixels set to `fill`), or none. */
  shifts?: Int32Array;
  /** The batch's shape: n samples of h * w * c features in all. */
  outShape: number[];
  /** A sample's image layout, h * w * c = its features (a plain gather: [1, features, 1]). */
  h: number;
  w: number;
  c: number;
  /** The value of pixels a shift uncovers (float32). */
  fill: number;
  /** Gaussian noise after the gather and shift, or none. */
  noise?: AugmentNoiseStep;
  /** Last, per feature: x = (x - mean) * invStd (float64, rounded to float32 once), or none. */
  normalize?: { mean: Float32Array; invStd: Float32Array };
}

/** The noise kernel's region: state, tables, a chunk's data and its queue (normal.wat's layout). */
const REGION_BYTES = 83968;
const TABLE_BYTE = 256;
const SLOW_BYTE = 65536;
const NOISE_CHUNK = 4096;
/**
 * Floats a gather task moves (64 KiB; ~5 us when the rows come from DRAM, as in an epoch's
 * permutation): fewer, longer tasks cost less to hand out than many short ones (the loader alone made
 * 23.5-23.7k batches/s with MNIST's 4 tasks against 21.8-22.3k with 7 of 32 KiB), and a worker still
 * looks for the step's jobs between them as often as between noise tasks (~9 us each).
 */
const GATHER_TASK_FLOATS = 16384;
/** Gather tasks per batch at most. */
const MAX_GATHER_TASKS = 24;
/** Noise tasks per batch at most, each in a region of its own (its chunks' scratch and queue). */
const NOISE_REGIONS = 4;
/** Normalisation tasks per batch at most. */
const NORMALIZE_TASKS = 4;

/**
 * The end of part t of `total` items cut into `parts` (<= total) shrinking parts, weights parts,
 * parts - 1, ..., 1: threads claim the parts in order, so the part one is still in when the other runs
 * out of work is a short one (the loader alone 3-12 % faster than with equal parts, three runs).
 */
function partEnd(total: number, parts: number, t: number): number {
  const done = ((t + 1) * (2 * parts - t)) / 2; // weights of parts 0..t
  // at least one item in every part (parts <= total)
  return Math.min(total - (parts - 1 - t), Math.max(t + 1, Math.round((total * done) / ((parts * (parts + 1)) / 2))));
}

interface Region {
  /** 16-aligned start of the region in the heap. */
  base: number;
  /** The tables written there, and the std its fast table is scaled for. */
  tables?: AugmentNoiseTables;
  std: number;
}
const regions = new WeakMap<object, Region[]>();

/** A data set's copy in the heap. */
interface DataCopy {
  /** The module whose heap holds it (weakly: a removed backend's heap is not kept alive by its copies). */
  wasm: WeakRef<WasmHeapBackend["wasm"]>;
  /** The array it was copied from (a new array for the same owner makes a new copy). */
  source: Float32Array;
  ptr: number;
  /** Jobs that read it and are not joined yet. */
  jobs: number;
  /** Freed once no job reads it. */
  released: boolean;
}
/** Copies by owner, per backend module. */
const copies = new WeakMap<object, WeakMap<object, DataCopy>>();
const collected = new FinalizationRegistry<DataCopy>((copy) => release(copy));

function release(copy: DataCopy): void {
  copy.released = true;
  if (copy.jobs === 0 && copy.ptr !== 0) {
    copy.wasm.deref()?._free(copy.ptr);
    copy.ptr = 0;
  }
}

/** The owner's copy of `data` in this backend's heap (made on first use). */
function dataCopy(b: WasmHeapBackend, owner: object, data: Float32Array): DataCopy {
  let byOwner = copies.get(b.wasm);
  if (!byOwner) copies.set(b.wasm, (byOwner = new WeakMap()));
  let copy = byOwner.get(owner);
  if (copy && copy.source !== data) {
    // the owner passes another array now: its old copy goes (once no job reads it)
    collected.unregister(copy);
    release(copy);
    copy = undefined;
  }
  if (!copy || copy.released) {
    const ptr = b.wasm._malloc(data.byteLength);
    if (!ptr) fail(`could not allocate ${data.byteLength} bytes for the data set in the wasm heap`);
    b.wasm.HEAPF32.set(data, ptr / 4); // after the malloc (the heap may have grown)
    copy = { wasm: new WeakRef(b.wasm), source: data, ptr, jobs: 0, released: false };
    byOwner.set(owner, copy);
    collected.register(owner, copy, copy);
  }
  return copy;
}

interface Pending {
  job: BackgroundJob;
  out: object;
  data: DataCopy;
  backend: WasmHeapBackend;
  /** The backend's module when posted (tfjs-wasm drops it when the backend is disposed). */
  wasm: WasmHeapBackend["wasm"];
  /** The indices, shifts and chunk states, copied into the heap. */
  scratch: number;
}
let pending: Pending | undefined;
/** Errors of jobs joined on someone else's post, reported at their own join. */
const failed = new WeakMap<object, unknown>();

function fail(message: string): never {
  throw new Error(`fitloop ${AUGMENT_POST}: ${message}`);
}

function noiseRegions(b: WasmHeapBackend, simd: SimdKernels<AugmentSimdExports>): Region[] {
  let r = regions.get(b.wasm);
  if (!r) {
    // kept for the backend's lifetime (4 x ~82 KiB)
    r = Array.from({ length: NOISE_REGIONS }, () => ({ base: (simd.malloc(REGION_BYTES + 16) + 15) & ~15, std: NaN }));
    regions.set(b.wasm, r);
  }
  return r;
}

/** Writes the noise step's tables into the region, when they or the std changed. */
function prepareNoise(b: WasmHeapBackend, r: Region, noise: AugmentNoiseStep): void {
  if (r.tables === noise.tables && Object.is(r.std, noise.std)) return;
  const heap = b.wasm.HEAPU8.buffer;
  const fast = new Int32Array(heap, r.base + TABLE_BYTE, 1024);
  const ws = new Float32Array(heap, r.base + TABLE_BYTE, 1024);
  for (let j = 0; j < 512; j++) {
    fast[2 * j] = noise.tables.kn[j]!;
    ws[2 * j + 1] = noise.tables.wn[j]! * noise.std;
  }
  new Float64Array(heap, r.base + SLOW_BYTE, noise.tables.slow.length).set(noise.tables.slow);
  r.tables = noise.tables;
  r.std = noise.std;
}

function checkAttrs(a: AugmentPostAttrs): { n: number; f: number } {
  if (!(a.data instanceof Float32Array)) fail("data must be a Float32Array (the data set's features)");
  if (typeof a.owner !== "object" || a.owner === null) fail("owner must be an object (whose copy of the data this is)");
  if (!(a.indices instanceof Int32Array) || a.indices.length < 1) fail("indices must be an Int32Array of at least one row");
  for (const k of ["h", "w", "c"] as const) if (!Number.isSafeInteger(a[k]) || a[k] < 1) fail(`${k} must be an integer >= 1, got ${String(a[k])}`);
  const n = a.indices.length;
  const f = a.h * a.w * a.c;
  if (a.data.length % f !== 0) fail(`data has ${a.data.length} values, not whole samples of h * w * c = ${f}`);
  const rows = a.data.length / f;
  for (let s = 0; s < n; s++) if (!(a.indices[s]! >= 0 && a.indices[s]! < rows)) fail(`indices[${s}] = ${a.indices[s]} is outside the data's ${rows} samples`);
  if (!Array.isArray(a.outShape) || util.sizeFromShape(a.outShape) !== n * f || a.outShape[0] !== n) fail(`outShape [${String(a.outShape)}] must be [${n}, ...] with ${n * f} values`);
  if (a.shifts !== undefined && !(a.shifts instanceof Int32Array && a.shifts.length === 2 * n)) fail(`shifts must be an Int32Array of ${2 * n} values (dy, dx per sample)`);
  if (typeof a.fill !== "number") fail(`fill must be a number, got ${typeof a.fill}`);
  const noise = a.noise;
  if (noise) {
    if (!(Number.isFinite(noise.std) && noise.std >= 0)) fail(`noise.std must be a finite number >= 0, got ${noise.std}`);
    if (!(noise.lo <= noise.hi)) fail(`noise.lo must be <= noise.hi, got [${noise.lo}, ${noise.hi}]`);
    const chunks = Math.ceil((n * f) / NOISE_CHUNK);
    if (!(noise.states instanceof Int32Array) || noise.states.length !== 16 * chunks) fail(`noise.states must be an Int32Array of 16 words per chunk of ${NOISE_CHUNK} features (${16 * chunks})`);
    const t = noise.tables;
    if (!(t?.kn instanceof Int32Array && t.kn.length === 512 && t.wn instanceof Float64Array && t.wn.length === 512 && t.slow instanceof Float64Array && t.slow.length === (REGION_BYTES - SLOW_BYTE) / 8)) fail("noise.tables must hold kn (512 int32), wn (512 float64) and slow (2304 float64)");
  }
  const norm = a.normalize;
  if (norm && !(norm.mean instanceof Float32Array && norm.mean.length === f && norm.invStd instanceof Float32Array && norm.invStd.length === f)) fail(`normalize must hold mean and invStd, Float32Arrays of ${f} values (one per feature)`);
  return { n, f };
}

/** Joins the pending job, keeping its error for its own join when `record`. */
function settle(p: Pending, record: boolean): unknown {
  pending = undefined;
  let error: unknown;
  try {
    p.job.join();
  } catch (e) {
    error = e;
    if (record) failed.set(p.out, e);
  }
  // a task a worker never finished may still use the memory: leak it rather than free it
  if (p.job.running()) return error;
  p.data.jobs--;
  // a disposed backend took its heap with it: nothing left to free there
  if (p.backend.wasm !== p.wasm) return error;
  p.wasm._free(p.scratch);
  if (p.data.released) release(p.data);
  // the job's reference to the output; if the engine disposed the tensor meanwhile, its entry goes too
  if (p.backend.disposeData(p.out)) tf.engine().removeDataId(p.out, p.backend as unknown as tf.KernelBackend);
  return error;
}

export function wasmAugmentPost({ backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const a = attrs as unknown as AugmentPostAttrs;
  const { n, f } = checkAttrs(a);
  const simd = augmentSimd(b.wasm as EmscriptenWasm);
  if (!simd) fail("needs WebAssembly SIMD and fitloop's SIMD kernels (setSimdKernelsEnabled(false) turns them off)");
  const noise = a.noise;
  const data = dataCopy(b, a.owner, a.data);
  const out = b.makeOutput(a.outShape, "float32");
  const norm = a.normalize;
  // the indices, the shifts, the noise's chunk states and the normalisation, copied into the heap for the job
  const scratch = b.wasm._malloc(4 * (n + (a.shifts ? 2 * n : 0) + (noise ? noise.states.length : 0) + (norm ? 2 * f : 0)) + 16);
  if (!scratch) {
    b.disposeData(out.dataId);
    fail("could not allocate the batch's indices in the wasm heap");
  }
  try {
    const r = noise ? noiseRegions(b, simd) : [];
    const heap32 = b.wasm.HEAP32; // after every malloc (the heap may have grown)
    const idxPtr = (scratch + 15) & ~15;
    heap32.set(a.indices, idxPtr / 4);
    const shiftPtr = a.shifts ? idxPtr + 4 * n : 0;
    if (a.shifts) heap32.set(a.shifts, shiftPtr / 4);
    const statesPtr = idxPtr + 4 * (n + (a.shifts ? 2 * n : 0));
    if (noise) heap32.set(noise.states, statesPtr / 4);
    const meanPtr = statesPtr + 4 * (noise ? noise.states.length : 0);
    if (norm) {
      const heapF = b.wasm.HEAPF32;
      heapF.set(norm.mean, meanPtr / 4);
      heapF.set(norm.invStd, meanPtr / 4 + f);
    }

    const outPtr = b.dataIdMap.get(out.dataId)!.memoryOffset;
    const calls: KernelCall[] = [];
    const after: number[] = [];
    const gatherTasks = Math.min(MAX_GATHER_TASKS, n, Math.max(1, Math.ceil((n * f) / GATHER_TASK_FLOATS)));
    for (let t = 0, from = 0; t < gatherTasks; t++) {
      const to = partEnd(n, gatherTasks, t);
      calls.push({ module: "augment", fn: "gatherShift", args: [outPtr, data.ptr, idxPtr, shiftPtr, from, to, a.h, a.w, a.c, a.fill] });
      after.push(0);
      from = to;
    }
    if (noise) {
      // whole chunks of 4096 from the batch's start, as the host makes them, once the rows are gathered;
      // each task in a region of its own, so they may run at once
      const chunks = Math.ceil((n * f) / NOISE_CHUNK);
      const tasks = Math.min(NOISE_REGIONS, chunks);
      for (let t = 0, c0 = 0; t < tasks; t++) {
        const c1 = partEnd(chunks, tasks, t);
        const start = c0 * NOISE_CHUNK;
        const len = Math.min(c1 * NOISE_CHUNK, n * f) - start;
        calls.push({ module: "augment", fn: "normalChunks", args: [r[t]!.base, statesPtr + 64 * c0, outPtr + 4 * start, len, Math.fround(noise.lo), Math.fround(noise.hi), noise.std] });
        after.push(gatherTasks);
        c0 = c1;
      }
    }
    if (norm) {
      // last, once everything before is done: rows in parallel
      const before = calls.length;
      const tasks = Math.min(NORMALIZE_TASKS, n);
      for (let t = 0, from = 0; t < tasks; t++) {
        const to = partEnd(n, tasks, t);
        calls.push({ module: "augment", fn: "normalizeRows", args: [outPtr, meanPtr, meanPtr + 4 * f, from, to, f] });
        after.push(before);
        from = to;
      }
    }
    const local = (c: KernelCall): void => void (simd.exports[c.fn as keyof AugmentSimdExports] as (...x: number[]) => void)(...c.args);
    // One batch at a time: the batch posted before is finished only now, so that the work above (and
    // the caller's before it: the draws, the labels) ran while a kernel thread was still making it.
    // The regions' tables are rewritten only after it (its noise tasks read them).
    if (pending) settle(pending, true);
    if (noise) for (const region of r.slice(0, Math.min(NOISE_REGIONS, Math.ceil((n * f) / NOISE_CHUNK)))) prepareNoise(b, region, noise);
    const job = runInBackground(simd.memory, calls, local, { after });
    // the job's reference: the output is not freed before the join, whatever the caller disposes
    b.incRef(out.dataId);
    data.jobs++;
    pending = { job, out: out.dataId, data, backend: b, wasm: b.wasm, scratch };
    return out;
  } catch (e) {
    b.wasm._free(scratch);
    b.disposeData(out.dataId);
    throw e;
  }
}

export function wasmAugmentJoin({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const { x } = inputs as { x: TensorInfo };
  if (!x) throw new Error(`fitloop ${AUGMENT_JOIN}: input x is required`);
  if (pending?.out === x.dataId) {
    const error = settle(pending, false);
    if (error !== undefined) throw error;
  } else if (failed.has(x.dataId)) {
    const error = failed.get(x.dataId);
    failed.delete(x.dataId);
    throw error;
  }
  b.incRef(x.dataId); // the finished batch shares the posted tensor's buffer
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** `FitloopAugmentRelease`: frees `attrs.owner`'s copy of its data set (once no job reads it); returns no tensor. */
export function wasmAugmentRelease({ backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const owner = (attrs as unknown as { owner?: object }).owner;
  const copy = owner ? copies.get(b.wasm)?.get(owner) : undefined;
  if (copy) {
    copies.get(b.wasm)!.delete(owner!);
    collected.unregister(copy);
    release(copy);
  }
  return [];
}

/** Whether a batch is being made (tests). */
export const augmentPending = (): boolean => pending !== undefined;

const postConfig: KernelConfig = { kernelName: AUGMENT_POST, backendName: WASM, kernelFunc: asKernelFunc(wasmAugmentPost) };
const joinConfig: KernelConfig = { kernelName: AUGMENT_JOIN, backendName: WASM, kernelFunc: asKernelFunc(wasmAugmentJoin) };
const releaseConfig: KernelConfig = { kernelName: AUGMENT_RELEASE, backendName: WASM, kernelFunc: asKernelFunc(wasmAugmentRelease) };

/** Registers the three kernels for the wasm backend (where WebAssembly SIMD validates); `registerWasmKernels` does. */
export function enableAugmentKernels(): void {
  if (!simdKernelsEnabled() || !embeddedModuleValidates("augment")) return;
  if (!getKernel(AUGMENT_POST, WASM)) registerKernel(postConfig);
  if (!getKernel(AUGMENT_JOIN, WASM)) registerKernel(joinConfig);
  if (!getKernel(AUGMENT_RELEASE, WASM)) registerKernel(releaseConfig);
}

/** Unregisters them (ours only): @fitloop/datasets then makes its batches on the host. A batch being made is finished first. */
export function disableAugmentKernels(): void {
  if (pending) settle(pending, true);
  if (getKernel(AUGMENT_POST, WASM)?.kernelFunc === postConfig.kernelFunc) unregisterKernel(AUGMENT_POST, WASM);
  if (getKernel(AUGMENT_JOIN, WASM)?.kernelFunc === joinConfig.kernelFunc) unregisterKernel(AUGMENT_JOIN, WASM);
  if (getKernel(AUGMENT_RELEASE, WASM)?.kernelFunc === releaseConfig.kernelFunc) unregisterKernel(AUGMENT_RELEASE, WASM);
}

export const augmentKernelsEnabled = (): boolean => getKernel(AUGMENT_POST, WASM)?.kernelFunc === postConfig.kernelFunc;
