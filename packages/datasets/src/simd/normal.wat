;; fitloop datasets: gaussian noise, x[k] = clamp(x[k] + N(0, std²), lo, hi), in WebAssembly SIMD.
;;
;; Source of the generated `normal.wasm.ts` (`pnpm --filter @fitloop/datasets run build:simd`; a
;; test checks the embedded bytes match a fresh compile). `src/simd/normal.ts` drives it and holds
;; the plain-JS twin (`addNormalJs`) that gives the same bits where WebAssembly SIMD is missing.
;;
;; Four xoroshiro128+ generators (Blackman & Vigna; 64-bit, in i64x2 lanes: two per vector, two
;; vectors stepped side by side, independent dependency chains the CPU overlaps). A step gives 64
;; bits, two 32-bit words: element k of a chunk takes word k & 7 of its group of eight, the low
;; (k even) or high (k odd) half of generator (k & 7) >> 1. Each word r gives the table index
;; j = r >>> 23 (sign << 8 | layer; the top bits: xoroshiro128+'s weak lowest bits only reach the
;; magnitude's last bits) and the 23-bit magnitude u = r & 0x7fffff of a 256-layer ziggurat
;; (Marsaglia & Tsang). The fast path (u < kn[j], ~98.5 % of draws) is vectorised: x + f32(u * ws[j])
;; rounded to float32, clamped with f32x4.pmax/pmin. Lanes that miss it keep x unchanged; their
;; group of eight is queued for the scalar slow pass (wedges and the tail; `finishSlow` below, a
;; twin of the JS one), which continues the same generator (one step per word, its high half).
;;
;; Memory: this module's own, two pages and more as JS grows it. Offsets below are relative to $base,
;; the first argument of both functions: 0 here; @fitloop/wasm builds these two functions into its
;; `augment.wat` and runs them on tfjs-wasm's memory, at a region of its own, to add the same noise
;; to a batch in place on a kernel thread (the loader's background batches; the same bits):
;;   0    state: s0 of generators 0-3 (i64 each, 2 x i64x2), 32: s1 of generators 0-3
;;   64   constant: 0x7fffff x4 (loaded in the loop: one load instead of rebuilding it)
;;   128  scratch: the table offsets of the current 8 draws
;;   256  table: 512 entries of (kn i32, ws f32), ws = f32(wn * std), written by JS
;;   8192 data: up to 4096 float32 (the chunk), processed in place
;;        (or a chunk of a batch placed in this memory by JS, at 83968 and up: see `workspace`)
;;   24576 queue: 48-byte entries (the words of the group, k (bytes), accept bits of the group's
;;        eight elements, unused x2) for the groups of eight with a draw left to the slow pass
;;   65536-83967 the slow pass's float64 tables (see finishSlow below)
(module
  ;; Math.exp and Math.log of the host: the slow pass below calls the same functions as the JS one
  (import "math" "exp" (func $exp (param f64) (result f64)))
  (import "math" "log" (func $log (param f64) (result f64)))
  (memory (export "memory") 2)

  ;; Processes data[0, n) in whole groups of eight (elements past n, up to the next multiple of 8,
  ;; are drawn and written, but the slow pass skips them: JS only passes such an n for the `data`
  ;; chunk), the data at byte $ptr (8192, or a caller's batch further up in this memory); returns
  ;; the number of queue entries (k in them relative to $ptr).
  (func $addNormal (export "addNormal") (param $base i32) (param $ptr i32) (param $n i32) (param $lo f32) (param $hi f32) (result i32)
    (local $k i32) (local $end i32) (local $np i32) (local $bits i32) (local $at i32)
    (local $s0 v128) (local $s1 v128) (local $t0 v128) (local $t1 v128)
    (local $r v128) (local $q v128) (local $a v128) (local $b v128)
    (local $p01 v128) (local $p23 v128) (local $u v128) (local $ok v128) (local $x v128) (local $y v128)
    (local $p45 v128) (local $p67 v128) (local $w v128) (local $okb v128) (local $xb v128) (local $yb v128)
    (local $vlo v128) (local $vhi v128) (local $vbase v128)
    (local.set $np (local.get $base))
    (local.set $vbase (i32x4.splat (local.get $base)))
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (v128.store offset=64 (local.get $base) (v128.const i32x4 0x7fffff 0x7fffff 0x7fffff 0x7fffff))
    (local.set $s0 (v128.load offset=0 (local.get $base)))
    (local.set $t0 (v128.load offset=16 (local.get $base)))
    (local.set $s1 (v128.load offset=32 (local.get $base)))
    (local.set $t1 (v128.load offset=48 (local.get $base)))
    (local.set $end (i32.shl (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      ;; xoroshiro128+ on the four generators (two per vector): r = s0 + s1, then the state update
      (local.set $r (i64x2.add (local.get $s0) (local.get $s1)))
      (local.set $s1 (v128.xor (local.get $s1) (local.get $s0)))
      (local.set $s0
        (v128.xor
          (v128.xor
            (v128.or (i64x2.shl (local.get $s0) (i32.const 24)) (i64x2.shr_u (local.get $s0) (i32.const 40)))
            (local.get $s1))
          (i64x2.shl (local.get $s1) (i32.const 16))))
      (local.set $s1 (v128.or (i64x2.shl (local.get $s1) (i32.const 37)) (i64x2.shr_u (local.get $s1) (i32.const 27))))
      (local.set $q (i64x2.add (local.get $t0) (local.get $t1)))
      (local.set $t1 (v128.xor (local.get $t1) (local.get $t0)))
      (local.set $t0
        (v128.xor
          (v128.xor
            (v128.or (i64x2.shl (local.get $t0) (i32.const 24)) (i64x2.shr_u (local.get $t0) (i32.const 40)))
            (local.get $t1))
          (i64x2.shl (local.get $t1) (i32.const 16))))
      (local.set $t1 (v128.or (i64x2.shl (local.get $t1) (i32.const 37)) (i64x2.shr_u (local.get $t1) (i32.const 27))))
      ;; the words into this group's queue entry now (it is kept only if a draw is rejected, see
      ;; below): r and q need not stay in registers to the end of the iteration
      (v128.store offset=24576 (local.get $np) (local.get $r))
      (v128.store offset=24592 (local.get $np) (local.get $q))
      ;; gather (kn, ws) of each draw: byte offset (r >>> 23) * 8 into the table, through memory
      ;; (8 scalar loads are cheaper than 8 extract_lane), two 8-byte entries per load64_zero + load64_lane
      (local.set $a (i32x4.add (i32x4.shl (i32x4.shr_u (local.get $r) (i32.const 23)) (i32.const 3)) (local.get $vbase)))
      (local.set $b (i32x4.add (i32x4.shl (i32x4.shr_u (local.get $q) (i32.const 23)) (i32.const 3)) (local.get $vbase)))
      (v128.store offset=128 (local.get $base) (local.get $a))
      (v128.store offset=144 (local.get $base) (local.get $b))
      (local.set $p01 (v128.load64_lane offset=256 1 (i32.load offset=132 (local.get $base)) (v128.load64_zero offset=256 (i32.load offset=128 (local.get $base)))))
      (local.set $p23 (v128.load64_lane offset=256 1 (i32.load offset=140 (local.get $base)) (v128.load64_zero offset=256 (i32.load offset=136 (local.get $base)))))
      (local.set $p45 (v128.load64_lane offset=256 1 (i32.load offset=148 (local.get $base)) (v128.load64_zero offset=256 (i32.load offset=144 (local.get $base)))))
      (local.set $p67 (v128.load64_lane offset=256 1 (i32.load offset=156 (local.get $base)) (v128.load64_zero offset=256 (i32.load offset=152 (local.get $base)))))
      (local.set $at (i32.add (local.get $ptr) (local.get $k)))
      ;; accepted draws: u < kn
      (local.set $u (v128.and (local.get $r) (v128.load offset=64 (local.get $base))))
      (local.set $ok
        (i32x4.lt_s (local.get $u)
          (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $p01) (local.get $p23))))
      (local.set $w (v128.and (local.get $q) (v128.load offset=64 (local.get $base))))
      (local.set $okb
        (i32x4.lt_s (local.get $w)
          (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $p45) (local.get $p67))))
      (local.set $x (v128.load (local.get $at)))
      (local.set $xb (v128.load offset=16 (local.get $at)))
      ;; y = clamp(x + f32(u * ws)); pmax/pmin (one instruction each): (v < lo ? lo : v), (hi < w ? hi : w)
      (local.set $y
        (f32x4.pmin
          (f32x4.pmax
            (f32x4.add (local.get $x)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $u))
                (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $p01) (local.get $p23))))
            (local.get $vlo))
          (local.get $vhi)))
      (local.set $yb
        (f32x4.pmin
          (f32x4.pmax
            (f32x4.add (local.get $xb)
              (f32x4.mul (f32x4.convert_i32x4_s (local.get $w))
                (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $p45) (local.get $p67))))
            (local.get $vlo))
          (local.get $vhi)))
      (v128.store (local.get $at) (v128.bitselect (local.get $y) (local.get $x) (local.get $ok)))
      (v128.store offset=16 (local.get $at) (v128.bitselect (local.get $yb) (local.get $xb) (local.get $okb)))
      ;; the queue entry is always written, but kept (np advances) only when a draw was rejected:
      ;; no branch to mispredict on the ~11 % of the groups that have one
      (local.set $bits (i32.or (i32x4.bitmask (local.get $ok)) (i32.shl (i32x4.bitmask (local.get $okb)) (i32.const 4))))
      (i32.store offset=24608 (local.get $np) (local.get $k))
      (i32.store offset=24612 (local.get $np) (local.get $bits))
      (local.set $np (i32.add (local.get $np) (select (i32.const 48) (i32.const 0) (i32.ne (local.get $bits) (i32.const 255)))))
      (local.set $k (i32.add (local.get $k) (i32.const 32)))
      (br $next)))
    (v128.store offset=0 (local.get $base) (local.get $s0))
    (v128.store offset=16 (local.get $base) (local.get $t0))
    (v128.store offset=32 (local.get $base) (local.get $s1))
    (v128.store offset=48 (local.get $base) (local.get $t1))
    (i32.div_u (i32.sub (local.get $np) (local.get $base)) (i32.const 48)))
