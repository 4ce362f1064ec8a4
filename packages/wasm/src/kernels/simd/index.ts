import { WASM_BASE64 as BATCH_NORM_WASM } from "./batch-norm.wasm.js";
import { WASM_BASE64 as MAX_POOL_GRAD_WASM } from "./max-pool-grad.wasm.js";
import { WASM_BASE64 as RELU_GRAD_WASM } from "./relu-grad.wasm.js";
import { WASM_BASE64 as ADAM_WASM } from "./adam.wasm.js";
import { WASM_BASE64 as GEMM_WASM } from "./gemm.wasm.js";
import { WASM_BASE64 as ELEMENTWISE_WASM } from "./elementwise.wasm.js";
import { WASM_BASE64 as MAX_POOL_2X2_WASM } from "./max-pool-2x2.wasm.js";
import { WASM_BASE64 as GEMM_FMA_WASM } from "./gemm-fma.wasm.js";
import { WASM_BASE64 as AUGMENT_WASM } from "./augment.wasm.js";

/** The embedded modules by source name (`<name>.wat`). */
export const EMBEDDED_SIMD_MODULES: Record<string, Record<Variant, string>> = { "batch-norm": BATCH_NORM_WASM, "max-pool-grad": MAX_POOL_GRAD_WASM, "relu-grad": RELU_GRAD_WASM, adam: ADAM_WASM, gemm: GEMM_WASM, elementwise: ELEMENTWISE_WASM, "max-pool-2x2": MAX_POOL_2X2_WASM, augment: AUGMENT_WASM };

/**
 * Embedded modules that need relaxed SIMD (`gemm-fma.wat`): not in `EMBEDDED_SIMD_MODULES`, which
 * every engine with WebAssembly SIMD must compile; loaded only while FMA is requested and validates
 * (`fmaModules`; the kernel threads' workers compile them from there).
 */
export const RELAXED_SIMD_MODULES: Record<string, Record<Variant, string>> = { "gemm-fma": GEMM_FMA_WASM };

/**
 * fitloop's own WebAssembly SIMD kernels, instantiated on tfjs-wasm's memory (no copies).
 *
 * The modules are written in WebAssembly text (`*.wat` beside this file), compiled by
 * `scripts/build-simd.ts` (wabt, a devDependency) and embedded as base64 (`*.wasm.ts`), so users
 * and tests need no build step. Each comes in two variants of its memory import: `plain` for
 * tfjs-wasm's single-threaded builds (their memory is the module's exported `asm.memory`) and
 * `shared` for the threaded-SIMD build (a shared `WebAssembly.Memory`, `Module.wasmMemory`, max 4 GiB).
 * One instance per memory (a new backend has a new memory); memory growth needs nothing, the
 * instance imports the `Memory` object itself. Where WebAssembly SIMD is unavailable, or the memory
 * cannot be found, `batchNormSimd` returns undefined and the callers run their JS loops.
 */

/** Exports of `batch-norm.wat` (byte offsets into tfjs-wasm's memory; see the .wat for each). */
export interface BatchNormSimdExports {
  stats(x: number, rows: number, c: number, s: number, q: number): void;
  gradSums(dy: number, x: number, rows: number, c: number, m: number, sd: number, sdx: number): void;
  normalize(x: number, y: number, rows: number, c: number, m: number, s: number, b: number): void;
  gradX(dy: number, x: number, dx: number, rows: number, c: number, a: number, m: number, bx: number, k0: number): void;
}

/** Exports of `max-pool-grad.wat`. */
export interface MaxPoolGradSimdExports {
  maxPoolGrad(
    x: number,
    dy: number,
    dx: number,
    batch: number,
    inH: number,
    inW: number,
    c: number,
    outH: number,
    outW: number,
    strideH: number,
    strideW: number,
    filterH: number,
    filterW: number,
    padTop: number,
    padLeft: number,
  ): void;
}

