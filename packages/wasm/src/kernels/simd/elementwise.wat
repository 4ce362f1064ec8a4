;; fitloop: memory-bound elementwise kernels (float32, WebAssembly SIMD): the conv layers' activations and the foreach kernels (`wasm-foreach.ts`).
;;
;; Source of the generated `elementwise.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the
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

  ;; out = x * s for n float32 values (one float32 multiply each: the same result as a broadcast Mul).
  (func (export "scale") (param $x i32) (param $out i32) (param $n i32) (param $s f32)
    (local $end16 i32) (local $end i32) (local $v v128)
    (local.set $end16 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $s)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $x) (local.get $end16)))
      (v128.store (local.get $out) (f32x4.mul (v128.load (local.get $x)) (local.get $v)))
      (v128.store offset=16 (local.get $out) (f32x4.mul (v128.load offset=16 (local.get $x)) (local.get $v)))
      (v128.store offset=32 (local.get $out) (f32x4.mul (v128.load offset=32 (local.get $x)) (local.get $v)))
      (v128.store offset=48 (local.get $out) (f32x4.mul (v128.load offset=48 (local.get $x)) (local.get $v)))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (local.set $out (i32.add (local.get $out) (i32.const 64)))
      (br $l)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $x) (local.get $end)))
      (f32.store (local.get $out) (f32.mul (f32.load (local.get $x)) (local.get $s)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $tl))))

  ;; out = y + x * a for n float32 values (the foreach axpy): a float32 multiply, then a float32 add
  ;; (no fused multiply-add), so the same bits as tfjs's Mul then Add. Pure elementwise: out may be y.
  (func (export "axpy") (param $y i32) (param $x i32) (param $out i32) (param $n i32) (param $a f32)
    (local $end16 i32) (local $end i32) (local $v v128)
    (local.set $end16 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $a)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $x) (local.get $end16)))
      (v128.store (local.get $out) (f32x4.add (v128.load (local.get $y)) (f32x4.mul (v128.load (local.get $x)) (local.get $v))))
      (v128.store offset=16 (local.get $out) (f32x4.add (v128.load offset=16 (local.get $y)) (f32x4.mul (v128.load offset=16 (local.get $x)) (local.get $v))))
      (v128.store offset=32 (local.get $out) (f32x4.add (v128.load offset=32 (local.get $y)) (f32x4.mul (v128.load offset=32 (local.get $x)) (local.get $v))))
      (v128.store offset=48 (local.get $out) (f32x4.add (v128.load offset=48 (local.get $y)) (f32x4.mul (v128.load offset=48 (local.get $x)) (local.get $v))))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (local.set $y (i32.add (local.get $y) (i32.const 64)))
      (local.set $out (i32.add (local.get $out) (i32.const 64)))
      (br $l)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $x) (local.get $end)))
      (f32.store (local.get $out) (f32.add (f32.load (local.get $y)) (f32.mul (f32.load (local.get $x)) (local.get $a))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $tl))))

  ;; out = (y + x * a) * s for n float32 values: `axpy`, then a float32 multiply of the sum (the same
  ;; bits as tfjs's Mul, Add, Mul): a running sum's last term and its mean in one pass. out may be y.
  (func (export "axpyScale") (param $y i32) (param $x i32) (param $out i32) (param $n i32) (param $a f32) (param $s f32)
    (local $end16 i32) (local $end i32) (local $v v128) (local $w v128)
    (local.set $end16 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $a)))
    (local.set $w (f32x4.splat (local.get $s)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $x) (local.get $end16)))
      (v128.store (local.get $out) (f32x4.mul (f32x4.add (v128.load (local.get $y)) (f32x4.mul (v128.load (local.get $x)) (local.get $v))) (local.get $w)))
      (v128.store offset=16 (local.get $out) (f32x4.mul (f32x4.add (v128.load offset=16 (local.get $y)) (f32x4.mul (v128.load offset=16 (local.get $x)) (local.get $v))) (local.get $w)))
      (v128.store offset=32 (local.get $out) (f32x4.mul (f32x4.add (v128.load offset=32 (local.get $y)) (f32x4.mul (v128.load offset=32 (local.get $x)) (local.get $v))) (local.get $w)))
      (v128.store offset=48 (local.get $out) (f32x4.mul (f32x4.add (v128.load offset=48 (local.get $y)) (f32x4.mul (v128.load offset=48 (local.get $x)) (local.get $v))) (local.get $w)))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (local.set $y (i32.add (local.get $y) (i32.const 64)))
      (local.set $out (i32.add (local.get $out) (i32.const 64)))
      (br $l)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $x) (local.get $end)))
      (f32.store (local.get $out) (f32.mul (f32.add (f32.load (local.get $y)) (f32.mul (f32.load (local.get $x)) (local.get $a))) (local.get $s)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $tl))))

  ;; out = a + (b - a) * t for n float32 values (the foreach lerp: EMA and running means): sub, mul,
  ;; add in float32, each rounded, so the same bits as tfjs's Sub, Mul, Add. out may be a.
  (func (export "lerp") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $t f32)
    (local $end16 i32) (local $end i32) (local $v v128) (local $p v128)
    (local.set $end16 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $t)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $a) (local.get $end16)))
      (local.set $p (v128.load (local.get $a)))
      (v128.store (local.get $out) (f32x4.add (local.get $p) (f32x4.mul (f32x4.sub (v128.load (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=16 (local.get $a)))
      (v128.store offset=16 (local.get $out) (f32x4.add (local.get $p) (f32x4.mul (f32x4.sub (v128.load offset=16 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=32 (local.get $a)))
      (v128.store offset=32 (local.get $out) (f32x4.add (local.get $p) (f32x4.mul (f32x4.sub (v128.load offset=32 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=48 (local.get $a)))
      (v128.store offset=48 (local.get $out) (f32x4.add (local.get $p) (f32x4.mul (f32x4.sub (v128.load offset=48 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $a (i32.add (local.get $a) (i32.const 64)))
      (local.set $b (i32.add (local.get $b) (i32.const 64)))
      (local.set $out (i32.add (local.get $out) (i32.const 64)))
      (br $l)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $a) (local.get $end)))
      (f32.store (local.get $out) (f32.add (f32.load (local.get $a)) (f32.mul (f32.sub (f32.load (local.get $b)) (f32.load (local.get $a))) (local.get $t))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $tl))))

  ;; out = a + (b - a) / d for n float32 values: as `lerp` with a true float32 division (tfjs's Div,
  ;; bit for bit; PyTorch 1.x AveragedModel's running mean divides by n + 1). out may be a.
  (func (export "lerpDiv") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $d f32)
    (local $end16 i32) (local $end i32) (local $v v128) (local $p v128)
    (local.set $end16 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $v (f32x4.splat (local.get $d)))
    (block $dn (loop $l
      (br_if $dn (i32.ge_u (local.get $a) (local.get $end16)))
      (local.set $p (v128.load (local.get $a)))
      (v128.store (local.get $out) (f32x4.add (local.get $p) (f32x4.div (f32x4.sub (v128.load (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=16 (local.get $a)))
      (v128.store offset=16 (local.get $out) (f32x4.add (local.get $p) (f32x4.div (f32x4.sub (v128.load offset=16 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=32 (local.get $a)))
      (v128.store offset=32 (local.get $out) (f32x4.add (local.get $p) (f32x4.div (f32x4.sub (v128.load offset=32 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $p (v128.load offset=48 (local.get $a)))
      (v128.store offset=48 (local.get $out) (f32x4.add (local.get $p) (f32x4.div (f32x4.sub (v128.load offset=48 (local.get $b)) (local.get $p)) (local.get $v))))
      (local.set $a (i32.add (local.get $a) (i32.const 64)))
      (local.set $b (i32.add (local.get $b) (i32.const 64)))
      (local.set $out (i32.add (local.get $out) (i32.const 64)))
      (br $l)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $a) (local.get $end)))
      (f32.store (local.get $out) (f32.add (f32.load (local.get $a)) (f32.div (f32.sub (f32.load (local.get $b)) (f32.load (local.get $a))) (local.get $d))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (i32.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $tl))))

  ;; sum(x^2) over n float32 values, returned as f64. Squares are added in float32 within blocks of
  ;; 1024 values (4 vectors x 4 lanes: 64 values per lane), then each block is added in float64: the
  ;; gradient norm in one pass, with float32 rounding bounded to short runs.
  (func (export "sumSquares") (param $x i32) (param $n i32) (result f64)
    (local $end16 i32) (local $end i32) (local $blockEnd i32) (local $total f64)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $v v128) (local $acc v128)
    (local.set $end16 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $acc (f64x2.splat (f64.const 0)))
    (block $done (loop $blocks
      (br_if $done (i32.ge_u (local.get $x) (local.get $end16)))
      (local.set $blockEnd (i32.add (local.get $x) (i32.const 4096)))
      (if (i32.gt_u (local.get $blockEnd) (local.get $end16)) (then (local.set $blockEnd (local.get $end16))))
      (local.set $a0 (f32x4.splat (f32.const 0)))
      (local.set $a1 (f32x4.splat (f32.const 0)))
      (local.set $a2 (f32x4.splat (f32.const 0)))
      (local.set $a3 (f32x4.splat (f32.const 0)))
      (block $bd (loop $bl
        (br_if $bd (i32.ge_u (local.get $x) (local.get $blockEnd)))
        (local.set $v (v128.load (local.get $x)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $v (v128.load offset=16 (local.get $x)))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $v (v128.load offset=32 (local.get $x)))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $v (v128.load offset=48 (local.get $x)))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (br $bl)))
      (local.set $v (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3))))
      (local.set $acc (f64x2.add (local.get $acc)
        (f64x2.add (f64x2.promote_low_f32x4 (local.get $v))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))))
      (br $blocks)))
    (local.set $total (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
    ;; the last n % 16 values
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $total (f64.add (local.get $total) (f64.promote_f32 (f32.mul (f32.load (local.get $x)) (f32.load (local.get $x))))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (br $tl)))
    (local.get $total))

  ;; sum of x * 0 over n floats: 0 when every value is finite, NaN otherwise (Inf * 0 and NaN * 0
  ;; are NaN, and NaN sticks). Exact: no square that could overflow a large finite value to Inf.
  (func (export "nonFinite") (param $x i32) (param $n i32) (result f32)
    (local $end16 i32) (local $end i32) (local $zero v128) (local $acc v128) (local $total f32)
    (local.set $end16 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $acc (f32x4.splat (f32.const 0)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $x) (local.get $end16)))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.add
        (f32x4.add (f32x4.mul (v128.load (local.get $x)) (local.get $zero)) (f32x4.mul (v128.load offset=16 (local.get $x)) (local.get $zero)))
        (f32x4.add (f32x4.mul (v128.load offset=32 (local.get $x)) (local.get $zero)) (f32x4.mul (v128.load offset=48 (local.get $x)) (local.get $zero))))))
      (local.set $x (i32.add (local.get $x) (i32.const 64)))
      (br $l)))
    (local.set $total (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    ;; the last n % 16 values
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $total (f32.add (local.get $total) (f32.mul (f32.load (local.get $x)) (f32.const 0))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (br $tl)))
    (local.get $total))

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
