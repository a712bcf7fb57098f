;; Gradients of a linear y = x·W + β for the upstream gradient g, in tfjs-wasm's heap
;; (src/core/weight-grads-kernel.ts):
;;   dW [in, out] = xᵀ·g      dβ [out] = Σ_rows g          x [rows, in], g [rows, out]
;; without transposing x or packing g: each output is summed over the rows in order from +0, each
;; product rounded before it is added, which is how XNNPACK's product (dW = xᵀ·g, or dWᵀ = gᵀ·x
;; transposed back) and tfjs-wasm's Sum sum them, so the values are theirs bit for bit
;; (test/core/weight-grads-kernel.test.ts). With db = 0 only dW is computed: the product aᵀ·b of
;; a [k, m] and b [k, n], as a batched product with a transposed left operand needs it. The column
;; sums are exported alone too (`column_sums`: a mean over the middle axis, importance.ts).
;; Tiles of 4 × 8 outputs stay in registers over all rows; x's four values of a row are one load,
;; splat lane by lane. The tile functions differ only in their sizes (4 or 1 rows of dW, 8, 4 or 1
;; columns); pointers are byte offsets, any sizes.
(module
  (import "env" "memory" (memory 1))


  ;; dw[i0 .. i0+4, j0 .. j0+8]: each output a sum over rows in order from +0.
  (func $tile4x8 (param $xp i32) (param $gp i32) (param $dwp i32) (param $rows i32) (param $in4 i32) (param $out4 i32)
    (local $r i32) (local $xv v128) (local $s v128) (local $g0 v128) (local $g1 v128) (local $a0_0 v128) (local $a0_1 v128) (local $a1_0 v128) (local $a1_1 v128) (local $a2_0 v128) (local $a2_1 v128) (local $a3_0 v128) (local $a3_1 v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $g0 (v128.load offset=0 (local.get $gp)))
      (local.set $g1 (v128.load offset=16 (local.get $gp)))
      (local.set $xv (v128.load (local.get $xp)))
      (local.set $s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $xv) (local.get $xv)))
      (local.set $a0_0 (f32x4.add (local.get $a0_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $a0_1 (f32x4.add (local.get $a0_1) (f32x4.mul (local.get $s) (local.get $g1))))
      (local.set $s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $xv) (local.get $xv)))
      (local.set $a1_0 (f32x4.add (local.get $a1_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $a1_1 (f32x4.add (local.get $a1_1) (f32x4.mul (local.get $s) (local.get $g1))))
      (local.set $s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $xv) (local.get $xv)))
      (local.set $a2_0 (f32x4.add (local.get $a2_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $a2_1 (f32x4.add (local.get $a2_1) (f32x4.mul (local.get $s) (local.get $g1))))
      (local.set $s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $xv) (local.get $xv)))
      (local.set $a3_0 (f32x4.add (local.get $a3_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $a3_1 (f32x4.add (local.get $a3_1) (f32x4.mul (local.get $s) (local.get $g1))))
      (local.set $xp (i32.add (local.get $xp) (local.get $in4)))
      (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $next)))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_0))
    (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_1))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 1) (local.get $out4))) (local.get $a1_0))
    (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (i32.const 1) (local.get $out4))) (local.get $a1_1))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 2) (local.get $out4))) (local.get $a2_0))
    (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (i32.const 2) (local.get $out4))) (local.get $a2_1))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 3) (local.get $out4))) (local.get $a3_0))
    (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (i32.const 3) (local.get $out4))) (local.get $a3_1))
  )

  ;; dw[i0 .. i0+4, j0 .. j0+4]: each output a sum over rows in order from +0.
  (func $tile4x4 (param $xp i32) (param $gp i32) (param $dwp i32) (param $rows i32) (param $in4 i32) (param $out4 i32)
    (local $r i32) (local $xv v128) (local $s v128) (local $g0 v128) (local $a0_0 v128) (local $a1_0 v128) (local $a2_0 v128) (local $a3_0 v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $g0 (v128.load offset=0 (local.get $gp)))
      (local.set $xv (v128.load (local.get $xp)))
      (local.set $s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $xv) (local.get $xv)))
      (local.set $a0_0 (f32x4.add (local.get $a0_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $xv) (local.get $xv)))
      (local.set $a1_0 (f32x4.add (local.get $a1_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $xv) (local.get $xv)))
      (local.set $a2_0 (f32x4.add (local.get $a2_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $xv) (local.get $xv)))
      (local.set $a3_0 (f32x4.add (local.get $a3_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $xp (i32.add (local.get $xp) (local.get $in4)))
      (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $next)))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_0))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 1) (local.get $out4))) (local.get $a1_0))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 2) (local.get $out4))) (local.get $a2_0))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 3) (local.get $out4))) (local.get $a3_0))
  )

  ;; dw[i0 .. i0+1, j0 .. j0+8]: each output a sum over rows in order from +0.
  (func $tile1x8 (param $xp i32) (param $gp i32) (param $dwp i32) (param $rows i32) (param $in4 i32) (param $out4 i32)
    (local $r i32) (local $xv v128) (local $s v128) (local $g0 v128) (local $g1 v128) (local $a0_0 v128) (local $a0_1 v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $g0 (v128.load offset=0 (local.get $gp)))
      (local.set $g1 (v128.load offset=16 (local.get $gp)))
      (local.set $s (v128.load32_splat (local.get $xp)))
      (local.set $a0_0 (f32x4.add (local.get $a0_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $a0_1 (f32x4.add (local.get $a0_1) (f32x4.mul (local.get $s) (local.get $g1))))
      (local.set $xp (i32.add (local.get $xp) (local.get $in4)))
      (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $next)))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_0))
    (v128.store offset=16 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_1))
  )

  ;; dw[i0 .. i0+1, j0 .. j0+4]: each output a sum over rows in order from +0.
  (func $tile1x4 (param $xp i32) (param $gp i32) (param $dwp i32) (param $rows i32) (param $in4 i32) (param $out4 i32)
    (local $r i32) (local $xv v128) (local $s v128) (local $g0 v128) (local $a0_0 v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $g0 (v128.load offset=0 (local.get $gp)))
      (local.set $s (v128.load32_splat (local.get $xp)))
      (local.set $a0_0 (f32x4.add (local.get $a0_0) (f32x4.mul (local.get $s) (local.get $g0))))
      (local.set $xp (i32.add (local.get $xp) (local.get $in4)))
      (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $next)))
    (v128.store offset=0 (i32.add (local.get $dwp) (i32.mul (i32.const 0) (local.get $out4))) (local.get $a0_0))
  )

  ;; dw[i0, j0] alone (columns past the last multiple of 4).
  (func $tile1x1 (param $xp i32) (param $gp i32) (param $dwp i32) (param $rows i32) (param $in4 i32) (param $out4 i32)
    (local $r i32) (local $acc f32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $acc (f32.add (local.get $acc) (f32.mul (f32.load (local.get $xp)) (f32.load (local.get $gp)))))
      (local.set $xp (i32.add (local.get $xp) (local.get $in4)))
      (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $next)))
    (f32.store (local.get $dwp) (local.get $acc)))

  ;; Output rows i0 .. i0+4: columns eight at a time, then four, then one.
  (func $rows4 (param $x i32) (param $g i32) (param $dw i32) (param $i0 i32) (param $rows i32) (param $in i32) (param $out i32)
    (local $j i32) (local $xp i32) (local $dwRow i32) (local $in4 i32) (local $out4 i32)
    (local.set $in4 (i32.shl (local.get $in) (i32.const 2)))
    (local.set $out4 (i32.shl (local.get $out) (i32.const 2)))
    (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $i0) (i32.const 2))))
    (local.set $dwRow (i32.add (local.get $dw) (i32.mul (local.get $i0) (local.get $out4))))
    (block $done8 (loop $next8
      (br_if $done8 (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $out)))
      (call $tile4x8 (local.get $xp) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (local.get $dwRow) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $next8)))
    (if (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $out)) (then
      (call $tile4x4 (local.get $xp) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (local.get $dwRow) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))))
    (block $done1 (loop $next1
      (br_if $done1 (i32.ge_u (local.get $j) (local.get $out)))
      (call $tile1x1 (i32.add (local.get $xp) (i32.const 0)) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (i32.add (local.get $dwRow) (i32.mul (i32.const 0) (local.get $out4))) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (call $tile1x1 (i32.add (local.get $xp) (i32.const 4)) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (i32.add (local.get $dwRow) (i32.mul (i32.const 1) (local.get $out4))) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (call $tile1x1 (i32.add (local.get $xp) (i32.const 8)) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (i32.add (local.get $dwRow) (i32.mul (i32.const 2) (local.get $out4))) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (call $tile1x1 (i32.add (local.get $xp) (i32.const 12)) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (i32.add (local.get $dwRow) (i32.mul (i32.const 3) (local.get $out4))) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $next1))))

  ;; Output rows i0 .. i0+1: columns eight at a time, then four, then one.
  (func $rows1 (param $x i32) (param $g i32) (param $dw i32) (param $i0 i32) (param $rows i32) (param $in i32) (param $out i32)
    (local $j i32) (local $xp i32) (local $dwRow i32) (local $in4 i32) (local $out4 i32)
    (local.set $in4 (i32.shl (local.get $in) (i32.const 2)))
    (local.set $out4 (i32.shl (local.get $out) (i32.const 2)))
    (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $i0) (i32.const 2))))
    (local.set $dwRow (i32.add (local.get $dw) (i32.mul (local.get $i0) (local.get $out4))))
    (block $done8 (loop $next8
      (br_if $done8 (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $out)))
      (call $tile1x8 (local.get $xp) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (local.get $dwRow) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $next8)))
    (if (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $out)) (then
      (call $tile1x4 (local.get $xp) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (local.get $dwRow) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))))
    (block $done1 (loop $next1
      (br_if $done1 (i32.ge_u (local.get $j) (local.get $out)))
      (call $tile1x1 (i32.add (local.get $xp) (i32.const 0)) (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))) (i32.add (i32.add (local.get $dwRow) (i32.mul (i32.const 0) (local.get $out4))) (i32.shl (local.get $j) (i32.const 2))) (local.get $rows) (local.get $in4) (local.get $out4))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $next1))))

  (func (export "weight_grads") (param $x i32) (param $g i32) (param $dw i32) (param $db i32) (param $rows i32) (param $in i32) (param $out i32)
    (local $i i32)
    (block $done4 (loop $next4
      (br_if $done4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $in)))
      (call $rows4 (local.get $x) (local.get $g) (local.get $dw) (local.get $i) (local.get $rows) (local.get $in) (local.get $out))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next4)))
    (block $done1 (loop $next1
      (br_if $done1 (i32.ge_u (local.get $i) (local.get $in)))
      (call $rows1 (local.get $x) (local.get $g) (local.get $dw) (local.get $i) (local.get $rows) (local.get $in) (local.get $out))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next1)))
    ;; dβ (none when db is 0).
    (if (local.get $db) (then (call $columnSums (local.get $g) (local.get $db) (local.get $rows) (local.get $out)))))

  ;; sums [out] of g [rows, out] over its rows: four columns at a time, rows in order from +0.
  (func $columnSums (export "column_sums") (param $g i32) (param $db i32) (param $rows i32) (param $out i32)
    (local $j i32) (local $r i32) (local $acc v128) (local $gp i32) (local $s f32) (local $out4 i32)
    (local.set $out4 (i32.shl (local.get $out) (i32.const 2)))
    (block $doneCols (loop $nextCols
      (br_if $doneCols (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $out)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $gp (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $r (i32.const 0))
      (block $doneRows (loop $nextRows
        (br_if $doneRows (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $gp))))
        (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $nextRows)))
      (v128.store (i32.add (local.get $db) (i32.shl (local.get $j) (i32.const 2))) (local.get $acc))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $nextCols)))
    (block $doneCol (loop $nextCol
      (br_if $doneCol (i32.ge_u (local.get $j) (local.get $out)))
      (local.set $s (f32.const 0))
      (local.set $gp (i32.add (local.get $g) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $r (i32.const 0))
      (block $doneRow (loop $nextRow
        (br_if $doneRow (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $s (f32.add (local.get $s) (f32.load (local.get $gp))))
        (local.set $gp (i32.add (local.get $gp) (local.get $out4)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $nextRow)))
      (f32.store (i32.add (local.get $db) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $nextCol))))
)