;; fitloop: a data loader's augmented batch made in tfjs-wasm's memory, on a kernel thread.
;;
;; Source of the generated `augment.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`). The
;; gaussian noise is @fitloop/datasets' own kernel: the build script puts the functions of
;; `packages/datasets/src/simd/normal.wat` (`$addNormal`, the vectorised ziggurat, and
;; `$finishSlow`, its scalar slow pass) in place of the `NORMAL_WAT` line below, so a batch made here
;; has the same bits as one made by `gaussianNoise` on the host. Their offsets are relative to a
;; region of 83,968 bytes (`$base`, 16-aligned; layout in normal.wat) that the caller allocated and
;; filled with the tables; one region per task that may run at the same time as another.
(module
  (import "env" "memory" MEMORY)
  ;; Math.exp and Math.log of the host, as in normal.wat (the slow pass calls the same functions)
  (import "math" "exp" (func $exp (param f64) (result f64)))
  (import "math" "log" (func $log (param f64) (result f64)))

  ;; Samples [$from, $to) of a batch: row s of $out (f = h*w*c floats) is row $idx[s] (i32) of $data,
  ;; moved by the integer offset ($shifts[2s], $shifts[2s + 1]) = (dy, dx) when $shifts != 0, the
  ;; uncovered pixels set to $fill: what @fitloop/datasets' `randomShift` / `randomCrop` make
  ;; (`gatherApply`: one move of the whole image by (dy*w + dx)*c values, then the uncovered rows, and
  ;; in each row the columns that wrapped around, filled). Without shifts, a plain copy of the rows.
  (func (export "gatherShift") (param $out i32) (param $data i32) (param $idx i32) (param $shifts i32) (param $from i32) (param $to i32)
    (param $h i32) (param $w i32) (param $c i32) (param $fill f32)
    (local $s i32) (local $f i32) (local $row i32) (local $dst i32) (local $src i32) (local $dy i32) (local $dx i32)
    (local $off i32) (local $r i32) (local $rEnd i32) (local $nc i32) (local $start i32)
    (local.set $row (i32.mul (local.get $w) (local.get $c)))
    (local.set $f (i32.mul (local.get $h) (local.get $row)))
    (local.set $s (local.get $from))
    (block $done (loop $sample
      (br_if $done (i32.ge_u (local.get $s) (local.get $to)))
      (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $s) (local.get $f)) (i32.const 2))))
      (local.set $src (i32.add (local.get $data) (i32.shl (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $s) (i32.const 2)))) (local.get $f)) (i32.const 2))))
      (block $next
        (if (i32.eqz (local.get $shifts))
          (then
            (memory.copy (local.get $dst) (local.get $src) (i32.shl (local.get $f) (i32.const 2)))
            (br $next)))
        (local.set $dy (i32.load (i32.add (local.get $shifts) (i32.shl (local.get $s) (i32.const 3)))))
        (local.set $dx (i32.load offset=4 (i32.add (local.get $shifts) (i32.shl (local.get $s) (i32.const 3)))))
        ;; moved out entirely: all fill
        (if (i32.or
              (i32.ge_s (select (local.get $dy) (i32.sub (i32.const 0) (local.get $dy)) (i32.ge_s (local.get $dy) (i32.const 0))) (local.get $h))
              (i32.ge_s (select (local.get $dx) (i32.sub (i32.const 0) (local.get $dx)) (i32.ge_s (local.get $dx) (i32.const 0))) (local.get $w)))
          (then
            (call $fillF32 (local.get $dst) (local.get $f) (local.get $fill))
            (br $next)))
        (local.set $off (i32.mul (i32.add (i32.mul (local.get $dy) (local.get $w)) (local.get $dx)) (local.get $c)))
        (if (i32.ge_s (local.get $off) (i32.const 0))
          (then (memory.copy (i32.add (local.get $dst) (i32.shl (local.get $off) (i32.const 2))) (local.get $src) (i32.shl (i32.sub (local.get $f) (local.get $off)) (i32.const 2))))
          (else (memory.copy (local.get $dst) (i32.sub (local.get $src) (i32.shl (local.get $off) (i32.const 2))) (i32.shl (i32.add (local.get $f) (local.get $off)) (i32.const 2)))))
        ;; the uncovered rows: the first dy (dy > 0) or the last -dy (dy < 0)
        (if (i32.gt_s (local.get $dy) (i32.const 0))
          (then (call $fillF32 (local.get $dst) (i32.mul (local.get $dy) (local.get $row)) (local.get $fill))))
        (if (i32.lt_s (local.get $dy) (i32.const 0))
          (then (call $fillF32
            (i32.add (local.get $dst) (i32.shl (i32.mul (i32.add (local.get $h) (local.get $dy)) (local.get $row)) (i32.const 2)))
            (i32.mul (i32.sub (i32.const 0) (local.get $dy)) (local.get $row)) (local.get $fill))))
        ;; the uncovered columns of the other rows: |dx|*c values at the start (dx > 0) or end (dx < 0) of each
        (br_if $next (i32.eqz (local.get $dx)))
        (local.set $nc (i32.mul (select (local.get $dx) (i32.sub (i32.const 0) (local.get $dx)) (i32.gt_s (local.get $dx) (i32.const 0))) (local.get $c)))
        (local.set $start (select (i32.const 0) (i32.sub (local.get $row) (local.get $nc)) (i32.gt_s (local.get $dx) (i32.const 0))))
        (local.set $r (select (local.get $dy) (i32.const 0) (i32.gt_s (local.get $dy) (i32.const 0))))
        (local.set $rEnd (select (i32.add (local.get $h) (local.get $dy)) (local.get $h) (i32.lt_s (local.get $dy) (i32.const 0))))
        (block $rowsDone (loop $rows
          (br_if $rowsDone (i32.ge_s (local.get $r) (local.get $rEnd)))
          (call $fillF32 (i32.add (local.get $dst) (i32.shl (i32.add (local.get $start) (i32.mul (local.get $r) (local.get $row))) (i32.const 2))) (local.get $nc) (local.get $fill))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rows))))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (br $sample)))
  )

  ;; $n float32 at $ptr set to $v
  (func $fillF32 (param $ptr i32) (param $n i32) (param $v f32)
    (local $end i32) (local $end4 i32) (local $vv v128)
    (local.set $vv (f32x4.splat (local.get $v)))
    (local.set $end (i32.add (local.get $ptr) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $ptr) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $d4 (loop $l4
      (br_if $d4 (i32.ge_u (local.get $ptr) (local.get $end4)))
      (v128.store (local.get $ptr) (local.get $vv))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 16)))
      (br $l4)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $ptr) (local.get $end)))
      (f32.store (local.get $ptr) (local.get $v))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 4)))
      (br $l)))
  )

  ;; x[k] = clamp(x[k] + N(0, std²), lo, hi) for the $n float32 at $ptr, as @fitloop/datasets'
  ;; `addNormal` does on the host: in chunks of 4096 from $ptr, each through the fast pass and the
  ;; slow pass in the region at $base, its generators' state first copied from $states (16 words per
  ;; chunk, datasets' `chunkStates`: chunks are independent, so two threads can each take some, in
  ;; regions of their own). A chunk whose length is not a multiple of 8 is processed in the region's
  ;; data area (the fast pass writes whole groups of eight), as on the host.
  (func (export "normalChunks") (param $base i32) (param $states i32) (param $ptr i32) (param $n i32) (param $lo f32) (param $hi f32) (param $std f64)
    (local $len i32) (local $np i32) (local $at i32)
    (block $done (loop $chunk
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (memory.copy (local.get $base) (local.get $states) (i32.const 64))
      (local.set $states (i32.add (local.get $states) (i32.const 64)))
      (local.set $len (select (i32.const 4096) (local.get $n) (i32.gt_s (local.get $n) (i32.const 4096))))
      (local.set $at (local.get $ptr))
      (if (i32.and (local.get $len) (i32.const 7))
        (then
          (local.set $at (i32.add (local.get $base) (i32.const 8192)))
          (memory.copy (local.get $at) (local.get $ptr) (i32.shl (local.get $len) (i32.const 2)))))
      (local.set $np (call $addNormal (local.get $base) (local.get $at) (local.get $len) (local.get $lo) (local.get $hi)))
      (if (local.get $np)
        (then (call $finishSlow (local.get $base) (local.get $at) (local.get $np) (local.get $len) (local.get $std) (local.get $lo) (local.get $hi))))
      (if (i32.ne (local.get $at) (local.get $ptr))
        (then (memory.copy (local.get $ptr) (local.get $at) (i32.shl (local.get $len) (i32.const 2)))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.shl (local.get $len) (i32.const 2))))
      (local.set $n (i32.sub (local.get $n) (local.get $len)))
      (br $chunk)))
  )

