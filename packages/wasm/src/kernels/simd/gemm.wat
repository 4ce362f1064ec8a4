;; fitloop: float32 GEMMs in WebAssembly SIMD, C = A·B (M x N, K deep).
;;
;; Source of the generated `gemm.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the memory
;; import is filled in by the build script (tfjs-wasm's memory). Used by the wasm BatchMatMul and
;; _FusedMatMul below the thread gate's size (wasm-matmul-simd.ts, docs/journal.md round 5) and by the
;; convolutions' im2col/col2im paths, through wasm-gemm-split.ts: XNNPACK packs the right-hand operand
;; on every call, which for a training step (new weights each step) costs more than the multiply.
;;
;; Two kernels, the same result bit for bit:
;; - `gemmPacked` (round 9, the default): B (any strides, so a transposed B needs no copy) packed once
;;   per call and K block into 8-column panels, 5x8 register tiles; see its comment below.
;; - `gemm` / `gemmKc` (round 5, kept for small M, as the reference and for benches): no packing.
;;   A is read through strides, A(m, k) at pa + m*ars + k*aks (bytes), so A or its transpose needs
;;   no copy; B is row-major, B(k, n) at pb + k*ldb + 4n (a transposed B is copied first, `transpose`);
;;   C row-major, C(m, n) at pc + m*ldc + 4n. Microkernel: 4 rows x 8 columns, eight f32x4
;;   accumulators, per k one splat of each A element times two B vectors. Edges: 4-column and
;;   single-column tiles for N % 8, 1-row tiles for M % 4; any K >= 0 (K = 0 writes zeros).
;; Both use plain f32x4.mul + f32x4.add (no relaxed-SIMD FMA: runs without flags, and each product
;; is rounded as on the cpu backend), and each element is a sum over k in increasing order, from 0.
(module
  (import "env" "memory" MEMORY)

  ;; C[4 x 8] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t4x8 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $c0_0 v128) (local $c0_1 v128) (local $c1_0 v128) (local $c1_1 v128) (local $c2_0 v128) (local $c2_1 v128) (local $c3_0 v128) (local $c3_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c1_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c2_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c3_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))))
    (local.set $a0 (local.get $a))
    (local.set $a1 (i32.add (local.get $a0) (local.get $ars)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $ars)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $ars)))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (v128.load offset=0 (local.get $b)))
      (local.set $b1 (v128.load offset=16 (local.get $b)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a1)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c1_1 (f32x4.add (local.get $c1_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a2)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c2_1 (f32x4.add (local.get $c2_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a3)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c3_1 (f32x4.add (local.get $c3_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (v128.store offset=16 (local.get $c) (local.get $c1_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (v128.store offset=16 (local.get $c) (local.get $c2_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
    (v128.store offset=16 (local.get $c) (local.get $c3_1))
  )

  ;; C[4 x 4] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t4x4 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $c0_0 v128) (local $c1_0 v128) (local $c2_0 v128) (local $c3_0 v128) (local $b0 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))))
    (local.set $a0 (local.get $a))
    (local.set $a1 (i32.add (local.get $a0) (local.get $ars)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $ars)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $ars)))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (v128.load offset=0 (local.get $b)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a1)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a2)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a3)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
  )

  ;; C[4 x 1] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t4x1 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $c0_0 f32) (local $c1_0 f32) (local $c2_0 f32) (local $c3_0 f32) (local $b0 f32)
    (if (local.get $acc) (then
      (local.set $c0_0 (f32.load (local.get $c)))
      (local.set $c1_0 (f32.load (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (f32.load (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (f32.load (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))))
    (local.set $a0 (local.get $a))
    (local.set $a1 (i32.add (local.get $a0) (local.get $ars)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $ars)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $ars)))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (f32.load (local.get $b)))
      (local.set $c0_0 (f32.add (local.get $c0_0) (f32.mul (f32.load (local.get $a0)) (local.get $b0))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $c1_0 (f32.add (local.get $c1_0) (f32.mul (f32.load (local.get $a1)) (local.get $b0))))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aks)))
      (local.set $c2_0 (f32.add (local.get $c2_0) (f32.mul (f32.load (local.get $a2)) (local.get $b0))))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aks)))
      (local.set $c3_0 (f32.add (local.get $c3_0) (f32.mul (f32.load (local.get $a3)) (local.get $b0))))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (f32.store (local.get $c) (local.get $c0_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (f32.store (local.get $c) (local.get $c1_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (f32.store (local.get $c) (local.get $c2_0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (f32.store (local.get $c) (local.get $c3_0))
  )

  ;; C[1 x 8] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t1x8 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $c0_0 v128) (local $c0_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))))
    (local.set $a0 (local.get $a))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (v128.load offset=0 (local.get $b)))
      (local.set $b1 (v128.load offset=16 (local.get $b)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
  )

  ;; C[1 x 4] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t1x4 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $c0_0 v128) (local $b0 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))))
    (local.set $a0 (local.get $a))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (v128.load offset=0 (local.get $b)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
  )

  ;; C[1 x 1] at c (row stride ldc) = sum over k < K of A(r, k) * B(k, j), A(r, k) at a + r*ars + k*aks, B(k, j) at b + k*ldb + 4j.
  (func $t1x1 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $c0_0 f32) (local $b0 f32)
    (if (local.get $acc) (then
      (local.set $c0_0 (f32.load (local.get $c)))))
    (local.set $a0 (local.get $a))
    (block $done (loop $k
      (br_if $done (i32.eqz (local.get $K)))
      (local.set $b0 (f32.load (local.get $b)))
      (local.set $c0_0 (f32.add (local.get $c0_0) (f32.mul (f32.load (local.get $a0)) (local.get $b0))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $b (i32.add (local.get $b) (local.get $ldb)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br $k)))
    (f32.store (local.get $c) (local.get $c0_0))
  )

  ;; rows [i, i + 4) of C: 8-column tiles, then one 4-column tile, then single columns.
  (func $rows4 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $N i32) (param $K i32) (param $acc i32)
    (local $j i32)
    (block $d8 (loop $l8
      (br_if $d8 (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
      (call $t4x8 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $l8)))
    (if (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $N)) (then
      (call $t4x4 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $j) (local.get $N)))
      (call $t4x1 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $l1)))
  )

  ;; rows [i, i + 1) of C: 8-column tiles, then one 4-column tile, then single columns.
  (func $rows1 (param $a i32) (param $ars i32) (param $aks i32) (param $b i32) (param $ldb i32) (param $c i32) (param $ldc i32) (param $N i32) (param $K i32) (param $acc i32)
    (local $j i32)
    (block $d8 (loop $l8
      (br_if $d8 (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
      (call $t1x8 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $l8)))
    (if (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $N)) (then
      (call $t1x4 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $j) (local.get $N)))
      (call $t1x1 (local.get $a) (local.get $ars) (local.get $aks) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldb) (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $ldc) (local.get $K) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $l1)))
  )

  ;; C = A·B in K blocks of kc: each block's rows of B (kc x N) stay in cache while every row tile of
  ;; C passes over them; blocks after the first continue from the partial sums in C (the tiles load
  ;; them into their accumulators), so each element is still one sum in increasing k, as unblocked.
  (func $gemmKc (export "gemmKc") (param $pa i32) (param $ars i32) (param $aks i32) (param $pb i32) (param $ldb i32) (param $pc i32) (param $ldc i32) (param $M i32) (param $N i32) (param $K i32) (param $kc i32)
    (local $i i32) (local $k0 i32) (local $kb i32) (local $a i32) (local $b i32)
    (if (i32.eqz (local.get $kc)) (then (local.set $kc (local.get $K))))
    (loop $blocks
      (local.set $kb (i32.sub (local.get $K) (local.get $k0)))
      (if (i32.gt_u (local.get $kb) (local.get $kc)) (then (local.set $kb (local.get $kc))))
      (local.set $a (i32.add (local.get $pa) (i32.mul (local.get $k0) (local.get $aks))))
      (local.set $b (i32.add (local.get $pb) (i32.mul (local.get $k0) (local.get $ldb))))
      (local.set $i (i32.const 0))
      (block $d4 (loop $l4
        (br_if $d4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $M)))
        (call $rows4 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $ars))) (local.get $ars) (local.get $aks) (local.get $b) (local.get $ldb)
          (i32.add (local.get $pc) (i32.mul (local.get $i) (local.get $ldc))) (local.get $ldc) (local.get $N) (local.get $kb) (local.get $k0))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l4)))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $i) (local.get $M)))
        (call $rows1 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $ars))) (local.get $ars) (local.get $aks) (local.get $b) (local.get $ldb)
          (i32.add (local.get $pc) (i32.mul (local.get $i) (local.get $ldc))) (local.get $ldc) (local.get $N) (local.get $kb) (local.get $k0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l1)))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kb)))
      (br_if $blocks (i32.lt_u (local.get $k0) (local.get $K))))
  )

  ;; gemmKc with the default block: unblocked while B (K x N floats) is at most 128 KiB, else
  ;; blocks of 64 KiB of B (at least 16 rows).
  (func (export "gemm") (param $pa i32) (param $ars i32) (param $aks i32) (param $pb i32) (param $ldb i32) (param $pc i32) (param $ldc i32) (param $M i32) (param $N i32) (param $K i32)
    (local $kc i32)
    (local.set $kc (local.get $K))
    (if (i32.gt_u (i32.mul (local.get $K) (local.get $N)) (i32.const 32768)) (then
      (local.set $kc (i32.div_u (i32.const 16384) (local.get $N)))
      (if (i32.lt_u (local.get $kc) (i32.const 16)) (then (local.set $kc (i32.const 16))))))
    (call $gemmKc (local.get $pa) (local.get $ars) (local.get $aks) (local.get $pb) (local.get $ldb) (local.get $pc) (local.get $ldc) (local.get $M) (local.get $N) (local.get $K) (local.get $kc))
  )

  ;; ---- The packed GEMM (gemmPacked): B copied once per call into 8-column panels, 5x8 tiles ----
  ;; Ten f32x4 accumulators + two B vectors + one splat + one product = 14 of the 15 XMM registers
  ;; V8 allocates on x64 (xmm15 is its scratch): a 6x8 tile (16) spills in V8's code, and so does
  ;; unrolling k (TurboFan hoists the next step's loads); measured in docs/journal.md, round 9.

  ;; C[5 x 8] at c (row stride ldc) = (acc ? C : 0) + sum over k < K of A(r, k) * P(k, j): A(r, k) at a + r'*ars + k*aks with
  ;; r' = min(r, rows - 1) (rows past the edge repeat the last one; the caller discards them), P the packed panel (8 floats per k).
  ;; (Each row pointer is an i32.add, not a select: V8 then knows it is zero-extended and uses it in
  ;; the address as it is; after a select it adds a movl per load, ~10 % slower.)
  (func $p5x8 (param $a i32) (param $ars i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32) (param $rows i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $a4 i32) (local $c0_0 v128) (local $c0_1 v128) (local $c1_0 v128) (local $c1_1 v128) (local $c2_0 v128) (local $c2_1 v128) (local $c3_0 v128) (local $c3_1 v128) (local $c4_0 v128) (local $c4_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c1_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c2_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c3_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c4_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))
      (local.set $c4_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))))
    (local.set $a0 (local.get $a))
    (local.set $a1 (i32.add (local.get $a0) (select (local.get $ars) (i32.const 0) (i32.lt_u (i32.const 1) (local.get $rows)))))
    (local.set $a2 (i32.add (local.get $a1) (select (local.get $ars) (i32.const 0) (i32.lt_u (i32.const 2) (local.get $rows)))))
    (local.set $a3 (i32.add (local.get $a2) (select (local.get $ars) (i32.const 0) (i32.lt_u (i32.const 3) (local.get $rows)))))
    (local.set $a4 (i32.add (local.get $a3) (select (local.get $ars) (i32.const 0) (i32.lt_u (i32.const 4) (local.get $rows)))))
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a1)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c1_1 (f32x4.add (local.get $c1_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a2)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c2_1 (f32x4.add (local.get $c2_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a3)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c3_1 (f32x4.add (local.get $c3_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a4)))
      (local.set $c4_0 (f32x4.add (local.get $c4_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c4_1 (f32x4.add (local.get $c4_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a4 (i32.add (local.get $a4) (local.get $aks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (v128.store offset=16 (local.get $c) (local.get $c1_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (v128.store offset=16 (local.get $c) (local.get $c2_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
    (v128.store offset=16 (local.get $c) (local.get $c3_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c4_0))
    (v128.store offset=16 (local.get $c) (local.get $c4_1))
  )

  ;; $p5x8 for ars = 4 (the 5 rows of A adjacent: a transposed A, im2col patches): one pointer, the rows at offsets 0..16.
  (func $p5x8c (param $a i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $c0_0 v128) (local $c0_1 v128) (local $c1_0 v128) (local $c1_1 v128) (local $c2_0 v128) (local $c2_1 v128) (local $c3_0 v128) (local $c3_1 v128) (local $c4_0 v128) (local $c4_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c1_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c2_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c3_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c4_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))
      (local.set $c4_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))))
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $s (v128.load32_splat offset=0 (local.get $a)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=4 (local.get $a)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c1_1 (f32x4.add (local.get $c1_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=8 (local.get $a)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c2_1 (f32x4.add (local.get $c2_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=12 (local.get $a)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c3_1 (f32x4.add (local.get $c3_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=16 (local.get $a)))
      (local.set $c4_0 (f32x4.add (local.get $c4_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c4_1 (f32x4.add (local.get $c4_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a (i32.add (local.get $a) (local.get $aks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (v128.store offset=16 (local.get $c) (local.get $c1_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (v128.store offset=16 (local.get $c) (local.get $c2_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
    (v128.store offset=16 (local.get $c) (local.get $c3_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c4_0))
    (v128.store offset=16 (local.get $c) (local.get $c4_1))
  )


  ;; $p5x8 with 4 rows, all inside A (no clamp): tiles at the end of M, so that M = 5a + 4b needs no partial tile.
  (func $p4x8 (param $a i32) (param $ars i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $c0_0 v128) (local $c0_1 v128) (local $c1_0 v128) (local $c1_1 v128) (local $c2_0 v128) (local $c2_1 v128) (local $c3_0 v128) (local $c3_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c1_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c2_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c3_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))))
    (local.set $a0 (local.get $a))
    (local.set $a1 (i32.add (local.get $a0) (local.get $ars)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $ars)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $ars)))
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $s (v128.load32_splat (local.get $a0)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a1)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c1_1 (f32x4.add (local.get $c1_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a1 (i32.add (local.get $a1) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a2)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c2_1 (f32x4.add (local.get $c2_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a2 (i32.add (local.get $a2) (local.get $aks)))
      (local.set $s (v128.load32_splat (local.get $a3)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c3_1 (f32x4.add (local.get $c3_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a3 (i32.add (local.get $a3) (local.get $aks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (v128.store offset=16 (local.get $c) (local.get $c1_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (v128.store offset=16 (local.get $c) (local.get $c2_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
    (v128.store offset=16 (local.get $c) (local.get $c3_1))
  )

  ;; $p4x8 for ars = 4.
  (func $p4x8c (param $a i32) (param $aks i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $K i32) (param $acc i32)
    (local $c0_0 v128) (local $c0_1 v128) (local $c1_0 v128) (local $c1_1 v128) (local $c2_0 v128) (local $c2_1 v128) (local $c3_0 v128) (local $c3_1 v128) (local $b0 v128) (local $b1 v128) (local $s v128)
    (if (local.get $acc) (then
      (local.set $c0_0 (v128.load offset=0 (local.get $c)))
      (local.set $c0_1 (v128.load offset=16 (local.get $c)))
      (local.set $c1_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c1_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c2_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c2_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c3_0 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c3_1 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))))
    (if (local.get $K) (then (loop $k
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $s (v128.load32_splat offset=0 (local.get $a)))
      (local.set $c0_0 (f32x4.add (local.get $c0_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c0_1 (f32x4.add (local.get $c0_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=4 (local.get $a)))
      (local.set $c1_0 (f32x4.add (local.get $c1_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c1_1 (f32x4.add (local.get $c1_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=8 (local.get $a)))
      (local.set $c2_0 (f32x4.add (local.get $c2_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c2_1 (f32x4.add (local.get $c2_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $s (v128.load32_splat offset=12 (local.get $a)))
      (local.set $c3_0 (f32x4.add (local.get $c3_0) (f32x4.mul (local.get $s) (local.get $b0))))
      (local.set $c3_1 (f32x4.add (local.get $c3_1) (f32x4.mul (local.get $s) (local.get $b1))))
      (local.set $a (i32.add (local.get $a) (local.get $aks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $K (i32.sub (local.get $K) (i32.const 1)))
      (br_if $k (local.get $K)))))
    (v128.store offset=0 (local.get $c) (local.get $c0_0))
    (v128.store offset=16 (local.get $c) (local.get $c0_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c1_0))
    (v128.store offset=16 (local.get $c) (local.get $c1_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c2_0))
    (v128.store offset=16 (local.get $c) (local.get $c2_1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store offset=0 (local.get $c) (local.get $c3_0))
    (v128.store offset=16 (local.get $c) (local.get $c3_1))
  )


  ;; The packed GEMM's B panels: P = B(k, j) for k < kb, j < N in ceil(N/8) panels of kb x 8 floats
  ;; (panel p at dst + p*kb*32, its row k at + k*32), columns past N zero. B(k, j) at pb + k*bks + j*bns:
  ;; row-major B (bns = 4: two vector copies per row), a transposed B (bks = 4: 4x4 transposes of
  ;; vectors along k), or any strides (one float at a time).
  (func $packB (param $pb i32) (param $bks i32) (param $bns i32) (param $kb i32) (param $N i32) (param $dst i32)
    (local $j i32) (local $cols i32) (local $src i32) (local $k i32) (local $c i32) (local $d i32) (local $s i32) (local $h i32)
    (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $d (local.get $dst))
    (local.set $o1 (local.get $bns))
    (local.set $o2 (i32.shl (local.get $bns) (i32.const 1)))
    (local.set $o3 (i32.mul (local.get $bns) (i32.const 3)))
    (block $pd (loop $pl
      (br_if $pd (i32.ge_u (local.get $j) (local.get $N)))
      (local.set $cols (i32.sub (local.get $N) (local.get $j)))
      (if (i32.gt_u (local.get $cols) (i32.const 8)) (then (local.set $cols (i32.const 8))))
      (local.set $src (i32.add (local.get $pb) (i32.mul (local.get $j) (local.get $bns))))
      (local.set $k (local.get $kb))
      (if (i32.and (i32.eq (local.get $cols) (i32.const 8)) (i32.eq (local.get $bns) (i32.const 4)))
        (then
          (if (local.get $k) (then (loop $kl
            (v128.store offset=0 (local.get $d) (v128.load offset=0 (local.get $src)))
            (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $src)))
            (local.set $src (i32.add (local.get $src) (local.get $bks)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br_if $kl (local.get $k))))))
        (else
          (if (i32.and (i32.eq (local.get $cols) (i32.const 8)) (i32.eq (local.get $bks) (i32.const 4)))
            (then
              ;; 4 rows of P at a time: per half h, columns 4h..4h+3 are 4 vectors along k, transposed
              (block $td (loop $tl
                (br_if $td (i32.lt_u (local.get $k) (i32.const 4)))
                (local.set $h (i32.const 0))
                (loop $hl
                  (local.set $s (i32.add (local.get $src) (i32.shl (i32.mul (local.get $h) (local.get $bns)) (i32.const 2))))
                  (local.set $r0 (v128.load (local.get $s)))
                  (local.set $r1 (v128.load (i32.add (local.get $s) (local.get $o1))))
                  (local.set $r2 (v128.load (i32.add (local.get $s) (local.get $o2))))
                  (local.set $r3 (v128.load (i32.add (local.get $s) (local.get $o3))))
                  (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
                  (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
                  (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
                  (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
                  (local.set $s (i32.add (local.get $d) (i32.shl (local.get $h) (i32.const 4))))
                  (v128.store offset=0 (local.get $s) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
                  (v128.store offset=32 (local.get $s) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
                  (v128.store offset=64 (local.get $s) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
                  (v128.store offset=96 (local.get $s) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
                  (local.set $h (i32.add (local.get $h) (i32.const 1)))
                  (br_if $hl (i32.lt_u (local.get $h) (i32.const 2))))
                (local.set $src (i32.add (local.get $src) (i32.const 16)))
                (local.set $d (i32.add (local.get $d) (i32.const 128)))
                (local.set $k (i32.sub (local.get $k) (i32.const 4)))
                (br $tl)))))
          ;; the rest, one float at a time (any strides; columns >= cols are zero)
          (block $sd (loop $sl
            (br_if $sd (i32.eqz (local.get $k)))
            (local.set $c (i32.const 0))
            (loop $cl
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $c) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $c) (local.get $cols))
                  (then (f32.load (i32.add (local.get $src) (i32.mul (local.get $c) (local.get $bns)))))
                  (else (f32.const 0))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br_if $cl (i32.lt_u (local.get $c) (i32.const 8))))
            (local.set $src (i32.add (local.get $src) (local.get $bks)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br $sl)))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $pl)))
  )

  ;; In place on C (M x N, row-major, contiguous): C(m, n) += bias(n) when bias != 0, then
  ;; max(C, 0) when relu != 0 (NaN stays NaN).
  (func $biasAct (export "biasAct") (param $pc i32) (param $M i32) (param $N i32) (param $bias i32) (param $relu i32)
    (local $i i32) (local $j i32) (local $end4 i32) (local $end i32) (local $v v128) (local $f f32)
    (local.set $end4 (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $dr (loop $lr
      (br_if $dr (i32.ge_u (local.get $i) (local.get $M)))
      (local.set $j (i32.const 0))
      (block $d4 (loop $l4
        (br_if $d4 (i32.ge_u (local.get $j) (local.get $end4)))
        (local.set $v (v128.load (i32.add (local.get $pc) (local.get $j))))
        (if (local.get $bias) (then (local.set $v (f32x4.add (local.get $v) (v128.load (i32.add (local.get $bias) (local.get $j)))))))
        (if (local.get $relu) (then (local.set $v (v128.bitselect (v128.const i32x4 0 0 0 0) (local.get $v) (f32x4.lt (local.get $v) (v128.const i32x4 0 0 0 0))))))
        (v128.store (i32.add (local.get $pc) (local.get $j)) (local.get $v))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l4)))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $f (f32.load (i32.add (local.get $pc) (local.get $j))))
        (if (local.get $bias) (then (local.set $f (f32.add (local.get $f) (f32.load (i32.add (local.get $bias) (local.get $j)))))))
        (if (local.get $relu) (then (local.set $f (select (f32.const 0) (local.get $f) (f32.lt (local.get $f) (f32.const 0))))))
        (f32.store (i32.add (local.get $pc) (local.get $j)) (local.get $f))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l1)))
      (local.set $pc (i32.add (local.get $pc) (local.get $end)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $lr)))
  )

  ;; im2col in NHWC order (Conv2DBackpropFilter with many input channels): for each of `images`
  ;; images of inH x inW x ci floats at x (contiguous) and each output pixel (oh, ow), dst gets one
  ;; row of fh*fw*ci floats: for each tap (kh, kw), x[ih, iw, 0..ci) with ih = oh*sh + kh*dh - top,
  ;; iw = ow*sw + kw*dw - left, zeros outside the image. With dw = 1 a filter row inside the image is
  ;; one copy of fw*ci floats. Byte pointers, sizes in floats; dst advances by images*outH*outW rows.
  (func $im2colNhwc (export "im2colNhwc") (param $x i32) (param $dst i32) (param $images i32) (param $inH i32) (param $inW i32) (param $ci i32)
    (param $outH i32) (param $outW i32) (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dw i32)
    (param $top i32) (param $left i32)
    (local $b i32) (local $img i32) (local $oh i32) (local $ow i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw i32)
    (local $iw0 i32) (local $cb i32) (local $rowBytes i32) (local $imgBytes i32)
    (local.set $cb (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $fw) (local.get $cb)))
    (local.set $imgBytes (i32.mul (i32.mul (local.get $inH) (local.get $inW)) (local.get $cb)))
    (local.set $img (local.get $x))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_u (local.get $b) (local.get $images)))
      (local.set $oh (i32.const 0))
      (block $od (loop $ol
        (br_if $od (i32.ge_u (local.get $oh) (local.get $outH)))
        (local.set $ow (i32.const 0))
        (block $wd (loop $wl
          (br_if $wd (i32.ge_u (local.get $ow) (local.get $outW)))
          (local.set $iw0 (i32.sub (i32.mul (local.get $ow) (local.get $sw)) (local.get $left)))
          (local.set $kh (i32.const 0))
          (block $hd (loop $hl
            (br_if $hd (i32.ge_u (local.get $kh) (local.get $fh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sh)) (i32.mul (local.get $kh) (local.get $dh))) (local.get $top)))
            (if (i32.or (i32.lt_s (local.get $ih) (i32.const 0)) (i32.ge_s (local.get $ih) (local.get $inH)))
              (then (memory.fill (local.get $dst) (i32.const 0) (local.get $rowBytes)))
              (else
                (if (i32.and (i32.eq (local.get $dw) (i32.const 1))
                      (i32.and (i32.ge_s (local.get $iw0) (i32.const 0)) (i32.le_s (i32.add (local.get $iw0) (local.get $fw)) (local.get $inW))))
                  (then (memory.copy (local.get $dst)
                    (i32.add (local.get $img) (i32.mul (i32.add (i32.mul (local.get $ih) (local.get $inW)) (local.get $iw0)) (local.get $cb)))
                    (local.get $rowBytes)))
                  (else
                    (local.set $kw (i32.const 0))
                    (block $kd (loop $kl
                      (br_if $kd (i32.ge_u (local.get $kw) (local.get $fw)))
                      (local.set $iw (i32.add (local.get $iw0) (i32.mul (local.get $kw) (local.get $dw))))
                      (if (i32.or (i32.lt_s (local.get $iw) (i32.const 0)) (i32.ge_s (local.get $iw) (local.get $inW)))
                        (then (memory.fill (i32.add (local.get $dst) (i32.mul (local.get $kw) (local.get $cb))) (i32.const 0) (local.get $cb)))
                        (else (memory.copy (i32.add (local.get $dst) (i32.mul (local.get $kw) (local.get $cb)))
                          (i32.add (local.get $img) (i32.mul (i32.add (i32.mul (local.get $ih) (local.get $inW)) (local.get $iw)) (local.get $cb)))
                          (local.get $cb))))
                      (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                      (br $kl)))))))
            (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
            (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
            (br $hl)))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wl)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $ol)))
      (local.set $img (i32.add (local.get $img) (local.get $imgBytes)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl)))
  )

  ;; A forward convolution (NHWC, float32) image by image, so that each image's patches stay in cache:
  ;; for each of `images` images at x (inH x inW x ci floats each), its im2col patches ($im2colNhwc:
  ;; outH*outW rows of fh*fw*ci floats) into scratch, then C = patches · W ($gemmPacked, W [fh*fw*ci, co]
  ;; row-major at w, packed per image into scratch after the patches) into out (outH*outW x co floats
  ;; per image), then bias and relu on that image's rows ($biasAct; bias 0: none) while they are in
  ;; cache. Each output element is the same chain over k as one gemmPacked call over all images.
  ;; scratch: 4*outH*outW*fh*fw*ci bytes of patches (a multiple of 16), then gemmPacked's scratch.
  (func (export "convImages") (param $x i32) (param $out i32) (param $images i32) (param $inH i32) (param $inW i32) (param $ci i32)
    (param $outH i32) (param $outW i32) (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dw i32)
    (param $top i32) (param $left i32) (param $w i32) (param $co i32) (param $bias i32) (param $relu i32) (param $scratch i32)
    (local $rows i32) (local $taps i32) (local $xImg i32) (local $outImg i32) (local $gemmScratch i32)
    (local.set $rows (i32.mul (local.get $outH) (local.get $outW)))
    (local.set $taps (i32.mul (i32.mul (local.get $fh) (local.get $fw)) (local.get $ci)))
    (local.set $xImg (i32.shl (i32.mul (i32.mul (local.get $inH) (local.get $inW)) (local.get $ci)) (i32.const 2)))
    (local.set $outImg (i32.shl (i32.mul (local.get $rows) (local.get $co)) (i32.const 2)))
    (local.set $gemmScratch (i32.add (local.get $scratch) (i32.and (i32.add (i32.shl (i32.mul (local.get $rows) (local.get $taps)) (i32.const 2)) (i32.const 15)) (i32.const -16))))
    (block $done (loop $img
      (br_if $done (i32.eqz (local.get $images)))
      (call $im2colNhwc (local.get $x) (local.get $scratch) (i32.const 1) (local.get $inH) (local.get $inW) (local.get $ci) (local.get $outH) (local.get $outW)
        (local.get $fh) (local.get $fw) (local.get $sh) (local.get $sw) (local.get $dh) (local.get $dw) (local.get $top) (local.get $left))
      (call $gemmPacked (local.get $scratch) (i32.shl (local.get $taps) (i32.const 2)) (i32.const 4) (local.get $w) (i32.shl (local.get $co) (i32.const 2)) (i32.const 4)
        (local.get $out) (i32.shl (local.get $co) (i32.const 2)) (local.get $rows) (local.get $co) (local.get $taps) (i32.const 0) (local.get $gemmScratch))
      (if (i32.or (local.get $bias) (local.get $relu)) (then (call $biasAct (local.get $out) (local.get $rows) (local.get $co) (local.get $bias) (local.get $relu))))
      (local.set $x (i32.add (local.get $x) (local.get $xImg)))
      (local.set $out (i32.add (local.get $out) (local.get $outImg)))
      (local.set $images (i32.sub (local.get $images) (i32.const 1)))
      (br $img)))
  )

  ;; col2im as a gather (NHWC, float32), for Conv2DBackpropInput. The caller computed
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
  (func $col2im (export "col2im")
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

  ;; The input gradient of a convolution (NHWC, float32) image by image, so that each image's cols stay
  ;; in cache: for each of `images` images, cols = dy_image · Wᵀ ($gemmPacked: dy_image [outH*outW, co]
  ;; at dy, W [fh*fw*ci, co] row-major at w read as a transposed B, packed per image) into scratch,
  ;; then its gather into dx ($col2im, one image). Each dx element is summed as in one col2im call.
  ;; scratch: 4*outH*outW*fh*fw*ci bytes of cols (a multiple of 16), gemmPacked's scratch, then
  ;; $col2im's address lists (4*(fh + fw + fh*fw) bytes); the caller sizes it (wasm-conv2d-backprop-input.ts).
  (func (export "col2imImages") (param $dy i32) (param $dx i32) (param $images i32) (param $inH i32) (param $inW i32) (param $ci i32)
    (param $outH i32) (param $outW i32) (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (param $w i32) (param $co i32) (param $gemmBytes i32) (param $scratch i32)
    (local $rows i32) (local $taps i32) (local $dyImg i32) (local $dxImg i32) (local $gemmScratch i32) (local $lists i32)
    (local.set $rows (i32.mul (local.get $outH) (local.get $outW)))
    (local.set $taps (i32.mul (i32.mul (local.get $fh) (local.get $fw)) (local.get $ci)))
    (local.set $dyImg (i32.shl (i32.mul (local.get $rows) (local.get $co)) (i32.const 2)))
    (local.set $dxImg (i32.shl (i32.mul (i32.mul (local.get $inH) (local.get $inW)) (local.get $ci)) (i32.const 2)))
    (local.set $gemmScratch (i32.add (local.get $scratch) (i32.and (i32.add (i32.shl (i32.mul (local.get $rows) (local.get $taps)) (i32.const 2)) (i32.const 15)) (i32.const -16))))
    (local.set $lists (i32.add (local.get $gemmScratch) (local.get $gemmBytes)))
    (block $done (loop $img
      (br_if $done (i32.eqz (local.get $images)))
      (call $gemmPacked (local.get $dy) (i32.shl (local.get $co) (i32.const 2)) (i32.const 4) (local.get $w) (i32.const 4) (i32.shl (local.get $co) (i32.const 2))
        (local.get $scratch) (i32.shl (local.get $taps) (i32.const 2)) (local.get $rows) (local.get $taps) (local.get $co) (i32.const 0) (local.get $gemmScratch))
      (call $col2im (local.get $scratch) (local.get $dx) (i32.const 1) (local.get $inH) (local.get $inW) (local.get $ci) (local.get $outH) (local.get $outW)
        (local.get $fh) (local.get $fw) (local.get $sh) (local.get $sw) (local.get $top) (local.get $left) (local.get $lists))
      (local.set $dy (i32.add (local.get $dy) (local.get $dyImg)))
      (local.set $dx (i32.add (local.get $dx) (local.get $dxImg)))
      (local.set $images (i32.sub (local.get $images) (i32.const 1)))
      (br $img)))
  )

  ;; C = A·B: $gemmPackedAcc below without accumulation (the export every caller of the packed GEMM uses).
  (func $gemmPacked (export "gemmPacked") (param $pa i32) (param $ars i32) (param $aks i32) (param $pb i32) (param $bks i32) (param $bns i32)
    (param $pc i32) (param $ldc i32) (param $M i32) (param $N i32) (param $K i32) (param $kc i32) (param $scratch i32)
    (call $gemmPackedAcc (local.get $pa) (local.get $ars) (local.get $aks) (local.get $pb) (local.get $bks) (local.get $bns)
      (local.get $pc) (local.get $ldc) (local.get $M) (local.get $N) (local.get $K) (local.get $kc) (local.get $scratch) (i32.const 0))
  )

  ;; The filter gradient of a convolution (NHWC, float32) image by image, so that each image's patches
  ;; stay in cache: dw [fh*fw*ci, co] (+)= sum over the `images` images at x of patches_imageᵀ · dy_image,
  ;; each image's patches ($im2colNhwc, outH*outW rows of fh*fw*ci floats) into scratch, then
  ;; $gemmPackedAcc (A = the patches read transposed, B = dy_image [outH*outW, co] row-major, packed
  ;; per image), the first image writing dw unless accIn. scratch: 4*outH*outW*fh*fw*ci bytes (a multiple
  ;; of 16), then gemmPacked's scratch for N = co and kc = outH*outW.
  (func (export "filterGradImages") (param $x i32) (param $dy i32) (param $dw i32) (param $images i32) (param $inH i32) (param $inW i32) (param $ci i32)
    (param $outH i32) (param $outW i32) (param $fh i32) (param $fw i32) (param $sh i32) (param $sw i32) (param $dh i32) (param $dwid i32)
    (param $top i32) (param $left i32) (param $co i32) (param $accIn i32) (param $scratch i32)
    (local $rows i32) (local $taps i32) (local $xImg i32) (local $dyImg i32) (local $gemmScratch i32)
    (local.set $rows (i32.mul (local.get $outH) (local.get $outW)))
    (local.set $taps (i32.mul (i32.mul (local.get $fh) (local.get $fw)) (local.get $ci)))
    (local.set $xImg (i32.shl (i32.mul (i32.mul (local.get $inH) (local.get $inW)) (local.get $ci)) (i32.const 2)))
    (local.set $dyImg (i32.shl (i32.mul (local.get $rows) (local.get $co)) (i32.const 2)))
    (local.set $gemmScratch (i32.add (local.get $scratch) (i32.and (i32.add (i32.shl (i32.mul (local.get $rows) (local.get $taps)) (i32.const 2)) (i32.const 15)) (i32.const -16))))
    (block $done (loop $img
      (br_if $done (i32.eqz (local.get $images)))
      (call $im2colNhwc (local.get $x) (local.get $scratch) (i32.const 1) (local.get $inH) (local.get $inW) (local.get $ci) (local.get $outH) (local.get $outW)
        (local.get $fh) (local.get $fw) (local.get $sh) (local.get $sw) (local.get $dh) (local.get $dwid) (local.get $top) (local.get $left))
      (call $gemmPackedAcc (local.get $scratch) (i32.const 4) (i32.shl (local.get $taps) (i32.const 2)) (local.get $dy) (i32.shl (local.get $co) (i32.const 2)) (i32.const 4)
        (local.get $dw) (i32.shl (local.get $co) (i32.const 2)) (local.get $taps) (local.get $co) (local.get $rows) (i32.const 0) (local.get $gemmScratch) (local.get $accIn))
      (local.set $accIn (i32.const 1))
      (local.set $x (i32.add (local.get $x) (local.get $xImg)))
      (local.set $dy (i32.add (local.get $dy) (local.get $dyImg)))
      (local.set $images (i32.sub (local.get $images) (i32.const 1)))
      (br $img)))
  )

  ;; (Used by FitloopReluGradBiasSum and by filterGradMasked below.) dz = dy * step(x) over rows x cols (row-major, cols a multiple of 4), and acc[c] += sum over
  ;; the rows of dz(r, c) in float64 (acc: cols doubles, 8-byte aligned; the caller zeroes it): the
  ;; ReLU gradient and its bias gradient (a column sum) in one pass. Rows in groups of 4 (the four
  ;; promoted values added pairwise, then to acc, as colSum), the rest one by one. Byte offsets.
  (func $reluGradColSum (export "reluGradColSum") (param $dy i32) (param $x i32) (param $dx i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $rowB i32) (local $j i32) (local $a i32) (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32)
    (local $v v128) (local $s v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local.set $rowB (i32.shl (local.get $cols) (i32.const 2)))
    (block $qd (loop $ql
      (br_if $qd (i32.lt_u (local.get $rows) (i32.const 4)))
      (local.set $j (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $o0 (local.get $j))
        (local.set $o1 (i32.add (local.get $o0) (local.get $rowB)))
        (local.set $o2 (i32.add (local.get $o1) (local.get $rowB)))
        (local.set $o3 (i32.add (local.get $o2) (local.get $rowB)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o0))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z0 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o0))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o0)) (local.get $z0))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o1))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z1 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o1))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o1)) (local.get $z1))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o2))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z2 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o2))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o2)) (local.get $z2))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $o3))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z3 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $o3))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $o3)) (local.get $z3))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (v128.store (local.get $a)
          (f64x2.add (v128.load (local.get $a)) (f64x2.add (f64x2.add (f64x2.promote_low_f32x4 (local.get $z0)) (f64x2.promote_low_f32x4 (local.get $z1))) (f64x2.add (f64x2.promote_low_f32x4 (local.get $z2)) (f64x2.promote_low_f32x4 (local.get $z3))))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.add (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z0) (local.get $z0))) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z1) (local.get $z1)))) (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z2) (local.get $z2))) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z3) (local.get $z3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $cl)))
      (local.set $o0 (i32.shl (local.get $rowB) (i32.const 2)))
      (local.set $dy (i32.add (local.get $dy) (local.get $o0)))
      (local.set $x (i32.add (local.get $x) (local.get $o0)))
      (local.set $dx (i32.add (local.get $dx) (local.get $o0)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 4)))
      (br $ql)))
    (block $rd (loop $rl
      (br_if $rd (i32.eqz (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $cd1 (loop $cl1
        (br_if $cd1 (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $j))))
        (local.set $s (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0) (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $s (v128.bitselect (local.get $v) (local.get $s) (f32x4.ne (local.get $v) (local.get $v))))
        (local.set $z0 (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (local.get $s)))
        (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $z0))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 1))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $z0))))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $z0) (local.get $z0)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $cl1)))
      (local.set $dy (i32.add (local.get $dy) (local.get $rowB)))
      (local.set $x (i32.add (local.get $x) (local.get $rowB)))
      (local.set $dx (i32.add (local.get $dx) (local.get $rowB)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $rl)))
  )

  ;; A first conv layer's filter and bias gradients with its ReLU gradient folded in, for a block of
  ;; pixels: dz = dy * step(y) ($reluGradColSum) block by block into scratch (in cache), acc[c] (float64)
  ;; += its column sums (the bias gradient), and dw (+)= patchesᵀ · dz ($gemmPackedAcc: A(tap, pixel)
  ;; at pa + tap*ars + pixel*aks, dz block row-major, accumulating from the second block or with accIn):
  ;; dz never reaches memory beyond the cache. dy, y: rows x co floats (co a multiple of 4).
  ;; scratch: 4*block*co bytes of dz (16-aligned), then gemmPacked's scratch for N = co, kc = block.
  (func (export "filterGradMasked") (param $pa i32) (param $ars i32) (param $aks i32) (param $dy i32) (param $y i32) (param $dw i32) (param $ldc i32)
    (param $taps i32) (param $co i32) (param $rows i32) (param $block i32) (param $acc i32) (param $scratch i32) (param $accIn i32)
    (local $n i32) (local $rowB i32) (local $gemmScratch i32)
    (local.set $rowB (i32.shl (local.get $co) (i32.const 2)))
    (local.set $gemmScratch (i32.add (local.get $scratch) (i32.and (i32.add (i32.mul (local.get $block) (local.get $rowB)) (i32.const 15)) (i32.const -16))))
    (block $done (loop $blocks
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $n (select (local.get $block) (local.get $rows) (i32.lt_u (local.get $block) (local.get $rows))))
      (call $reluGradColSum (local.get $dy) (local.get $y) (local.get $scratch) (local.get $acc) (local.get $n) (local.get $co))
      (call $gemmPackedAcc (local.get $pa) (local.get $ars) (local.get $aks) (local.get $scratch) (local.get $rowB) (i32.const 4)
        (local.get $dw) (local.get $ldc) (local.get $taps) (local.get $co) (local.get $n) (i32.const 0) (local.get $gemmScratch) (local.get $accIn))
      (local.set $accIn (i32.const 1))
      (local.set $pa (i32.add (local.get $pa) (i32.mul (local.get $n) (local.get $aks))))
      (local.set $dy (i32.add (local.get $dy) (i32.mul (local.get $n) (local.get $rowB))))
      (local.set $y (i32.add (local.get $y) (i32.mul (local.get $n) (local.get $rowB))))
      (local.set $rows (i32.sub (local.get $rows) (local.get $n)))
      (br $blocks)))
  )

  ;; C = A·B with B packed (GotoBLAS-style loops): A(m, k) at pa + m*ars + k*aks, B(k, n) at
  ;; pb + k*bks + n*bns (row-major B: bks = 4N, bns = 4; a transposed B: bks = 4, bns = 4K; no
  ;; transpose copy either way), C(m, n) at pc + m*ldc + 4n; byte pointers and strides.
  ;; For each block of kc rows of B (kc = 0: all K): pack it (packB) into scratch + 256, then for
  ;; each block of rows of C whose rows of A (a multiple of 5 rows x kc floats) fit ~192 KiB, for
  ;; each 8-column panel (kc x 8 floats, in L1), for each row tile: the 5x8 microkernel (the last
  ;; (5 - M % 5) % 5 tiles 4x8, so that M = 5a + 4b rows need no partial tile where M >= 12). Blocks
  ;; after the first continue from the partial sums in C, so each element of C is one sum in
  ;; increasing k from 0, one rounded product added at a time: bit for bit `gemm`'s result.
  ;; Edge tiles (fewer rows, or fewer than 8 columns) run through a 5x8 tile at scratch (160 bytes).
  ;; scratch: 256 + 4*kc*ceil(N/8)*8 bytes (kc as given, or K), any alignment. K = 0 writes zeros.
  ;; accIn != 0: C += A·B (the first block continues from C as it is; K = 0 leaves C alone).
  (func $gemmPackedAcc (param $pa i32) (param $ars i32) (param $aks i32) (param $pb i32) (param $bks i32) (param $bns i32)
    (param $pc i32) (param $ldc i32) (param $M i32) (param $N i32) (param $K i32) (param $kc i32) (param $scratch i32) (param $accIn i32)
    (local $k0 i32) (local $kb i32) (local $i0 i32) (local $iend i32) (local $i i32) (local $j i32) (local $cols i32) (local $rows i32)
    (local $mc i32) (local $acc i32) (local $a i32) (local $bpanel i32) (local $c i32) (local $tile i32) (local $packed i32) (local $r i32) (local $h i32) (local $m4 i32)
    (if (i32.or (i32.eqz (local.get $M)) (i32.eqz (local.get $N))) (then (return)))
    (if (i32.eqz (local.get $K)) (then
      (if (local.get $accIn) (then (return)))
      (block $zd (loop $zl
        (br_if $zd (i32.ge_u (local.get $i) (local.get $M)))
        (memory.fill (i32.add (local.get $pc) (i32.mul (local.get $i) (local.get $ldc))) (i32.const 0) (i32.shl (local.get $N) (i32.const 2)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $zl)))
      (return)))
    (if (i32.or (i32.eqz (local.get $kc)) (i32.gt_u (local.get $kc) (local.get $K))) (then (local.set $kc (local.get $K))))
    (local.set $tile (local.get $scratch))
    (local.set $packed (i32.add (local.get $scratch) (i32.const 256)))
    ;; rows from $m4 on go in 4-row tiles, so that M = 5a + 4b needs no partial tile: b = (5 - M % 5) % 5
    ;; tiles of 4 where M has room for them (M >= 4b; else a partial tile at the end)
    (local.set $m4 (i32.rem_u (i32.sub (i32.const 5) (i32.rem_u (local.get $M) (i32.const 5))) (i32.const 5)))
    (local.set $m4 (select (i32.sub (local.get $M) (i32.shl (local.get $m4) (i32.const 2))) (local.get $M) (i32.ge_u (local.get $M) (i32.shl (local.get $m4) (i32.const 2)))))
    (loop $blocks
      (local.set $kb (i32.sub (local.get $K) (local.get $k0)))
      (if (i32.gt_u (local.get $kb) (local.get $kc)) (then (local.set $kb (local.get $kc))))
      (call $packB (i32.add (local.get $pb) (i32.mul (local.get $k0) (local.get $bks))) (local.get $bks) (local.get $bns) (local.get $kb) (local.get $N) (local.get $packed))
      (local.set $acc (i32.or (local.get $accIn) (i32.ne (local.get $k0) (i32.const 0))))
      (local.set $mc (i32.mul (i32.div_u (i32.div_u (i32.const 49152) (local.get $kb)) (i32.const 5)) (i32.const 5)))
      (if (i32.lt_u (local.get $mc) (i32.const 5)) (then (local.set $mc (i32.const 5))))
      (local.set $i0 (i32.const 0))
      (loop $mblocks
        (local.set $iend (i32.add (local.get $i0) (local.get $mc)))
        (if (i32.gt_u (local.get $iend) (local.get $M)) (then (local.set $iend (local.get $M))))
        (local.set $j (i32.const 0))
        (loop $panels
          (local.set $cols (i32.sub (local.get $N) (local.get $j)))
          (if (i32.gt_u (local.get $cols) (i32.const 8)) (then (local.set $cols (i32.const 8))))
          (local.set $bpanel (i32.add (local.get $packed) (i32.shl (i32.mul (local.get $j) (local.get $kb)) (i32.const 2))))
          (local.set $i (local.get $i0))
          (loop $tiles
            ;; 5 rows, 4 from $m4 on, what is left at the end
            (local.set $h (select (i32.const 4) (i32.const 5) (i32.ge_u (local.get $i) (local.get $m4))))
            (local.set $rows (i32.sub (local.get $M) (local.get $i)))
            (if (i32.gt_u (local.get $rows) (local.get $h)) (then (local.set $rows (local.get $h))))
            (local.set $a (i32.add (i32.add (local.get $pa) (i32.mul (local.get $i) (local.get $ars))) (i32.mul (local.get $k0) (local.get $aks))))
            (local.set $c (i32.add (i32.add (local.get $pc) (i32.mul (local.get $i) (local.get $ldc))) (i32.shl (local.get $j) (i32.const 2))))
            (if (i32.and (i32.eq (local.get $rows) (local.get $h)) (i32.eq (local.get $cols) (i32.const 8)))
              (then
                (if (i32.eq (local.get $h) (i32.const 5))
                  (then
                    (if (i32.eq (local.get $ars) (i32.const 4))
                      (then (call $p5x8c (local.get $a) (local.get $aks) (local.get $bpanel) (local.get $c) (local.get $ldc) (local.get $kb) (local.get $acc)))
                      (else (call $p5x8 (local.get $a) (local.get $ars) (local.get $aks) (local.get $bpanel) (local.get $c) (local.get $ldc) (local.get $kb) (local.get $acc) (i32.const 5)))))
                  (else
                    (if (i32.eq (local.get $ars) (i32.const 4))
                      (then (call $p4x8c (local.get $a) (local.get $aks) (local.get $bpanel) (local.get $c) (local.get $ldc) (local.get $kb) (local.get $acc)))
                      (else (call $p4x8 (local.get $a) (local.get $ars) (local.get $aks) (local.get $bpanel) (local.get $c) (local.get $ldc) (local.get $kb) (local.get $acc)))))))
              (else
                ;; an edge tile: through the 5x8 tile buffer (rows past M repeat the last row of A)
                (if (local.get $acc) (then
                  (local.set $r (i32.const 0))
                  (loop $cin
                    (memory.copy (i32.add (local.get $tile) (i32.shl (local.get $r) (i32.const 5))) (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $ldc))) (i32.shl (local.get $cols) (i32.const 2)))
                    (local.set $r (i32.add (local.get $r) (i32.const 1)))
                    (br_if $cin (i32.lt_u (local.get $r) (local.get $rows))))))
                (call $p5x8 (local.get $a) (local.get $ars) (local.get $aks) (local.get $bpanel) (local.get $tile) (i32.const 32) (local.get $kb) (local.get $acc) (local.get $rows))
                (local.set $r (i32.const 0))
                (loop $cout
                  (memory.copy (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $ldc))) (i32.add (local.get $tile) (i32.shl (local.get $r) (i32.const 5))) (i32.shl (local.get $cols) (i32.const 2)))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $cout (i32.lt_u (local.get $r) (local.get $rows))))))
            (local.set $i (i32.add (local.get $i) (local.get $h)))
            (br_if $tiles (i32.lt_u (local.get $i) (local.get $iend))))
          (local.set $j (i32.add (local.get $j) (i32.const 8)))
          (br_if $panels (i32.lt_u (local.get $j) (local.get $N))))
        (local.set $i0 (local.get $i)) ;; the next block starts after the last tile (a 4-row tile may cross iend)
        (br_if $mblocks (i32.lt_u (local.get $i0) (local.get $M))))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kb)))
      (br_if $blocks (i32.lt_u (local.get $k0) (local.get $K))))
  )

  ;; dst (cols x rows, row-major) = transpose of src (rows x cols, row-major); byte offsets.
  (func (export "transpose") (param $src i32) (param $rows i32) (param $cols i32) (param $dst i32)
    (local $r i32) (local $c i32) (local $s i32) (local $d i32) (local $dstride i32)
    (local.set $dstride (i32.shl (local.get $rows) (i32.const 2)))
    (block $dr (loop $lr
      (br_if $dr (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2))))
      (local.set $c (i32.const 0))
      (block $dc (loop $lc
        (br_if $dc (i32.ge_u (local.get $c) (local.get $cols)))
        (f32.store (local.get $d) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $d (i32.add (local.get $d) (local.get $dstride)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $lc)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $lr)))
  )



  ;; im2col rows of one filter tap (Conv2DBackpropFilter): for each of `planes` input images of
  ;; inH x inW floats at src (contiguous, planeStride floats apart) and each output row oh < outH:
  ;; ih = oh*sh + rowOff; dst gets outW floats: src[ih, ow*sw + colShift] for lo <= ow < hi, zero
  ;; elsewhere and for ih outside [0, inH). dst advances by planes*outH*outW floats. Byte pointers.
  (func (export "im2colRows") (param $src i32) (param $dst i32) (param $planes i32) (param $planeStride i32)
    (param $inH i32) (param $inW i32) (param $outH i32) (param $outW i32) (param $sh i32) (param $sw i32)
    (param $rowOff i32) (param $colShift i32) (param $lo i32) (param $hi i32)
    (local $p i32) (local $oh i32) (local $ih i32) (local $row i32) (local $ow i32) (local $plane i32)
    (local.set $p (i32.const 0))
    (block $pd (loop $pl
      (br_if $pd (i32.ge_u (local.get $p) (local.get $planes)))
      (local.set $plane (i32.add (local.get $src) (i32.shl (i32.mul (local.get $p) (local.get $planeStride)) (i32.const 2))))
      (local.set $oh (i32.const 0))
      (block $od (loop $ol
        (br_if $od (i32.ge_u (local.get $oh) (local.get $outH)))
        (local.set $ih (i32.add (i32.mul (local.get $oh) (local.get $sh)) (local.get $rowOff)))
        (if (i32.or (i32.lt_s (local.get $ih) (i32.const 0)) (i32.ge_s (local.get $ih) (local.get $inH)))
          (then (memory.fill (local.get $dst) (i32.const 0) (i32.shl (local.get $outW) (i32.const 2))))
          (else
            (if (i32.gt_s (local.get $lo) (i32.const 0))
              (then (memory.fill (local.get $dst) (i32.const 0) (i32.shl (local.get $lo) (i32.const 2)))))
            ;; row = plane + (ih*inW + colShift) floats
            (local.set $row (i32.add (local.get $plane)
              (i32.shl (i32.add (i32.mul (local.get $ih) (local.get $inW)) (local.get $colShift)) (i32.const 2))))
            (if (i32.eq (local.get $sw) (i32.const 1))
              (then
                (if (i32.gt_s (local.get $hi) (local.get $lo))
                  (then (memory.copy
                    (i32.add (local.get $dst) (i32.shl (local.get $lo) (i32.const 2)))
                    (i32.add (local.get $row) (i32.shl (local.get $lo) (i32.const 2)))
                    (i32.shl (i32.sub (local.get $hi) (local.get $lo)) (i32.const 2))))))
              (else
                (local.set $ow (local.get $lo))
                (block $wd (loop $wl
                  (br_if $wd (i32.ge_s (local.get $ow) (local.get $hi)))
                  (f32.store (i32.add (local.get $dst) (i32.shl (local.get $ow) (i32.const 2)))
                    (f32.load (i32.add (local.get $row) (i32.shl (i32.mul (local.get $ow) (local.get $sw)) (i32.const 2)))))
                  (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                  (br $wl)))))
            (if (i32.lt_s (local.get $hi) (local.get $outW))
              (then (memory.fill (i32.add (local.get $dst) (i32.shl (local.get $hi) (i32.const 2))) (i32.const 0)
                (i32.shl (i32.sub (local.get $outW) (local.get $hi)) (i32.const 2)))))))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $outW) (i32.const 2))))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $ol)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pl)))
  )


)
