;; fitloop datasets: gaussian noise, x[k] = clamp(x[k] + N(0, std²), lo, hi), in WebAssembly SIMD.
;;
;; Source of the generated `normal.wasm.ts` (`pnpm --filter @fitloop/datasets run build:simd`; a
;; test checks the embedded bytes match a fresh compile). `src/simd/normal.ts` drives it and holds
;; the plain-JS twin (`addNormalJs`) that gives the same bits where WebAssembly SIMD is missing.
;;
;; Four xoroshiro64** streams (Blackman & Vigna), one per i32x4 lane: element k of a chunk draws
;; from lane k & 3. Each 32-bit word r gives the table index j = r & 511 (sign << 8 | layer) and the
;; 23-bit magnitude u = r >>> 9 of a 256-layer ziggurat (Marsaglia & Tsang). The fast path (u < kn[j],
;; ~98.5 % of draws) is vectorised: x + f32(u * ws[j]) rounded to float32, clamped with
;; f32x4.pmax/pmin. Lanes that miss it keep x unchanged; their vector is queued for the scalar slow
;; pass (wedges and the tail; `finishSlow` below, a twin of the JS one), which continues the same
;; lane's stream.
;;
;; Memory (this module's own, two pages and more as JS grows it; byte offsets):
;;   0    state: s0 of lanes 0-3 (i32x4), 16: s1 of lanes 0-3
;;   48   scratch: the table offsets of the current vector
;;   64   table: 512 entries of (kn i32, ws f32), ws = f32(wn * std), written by JS
;;   8192 data: up to 4096 float32 (the chunk), processed in place
;;        (or a chunk of a batch placed in this memory by JS, at 81920 and up: see `workspace`)
;;   24576 queue: 32-byte entries (r of lanes 0-3, k (bytes), accept bits of lanes 0-3, unused x2)
;;        for the vectors with a draw left to the slow pass
;;   65536 the slow pass's float64 tables (see finishSlow below)
(module
  ;; Math.exp and Math.log of the host: the slow pass below calls the same functions as the JS one
  (import "math" "exp" (func $exp (param f64) (result f64)))
  (import "math" "log" (func $log (param f64) (result f64)))
  (memory (export "memory") 2)

  ;; Processes data[0, n) in whole vectors (lanes past n are drawn and written, but the slow pass
  ;; skips them), the data at byte $ptr (8192, or a caller's batch further up in this memory);
  ;; returns the number of queue entries (k in them relative to $ptr).
  (func (export "addNormal") (param $ptr i32) (param $n i32) (param $lo f32) (param $hi f32) (result i32)
    (local $k i32) (local $end i32) (local $np i32) (local $bits i32)
    (local $s0 v128) (local $s1 v128) (local $m v128) (local $r v128) (local $a v128)
    (local $p01 v128) (local $p23 v128) (local $u v128) (local $ok v128) (local $x v128) (local $y v128)
    (local $vlo v128) (local $vhi v128)
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (local.set $s0 (v128.load (i32.const 0)))
    (local.set $s1 (v128.load (i32.const 16)))
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 3)) (i32.const -4)) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      ;; xoroshiro64**: r = rotl(s0 * 0x9e3779bb, 5) * 5, then the state update
      (local.set $m (i32x4.mul (local.get $s0) (v128.const i32x4 0x9e3779bb 0x9e3779bb 0x9e3779bb 0x9e3779bb)))
      (local.set $r (v128.or (i32x4.shl (local.get $m) (i32.const 5)) (i32x4.shr_u (local.get $m) (i32.const 27))))
      (local.set $r (i32x4.add (local.get $r) (i32x4.shl (local.get $r) (i32.const 2)))) ;; * 5
      (local.set $s1 (v128.xor (local.get $s1) (local.get $s0)))
      (local.set $s0
        (v128.xor
          (v128.xor
            (v128.or (i32x4.shl (local.get $s0) (i32.const 26)) (i32x4.shr_u (local.get $s0) (i32.const 6)))
            (local.get $s1))
          (i32x4.shl (local.get $s1) (i32.const 9))))
      (local.set $s1 (v128.or (i32x4.shl (local.get $s1) (i32.const 13)) (i32x4.shr_u (local.get $s1) (i32.const 19))))
      ;; gather (kn, ws) of each lane: byte offset (r & 511) * 8 into the table
      (local.set $a (i32x4.shl (v128.and (local.get $r) (v128.const i32x4 511 511 511 511)) (i32.const 3)))
      ;; through memory: 4 scalar loads are cheaper than 4 extract_lane (shuffle-port bound)
      (v128.store (i32.const 48) (local.get $a))
      (local.set $p01
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (v128.load64_zero offset=64 (i32.load (i32.const 48)))
          (v128.load64_zero offset=64 (i32.load (i32.const 52)))))
      (local.set $p23
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (v128.load64_zero offset=64 (i32.load (i32.const 56)))
          (v128.load64_zero offset=64 (i32.load (i32.const 60)))))
      (local.set $u (i32x4.shr_u (local.get $r) (i32.const 9)))
      ;; accepted lanes: u < kn
      (local.set $ok
        (i32x4.lt_s (local.get $u)
          (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $p01) (local.get $p23))))
      (local.set $x (v128.load (i32.add (local.get $ptr) (local.get $k))))
      ;; y = clamp(x + f32(u * ws)); pmax/pmin (one instruction each): (v < lo ? lo : v), (hi < w ? hi : w)
      (local.set $y
        (f32x4.pmin
          (f32x4.pmax
            (f32x4.add (local.get $x)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $u))
                (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $p01) (local.get $p23))))
            (local.get $vlo))
          (local.get $vhi)))
      (v128.store (i32.add (local.get $ptr) (local.get $k)) (v128.bitselect (local.get $y) (local.get $x) (local.get $ok)))
      ;; the queue entry is always written, but kept (np advances) only when a lane was rejected:
      ;; no branch to mispredict on ~6 % of the vectors
      (local.set $bits (i32x4.bitmask (local.get $ok)))
      (v128.store offset=24576 (local.get $np) (local.get $r))
      (i32.store offset=24592 (local.get $np) (local.get $k))
      (i32.store offset=24596 (local.get $np) (local.get $bits))
      (local.set $np (i32.add (local.get $np) (i32.shl (i32.ne (local.get $bits) (i32.const 15)) (i32.const 5))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $next)))
    (v128.store (i32.const 0) (local.get $s0))
    (v128.store (i32.const 16) (local.get $s1))
    (i32.shr_u (local.get $np) (i32.const 5)))
