;; fitloop: one Adam update of a variable in one WebAssembly SIMD pass.
;;
;; Source of the generated `adam.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the memory
;; import is filled in by the build script (tfjs-wasm's memory). tfjs-core's AdamOptimizer runs ~15
;; kernels per variable (mul, add, square, div, sqrt...); this computes the same float32 operations in
;; the same order, so the result is bit for bit what those kernels give:
;;   g = g * gscale  (a pending gradient scale, e.g. clipping's; 1 multiplies exactly)
;;   m' = m * b1 + g * omb1          v' = v * b2 + (g * g) * omb2
;;   x' = ((m' / c1) / (sqrt(v' / c2) + eps)) * neglr + x
;; with omb1 = 1 - beta1, c1 = 1 - beta1^t (float32, as tfjs rounds its scalars), neglr = -learningRate.
(module
  (import "env" "memory" MEMORY)

  ;; n float32 elements; byte offsets. Outputs may not alias inputs partially (same offset is fine).
  (func (export "adam")
    (param $x i32) (param $m i32) (param $v i32) (param $g i32)
    (param $ox i32) (param $om i32) (param $ov i32) (param $n i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32)
    (param $c1 f32) (param $c2 f32) (param $eps f32) (param $neglr f32) (param $gscale f32)
    (local $i i32) (local $end4 i32) (local $end i32)
    (local $vb1 v128) (local $vomb1 v128) (local $vb2 v128) (local $vomb2 v128)
    (local $vc1 v128) (local $vc2 v128) (local $veps v128) (local $vlr v128)
    (local $gv v128) (local $mn v128) (local $vn v128) (local $vgs v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $vb1 (f32x4.splat (local.get $b1)))
    (local.set $vomb1 (f32x4.splat (local.get $omb1)))
    (local.set $vb2 (f32x4.splat (local.get $b2)))
    (local.set $vomb2 (f32x4.splat (local.get $omb2)))
    (local.set $vc1 (f32x4.splat (local.get $c1)))
    (local.set $vc2 (f32x4.splat (local.get $c2)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $vlr (f32x4.splat (local.get $neglr)))
    (local.set $vgs (f32x4.splat (local.get $gscale)))
    (local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
      (local.set $gv (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $i))) (local.get $vgs)))
      (local.set $mn
        (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $vb1))
          (f32x4.mul (local.get $gv) (local.get $vomb1))))
      (local.set $vn
        (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $vb2))
          (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $vomb2))))
      (v128.store (i32.add (local.get $ox) (local.get $i))
        (f32x4.add
          (f32x4.mul
            (f32x4.div
              (f32x4.div (local.get $mn) (local.get $vc1))
              (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vn) (local.get $vc2))) (local.get $veps)))
            (local.get $vlr))
          (v128.load (i32.add (local.get $x) (local.get $i)))))
      (v128.store (i32.add (local.get $om) (local.get $i)) (local.get $mn))
      (v128.store (i32.add (local.get $ov) (local.get $i)) (local.get $vn))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $l)))
    (block $done1 (loop $l1
      (br_if $done1 (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $gs (f32.mul (f32.load (i32.add (local.get $g) (local.get $i))) (local.get $gscale)))
      (local.set $ms
        (f32.add
          (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
          (f32.mul (local.get $gs) (local.get $omb1))))
      (local.set $vs
        (f32.add
          (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
          (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $omb2))))
      (f32.store (i32.add (local.get $ox) (local.get $i))
        (f32.add
          (f32.mul
            (f32.div
              (f32.div (local.get $ms) (local.get $c1))
              (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $c2))) (local.get $eps)))
            (local.get $neglr))
          (f32.load (i32.add (local.get $x) (local.get $i)))))
      (f32.store (i32.add (local.get $om) (local.get $i)) (local.get $ms))
      (f32.store (i32.add (local.get $ov) (local.get $i)) (local.get $vs))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l1))))
)
