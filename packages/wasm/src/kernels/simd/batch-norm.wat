;; fitloop: BatchNormalization training passes in WebAssembly SIMD (f32x4, statistics in f64).
;;
;; Source of the generated `batch-norm.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`).
;; The module has no memory of its own: it imports tfjs-wasm's (`env.memory`), so it reads and writes
;; tensors where they are. `MEMORY` below is replaced by the build script: `(memory 1)` for the
;; single-threaded builds, `(memory 1 65536 shared)` for the threaded one (whose memory is shared).
;;
;; All pointers are byte offsets into that memory. x, dy, y, dx are [rows, c] float32, row-major;
;; per-channel vectors are float32 [c] unless said f64. c must be a multiple of 4 (the caller checks).
(module
  (import "env" "memory" MEMORY)

  ;; acc[0..1] += f64(v[0..1]); acc[2..3] += f64(v[2..3])   (acc: f64 [4] at byte offset p)
  (func $acc (param $p i32) (param $v v128)
    (v128.store (local.get $p)
      (f64x2.add (v128.load (local.get $p)) (f64x2.promote_low_f32x4 (local.get $v))))
    (v128.store offset=16 (local.get $p)
      (f64x2.add (v128.load offset=16 (local.get $p))
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))

  ;; Per-channel shifted sums of x (shift = x's first row): s[k] = sum(x - shift), q[k] = sum((x - shift)^2).
  ;; s, q: f64 [c], overwritten. Four rows per step are summed in f32, then added in f64.
  (func (export "stats") (param $x i32) (param $rows i32) (param $c i32) (param $s i32) (param $q i32)
    (call $statsShift (local.get $x) (local.get $x) (local.get $rows) (local.get $c) (local.get $s) (local.get $q)))

  ;; As `stats` with the shift row given (f32 [c] at $sh): kernel threads sum row ranges of one
  ;; tensor with the tensor's first row as the common shift, then add the partial sums.
  (func $statsShift (export "statsShift") (param $x i32) (param $sh i32) (param $rows i32) (param $c i32) (param $s i32) (param $q i32)
    (local $rb i32) (local $p i32) (local $end4 i32) (local $end i32) (local $k i32) (local $a i32)
    (local $h v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128)
    (local.set $rb (i32.shl (local.get $c) (i32.const 2)))
    (memory.fill (local.get $s) (i32.const 0) (i32.shl (local.get $c) (i32.const 3)))
    (memory.fill (local.get $q) (i32.const 0) (i32.shl (local.get $c) (i32.const 3)))
    (local.set $p (local.get $x))
    (local.set $end4 (i32.add (local.get $x) (i32.mul (i32.and (local.get $rows) (i32.const -4)) (local.get $rb))))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $rb))))
    (block $done4 (loop $rows4
      (br_if $done4 (i32.ge_u (local.get $p) (local.get $end4)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (local.set $h (v128.load (i32.add (local.get $sh) (local.get $k))))
        (local.set $a (i32.add (local.get $p) (local.get $k)))
        (local.set $d0 (f32x4.sub (v128.load (local.get $a)) (local.get $h)))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $d1 (f32x4.sub (v128.load (local.get $a)) (local.get $h)))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $d2 (f32x4.sub (v128.load (local.get $a)) (local.get $h)))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $d3 (f32x4.sub (v128.load (local.get $a)) (local.get $h)))
        (call $acc (i32.add (local.get $s) (i32.shl (local.get $k) (i32.const 1)))
          (f32x4.add (f32x4.add (local.get $d0) (local.get $d1)) (f32x4.add (local.get $d2) (local.get $d3))))
        (call $acc (i32.add (local.get $q) (i32.shl (local.get $k) (i32.const 1)))
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $d0) (local.get $d0)) (f32x4.mul (local.get $d1) (local.get $d1)))
            (f32x4.add (f32x4.mul (local.get $d2) (local.get $d2)) (f32x4.mul (local.get $d3) (local.get $d3)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rb) (i32.const 2))))
      (br $rows4)))
    (block $done (loop $rows1
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (local.set $d0 (f32x4.sub (v128.load (i32.add (local.get $p) (local.get $k))) (v128.load (i32.add (local.get $sh) (local.get $k)))))
        (call $acc (i32.add (local.get $s) (i32.shl (local.get $k) (i32.const 1))) (local.get $d0))
        (call $acc (i32.add (local.get $q) (i32.shl (local.get $k) (i32.const 1))) (f32x4.mul (local.get $d0) (local.get $d0)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $p (i32.add (local.get $p) (local.get $rb)))
      (br $rows1))))

  ;; Backward sums: sd[k] = sum(dy), sdx[k] = sum(dy * (x - m)); m: f32 [c]; sd, sdx: f64 [c], overwritten.
  (func (export "gradSums") (param $dy i32) (param $x i32) (param $rows i32) (param $c i32) (param $m i32) (param $sd i32) (param $sdx i32)
    (local $rb i32) (local $i i32) (local $end4 i32) (local $end i32) (local $k i32) (local $a i32) (local $b i32)
    (local $mk v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128) (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local.set $rb (i32.shl (local.get $c) (i32.const 2)))
    (memory.fill (local.get $sd) (i32.const 0) (i32.shl (local.get $c) (i32.const 3)))
    (memory.fill (local.get $sdx) (i32.const 0) (i32.shl (local.get $c) (i32.const 3)))
    ;; $i: byte offset of the row within both tensors
    (local.set $i (i32.const 0))
    (local.set $end4 (i32.mul (i32.and (local.get $rows) (i32.const -4)) (local.get $rb)))
    (local.set $end (i32.mul (local.get $rows) (local.get $rb)))
    (block $done4 (loop $rows4
      (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (local.set $mk (v128.load (i32.add (local.get $m) (local.get $k))))
        (local.set $a (i32.add (local.get $dy) (i32.add (local.get $i) (local.get $k))))
        (local.set $b (i32.add (local.get $x) (i32.add (local.get $i) (local.get $k))))
        (local.set $g0 (v128.load (local.get $a)))
        (local.set $d0 (f32x4.mul (local.get $g0) (f32x4.sub (v128.load (local.get $b)) (local.get $mk))))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $b (i32.add (local.get $b) (local.get $rb)))
        (local.set $g1 (v128.load (local.get $a)))
        (local.set $d1 (f32x4.mul (local.get $g1) (f32x4.sub (v128.load (local.get $b)) (local.get $mk))))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $b (i32.add (local.get $b) (local.get $rb)))
        (local.set $g2 (v128.load (local.get $a)))
        (local.set $d2 (f32x4.mul (local.get $g2) (f32x4.sub (v128.load (local.get $b)) (local.get $mk))))
        (local.set $a (i32.add (local.get $a) (local.get $rb)))
        (local.set $b (i32.add (local.get $b) (local.get $rb)))
        (local.set $g3 (v128.load (local.get $a)))
        (local.set $d3 (f32x4.mul (local.get $g3) (f32x4.sub (v128.load (local.get $b)) (local.get $mk))))
        (call $acc (i32.add (local.get $sd) (i32.shl (local.get $k) (i32.const 1)))
          (f32x4.add (f32x4.add (local.get $g0) (local.get $g1)) (f32x4.add (local.get $g2) (local.get $g3))))
        (call $acc (i32.add (local.get $sdx) (i32.shl (local.get $k) (i32.const 1)))
          (f32x4.add (f32x4.add (local.get $d0) (local.get $d1)) (f32x4.add (local.get $d2) (local.get $d3))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $i (i32.add (local.get $i) (i32.shl (local.get $rb) (i32.const 2))))
      (br $rows4)))
    (block $done (loop $rows1
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (local.set $g0 (v128.load (i32.add (local.get $dy) (i32.add (local.get $i) (local.get $k)))))
        (call $acc (i32.add (local.get $sd) (i32.shl (local.get $k) (i32.const 1))) (local.get $g0))
        (call $acc (i32.add (local.get $sdx) (i32.shl (local.get $k) (i32.const 1)))
          (f32x4.mul (local.get $g0)
            (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $i) (local.get $k))))
                       (v128.load (i32.add (local.get $m) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $i (i32.add (local.get $i) (local.get $rb)))
      (br $rows1))))

  ;; Forward normalisation: y = (x - m) * s + b, per channel (m, s, b: f32 [c]).
  (func (export "normalize") (param $x i32) (param $y i32) (param $rows i32) (param $c i32) (param $m i32) (param $s i32) (param $b i32)
    (local $rb i32) (local $i i32) (local $end i32) (local $k i32)
    (local.set $rb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.mul (local.get $rows) (local.get $rb)))
    (local.set $i (i32.const 0))
    (block $done (loop $rl
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $i) (local.get $k)))
          (f32x4.add
            (f32x4.mul
              (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $i) (local.get $k))))
                         (v128.load (i32.add (local.get $m) (local.get $k))))
              (v128.load (i32.add (local.get $s) (local.get $k))))
            (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $i (i32.add (local.get $i) (local.get $rb)))
      (br $rl))))

  ;; Backward dx = a * dy + bx * (x - m) + k0, per channel (a, m, bx, k0: f32 [c]).
  (func (export "gradX") (param $dy i32) (param $x i32) (param $dx i32) (param $rows i32) (param $c i32)
      (param $a i32) (param $m i32) (param $bx i32) (param $k0 i32)
    (local $rb i32) (local $i i32) (local $end i32) (local $k i32)
    (local.set $rb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.mul (local.get $rows) (local.get $rb)))
    (local.set $i (i32.const 0))
    (block $done (loop $rl
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $k (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $k) (local.get $rb)))
        (v128.store (i32.add (local.get $dx) (i32.add (local.get $i) (local.get $k)))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $k)))
                         (v128.load (i32.add (local.get $dy) (i32.add (local.get $i) (local.get $k)))))
              (f32x4.mul (v128.load (i32.add (local.get $bx) (local.get $k)))
                         (f32x4.sub (v128.load (i32.add (local.get $x) (i32.add (local.get $i) (local.get $k))))
                                    (v128.load (i32.add (local.get $m) (local.get $k))))))
            (v128.load (i32.add (local.get $k0) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $cl)))
      (local.set $i (i32.add (local.get $i) (local.get $rb)))
      (br $rl))))
)
