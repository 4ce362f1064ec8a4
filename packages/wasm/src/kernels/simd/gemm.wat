;; fitloop: a strided float32 GEMM in WebAssembly SIMD, C = A·B (M x N, K deep), no packing.
;;
;; Source of the generated `gemm.wasm.ts` (`pnpm --filter @fitloop/wasm run build:simd`); the memory
;; import is filled in by the build script (tfjs-wasm's memory). Used by the wasm BatchMatMul and
;; _FusedMatMul below the thread gate's size (wasm-matmul.ts, docs/journal.md round 5): XNNPACK
;; packs the right-hand operand on every call, which for a training step (new weights each step)
;; costs more than the multiply itself at these sizes.
;;
;; A is read through strides, A(m, k) at pa + m*ars + k*aks (bytes), so A or its transpose needs
;; no copy; B is row-major, B(k, n) at pb + k*ldb + 4n (a transposed B is copied first, `transpose`);
;; C row-major, C(m, n) at pc + m*ldc + 4n. Microkernel: 4 rows x 8 columns, eight f32x4
;; accumulators, per k one splat of each A element times two B vectors. Plain f32x4.mul + f32x4.add
;; (no relaxed-SIMD FMA: runs without flags, and each product is rounded as on the cpu backend).
;; Edges: 4-column and single-column tiles for N % 8, 1-row tiles for M % 4; any K >= 0 (K = 0
;; writes zeros). Each element is a sum over k in increasing order, from 0.
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

  ;; In place on C (M x N, row-major, contiguous): C(m, n) += bias(n) when bias != 0, then
  ;; max(C, 0) when relu != 0 (NaN stays NaN).
  (func (export "biasAct") (param $pc i32) (param $M i32) (param $N i32) (param $bias i32) (param $relu i32)
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

  ;; im2col in NHWC order (Conv2DBackpropFilter with many input channels): for each of `images`
  ;; images of inH x inW x ci floats at x (contiguous) and each output pixel (oh, ow), dst gets one
  ;; row of fh*fw*ci floats: for each tap (kh, kw), x[ih, iw, 0..ci) with ih = oh*sh + kh*dh - top,
  ;; iw = ow*sw + kw*dw - left, zeros outside the image. With dw = 1 a filter row inside the image is
  ;; one copy of fw*ci floats. Byte pointers, sizes in floats; dst advances by images*outH*outW rows.
  (func (export "im2colNhwc") (param $x i32) (param $dst i32) (param $images i32) (param $inH i32) (param $inW i32) (param $ci i32)
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
)
