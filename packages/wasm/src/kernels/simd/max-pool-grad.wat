;; fitloop: MaxPoolGrad (NHWC, float32) in WebAssembly SIMD, 4 channels per vector.
;;
;; Source of the generated `max-pool-grad.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`);
;; the memory import is filled in by the build script as for batch-norm.wat (tfjs-wasm's memory).
;; For every output cell and every 4 channels: the first maximum of the window in row-major window
;; order (a strictly greater value replaces it, so NaN never does: as the cpu backend and the JS
;; kernel), then dx at that position += dy. dx is zeroed first. Pointers are byte offsets; c must be
;; a multiple of 4 (the caller checks).
(module
  (import "env" "memory" MEMORY)

  (func (export "maxPoolGrad")
      (param $x i32) (param $dy i32) (param $dx i32)
      (param $batch i32) (param $inH i32) (param $inW i32) (param $c i32)
      (param $outH i32) (param $outW i32) (param $sH i32) (param $sW i32)
      (param $fH i32) (param $fW i32) (param $top i32) (param $left i32)
    (local $cb i32) (local $rowB i32) (local $imgB i32) (local $xb i32) (local $b i32)
    (local $oh i32) (local $ow i32) (local $r0 i32) (local $rMin i32) (local $rMax i32)
    (local $c0 i32) (local $cMin i32) (local $cMax i32) (local $r i32) (local $cc i32)
    (local $k i32) (local $off i32) (local $dyp i32) (local $w i32)
    (local $best v128) (local $where v128) (local $v v128) (local $mask v128) (local $g v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowB (i32.mul (local.get $inW) (local.get $cb)))
    (local.set $imgB (i32.mul (local.get $inH) (local.get $rowB)))
    (memory.fill (local.get $dx) (i32.const 0) (i32.mul (local.get $batch) (local.get $imgB)))
    (local.set $dyp (local.get $dy))
    (local.set $b (i32.const 0))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $xb (i32.mul (local.get $b) (local.get $imgB))) ;; byte offset of image b (relative to x / dx)
      (local.set $oh (i32.const 0))
      (block $ohd (loop $ohl
        (br_if $ohd (i32.ge_s (local.get $oh) (local.get $outH)))
        (local.set $r0 (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $top)))
        (local.set $rMin (select (local.get $r0) (i32.const 0) (i32.gt_s (local.get $r0) (i32.const 0))))
        (local.set $rMax (i32.add (local.get $r0) (local.get $fH)))
        (local.set $rMax (select (local.get $inH) (local.get $rMax) (i32.gt_s (local.get $rMax) (local.get $inH))))
        (local.set $ow (i32.const 0))
        (block $owd (loop $owl
          (br_if $owd (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $c0 (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $left)))
          (local.set $cMin (select (local.get $c0) (i32.const 0) (i32.gt_s (local.get $c0) (i32.const 0))))
          (local.set $cMax (i32.add (local.get $c0) (local.get $fW)))
          (local.set $cMax (select (local.get $inW) (local.get $cMax) (i32.gt_s (local.get $cMax) (local.get $inW))))
          (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $best (f32x4.splat (f32.const -inf)))
            (local.set $where (i32x4.splat (i32.const -1)))
            (local.set $r (local.get $rMin))
            (block $rd (loop $rl
              (br_if $rd (i32.ge_s (local.get $r) (local.get $rMax)))
              (local.set $cc (local.get $cMin))
              (block $cd (loop $cl
                (br_if $cd (i32.ge_s (local.get $cc) (local.get $cMax)))
                (local.set $off
                  (i32.add (i32.add (local.get $xb) (local.get $k))
                    (i32.add (i32.mul (local.get $r) (local.get $rowB)) (i32.mul (local.get $cc) (local.get $cb)))))
                (local.set $v (v128.load (i32.add (local.get $x) (local.get $off))))
                (local.set $mask (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $mask)))
                (local.set $where
                  (v128.bitselect
                    (i32x4.add (i32x4.splat (local.get $off)) (v128.const i32x4 0 4 8 12))
                    (local.get $where) (local.get $mask)))
                (local.set $cc (i32.add (local.get $cc) (i32.const 1)))
                (br $cl)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rl)))
            (local.set $g (v128.load (i32.add (local.get $dyp) (local.get $k))))
            (local.set $w (i32x4.extract_lane 0 (local.get $where)))
            (if (i32.ge_s (local.get $w) (i32.const 0)) (then
              (local.set $w (i32.add (local.get $dx) (local.get $w)))
              (f32.store (local.get $w) (f32.add (f32.load (local.get $w)) (f32x4.extract_lane 0 (local.get $g))))))
            (local.set $w (i32x4.extract_lane 1 (local.get $where)))
            (if (i32.ge_s (local.get $w) (i32.const 0)) (then
              (local.set $w (i32.add (local.get $dx) (local.get $w)))
              (f32.store (local.get $w) (f32.add (f32.load (local.get $w)) (f32x4.extract_lane 1 (local.get $g))))))
            (local.set $w (i32x4.extract_lane 2 (local.get $where)))
            (if (i32.ge_s (local.get $w) (i32.const 0)) (then
              (local.set $w (i32.add (local.get $dx) (local.get $w)))
              (f32.store (local.get $w) (f32.add (f32.load (local.get $w)) (f32x4.extract_lane 2 (local.get $g))))))
            (local.set $w (i32x4.extract_lane 3 (local.get $where)))
            (if (i32.ge_s (local.get $w) (i32.const 0)) (then
              (local.set $w (i32.add (local.get $dx) (local.get $w)))
              (f32.store (local.get $w) (f32.add (f32.load (local.get $w)) (f32x4.extract_lane 3 (local.get $g))))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kl)))
          (local.set $dyp (i32.add (local.get $dyp) (local.get $cb)))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $owl)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $ohl)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )
)
