;; fitloop: memory-bound elementwise kernels (float32, WebAssembly SIMD) for the conv layers' activations.
;;
;; Source of the generated `elementwise.wasm.ts` (`pnpm --filter @fitloop/core run build:simd`); the
;; memory import is filled in by the build script (tfjs-wasm's memory). Pointers are byte offsets,
;; counts are in elements. Every export works on a range given by pointers + counts, so a caller can
;; split the rows between threads (each range's output is disjoint).
(module
  (import "env" "memory" MEMORY)

  ;; out[r, j] = x[r, j] + bias[j] for `rows` rows of c floats (the conv bias add). A single float32
  ;; add per element: bit for bit the cpu backend's broadcast add.
  (func (export "addBias") (param $x i32) (param $bias i32) (param $out i32) (param $rows i32) (param $c i32)
    (local $rowB i32) (local $c4B i32) (local $end i32) (local $j i32)
    (local.set $rowB (i32.shl (local.get $c) (i32.const 2)))
    (local.set $c4B (i32.shl (i32.and (local.get $c) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $rowB))))
    (block $done (loop $rl
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $j (i32.const 0))
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u (local.get $j) (local.get $c4B)))
        (v128.store (i32.add (local.get $out) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $x) (local.get $j))) (v128.load (i32.add (local.get $bias) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vl)))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $j) (local.get $rowB)))
        (f32.store (i32.add (local.get $out) (local.get $j))
          (f32.add (f32.load (i32.add (local.get $x) (local.get $j))) (f32.load (i32.add (local.get $bias) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sl)))
      (local.set $x (i32.add (local.get $x) (local.get $rowB)))
      (local.set $out (i32.add (local.get $out) (local.get $rowB)))
      (br $rl)))
  )

  ;; acc[j] += sum over `rows` rows of x[r, j] (float64 accumulator of `cols` doubles at $acc, 8-byte
  ;; aligned): the column sum of a Sum over leading axes. Four rows are added in float64 first, then to
  ;; the accumulator (as the JS loop it replaces, whose rows come eight at a time: both are float64
  ;; sums of float32 values, equal to well below float32 rounding).
  (func (export "colSum") (param $x i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $rowB i32) (local $c4B i32) (local $r i32) (local $j i32) (local $p i32) (local $a i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $rowB (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $c4B (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.gt_s (i32.add (local.get $r) (i32.const 4)) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u (local.get $j) (local.get $c4B)))
        (local.set $p (i32.add (local.get $x) (local.get $j)))
        (local.set $v0 (v128.load (local.get $p)))
        (local.set $v1 (v128.load (i32.add (local.get $p) (local.get $rowB))))
        (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rowB) (i32.const 1))))
        (local.set $v2 (v128.load (local.get $p)))
        (local.set $v3 (v128.load (i32.add (local.get $p) (local.get $rowB))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (v128.store (local.get $a)
          (f64x2.add (v128.load (local.get $a))
            (f64x2.add
              (f64x2.add (f64x2.promote_low_f32x4 (local.get $v0)) (f64x2.promote_low_f32x4 (local.get $v1)))
              (f64x2.add (f64x2.promote_low_f32x4 (local.get $v2)) (f64x2.promote_low_f32x4 (local.get $v3))))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a))
            (f64x2.add
              (f64x2.add
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v0) (local.get $v0)))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v1) (local.get $v1))))
              (f64x2.add
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v2) (local.get $v2)))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v3) (local.get $v3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vl)))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $p (i32.add (local.get $x) (local.get $j)))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (f64.store (local.get $a)
          (f64.add (f64.load (local.get $a))
            (f64.add
              (f64.add (f64.promote_f32 (f32.load (local.get $p))) (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $rowB)))))
              (f64.add
                (f64.promote_f32 (f32.load (i32.add (local.get $p) (i32.shl (local.get $rowB) (i32.const 1)))))
                (f64.promote_f32 (f32.load (i32.add (local.get $p) (i32.mul (local.get $rowB) (i32.const 3)))))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sl)))
      (local.set $x (i32.add (local.get $x) (i32.shl (local.get $rowB) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br $bl)))
    ;; the last rows % 4, one at a time
    (block $td (loop $tl
      (br_if $td (i32.ge_s (local.get $r) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $ed (loop $el
        (br_if $ed (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $el)))
      (local.set $x (i32.add (local.get $x) (local.get $rowB)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $tl)))
  )

  ;; out[j] = float32(acc[j] * scale) for n doubles (1 for Sum, 1/rows for Mean).
  (func (export "finishSum") (param $acc i32) (param $out i32) (param $n i32) (param $scale f64)
    (local $i i32)
    (local.set $i (i32.const 0))
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $i) (local.get $n)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
        (f32.demote_f64 (f64.mul (f64.load (i32.add (local.get $acc) (i32.shl (local.get $i) (i32.const 3)))) (local.get $scale))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
  )
)