;;
  ;; The slow pass (`finishSlow` in normal.ts, op for op in float64: the same bits): the queued
  ;; draws of a chunk of n elements, in element order, each continuing its generator ((k & 7) >> 1),
  ;; whose state is in locals while it draws (the xoroshiro128+ step written out where a word is
  ;; needed: the high half of s0 + s1; uniforms are word / 2^32, here as the exact product by 2^-32). Float64 tables (written
  ;; by JS): 65536 wn[512] (signed), 69632 fn[256], 71680 / 73728 / 75776 / 77824 / 79872 / 81920
  ;; the squeeze coefficients loA, loB, hiA, hiB, loC, hiC [256]; kn is the int32 of the fast table at 256.
  (func $finishSlow (export "finishSlow") (param $base i32) (param $ptr i32) (param $entries i32) (param $n i32) (param $std f64) (param $lo f32) (param $hi f32)
    (local $p i32) (local $end i32) (local $k0 i32) (local $todo i32) (local $l i32) (local $k i32)
    (local $r i32) (local $u i32) (local $j i32) (local $layer i32) (local $g i32) (local $s0 i64) (local $s1 i64)
    (local $o i32) (local $acc i32) (local $a0 i64) (local $a1 i64)
    (local $sign i64) (local $z i64) (local $x f64) (local $xx f64) (local $y f64) (local $t f64) (local $v f32)
    (local.set $p (local.get $base))
    (local.set $end (i32.add (local.get $base) (i32.mul (local.get $entries) (i32.const 48))))
    (block $entriesDone (loop $entry
      (br_if $entriesDone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $k0 (i32.shr_s (i32.load offset=24608 (local.get $p)) (i32.const 2)))
      ;; the rejected elements of the group, lowest first (draws past n were made but are not part of the data)
      (local.set $todo
        (i32.and (i32.and (i32.xor (i32.load offset=24612 (local.get $p)) (i32.const -1)) (i32.const 255))
          (select (i32.const 255)
            (i32.sub (i32.shl (i32.const 1) (i32.sub (local.get $n) (local.get $k0))) (i32.const 1))
            (i32.ge_s (i32.sub (local.get $n) (local.get $k0)) (i32.const 8)))))
      (block $lanesDone (loop $lane
        (br_if $lanesDone (i32.eqz (local.get $todo)))
        (local.set $l (i32.ctz (local.get $todo)))
        (local.set $todo (i32.and (local.get $todo) (i32.sub (local.get $todo) (i32.const 1))))
        (local.set $k (i32.add (local.get $k0) (local.get $l)))
        (local.set $g (i32.add (local.get $base) (i32.shl (i32.and (local.get $l) (i32.const 6)) (i32.const 2)))) ;; byte offset of the generator's s0
        (local.set $r (i32.load offset=24576 (i32.add (local.get $p) (i32.shl (local.get $l) (i32.const 2)))))
        (local.set $s0 (i64.load (local.get $g)))
        (local.set $s1 (i64.load offset=32 (local.get $g)))
        (local.set $u (i32.and (local.get $r) (i32.const 0x7fffff)))
        (local.set $j (i32.shr_u (local.get $r) (i32.const 23)))
        (block $drawn (loop $draw
          (local.set $layer (i32.and (local.get $j) (i32.const 255)))
          ;; the sign bit of z (j's bit 8 moved to bit 63): sign * |z| without a branch on the sign
          (local.set $sign (i64.shl (i64.extend_i32_u (i32.and (local.get $j) (i32.const 256))) (i64.const 55)))
          (if (i32.eqz (local.get $layer))
            (then
              ;; the tail beyond R
              (loop $tail
                (local.set $r (i32.wrap_i64 (i64.shr_u (i64.add (local.get $s0) (local.get $s1)) (i64.const 32))))
                (local.set $s1 (i64.xor (local.get $s1) (local.get $s0)))
                (local.set $s0 (i64.xor (i64.xor (i64.rotl (local.get $s0) (i64.const 24)) (local.get $s1)) (i64.shl (local.get $s1) (i64.const 16))))
                (local.set $s1 (i64.rotl (local.get $s1) (i64.const 37)))
                (local.set $t
                  (f64.div
                    (f64.neg (call $log (f64.sub (f64.const 1) (f64.mul (f64.convert_i32_u (local.get $r)) (f64.const 0x1p-32)))))
                    (f64.const 3.6541528853610088)))
                (local.set $r (i32.wrap_i64 (i64.shr_u (i64.add (local.get $s0) (local.get $s1)) (i64.const 32))))
                (local.set $s1 (i64.xor (local.get $s1) (local.get $s0)))
                (local.set $s0 (i64.xor (i64.xor (i64.rotl (local.get $s0) (i64.const 24)) (local.get $s1)) (i64.shl (local.get $s1) (i64.const 16))))
                (local.set $s1 (i64.rotl (local.get $s1) (i64.const 37)))
                (local.set $y (f64.neg (call $log (f64.sub (f64.const 1) (f64.mul (f64.convert_i32_u (local.get $r)) (f64.const 0x1p-32))))))
                (br_if $tail (f64.lt (f64.add (local.get $y) (local.get $y)) (f64.mul (local.get $t) (local.get $t)))))
              (local.set $z (i64.xor (i64.reinterpret_f64 (f64.add (f64.const 3.6541528853610088) (local.get $t))) (local.get $sign)))
              (br $drawn)))
          ;; the wedge test of the layer, squeezed (only a draw between the bounds calls exp)
          (local.set $o (i32.add (local.get $base) (i32.shl (local.get $layer) (i32.const 3))))
          (local.set $x (f64.mul (f64.convert_i32_u (local.get $u)) (f64.load offset=65536 (local.get $o))))
          (local.set $xx (f64.mul (local.get $x) (local.get $x)))
          (local.set $r (i32.wrap_i64 (i64.shr_u (i64.add (local.get $s0) (local.get $s1)) (i64.const 32))))
          (local.set $s1 (i64.xor (local.get $s1) (local.get $s0)))
          (local.set $s0 (i64.xor (i64.xor (i64.rotl (local.get $s0) (i64.const 24)) (local.get $s1)) (i64.shl (local.get $s1) (i64.const 16))))
          (local.set $s1 (i64.rotl (local.get $s1) (i64.const 37)))
          (local.set $y
            (f64.add (f64.load offset=69632 (local.get $o))
              (f64.mul (f64.mul (f64.convert_i32_u (local.get $r)) (f64.const 0x1p-32))
                (f64.sub (f64.load offset=69624 (local.get $o)) (f64.load offset=69632 (local.get $o))))))
          (local.set $acc
            (f64.lt (local.get $y)
              (f64.add (f64.add (f64.load offset=71680 (local.get $o)) (f64.mul (f64.load offset=73728 (local.get $o)) (local.get $x)))
                (f64.mul (f64.load offset=79872 (local.get $o)) (local.get $xx)))))
          (if (i32.eqz (i32.or (local.get $acc)
                (f64.ge (local.get $y)
                  (f64.add (f64.add (f64.load offset=75776 (local.get $o)) (f64.mul (f64.load offset=77824 (local.get $o)) (local.get $x)))
                    (f64.mul (f64.load offset=81920 (local.get $o)) (local.get $xx))))))
            (then (local.set $acc (f64.lt (local.get $y) (call $exp (f64.mul (f64.mul (f64.const -0.5) (local.get $x)) (local.get $x)))))))
          ;; the accepted point, and (drawn ahead: a rejected point needs it, and ~half are) the
          ;; next word, kept only on rejection: selects instead of a branch that would miss half the time
          (local.set $z (i64.xor (i64.reinterpret_f64 (local.get $x)) (local.get $sign)))
          (local.set $a0 (local.get $s0))
          (local.set $a1 (local.get $s1))
          (local.set $r (i32.wrap_i64 (i64.shr_u (i64.add (local.get $s0) (local.get $s1)) (i64.const 32))))
          (local.set $s1 (i64.xor (local.get $s1) (local.get $s0)))
          (local.set $s0 (i64.xor (i64.xor (i64.rotl (local.get $s0) (i64.const 24)) (local.get $s1)) (i64.shl (local.get $s1) (i64.const 16))))
          (local.set $s1 (i64.rotl (local.get $s1) (i64.const 37)))
          (local.set $j (i32.shr_u (local.get $r) (i32.const 23)))
          (local.set $u (i32.and (local.get $r) (i32.const 0x7fffff)))
          (local.set $s0 (select (local.get $a0) (local.get $s0) (local.get $acc)))
          (local.set $s1 (select (local.get $a1) (local.get $s1) (local.get $acc)))
          (local.set $z
            (select (local.get $z)
              (i64.reinterpret_f64 (f64.mul (f64.convert_i32_u (local.get $u)) (f64.load offset=65536 (i32.add (local.get $base) (i32.shl (local.get $j) (i32.const 3))))))
              (local.get $acc)))
          ;; done unless rejected and the fresh word misses the fast path too
          (br_if $drawn (i32.or (local.get $acc) (i32.lt_s (local.get $u) (i32.load offset=256 (i32.add (local.get $base) (i32.shl (local.get $j) (i32.const 3)))))))
          (br $draw)))
        (i64.store (local.get $g) (local.get $s0))
        (i64.store offset=32 (local.get $g) (local.get $s1))
        ;; x = clamp(f32(x + f32(z * std))), the clamps as integer selects (no branch)
        (local.set $v
          (f32.demote_f64
            (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $ptr) (i32.shl (local.get $k) (i32.const 2)))))
              (f64.promote_f32 (f32.demote_f64 (f64.mul (f64.reinterpret_i64 (local.get $z)) (local.get $std)))))))
        (local.set $v (f32.reinterpret_i32 (select (i32.reinterpret_f32 (local.get $lo)) (i32.reinterpret_f32 (local.get $v)) (f32.lt (local.get $v) (local.get $lo)))))
        (f32.store (i32.add (local.get $ptr) (i32.shl (local.get $k) (i32.const 2)))
          (f32.reinterpret_i32 (select (i32.reinterpret_f32 (local.get $hi)) (i32.reinterpret_f32 (local.get $v)) (f32.lt (local.get $hi) (local.get $v)))))
        (br $lane)))
      (local.set $p (i32.add (local.get $p) (i32.const 48)))
      (br $entry)))
  )
)
