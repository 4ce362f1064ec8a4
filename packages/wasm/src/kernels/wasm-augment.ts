import { getKernel, registerKernel, unregisterKernel, util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { runInBackground, type BackgroundJob, type KernelCall } from "./kernel-threads.js";
import { augmentSimd, EMBEDDED_SIMD_MODULES, type AugmentSimdExports, type EmscriptenWasm, type SimdKernels } from "./simd/index.js";
import { asKernelFunc, WASM, type KernelArgs, type WasmHeapBackend } from "./wasm-util.js";

/**
 * A data loader's augmented batch, made in the background in tfjs-wasm's memory (`augment.wat`).
 *
 * `FitloopAugmentPost` returns the batch's tensor at once and posts the work that fills it (gather
 * the rows and shift each image, then add gaussian noise: chunks of 4096 in up to four parts that may
 * run at once) to the kernel threads: an idle worker makes it
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
 * the batch posted before, if any (one batch is made at a time). The job holds a reference to its
 * output and to the data until the join, so disposing either early cannot free memory a worker
 * still writes or reads.
 */
export const AUGMENT_POST = "FitloopAugmentPost";
export const AUGMENT_JOIN = "FitloopAugmentJoin";

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

/** Attributes of `FitloopAugmentPost` (input: `data`, float32 [N, ...features]). */
export interface AugmentPostAttrs {
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
}

/** The noise kernel's region: state, tables, a chunk's data and its queue (normal.wat's layout). */
const REGION_BYTES = 83968;
const TABLE_BYTE = 256;
const SLOW_BYTE = 65536;
const NOISE_CHUNK = 4096;
/** Gather tasks per batch at most: each ~2 us, so a worker between them looks for the step's jobs often. */
const MAX_GATHER_TASKS = 24;
/** Noise tasks per batch at most, each in a region of its own (its chunks' scratch and queue). */
const NOISE_REGIONS = 4;

interface Region {
  /** 16-aligned start of the region in the heap. */
  base: number;
  /** The tables written there, and the std its fast table is scaled for. */
  tables?: AugmentNoiseTables;
  std: number;
}
const regions = new WeakMap<object, Region[]>();

interface Pending {
  job: BackgroundJob;
  out: object;
  data: object;
  backend: WasmHeapBackend;
  /** The indices and shifts, copied into the heap. */
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

function checkAttrs(a: AugmentPostAttrs, data: TensorInfo): { n: number; f: number } {
  if (data?.dtype !== "float32" || data.shape.length < 2) fail(`data must be a float32 tensor [samples, ...features], got ${data ? `${data.dtype} [${data.shape.join(", ")}]` : "none"}`);
  if (!(a.indices instanceof Int32Array) || a.indices.length < 1) fail("indices must be an Int32Array of at least one row");
  const n = a.indices.length;
  const f = util.sizeFromShape(data.shape.slice(1));
  const rows = data.shape[0]!;
  for (let s = 0; s < n; s++) if (!(a.indices[s]! >= 0 && a.indices[s]! < rows)) fail(`indices[${s}] = ${a.indices[s]} is outside the data's ${rows} samples`);
  for (const k of ["h", "w", "c"] as const) if (!Number.isSafeInteger(a[k]) || a[k] < 1) fail(`${k} must be an integer >= 1, got ${String(a[k])}`);
  if (a.h * a.w * a.c !== f) fail(`h * w * c = ${a.h * a.w * a.c}, but a sample of data has ${f} features`);
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
  } finally {
    p.backend.wasm._free(p.scratch);
    p.backend.disposeData(p.data); // the job's references
    p.backend.disposeData(p.out);
  }
  return error;
}

export function wasmAugmentPost({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const { data } = inputs as { data: TensorInfo };
  const a = attrs as unknown as AugmentPostAttrs;
  const { n, f } = checkAttrs(a, data);
  const simd = augmentSimd(b.wasm as EmscriptenWasm);
  if (!simd) fail("needs WebAssembly SIMD and fitloop's SIMD kernels (setSimdKernelsEnabled(false) turns them off)");
  if (pending) settle(pending, true); // one batch at a time

  const noise = a.noise;
  const out = b.makeOutput(a.outShape, "float32");
  // the indices, the shifts and the noise's chunk states, copied into the heap for the job
  const scratch = b.wasm._malloc(4 * (n + (a.shifts ? 2 * n : 0) + (noise ? noise.states.length : 0)) + 16);
  const r = noise ? noiseRegions(b, simd) : [];
  const heap32 = b.wasm.HEAP32; // after every malloc (the heap may have grown)
  const idxPtr = (scratch + 15) & ~15;
  heap32.set(a.indices, idxPtr / 4);
  const shiftPtr = a.shifts ? idxPtr + 4 * n : 0;
  if (a.shifts) heap32.set(a.shifts, shiftPtr / 4);
  const statesPtr = idxPtr + 4 * (n + (a.shifts ? 2 * n : 0));
  if (noise) heap32.set(noise.states, statesPtr / 4);

  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const outPtr = at(out);
  const calls: KernelCall[] = [];
  const after: number[] = [];
  const gatherTasks = Math.min(MAX_GATHER_TASKS, n, Math.max(1, Math.ceil((n * f) / 8192)));
  for (let t = 0, from = 0; t < gatherTasks; t++) {
    const to = Math.round((n * (t + 1)) / gatherTasks);
    calls.push({ module: "augment", fn: "gatherShift", args: [outPtr, at(data), idxPtr, shiftPtr, from, to, a.h, a.w, a.c, a.fill] });
    after.push(0);
    from = to;
  }
  if (noise) {
    // whole chunks of 4096 from the batch's start, as the host makes them, once the rows are gathered;
    // each task in a region of its own, so they may run at once
    const chunks = Math.ceil((n * f) / NOISE_CHUNK);
    const tasks = Math.min(NOISE_REGIONS, chunks);
    for (let t = 0, c0 = 0; t < tasks; t++) {
      const c1 = Math.round((chunks * (t + 1)) / tasks);
      prepareNoise(b, r[t]!, noise);
      const start = c0 * NOISE_CHUNK;
      const len = Math.min(c1 * NOISE_CHUNK, n * f) - start;
      calls.push({ module: "augment", fn: "normalChunks", args: [r[t]!.base, statesPtr + 64 * c0, outPtr + 4 * start, len, Math.fround(noise.lo), Math.fround(noise.hi), noise.std] });
      after.push(gatherTasks);
      c0 = c1;
    }
  }
  // the job's references: neither buffer is freed before the join, whatever the caller disposes
  b.incRef(out.dataId);
  b.incRef(data.dataId);
  const local = (c: KernelCall): void => void (simd.exports[c.fn as keyof AugmentSimdExports] as (...x: number[]) => void)(...c.args);
  const job = runInBackground(simd.memory, calls, local, { after });
  pending = { job, out: out.dataId, data: data.dataId, backend: b, scratch };
  return out;
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

/** Whether a batch is being made (tests). */
export const augmentPending = (): boolean => pending !== undefined;

const postConfig: KernelConfig = { kernelName: AUGMENT_POST, backendName: WASM, kernelFunc: asKernelFunc(wasmAugmentPost) };
const joinConfig: KernelConfig = { kernelName: AUGMENT_JOIN, backendName: WASM, kernelFunc: asKernelFunc(wasmAugmentJoin) };

/** Whether this engine can run augment.wat (WebAssembly SIMD). */
function augmentValidates(): boolean {
  const b64 = EMBEDDED_SIMD_MODULES["augment"]!.plain;
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return typeof WebAssembly === "object" && WebAssembly.validate(bytes);
}

/** Registers the two kernels for the wasm backend (where WebAssembly SIMD validates); `registerWasmKernels` does. */
export function enableAugmentKernels(): void {
  if (!augmentValidates()) return;
  if (!getKernel(AUGMENT_POST, WASM)) registerKernel(postConfig);
  if (!getKernel(AUGMENT_JOIN, WASM)) registerKernel(joinConfig);
}

/** Unregisters them (ours only): @fitloop/datasets then makes its batches on the host. */
export function disableAugmentKernels(): void {
  if (getKernel(AUGMENT_POST, WASM)?.kernelFunc === postConfig.kernelFunc) unregisterKernel(AUGMENT_POST, WASM);
  if (getKernel(AUGMENT_JOIN, WASM)?.kernelFunc === joinConfig.kernelFunc) unregisterKernel(AUGMENT_JOIN, WASM);
}

export const augmentKernelsEnabled = (): boolean => getKernel(AUGMENT_POST, WASM)?.kernelFunc === postConfig.kernelFunc;
