;; fitloop: col2im as a gather (NHWC, float32) in WebAssembly SIMD, for Conv2DBackpropInput.
;;
;; Source of the generated `col2im.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the
;; memory import is filled in by the build script (tfjs-wasm's memory). The caller computed
;; cols = dy · Wᵀ, one row per output pixel r = (b*outH + oh)*outW + ow and one column per filter tap
;; and input channel t = (kh*fw + kw)*ci + c. Then
;;   dx[b, ih, iw, c] = sum of cols[(b, oh, ow), (kh, kw, c)]
;; over oh*sh + kh - top = ih and ow*sw + kw - left = iw (inside the output; tfjs's kernel has no
;; dilations).
;; A gather: each dx element is written once (no zero-fill, no read-modify-write), summed from 0 in
;; the cpu backend's order (oh ascending, then ow ascending); 16 channels per step in four f32x4
;; accumulators, then 4, then single channels (any ci). Per input row, the matching (kh, oh) give a
;; list of row addresses, per input pixel the (kw, ow) a list of column offsets; their sums are the
;; pixel's source addresses, in scratch memory (fh + fw + fh*fw i32). Pointers are byte offsets.
(module
  (import "env" "memory" MEMORY)

  (func (export "col2im")
      (param $cols i32) (param $dx i32) (param $batch i32) (param $inH i32) (param $inW i32) (param $ci i32)
      (param $outH i32) (param $outW i32) (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32)
      (param $top i32) (param $left i32) (param $scratch i32)
    (local $ci4 i32) (local $T4 i32) (local $rowList i32) (local $colList i32) (local $list i32) (local $listEnd i32)
    (local $b i32) (local $ih i32) (local $iw i32) (local $k i32) (local $t i32) (local $nr i32) (local $nc i32)
    (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $src i32) (local $c i32) (local $end16 i32) (local $end4 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $f f32)
    (local.set $ci4 (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $T4 (i32.mul (i32.mul (local.get $fh) (local.get $fw)) (local.get $ci4)))
    (local.set $rowList (local.get $scratch))
    (local.set $colList (i32.add (local.get $scratch) (i32.shl (local.get $fh) (i32.const 2))))
    (local.set $list (i32.add (local.get $colList) (i32.shl (local.get $fw) (i32.const 2))))
    (local.set $end16 (i32.and (local.get $ci4) (i32.const -64)))
    (local.set $end4 (i32.and (local.get $ci4) (i32.const -16)))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $ih (i32.const 0))
      (block $ihd (loop $ihl
        (br_if $ihd (i32.ge_s (local.get $ih) (local.get $inH)))
        ;; rows: kh descending = oh ascending; t = oh*sh
        (local.set $nr (i32.const 0))
        (local.set $k (local.get $fh))
        (block $khd (loop $khl
          (br_if $khd (i32.eqz (local.get $k)))
          (local.set $k (i32.sub (local.get $k) (i32.const 1)))
          (local.set $t (i32.sub (i32.add (local.get $ih) (local.get $top)) (local.get $k)))
          (if (i32.ge_s (local.get $t) (i32.const 0)) (then
            (if (i32.eqz (i32.rem_s (local.get $t) (local.get $sh))) (then
              (local.set $t (i32.div_s (local.get $t) (local.get $sh)))
              (if (i32.lt_s (local.get $t) (local.get $outH)) (then
                (i32.store (i32.add (local.get $rowList) (i32.shl (local.get $nr) (i32.const 2)))
                  (i32.add (i32.add (local.get $cols)
                    (i32.mul (i32.mul (i32.add (i32.mul (local.get $b) (local.get $outH)) (local.get $t)) (local.get $outW)) (local.get $T4)))
                    (i32.mul (i32.mul (local.get $k) (local.get $fw)) (local.get $ci4))))
                (local.set $nr (i32.add (local.get $nr) (i32.const 1)))))))))
          (br $khl)))
        (local.set $iw (i32.const 0))
        (block $iwd (loop $iwl
          (br_if $iwd (i32.ge_s (local.get $iw) (local.get $inW)))
          ;; columns: kw descending = ow ascending
          (local.set $nc (i32.const 0))
          (local.set $k (local.get $fw))
          (block $kwd (loop $kwl
            (br_if $kwd (i32.eqz (local.get $k)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (local.set $t (i32.sub (i32.add (local.get $iw) (local.get $left)) (local.get $k)))
            (if (i32.ge_s (local.get $t) (i32.const 0)) (then
              (if (i32.eqz (i32.rem_s (local.get $t) (local.get $sw))) (then
                (local.set $t (i32.div_s (local.get $t) (local.get $sw)))
                (if (i32.lt_s (local.get $t) (local.get $outW)) (then
                  (i32.store (i32.add (local.get $colList) (i32.shl (local.get $nc) (i32.const 2)))
                    (i32.add (i32.mul (local.get $t) (local.get $T4)) (i32.mul (local.get $k) (local.get $ci4))))
                  (local.set $nc (i32.add (local.get $nc) (i32.const 1)))))))))
            (br $kwl)))
          ;; the pixel's source addresses, (oh, ow) ascending
          (local.set $listEnd (local.get $list))
          (local.set $i (i32.const 0))
          (block $rd (loop $rl
            (br_if $rd (i32.ge_u (local.get $i) (local.get $nr)))
            (local.set $src (i32.load (i32.add (local.get $rowList) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $j (i32.const 0))
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u (local.get $j) (local.get $nc)))
              (i32.store (local.get $listEnd) (i32.add (local.get $src) (i32.load (i32.add (local.get $colList) (i32.shl (local.get $j) (i32.const 2))))))
              (local.set $listEnd (i32.add (local.get $listEnd) (i32.const 4)))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $cl)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $rl)))
          ;; 16 channels per step
          (local.set $c (i32.const 0))
          (block $d16 (loop $l16
            (br_if $d16 (i32.ge_u (local.get $c) (local.get $end16)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0))
            (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $p (local.get $list))
            (block $pd (loop $pl
              (br_if $pd (i32.ge_u (local.get $p) (local.get $listEnd)))
              (local.set $q (i32.add (i32.load (local.get $p)) (local.get $c)))
              (local.set $a0 (f32x4.add (local.get $a0) (v128.load offset=0 (local.get $q))))
              (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $q))))
              (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $q))))
              (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $q))))
              (local.set $p (i32.add (local.get $p) (i32.const 4)))
              (br $pl)))
            (local.set $q (i32.add (local.get $dx) (local.get $c)))
            (v128.store offset=0 (local.get $q) (local.get $a0))
            (v128.store offset=16 (local.get $q) (local.get $a1))
            (v128.store offset=32 (local.get $q) (local.get $a2))
            (v128.store offset=48 (local.get $q) (local.get $a3))
            (local.set $c (i32.add (local.get $c) (i32.const 64)))
            (br $l16)))
          ;; 4 channels per step
          (block $d4 (loop $l4
            (br_if $d4 (i32.ge_u (local.get $c) (local.get $end4)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $p (local.get $list))
            (block $pd (loop $pl
              (br_if $pd (i32.ge_u (local.get $p) (local.get $listEnd)))
              (local.set $a0 (f32x4.add (local.get $a0) (v128.load (i32.add (i32.load (local.get $p)) (local.get $c)))))
              (local.set $p (i32.add (local.get $p) (i32.const 4)))
              (br $pl)))
            (v128.store (i32.add (local.get $dx) (local.get $c)) (local.get $a0))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $l4)))
          ;; single channels
          (block $d1 (loop $l1
            (br_if $d1 (i32.ge_u (local.get $c) (local.get $ci4)))
            (local.set $f (f32.const 0))
            (local.set $p (local.get $list))
            (block $pd (loop $pl
              (br_if $pd (i32.ge_u (local.get $p) (local.get $listEnd)))
              (local.set $f (f32.add (local.get $f) (f32.load (i32.add (i32.load (local.get $p)) (local.get $c)))))
              (local.set $p (i32.add (local.get $p) (i32.const 4)))
              (br $pl)))
            (f32.store (i32.add (local.get $dx) (local.get $c)) (local.get $f))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $l1)))
          (local.set $dx (i32.add (local.get $dx) (local.get $ci4)))
          (local.set $iw (i32.add (local.get $iw) (i32.const 1)))
          (br $iwl)))
        (local.set $ih (i32.add (local.get $ih) (i32.const 1)))
        (br $ihl)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )
)
