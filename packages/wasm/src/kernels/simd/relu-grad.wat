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

  ;; dz = dy * step(x) over rows x cols (row-major, cols a multiple of 4), and acc[c] += sum over
  ;; the rows of dz(r, c) in float64 (acc: cols doubles, 8-byte aligned; the caller zeroes it): the
  ;; ReLU gradient and its bias gradient (a column sum) in one pass. Rows in groups of 4 (the four
  ;; promoted values added pairwise, then to acc, as colSum), the rest one by one. Byte offsets.
  (func (export "reluGradColSum") (param $dy i32) (param $x i32) (param $dx i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $rowB i32) (local $j i32) (local $a i32) (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $v v128) (local $s v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local.set $rowB (i32.shl (local.get $cols) (i32.const 2)))
    (block $qd (loop $ql
      (br_if $qd (i32.lt_u (local.get $rows) (i32.const 4)))
      (local.set $j (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $o0 (local.get $j))
        (local.set $o1 (i32.add (local.get $o0) (local.get $rowB)))
        (local.set $o2 (i32.add (local.get $o1) (local.get $rowB)))
        (local.set $o3 (i32.add (local.get $o2) (local.get $rowB)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o0))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z0 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o0))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o0)) (local.get $z0))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o1))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z1 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o1))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o1)) (local.get $z1))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o2))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z2 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o2))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o2)) (local.get $z2))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o3))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z3 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o3))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o3)) (local.get $z3))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (v128.store (local.get $a)
          (f64x2.add (v128.load (local.get $a)) (f64x2.add (f64x2.add (f64x2.promote_low_f32x4 (local.get $z0)) (f64x2.promote_low_f32x4 (local.get $z1))) (f64x2.add (f64x2.promote_low_f32x4 (local.get $z2)) (f64x2.promote_low_f32x4 (local.get $z3))))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.add (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z0) (local.get $z0))) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z1) (local.get $z1)))) (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z2) (local.get $z2))) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z3) (local.get $z3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $cl)))
      (local.set $o0 (i32.shl (local.get $rowB) (i32.const 2)))
      (local.set $dy (i32.add (local.get $dy) (local.get $o0)))
      (local.set $x (i32.add (local.get $x) (local.get $o0)))
      (local.set $dx (i32.add (local.get $dx) (local.get $o0)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 4)))
      (br $ql)))
    (block $rd (loop $rl
      (br_if $rd (i32.eqz (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $cd1 (loop $cl1
        (br_if $cd1 (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $j))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z0 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $z0))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $z0))))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z0) (local.get $z0)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $cl1)))
      (local.set $dy (i32.add (local.get $dy) (local.get $rowB)))
      (local.set $x (i32.add (local.get $x) (local.get $rowB)))
      (local.set $dx (i32.add (local.get $dx) (local.get $rowB)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rl)))
  )
)