/** Exports of `relu-grad.wat`: dx = dy * step(x) over n float32 elements. */
export interface ReluGradSimdExports {
  reluGrad(dy: number, x: number, dx: number, n: number): void;
}

/** Exports of `adam.wat`: one Adam update of n float32 elements (see the .wat for the formula). */
export interface AdamSimdExports {
  adam(
    x: number,
    m: number,
    v: number,
    g: number,
    outX: number,
    outM: number,
    outV: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    oneMinusAccBeta1: number,
    oneMinusAccBeta2: number,
    epsilon: number,
    negLearningRate: number,
    gradScale: number,
  ): void;
}

/**
 * Exports of `gemm.wat` (byte offsets and byte strides into tfjs-wasm's memory):
 * `gemm`: C = A·B, A(m, k) at pa + m*ars + k*aks, B(k, n) at pb + k*ldb + 4n, C(m, n) at pc + m*ldc + 4n;
 * `transpose`: dst (cols x rows) = srcᵀ (src rows x cols, both contiguous);
 * `biasAct`: in place on a contiguous M x N C, add bias(n) (when bias != 0), then ReLU (when relu != 0).
 */
export interface GemmSimdExports {
  gemm(pa: number, ars: number, aks: number, pb: number, ldb: number, pc: number, ldc: number, m: number, n: number, k: number): void;
  /** `gemm` in K blocks of kc rows of B (0: one block); `gemm` picks kc from the size of B. */
  gemmKc(pa: number, ars: number, aks: number, pb: number, ldb: number, pc: number, ldc: number, m: number, n: number, k: number, kc: number): void;
  transpose(src: number, rows: number, cols: number, dst: number): void;
  biasAct(pc: number, m: number, n: number, bias: number, relu: number): void;
  /** im2col rows of one filter tap (see gemm.wat); byte pointers, sizes in floats. */
  im2colRows(src: number, dst: number, planes: number, planeStride: number, inH: number, inW: number, outH: number, outW: number, sh: number, sw: number, rowOff: number, colShift: number, lo: number, hi: number): void;
  /** im2col in NHWC order, one row of fh*fw*ci floats per output pixel (see gemm.wat); byte pointers, sizes in floats. */
  im2colNhwc(x: number, dst: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number, fh: number, fw: number, sh: number, sw: number, dh: number, dw: number, top: number, left: number): void;
  /** dx = dy * step(x) over rows x cols (cols a multiple of 4) and acc[c] (float64, zeroed by the caller) += its column sums. */
  reluGradColSum(dy: number, x: number, dx: number, acc: number, rows: number, cols: number): void;
  /** A first conv layer's filter and bias gradients with its ReLU gradient folded in, block by block (see gemm.wat). */
  filterGradMasked(pa: number, ars: number, aks: number, dy: number, y: number, dw: number, ldc: number, taps: number, co: number, rows: number, block: number, acc: number, scratch: number, accIn: number): void;
}

/**
 * Exports of gemm.wat's `col2im`: dx (NHWC) = the gather of cols (one row per output pixel, one column per
 * (kh, kw, c)) for Conv2DBackpropInput; byte pointers, sizes in elements; scratch: (fh + fw + fh*fw) i32.
 */
export interface Col2imSimdExports {
  col2im(cols: number, dx: number, batch: number, inH: number, inW: number, ci: number, outH: number, outW: number, fh: number, fw: number, sh: number, sw: number, top: number, left: number, scratch: number): void;
}