;; Rows [$from, $to) of $f float32 each at $out: x = f32((f64(x) - f64(mean[k])) * f64(invStd[k])),
  ;; k the feature: @fitloop/datasets' `Normalizer` transform computes exactly this in JavaScript
  ;; (float64 arithmetic, rounded to float32 once when stored), so the bits are the same. Two
  ;; features per f64x2 operation, four per iteration.
  (func (export "normalizeRows") (param $out i32) (param $mean i32) (param $inv i32) (param $from i32) (param $to i32) (param $f i32)
    (local $row i32) (local $k i32) (local $end4 i32) (local $p i32) (local $x v128) (local $m v128) (local $s v128)
    (local.set $end4 (i32.and (local.get $f) (i32.const -4)))
    (local.set $row (local.get $from))
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $row) (local.get $to)))
      (local.set $p (i32.add (local.get $out) (i32.shl (i32.mul (local.get $row) (local.get $f)) (i32.const 2))))
      (local.set $k (i32.const 0))
      (block $d4 (loop $l4
        (br_if $d4 (i32.ge_u (local.get $k) (local.get $end4)))
        (local.set $x (v128.load (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $m (v128.load (i32.add (local.get $mean) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $s (v128.load (i32.add (local.get $inv) (i32.shl (local.get $k) (i32.const 2)))))
        (v128.store (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 2)))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.sub (f64x2.promote_low_f32x4 (local.get $x)) (f64x2.promote_low_f32x4 (local.get $m)))
                (f64x2.promote_low_f32x4 (local.get $s))))
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.sub
                  (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))
                  (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m) (local.get $m))))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $s) (local.get $s)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l4)))
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $k) (local.get $f)))
        (f32.store (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 2)))
          (f32.demote_f64
            (f64.mul
              (f64.sub
                (f64.promote_f32 (f32.load (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 2)))))
                (f64.promote_f32 (f32.load (i32.add (local.get $mean) (i32.shl (local.get $k) (i32.const 2))))))
              (f64.promote_f32 (f32.load (i32.add (local.get $inv) (i32.shl (local.get $k) (i32.const 2))))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rows)))
  )

  NORMAL_WAT
)