;;
  ;; The slow pass (`finishSlow` in normal.ts, op for op in float64: the same bits): the queued
  ;; draws of a chunk of n elements, in element order, each continuing its lane's stream. Float64
  ;; tables (written by JS): 65536 wn[512] (signed), 69632 fn[256], 71680 / 73728 / 75776 / 77824
  ;; the squeeze lines loA, loB, hiA, hiB [256]; kn is the int32 of the fast table at 64.
  (func $word (param $l i32) (result i32)
    (local $s0 i32) (local $s1 i32) (local $m i32)
    (local.set $s0 (i32.load (local.get $l)))
    (local.set $s1 (i32.load offset=16 (local.get $l)))
    (local.set $m (i32.mul (local.get $s0) (i32.const 0x9e3779bb)))
    (local.set $s1 (i32.xor (local.get $s1) (local.get $s0)))
    (i32.store (local.get $l)
      (i32.xor (i32.xor (i32.rotl (local.get $s0) (i32.const 26)) (local.get $s1)) (i32.shl (local.get $s1) (i32.const 9))))
    (i32.store offset=16 (local.get $l) (i32.rotl (local.get $s1) (i32.const 13)))
    (i32.mul (i32.rotl (local.get $m) (i32.const 5)) (i32.const 5)))

  (func $uniform (param $l i32) (result f64)
    (f64.div (f64.convert_i32_u (call $word (local.get $l))) (f64.const 4294967296)))

  (func (export "finishSlow") (param $ptr i32) (param $entries i32) (param $n i32) (param $std f64) (param $lo f32) (param $hi f32)
    (local $p i32) (local $end i32) (local $k0 i32) (local $todo i32) (local $l i32) (local $k i32)
    (local $r i32) (local $u i32) (local $j i32) (local $layer i32) (local $sign f64)
    (local $z f64) (local $x f64) (local $y f64) (local $t f64) (local $v f32)
    (local.set $end (i32.shl (local.get $entries) (i32.const 5)))
    (block $entriesDone (loop $entry
      (br_if $entriesDone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $k0 (i32.shr_s (i32.load offset=24592 (local.get $p)) (i32.const 2)))
      ;; the rejected lanes, lowest first (lanes past n were drawn but are not part of the data)
      (local.set $todo
        (i32.and (i32.and (i32.xor (i32.load offset=24596 (local.get $p)) (i32.const -1)) (i32.const 15))
          (select (i32.const 15)
            (i32.sub (i32.shl (i32.const 1) (i32.sub (local.get $n) (local.get $k0))) (i32.const 1))
            (i32.ge_s (i32.sub (local.get $n) (local.get $k0)) (i32.const 4)))))
      (block $lanesDone (loop $lane
        (br_if $lanesDone (i32.eqz (local.get $todo)))
        (local.set $l (i32.ctz (local.get $todo)))
        (local.set $todo (i32.and (local.get $todo) (i32.sub (local.get $todo) (i32.const 1))))
        (local.set $k (i32.add (local.get $k0) (local.get $l)))
        (local.set $l (i32.shl (local.get $l) (i32.const 2))) ;; byte offset of the lane's state
        (local.set $r (i32.load offset=24576 (i32.add (local.get $p) (local.get $l))))
        (local.set $u (i32.shr_u (local.get $r) (i32.const 9)))
        (local.set $j (i32.and (local.get $r) (i32.const 511)))
        (block $drawn (loop $draw
          (local.set $layer (i32.and (local.get $j) (i32.const 255)))
          (local.set $sign (select (f64.const -1) (f64.const 1) (i32.and (local.get $j) (i32.const 256))))
          (if (i32.eqz (local.get $layer))
            (then
              ;; the tail beyond R
              (loop $tail
                (local.set $t
                  (f64.div
                    (f64.neg (call $log (f64.sub (f64.const 1) (call $uniform (local.get $l)))))
                    (f64.const 3.6541528853610088)))
                (local.set $y (f64.neg (call $log (f64.sub (f64.const 1) (call $uniform (local.get $l))))))
                (br_if $tail (f64.lt (f64.add (local.get $y) (local.get $y)) (f64.mul (local.get $t) (local.get $t)))))
              (local.set $z (f64.mul (local.get $sign) (f64.add (f64.const 3.6541528853610088) (local.get $t))))
              (br $drawn)))
          ;; the wedge test of the layer, squeezed
          (local.set $x (f64.mul (f64.convert_i32_u (local.get $u)) (f64.load offset=65536 (i32.shl (local.get $layer) (i32.const 3)))))
          (local.set $y
            (f64.add (f64.load offset=69632 (i32.shl (local.get $layer) (i32.const 3)))
              (f64.mul (call $uniform (local.get $l))
                (f64.sub (f64.load offset=69624 (i32.shl (local.get $layer) (i32.const 3)))
                  (f64.load offset=69632 (i32.shl (local.get $layer) (i32.const 3)))))))
          (if
            (if (result i32)
              (f64.lt (local.get $y)
                (f64.add (f64.load offset=71680 (i32.shl (local.get $layer) (i32.const 3)))
                  (f64.mul (f64.load offset=73728 (i32.shl (local.get $layer) (i32.const 3))) (local.get $x))))
              (then (i32.const 1))
              (else
                (if (result i32)
                  (f64.ge (local.get $y)
                    (f64.add (f64.load offset=75776 (i32.shl (local.get $layer) (i32.const 3)))
                      (f64.mul (f64.load offset=77824 (i32.shl (local.get $layer) (i32.const 3))) (local.get $x))))
                  (then (i32.const 0))
                  (else
                    (f64.lt (local.get $y)
                      (call $exp (f64.mul (f64.mul (f64.const -0.5) (local.get $x)) (local.get $x))))))))
            (then
              (local.set $z (f64.mul (local.get $sign) (local.get $x)))
              (br $drawn)))
          ;; rejected: a fresh word
          (local.set $r (call $word (local.get $l)))
          (local.set $j (i32.and (local.get $r) (i32.const 511)))
          (local.set $u (i32.shr_u (local.get $r) (i32.const 9)))
          (if (i32.lt_s (local.get $u) (i32.load offset=64 (i32.shl (local.get $j) (i32.const 3))))
            (then
              (local.set $z (f64.mul (f64.convert_i32_u (local.get $u)) (f64.load offset=65536 (i32.shl (local.get $j) (i32.const 3)))))
              (br $drawn)))
          (br $draw)))
        ;; x = clamp(f32(x + f32(z * std)))
        (local.set $v
          (f32.demote_f64
            (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $ptr) (i32.shl (local.get $k) (i32.const 2)))))
              (f64.promote_f32 (f32.demote_f64 (f64.mul (local.get $z) (local.get $std)))))))
        (local.set $v (select (local.get $lo) (local.get $v) (f32.lt (local.get $v) (local.get $lo))))
        (f32.store (i32.add (local.get $ptr) (i32.shl (local.get $k) (i32.const 2)))
          (select (local.get $hi) (local.get $v) (f32.lt (local.get $hi) (local.get $v))))
        (br $lane)))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br $entry)))
  )
)