/** The parts of tfjs-wasm 4.22's Emscripten module used here. */
export interface EmscriptenWasm {
  /** The threaded build's (shared) memory. */
  wasmMemory?: unknown;
  /** The single-threaded builds export their memory. */
  asm?: { memory?: unknown };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

export interface SimdKernels<E> {
  exports: E;
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

export type Variant = "plain" | "shared";

let enabled = true;
/** Turns the SIMD kernels off (the JS loops run) or back on; for benches and tests. Default on. */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on;
}
export const simdKernelsEnabled = (): boolean => enabled;

/** tfjs-wasm's `WebAssembly.Memory`: `wasmMemory` (threaded build) or `asm.memory` (single-threaded). */
export function wasmMemoryOf(wasm: EmscriptenWasm): WebAssembly.Memory | undefined {
  for (const m of [wasm.wasmMemory, wasm.asm?.memory]) if (m instanceof WebAssembly.Memory) return m;
  return undefined;
}

const isShared = (memory: WebAssembly.Memory): boolean => typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** What the embedded modules import: the memory, and the host's exp and log (augment.wat's noise, as datasets' normal.wat). */
export const moduleImports = (memory: WebAssembly.Memory): WebAssembly.Imports => ({ env: { memory }, math: { exp: Math.exp, log: Math.log } });

/** Whether this engine validates the embedded module `name` (its plain variant): WebAssembly SIMD is there. */
export function embeddedModuleValidates(name: string): boolean {
  const sources = EMBEDDED_SIMD_MODULES[name];
  return sources !== undefined && typeof WebAssembly === "object" && WebAssembly.validate(decode(sources.plain));
}

/** Compiled modules by source and variant; null = cannot be used here (no SIMD, no shared memory). */
const modules = new Map<string, WebAssembly.Module | null>();
const instances = new Map<string, WeakMap<WebAssembly.Memory, object | null>>();

function compiled(name: string, sources: Record<Variant, string>, variant: Variant): WebAssembly.Module | null {
  const key = `${name}:${variant}`;
  let mod = modules.get(key);
  if (mod === undefined) {
    const bytes = decode(sources[variant]);
    try {
      mod = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    } catch {
      mod = null;
    }
    modules.set(key, mod);
  }
  return mod;
}

/**
 * Each module's kernels per tfjs-wasm module, made once: kernels ask for them at every call (a new
 * object with two closures each time was a measurable part of a small matmul's fixed cost).
 */
const kernelsByWasm = new WeakMap<object, Map<string, SimdKernels<object> | null>>();

function instantiate<E extends object>(name: string, sources: Record<Variant, string>, wasm: EmscriptenWasm): SimdKernels<E> | undefined {
  if (!enabled || typeof wasm?._malloc !== "function" || typeof wasm._free !== "function") return undefined;
  let byName = kernelsByWasm.get(wasm);
  if (!byName) kernelsByWasm.set(wasm, (byName = new Map()));
  let kernels = byName.get(name);
  if (kernels === undefined) {
    const memory = wasmMemoryOf(wasm);
    if (!memory) return undefined; // not known yet: ask again next time
    let perMemory = instances.get(name);
    if (!perMemory) instances.set(name, (perMemory = new WeakMap()));
    let exports = perMemory.get(memory);
    if (exports === undefined) {
      const mod = compiled(name, sources, isShared(memory) ? "shared" : "plain");
      try {
        exports = mod ? new WebAssembly.Instance(mod, moduleImports(memory)).exports : null;
      } catch {
        exports = null;
      }
      perMemory.set(memory, exports);
    }
    // malloc and free through `wasm` at each call (tests replace them to make allocations fail)
    kernels = exports ? { exports, memory, malloc: (n) => wasm._malloc(n), free: (p) => wasm._free(p) } : null;
    byName.set(name, kernels);
  }
  return (kernels ?? undefined) as SimdKernels<E> | undefined;
}

/** The BatchNorm SIMD kernels on this tfjs-wasm module's memory, or undefined (then use the JS loops). */
export const batchNormSimd = (wasm: EmscriptenWasm): SimdKernels<BatchNormSimdExports> | undefined => instantiate<BatchNormSimdExports>("batch-norm", BATCH_NORM_WASM, wasm);

/** The MaxPoolGrad SIMD kernel on this tfjs-wasm module's memory, or undefined (then use the JS loop). */
export const maxPoolGradSimd = (wasm: EmscriptenWasm): SimdKernels<MaxPoolGradSimdExports> | undefined =>
  instantiate<MaxPoolGradSimdExports>("max-pool-grad", MAX_POOL_GRAD_WASM, wasm);

/** The ReLU gradient SIMD kernel on this tfjs-wasm module's memory, or undefined (then use the JS loop). */
export const reluGradSimd = (wasm: EmscriptenWasm): SimdKernels<ReluGradSimdExports> | undefined => instantiate<ReluGradSimdExports>("relu-grad", RELU_GRAD_WASM, wasm);

/** The Adam update SIMD kernel on this tfjs-wasm module's memory, or undefined (then tfjs's own Adam runs). */
export const adamSimd = (wasm: EmscriptenWasm): SimdKernels<AdamSimdExports> | undefined => instantiate<AdamSimdExports>("adam", ADAM_WASM, wasm);

/** The strided GEMM SIMD kernel on this tfjs-wasm module's memory, or undefined (then the stock matmul runs). */
export const gemmSimd = (wasm: EmscriptenWasm): SimdKernels<GemmSimdExports> | undefined => instantiate<GemmSimdExports>("gemm", GEMM_WASM, wasm);

/**
 * The col2im SIMD kernel on this tfjs-wasm module's memory, or undefined (then the JS loop runs). It
 * lives in gemm.wat, beside `col2imImages`, which needs it and the packed GEMM in one module.
 */
export const col2imSimd = (wasm: EmscriptenWasm): SimdKernels<Col2imSimdExports> | undefined => gemmSimd(wasm) as SimdKernels<Col2imSimdExports> | undefined;

/**
 * Exports of `elementwise.wat` (byte pointers, counts in elements; each works on any sub-range of
 * rows/elements, so the work can be split between threads): `addBias` out = x + bias per row of c,
 * `colSum` acc (float64) += column sums of rows x cols, `finishSum` out = float32(acc * scale);
 * `sumSquares`, `scale`, `axpy`, `axpyScale`, `lerp`, `lerpDiv`: the foreach kernels' passes (`wasm-foreach.ts`).
 */
export interface ElementwiseSimdExports {
  addBias(x: number, bias: number, out: number, rows: number, c: number): void;
  colSum(x: number, acc: number, rows: number, cols: number): void;
  finishSum(acc: number, out: number, n: number, scale: number): void;
  sumSquares(x: number, n: number): number;
  /** `sum of x * 0`: 0 when all n floats are finite, NaN otherwise. */
  nonFinite(x: number, n: number): number;
  scale(x: number, out: number, n: number, s: number): void;
  /** out = y + x * a (float32 multiply, then add). */
  axpy(y: number, x: number, out: number, n: number, a: number): void;
  /** out = (y + x * a) * s (float32 multiply, add, multiply). */
  axpyScale(y: number, x: number, out: number, n: number, a: number, s: number): void;
  /** out = a + (b - a) * t (float32 sub, mul, add). */
  lerp(a: number, b: number, out: number, n: number, t: number): void;
  /** out = a + (b - a) / d (float32 sub, div, add). */
  lerpDiv(a: number, b: number, out: number, n: number, d: number): void;
}

/** Exports of `max-pool-2x2.wat`: 2x2 windows, stride 2, no padding, NHWC, c % 4 == 0, whole images. */
export interface MaxPool2x2SimdExports {
  maxPool(x: number, y: number, images: number, inH: number, inW: number, c: number, outH: number, outW: number): void;
  maxPoolGrad(x: number, dy: number, dx: number, images: number, inH: number, inW: number, c: number, outH: number, outW: number): void;
  /** maxPool that also writes each output element's winning window position (one byte, 4: none). */
  maxPoolMask(x: number, y: number, mask: number, images: number, inH: number, inW: number, c: number, outH: number, outW: number): void;
  /** maxPoolGrad from maxPoolMask's mask instead of x. */
  maxPoolGradMask(mask: number, dy: number, dx: number, images: number, inH: number, inW: number, c: number, outH: number, outW: number): void;
}

/** The elementwise SIMD kernels on this tfjs-wasm module's memory, or undefined (then the previous path runs). */
export const elementwiseSimd = (wasm: EmscriptenWasm): SimdKernels<ElementwiseSimdExports> | undefined => instantiate<ElementwiseSimdExports>("elementwise", ELEMENTWISE_WASM, wasm);

/** The 2x2/stride-2 max pooling SIMD kernels on this tfjs-wasm module's memory, or undefined (then the general path runs). */
export const maxPool2x2Simd = (wasm: EmscriptenWasm): SimdKernels<MaxPool2x2SimdExports> | undefined => instantiate<MaxPool2x2SimdExports>("max-pool-2x2", MAX_POOL_2X2_WASM, wasm);

/** Rows of `gemm-fma.wat`'s tiles (`scripts/build-simd.ts`'s FMA_ROWS): row splits of its GEMM align to them. */
export const FMA_GEMM_ROWS = 6;

/** What `setFmaEnabled` found. */
export interface FmaStatus {
  /** FMA was asked for (`setFmaEnabled(true)`). */
  requested: boolean;
  /** The engine validates relaxed SIMD (after setting the V8 flag in Node where needed); false when not requested. */
  supported: boolean;
  /** Set in Node when `--experimental-wasm-relaxed-simd` had to be set for it to validate (Node 20). */
  flagSet: boolean;
  /** Why FMA does not run though requested (relaxed SIMD does not validate, or SIMD kernels are off). */
  reason?: string;
}

let fmaRequested = false;
/** undefined: not checked yet. */
let fmaValidated: boolean | undefined;
let fmaFlagSet = false;

const V8_RELAXED_SIMD_FLAG = "--experimental-wasm-relaxed-simd";

interface NodeProcessLike {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}
interface V8Like {
  setFlagsFromString(flags: string): void;
}

/**
 * Node's `v8` module, or undefined outside Node. `process.getBuiltinModule` (Node >= 20.16) where it
 * exists, else a dynamic import whose specifier bundlers do not follow: nothing for a browser bundle.
 */
async function nodeV8(): Promise<V8Like | undefined> {
  const proc = (globalThis as { process?: NodeProcessLike }).process;
  if (typeof proc?.versions?.node !== "string") return undefined;
  try {
    const builtin = proc.getBuiltinModule?.("node:v8") as V8Like | undefined;
    if (builtin) return builtin;
    const specifier = ["node", "v8"].join(":");
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as V8Like;
  } catch {
    return undefined;
  }
}

/** Whether relaxed SIMD validates here: `gemm-fma`'s plain variant, checked each time (cheap). */
function relaxedSimdValidates(): boolean {
  try {
    return WebAssembly.validate(decode(GEMM_FMA_WASM.plain));
  } catch {
    return false;
  }
}

/**
 * Requests (or stops requesting) relaxed-SIMD FMA for fitloop's packed GEMM (`simd/gemm-fma.wat`;
 * `useWasm({ fma: true })` calls it). Default off: the GEMM then runs mul + add, bit-identical to the
 * previous releases. On: where the engine validates relaxed SIMD, the GEMM runs `f32x4.relaxed_madd`
 * (one rounding per product and add: results differ from the cpu backend in the last bits); in Node
 * without it (Node 20), the V8 flag `--experimental-wasm-relaxed-simd` is set first (process-wide:
 * the kernel workers started afterwards get it too). Where it still does not validate (a browser
 * without relaxed SIMD, an old engine) the plain SIMD GEMM keeps running: see `reason`.
 * Call before the kernel threads start (`useWasm` does): a pool started earlier lacks the module,
 * and the FMA GEMM then runs on the calling thread until the pool is restarted.
 */
export async function setFmaEnabled(on: boolean): Promise<FmaStatus> {
  fmaRequested = on;
  if (!on) return { requested: false, supported: false, flagSet: fmaFlagSet };
  if (!fmaValidated) {
    fmaValidated = relaxedSimdValidates();
    if (!fmaValidated) {
      const v8 = await nodeV8();
      if (v8) {
        try {
          v8.setFlagsFromString(V8_RELAXED_SIMD_FLAG);
          fmaFlagSet = true;
        } catch {
          // flags frozen: stays unsupported
        }
        fmaValidated = relaxedSimdValidates();
      }
    }
  }
  const status: FmaStatus = { requested: true, supported: fmaValidated, flagSet: fmaFlagSet };
  if (!fmaValidated) status.reason = "this engine does not validate WebAssembly relaxed SIMD (f32x4.relaxed_madd)";
  else if (!enabled) status.reason = "fitloop's SIMD kernels are turned off (setSimdKernelsEnabled(false))";
  return status;
}

/** Whether FMA was requested (`setFmaEnabled(true)`), whether or not it can run. */
export const fmaEnabled = (): boolean => fmaRequested;

/** Whether relaxed SIMD validated (undefined until `setFmaEnabled(true)` checked it). */
export const fmaSupported = (): boolean | undefined => fmaValidated;

/**
 * The relaxed-SIMD modules to load now (name -> variants): `RELAXED_SIMD_MODULES` while FMA is
 * requested and validated, else none. The kernel threads compile these besides `EMBEDDED_SIMD_MODULES`.
 */
export function fmaModules(): Record<string, Record<Variant, string>> {
  return fmaRequested && fmaValidated ? RELAXED_SIMD_MODULES : {};
}

/** Exports of `gemm-fma.wat`: `gemmPacked` with `gemm.wat`'s arguments (see `PackedGemmExports` in `wasm-gemm-split.ts`). */
export interface FmaGemmSimdExports {
  gemmPacked(pa: number, ars: number, aks: number, pb: number, bks: number, bns: number, pc: number, ldc: number, m: number, n: number, k: number, kc: number, scratch: number): void;
}

/**
 * The FMA packed GEMM on this tfjs-wasm module's memory: only while FMA is requested, relaxed SIMD
 * validated and the module instantiates there (and the SIMD kernels are on); else undefined (then
 * `gemmSimd`'s mul + add GEMM runs).
 */
export const fmaGemmSimd = (wasm: EmscriptenWasm): SimdKernels<FmaGemmSimdExports> | undefined =>
  fmaRequested && fmaValidated ? instantiate<FmaGemmSimdExports>("gemm-fma", GEMM_FMA_WASM, wasm) : undefined;

/**
 * Exports of `augment.wat` (byte pointers, counts in elements): `gatherShift` makes samples
 * [from, to) of a batch (rows of `data` by `idx`, moved by `shifts` when it is not 0), `normalChunks`
 * adds @fitloop/datasets' gaussian noise to n floats in chunks of 4096, each chunk's generators
 * from `states` (16 words each), in the region at `base` (whose tables `wasm-augment.ts` writes);
 * `normalizeRows` x = (x - mean) * invStd per feature, as datasets' `Normalizer` (float64, rounded once).
 */
export interface AugmentSimdExports {
  gatherShift(out: number, data: number, idx: number, shifts: number, from: number, to: number, h: number, w: number, c: number, fill: number): void;
  normalChunks(base: number, states: number, ptr: number, n: number, lo: number, hi: number, std: number): void;
  normalizeRows(out: number, mean: number, invStd: number, from: number, to: number, f: number): void;
}

/** The augmentation kernels on this tfjs-wasm module's memory, or undefined (WebAssembly SIMD unavailable or off). */
export const augmentSimd = (wasm: EmscriptenWasm): SimdKernels<AugmentSimdExports> | undefined => instantiate<AugmentSimdExports>("augment", AUGMENT_WASM, wasm);
