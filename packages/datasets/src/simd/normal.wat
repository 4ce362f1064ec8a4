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
;; pass in JS (wedges and the tail), which continues the same lane's stream.
;;
;; Memory (this module's own, one page; byte offsets):
;;   0    state: s0 of lanes 0-3 (i32x4), 16: s1 of lanes 0-3
;;   48   scratch: the table offsets of the current vector
;;   64   table: 512 entries of (kn i32, ws f32), ws = f32(wn * std), written by JS
;;   8192 data: up to 4096 float32 (the chunk), processed in place
;;   24576 queue: 32-byte entries (r of lanes 0-3, k (bytes), accept bits of lanes 0-3, unused x2)
;;        for the vectors with a draw left to the slow pass
(module
  (memory (export "memory") 1)

  ;; Processes data[0, n) in whole vectors (lanes past n are drawn and written, but the slow pass
  ;; skips them); returns the number of queue entries.
  (func (export "addNormal") (param $n i32) (param $lo f32) (param $hi f32) (result i32)
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
      (local.set $x (v128.load offset=8192 (local.get $k)))
      ;; y = clamp(x + f32(u * ws)); pmax/pmin (one instruction each): (v < lo ? lo : v), (hi < w ? hi : w)
      (local.set $y
        (f32x4.pmin
          (f32x4.pmax
            (f32x4.add (local.get $x)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $u))
                (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $p01) (local.get $p23))))
            (local.get $vlo))
          (local.get $vhi)))
      (v128.store offset=8192 (local.get $k) (v128.bitselect (local.get $y) (local.get $x) (local.get $ok)))
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
)
