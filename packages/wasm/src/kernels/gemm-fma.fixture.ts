/**
 * Research build for benches only (docs/journal.md, round 9): `gemm.wat`'s packed GEMM with
 * relaxed-SIMD FMA (`f32x4.relaxed_madd`: one rounding per product-and-add, so results differ from
 * the cpu backend in the last bits), compiled at run time from gemm.wat's own text with wabt. With
 * FMA a 6x8 tile fits V8's 15 allocatable XMM registers (12 accumulators, 2 B vectors, 1 splat: no
 * product temporary), so ROWS = 6 builds 6-row microkernels in place of the 5-row ones.
 *
 * Node 20 validates relaxed SIMD only with `--experimental-wasm-relaxed-simd`, settable at run time
 * (`v8.setFlagsFromString`) before the module is compiled; `fmaGemm` returns undefined where it does
 * not validate. Not used by the package.
 */
import v8 from "node:v8";
import initWabt from "wabt";
import { wat2wasm } from "../../../../scripts/wat.js";
import { fmaWat } from "../../scripts/build-simd.js";

export interface FmaGemm {
  rows: number;
  gemmPacked(pa: number, ars: number, aks: number, pb: number, bks: number, bns: number, pc: number, ldc: number, m: number, n: number, k: number, kc: number, scratch: number): void;
}

/** `gemm-fma.wat` as the build script makes it (`scripts/build-simd.ts`), with `rows`-row tiles and the given memory import. */
export function fmaSource(rows = Number(process.env.ROWS ?? 6), memory = "(memory 1 65536 shared)"): string {
  return fmaWat(rows).replace('(import "env" "memory" MEMORY)', `(import "env" "memory" ${memory})`);
}

/** The FMA build on `memory`, or undefined where relaxed SIMD does not validate (even with the flag). */
export async function fmaGemm(memory: WebAssembly.Memory, rows = Number(process.env.ROWS ?? 6)): Promise<FmaGemm | undefined> {
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  const features = { simd: true, threads: true, bulk_memory: true, relaxed_simd: true };
  const bytes = new Uint8Array(wat2wasm(await initWabt(), "gemm-fma.wat", fmaSource(rows, shared ? "(memory 1 65536 shared)" : "(memory 1)"), features));
  if (!WebAssembly.validate(bytes)) return undefined;
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as FmaGemm;
  return { rows, gemmPacked: exports.gemmPacked.bind(exports) };
}
