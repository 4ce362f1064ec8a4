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
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import initWabt from "wabt";
import { wat2wasm } from "../../../../scripts/wat.js";

export interface FmaGemm {
  rows: number;
  gemmPacked(pa: number, ars: number, aks: number, pb: number, bks: number, bns: number, pc: number, ldc: number, m: number, n: number, k: number, kc: number, scratch: number): void;
}

const WAT = path.join(path.dirname(fileURLToPath(import.meta.url)), "simd", "gemm.wat");

/**
 * The packed GEMM's microkernels with FMA: $p5x8 (general strides, a row clamp) and $p5x8c (ars = 4)
 * with `rows` rows, $p4x8 and $p4x8c (the 4-row tiles at the end of M) with 4.
 */
function microkernels(rows: number): string {
  const acc = (r: number) => `(local $c${r}_0 v128) (local $c${r}_1 v128)`;
  const load = (r: number) => {
    const at = r === 0 ? "(local.get $c)" : `(i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const ${r})))`;
    return `(local.set $c${r}_0 (v128.load offset=0 ${at})) (local.set $c${r}_1 (v128.load offset=16 ${at}))`;
  };
  const fma = (r: number, s: string) =>
    `(local.set $s ${s}) (local.set $c${r}_0 (f32x4.relaxed_madd (local.get $s) (local.get $b0) (local.get $c${r}_0))) (local.set $c${r}_1 (f32x4.relaxed_madd (local.get $s) (local.get $b1) (local.get $c${r}_1)))`;
  const store = (r: number) => `${r ? "(local.set $c (i32.add (local.get $c) (local.get $ldc)))" : ""} (v128.store offset=0 (local.get $c) (local.get $c${r}_0)) (v128.store offset=16 (local.get $c) (local.get $c${r}_1))`;
  const general = (name: string, n: number, clamp: boolean) => {
    const R = Array.from({ length: n }, (_, r) => r);
    const step = (r: number) => (clamp ? `(select (local.get $ars) (i32.const 0) (i32.lt_u (i32.const ${r}) (local.get $rows)))` : "(local.get $ars)");
    return `(func $${name} (param $a i32) (param $ars i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)${clamp ? " (param $rows i32)" : ""}
    ${R.map((r) => `(local $a${r} i32)`).join(" ")} ${R.map(acc).join(" ")} (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then ${R.map(load).join(" ")}))
    (local.set $a0 (local.get $a))
    ${R.slice(1).map((r) => `(local.set $a${r} (i32.add (local.get $a${r - 1}) ${step(r)}))`).join(" ")}
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp))) (local.set $b1 (v128.load offset=16 (local.get $bp)))
      ${R.map((r) => `${fma(r, `(v128.load32_splat (local.get $a${r}))`)} (local.set $a${r} (i32.add (local.get $a${r}) (local.get $aks)))`).join(" ")}
      (local.set $bp (i32.add (local.get $bp) (i32.const 32))) (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    ${R.map(store).join(" ")})`;
  };
  const columns = (name: string, n: number) => {
    const R = Array.from({ length: n }, (_, r) => r);
    return `(func $${name} (param $a i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    ${R.map(acc).join(" ")} (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then ${R.map(load).join(" ")}))
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp))) (local.set $b1 (v128.load offset=16 (local.get $bp)))
      ${R.map((r) => fma(r, `(v128.load32_splat offset=${4 * r} (local.get $a))`)).join(" ")}
      (local.set $a (i32.add (local.get $a) (local.get $aks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32))) (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    ${R.map(store).join(" ")})`;
  };
  return [general("p5x8", rows, true), columns("p5x8c", rows), general("p4x8", 4, false), columns("p4x8c", 4)].join("\n") + "\n";
}

/** gemm.wat with the packed GEMM's microkernels replaced by FMA ones of `rows` rows (5 or 6). */
export function fmaSource(rows = Number(process.env.ROWS ?? 6), memory = "(memory 1 65536 shared)"): string {
  let src = readFileSync(WAT, "utf8").replace('(import "env" "memory" MEMORY)', `(import "env" "memory" ${memory})`);
  const start = src.indexOf("  (func $p5x8 ");
  const end = src.indexOf("  ;; The packed GEMM's B panels");
  if (start < 0 || end < start) throw new Error("gemm.wat: the packed GEMM's microkernels were not found");
  src = src.slice(0, start) + microkernels(rows) + src.slice(end);
  // the driver's tile height: every (i32.const 5) in gemmPacked is the number of rows of a tile (with
  // 6, the 4-row tiles at the end no longer make M = 6a + 4b exact: a partial tile may remain, as correct)
  const d0 = src.indexOf('(func $gemmPacked (export "gemmPacked")');
  const d1 = src.indexOf("\n  )\n", d0);
  const shift = "(i32.shl (local.get $r) (i32.const 5))"; // the edge tile's 32-byte rows: not a row count
  const driver = src.slice(d0, d1).replaceAll(shift, "@SHIFT@").replaceAll("(i32.const 5)", `(i32.const ${rows})`).replaceAll("@SHIFT@", shift);
  return src.slice(0, d0) + driver + src.slice(d1);
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
