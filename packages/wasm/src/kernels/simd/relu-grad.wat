;; fitloop: the ReLU gradient, dx = dy * step(x), in one WebAssembly SIMD pass.
;;
;; Source of the generated `relu-grad.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the
;; memory import is filled in by the build script (tfjs-wasm's memory). tfjs-core's Relu gradient
;; runs Step, Cast and Multiply (three full-size kernels); this computes the same values in one:
;; step(x) = 1 where x > 0, NaN where x is NaN, else 0, then dy * step(x) (so 0 * dy keeps its
;; sign and NaN/Inf dy still give NaN, bit for bit as the three kernels on cpu).
(module
  (import "env" "memory" MEMORY)

  ;; n float32 elements; byte offsets.
  (func (export "reluGrad") (param $dy i32) (param $x i32) (param $dx i32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $end i32) (local $v v128) (local $s v128) (local $f f32) (local $t f32)
    (local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
      (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $s
        (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0)
          (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
      (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
      (v128.store (i32.add (local.get $dx) (local.get $i))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i))) (local.get $s)))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $l)))
    (block $done1 (loop $l1
      (br_if $done1 (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $f (f32.load (i32.add (local.get $x) (local.get $i))))
      (local.set $t (select (f32.const 1) (f32.const 0) (f32.gt (local.get $f) (f32.const 0))))
      (local.set $t (select (local.get $f) (local.get $t) (f32.ne (local.get $f) (local.get $f))))
      (f32.store (i32.add (local.get $dx) (local.get $i))
        (f32.mul (f32.load (i32.add (local.get $dy) (local.get $i))) (local.get $t)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l1))))
)
