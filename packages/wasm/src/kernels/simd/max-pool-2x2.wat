;; fitloop: 2x2 max pooling with stride 2 and no padding (NHWC, float32), forward and gradient, in
;; WebAssembly SIMD, 4 channels per vector.
;;
;; Source of the generated `max-pool-2x2.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the
;; memory import is filled in by the build script (tfjs-wasm's memory). The windows do not overlap, so
;; each window is 4 loads and each dx element is written exactly once (no zero fill + scatter as in
;; max-pool-grad.wat). Semantics of the cpu backend: the first maximum in window order (row-major), a
;; value counts only when strictly greater than the best so far, starting at -inf (so NaN never wins;
;; a window of only NaN/-inf has max -inf and passes no gradient). Both exports take whole images
;; (pointers to the first image, a count), so the batch can be split between threads. Byte pointers;
;; c must be a multiple of 4; outH = floor(inH / 2), outW = floor(inW / 2) (the caller checks).
(module
  (import "env" "memory" MEMORY)

  ;; y[b, i, j, :] = max of x[b, 2i..2i+1, 2j..2j+1, :].
  (func (export "maxPool") (param $x i32) (param $y i32) (param $images i32)
      (param $inH i32) (param $inW i32) (param $c i32) (param $outH i32) (param $outW i32)
    (local $cb i32) (local $rowB i32) (local $imgB i32) (local $b i32) (local $oh i32) (local $ow i32)
    (local $p i32) (local $k i32) (local $best v128) (local $v v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowB (i32.mul (local.get $inW) (local.get $cb)))
    (local.set $imgB (i32.mul (local.get $inH) (local.get $rowB)))
    (local.set $b (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $images)))
      (local.set $oh (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_s (local.get $oh) (local.get $outH)))
        ;; first input pixel of this output row: image b, row 2 oh
        (local.set $p (i32.add (i32.add (local.get $x) (i32.mul (local.get $b) (local.get $imgB)))
          (i32.mul (i32.shl (local.get $oh) (i32.const 1)) (local.get $rowB))))
        (local.set $ow (i32.const 0))
        (block $wd (loop $wl
          (br_if $wd (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $k))))
            ;; NaN -> -inf, so a later value can replace it (v > -inf as the first comparison on cpu)
            (local.set $best (v128.bitselect (local.get $v) (v128.const f32x4 -inf -inf -inf -inf) (f32x4.eq (local.get $v) (local.get $v))))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $cb)) (local.get $k))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $k))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (local.set $v (v128.load (i32.add (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $cb)) (local.get $k))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (v128.store (i32.add (local.get $y) (local.get $k)) (local.get $best))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kl)))
          (local.set $y (i32.add (local.get $y) (local.get $cb)))
          (local.set $p (i32.add (local.get $p) (i32.shl (local.get $cb) (i32.const 1))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wl)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hl)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )

  ;; dx = dy at each window's first maximum, 0 elsewhere (also in an odd last row/column no window covers).
  (func (export "maxPoolGrad") (param $x i32) (param $dy i32) (param $dx i32) (param $images i32)
      (param $inH i32) (param $inW i32) (param $c i32) (param $outH i32) (param $outW i32)
    (local $cb i32) (local $rowB i32) (local $imgB i32) (local $b i32) (local $oh i32) (local $ow i32)
    (local $p i32) (local $q i32) (local $k i32) (local $o i32) (local $xb i32) (local $db i32)
    (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128) (local $best v128)
    (local $ma v128) (local $mb v128) (local $mc v128) (local $md v128) (local $g v128) (local $later v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowB (i32.mul (local.get $inW) (local.get $cb)))
    (local.set $imgB (i32.mul (local.get $inH) (local.get $rowB)))
    (local.set $b (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $images)))
      (local.set $xb (i32.add (local.get $x) (i32.mul (local.get $b) (local.get $imgB))))
      (local.set $db (i32.add (local.get $dx) (i32.mul (local.get $b) (local.get $imgB))))
      (local.set $oh (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_s (local.get $oh) (local.get $outH)))
        ;; byte offset of the window row pair inside the image (same for x and dx)
        (local.set $o (i32.mul (i32.shl (local.get $oh) (i32.const 1)) (local.get $rowB)))
        (local.set $p (i32.add (local.get $xb) (local.get $o)))
        (local.set $q (i32.add (local.get $db) (local.get $o)))
        (local.set $ow (i32.const 0))
        (block $wd (loop $wl
          (br_if $wd (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $va (v128.load (i32.add (local.get $p) (local.get $k))))
            (local.set $vb (v128.load (i32.add (i32.add (local.get $p) (local.get $cb)) (local.get $k))))
            (local.set $vc (v128.load (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $k))))
            (local.set $vd (v128.load (i32.add (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $cb)) (local.get $k))))
            ;; m* = "this value replaced the best so far"; the winner is the last one that did
            (local.set $ma (f32x4.gt (local.get $va) (v128.const f32x4 -inf -inf -inf -inf)))
            (local.set $best (v128.bitselect (local.get $va) (v128.const f32x4 -inf -inf -inf -inf) (local.get $ma)))
            (local.set $mb (f32x4.gt (local.get $vb) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $vb) (local.get $best) (local.get $mb)))
            (local.set $mc (f32x4.gt (local.get $vc) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $vc) (local.get $best) (local.get $mc)))
            (local.set $md (f32x4.gt (local.get $vd) (local.get $best)))
            ;; + 0: a -0 gradient becomes +0, as 0 + dy in the cpu backend and max-pool-grad.wat
            (local.set $g (f32x4.add (v128.load (i32.add (local.get $dy) (local.get $k))) (v128.const f32x4 0 0 0 0)))
            (v128.store (i32.add (i32.add (i32.add (local.get $q) (local.get $rowB)) (local.get $cb)) (local.get $k))
              (v128.and (local.get $g) (local.get $md)))
            (local.set $later (local.get $md))
            (v128.store (i32.add (i32.add (local.get $q) (local.get $rowB)) (local.get $k))
              (v128.and (local.get $g) (v128.andnot (local.get $mc) (local.get $later))))
            (local.set $later (v128.or (local.get $later) (local.get $mc)))
            (v128.store (i32.add (i32.add (local.get $q) (local.get $cb)) (local.get $k))
              (v128.and (local.get $g) (v128.andnot (local.get $mb) (local.get $later))))
            (local.set $later (v128.or (local.get $later) (local.get $mb)))
            (v128.store (i32.add (local.get $q) (local.get $k))
              (v128.and (local.get $g) (v128.andnot (local.get $ma) (local.get $later))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kl)))
          (local.set $dy (i32.add (local.get $dy) (local.get $cb)))
          (local.set $p (i32.add (local.get $p) (i32.shl (local.get $cb) (i32.const 1))))
          (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cb) (i32.const 1))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wl)))
        ;; an odd width: the last pixel of both rows is in no window
        (if (i32.and (local.get $inW) (i32.const 1)) (then
          (memory.fill (local.get $q) (i32.const 0) (local.get $cb))
          (memory.fill (i32.add (local.get $q) (local.get $rowB)) (i32.const 0) (local.get $cb))))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hl)))
      ;; an odd height: the last row is in no window
      (if (i32.and (local.get $inH) (i32.const 1)) (then
        (memory.fill (i32.add (local.get $db) (i32.mul (i32.sub (local.get $inH) (i32.const 1)) (local.get $rowB))) (i32.const 0) (local.get $rowB))))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )

  ;; maxPool that also writes, per output element, which of its window's 4 pixels won (one byte: 0..3
  ;; in row-major window order, 4 for none: a window of only NaN/-inf), with the same comparisons as
  ;; maxPoolGrad, so `maxPoolGradMask` gives its gradient bit for bit without reading x again. mask:
  ;; images*outH*outW*c bytes.
  (func (export "maxPoolMask") (param $x i32) (param $y i32) (param $mask i32) (param $images i32)
      (param $inH i32) (param $inW i32) (param $c i32) (param $outH i32) (param $outW i32)
    (local $cb i32) (local $rowB i32) (local $imgB i32) (local $b i32) (local $oh i32) (local $ow i32)
    (local $p i32) (local $k i32) (local $m i32) (local $best v128) (local $v v128) (local $r v128) (local $w v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowB (i32.mul (local.get $inW) (local.get $cb)))
    (local.set $imgB (i32.mul (local.get $inH) (local.get $rowB)))
    (local.set $b (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $images)))
      (local.set $oh (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_s (local.get $oh) (local.get $outH)))
        (local.set $p (i32.add (i32.add (local.get $x) (i32.mul (local.get $b) (local.get $imgB)))
          (i32.mul (i32.shl (local.get $oh) (i32.const 1)) (local.get $rowB))))
        (local.set $ow (i32.const 0))
        (block $wd (loop $wl
          (br_if $wd (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $k (i32.const 0))
          (local.set $m (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $k))))
            (local.set $r (f32x4.gt (local.get $v) (v128.const f32x4 -inf -inf -inf -inf)))
            (local.set $best (v128.bitselect (local.get $v) (v128.const f32x4 -inf -inf -inf -inf) (local.get $r)))
            (local.set $w (v128.bitselect (v128.const i32x4 0 0 0 0) (v128.const i32x4 4 4 4 4) (local.get $r)))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $cb)) (local.get $k))))
            (local.set $r (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $r)))
            (local.set $w (v128.bitselect (v128.const i32x4 1 1 1 1) (local.get $w) (local.get $r)))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $k))))
            (local.set $r (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $r)))
            (local.set $w (v128.bitselect (v128.const i32x4 2 2 2 2) (local.get $w) (local.get $r)))
            (local.set $v (v128.load (i32.add (i32.add (i32.add (local.get $p) (local.get $rowB)) (local.get $cb)) (local.get $k))))
            (local.set $r (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $r)))
            (local.set $w (v128.bitselect (v128.const i32x4 3 3 3 3) (local.get $w) (local.get $r)))
            (v128.store (i32.add (local.get $y) (local.get $k)) (local.get $best))
            (v128.store32_lane 0 (i32.add (local.get $mask) (local.get $m))
              (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u (local.get $w) (local.get $w)) (v128.const i32x4 0 0 0 0)))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (local.set $m (i32.add (local.get $m) (i32.const 4)))
            (br $kl)))
          (local.set $y (i32.add (local.get $y) (local.get $cb)))
          (local.set $mask (i32.add (local.get $mask) (local.get $c)))
          (local.set $p (i32.add (local.get $p) (i32.shl (local.get $cb) (i32.const 1))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wl)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hl)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )

  ;; maxPoolGrad from maxPoolMask's mask instead of x: dx = dy + 0 at the window's winner, 0 elsewhere
  ;; (also in an odd last row/column no window covers).
  (func (export "maxPoolGradMask") (param $mask i32) (param $dy i32) (param $dx i32) (param $images i32)
      (param $inH i32) (param $inW i32) (param $c i32) (param $outH i32) (param $outW i32)
    (local $cb i32) (local $rowB i32) (local $imgB i32) (local $b i32) (local $oh i32) (local $ow i32)
    (local $q i32) (local $k i32) (local $m i32) (local $db i32) (local $g v128) (local $w v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowB (i32.mul (local.get $inW) (local.get $cb)))
    (local.set $imgB (i32.mul (local.get $inH) (local.get $rowB)))
    (local.set $b (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $images)))
      (local.set $db (i32.add (local.get $dx) (i32.mul (local.get $b) (local.get $imgB))))
      (local.set $oh (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_s (local.get $oh) (local.get $outH)))
        (local.set $q (i32.add (local.get $db) (i32.mul (i32.shl (local.get $oh) (i32.const 1)) (local.get $rowB))))
        (local.set $ow (i32.const 0))
        (block $wd (loop $wl
          (br_if $wd (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $k (i32.const 0))
          (local.set $m (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $w (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (i32.add (local.get $mask) (local.get $m))))))
            ;; + 0: a -0 gradient becomes +0, as 0 + dy in the cpu backend and maxPoolGrad
            (local.set $g (f32x4.add (v128.load (i32.add (local.get $dy) (local.get $k))) (v128.const f32x4 0 0 0 0)))
            (v128.store (i32.add (local.get $q) (local.get $k))
              (v128.and (local.get $g) (i32x4.eq (local.get $w) (v128.const i32x4 0 0 0 0))))
            (v128.store (i32.add (i32.add (local.get $q) (local.get $cb)) (local.get $k))
              (v128.and (local.get $g) (i32x4.eq (local.get $w) (v128.const i32x4 1 1 1 1))))
            (v128.store (i32.add (i32.add (local.get $q) (local.get $rowB)) (local.get $k))
              (v128.and (local.get $g) (i32x4.eq (local.get $w) (v128.const i32x4 2 2 2 2))))
            (v128.store (i32.add (i32.add (i32.add (local.get $q) (local.get $rowB)) (local.get $cb)) (local.get $k))
              (v128.and (local.get $g) (i32x4.eq (local.get $w) (v128.const i32x4 3 3 3 3))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (local.set $m (i32.add (local.get $m) (i32.const 4)))
            (br $kl)))
          (local.set $dy (i32.add (local.get $dy) (local.get $cb)))
          (local.set $mask (i32.add (local.get $mask) (local.get $c)))
          (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cb) (i32.const 1))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wl)))
        ;; an odd width: the last pixel of both rows is in no window
        (if (i32.and (local.get $inW) (i32.const 1)) (then
          (memory.fill (local.get $q) (i32.const 0) (local.get $cb))
          (memory.fill (i32.add (local.get $q) (local.get $rowB)) (i32.const 0) (local.get $cb))))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hl)))
      ;; an odd height: the last row is in no window
      (if (i32.and (local.get $inH) (i32.const 1)) (then
        (memory.fill (i32.add (local.get $db) (i32.mul (i32.sub (local.get $inH) (i32.const 1)) (local.get $rowB))) (i32.const 0) (local.get $rowB))))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )
)
