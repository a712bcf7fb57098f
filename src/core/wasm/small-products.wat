;; Batched products out[g] = a[g]·b[g] of a [groups, m, k] and b [groups, k, n] in tfjs-wasm's heap,
;; for the small per-group products of attention (src/core/heap-products.ts), where XNNPACK spends
;; more on creating, packing and deleting an operator per group than on the arithmetic.
;; Each output is summed as XNNPACK's wasm SIMD GEMM sums it: from +0, k in order, every product
;; rounded before it is added (wasm has no implicit fused multiply-add), so the values are the same
;; bit for bit (test/core/heap-products.test.ts checks it against tfjs' own product).
;; Tiles of 4 rows × 4 columns share each load of b; the last rows go one at a time and the last
;; columns (n mod 4) one at a time. Pointers are byte offsets.
(module
  (import "env" "memory" (memory 1))

  ;; Σ_kk a[kk]·b[kk·n] in order: one output of a row a (stride 4) and a column b (stride bStride).
  (func $dot (param $a i32) (param $b i32) (param $k i32) (param $bStride i32) (result f32)
    (local $s f32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $k)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (local.get $bStride)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $next)))
    (local.get $s))

  ;; Four outputs (columns j..j+3) of row a: Σ_kk splat(a[kk])·b[kk, j..j+3].
  (func $dot4 (param $a i32) (param $b i32) (param $k i32) (param $bStride i32) (result v128)
    (local $acc v128)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $k)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.splat (f32.load (local.get $a))) (v128.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (local.get $bStride)))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br $next)))
    (local.get $acc))

  ;; Row a's outputs into out (n of them): four columns at a time, then the rest one by one.
  (func $row (param $a i32) (param $b i32) (param $out i32) (param $k i32) (param $n i32)
    (local $j i32) (local $stride i32) (local $vecEnd i32)
    (local.set $stride (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $n) (i32.const -4)))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $j) (local.get $vecEnd)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (call $dot4 (local.get $a) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $k) (local.get $stride)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (call $dot (local.get $a) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $k) (local.get $stride)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail))))

  ;; Four rows a0..a0+3 (row stride aStride) into out (row stride oStride): 4×4 tiles sharing each
  ;; load of b, then the last columns one by one.
  (func $rows4 (param $a i32) (param $b i32) (param $out i32) (param $k i32) (param $n i32)
    (local $aStride i32) (local $stride i32) (local $vecEnd i32) (local $j i32) (local $kk i32)
    (local $pa i32) (local $pb i32) (local $po i32) (local $r i32)
    (local $vb v128) (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local.set $aStride (i32.shl (local.get $k) (i32.const 2)))
    (local.set $stride (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $n) (i32.const -4)))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $j) (local.get $vecEnd)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $acc3 (v128.const i32x4 0 0 0 0))
        (local.set $pa (local.get $a))
        (local.set $pb (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $kk (local.get $k))
        (block $kDone
          (loop $kLoop
            (br_if $kDone (i32.eqz (local.get $kk)))
            (local.set $vb (v128.load (local.get $pb)))
            (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (f32x4.splat (f32.load (local.get $pa))) (local.get $vb))))
            (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $pa) (local.get $aStride)))) (local.get $vb))))
            (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $pa) (i32.shl (local.get $aStride) (i32.const 1))))) (local.get $vb))))
            (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $pa) (i32.mul (local.get $aStride) (i32.const 3))))) (local.get $vb))))
            (local.set $pa (i32.add (local.get $pa) (i32.const 4)))
            (local.set $pb (i32.add (local.get $pb) (local.get $stride)))
            (local.set $kk (i32.sub (local.get $kk) (i32.const 1)))
            (br $kLoop)))
        (local.set $po (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store (local.get $po) (local.get $acc0))
        (v128.store (i32.add (local.get $po) (local.get $stride)) (local.get $acc1))
        (v128.store (i32.add (local.get $po) (i32.shl (local.get $stride) (i32.const 1))) (local.get $acc2))
        (v128.store (i32.add (local.get $po) (i32.mul (local.get $stride) (i32.const 3))) (local.get $acc3))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec)))
    ;; The last n mod 4 columns, row by row.
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $r (i32.const 0))
        (block $rDone
          (loop $rLoop
            (br_if $rDone (i32.ge_u (local.get $r) (i32.const 4)))
            (f32.store
              (i32.add (local.get $out) (i32.add (i32.mul (local.get $r) (local.get $stride)) (i32.shl (local.get $j) (i32.const 2))))
              (call $dot
                (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $aStride)))
                (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
                (local.get $k) (local.get $stride)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $rLoop)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail))))

  (func (export "batched_product")
    (param $a i32) (param $b i32) (param $out i32) (param $groups i32) (param $m i32) (param $k i32) (param $n i32)
    (local $g i32) (local $i i32) (local $aRow i32) (local $oRow i32) (local $aGroup i32) (local $bGroup i32) (local $oGroup i32)
    (local.set $aRow (i32.shl (local.get $k) (i32.const 2)))
    (local.set $oRow (i32.shl (local.get $n) (i32.const 2)))
    (block $groupsDone
      (loop $group
        (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
        (local.set $aGroup (i32.add (local.get $a) (i32.mul (local.get $g) (i32.mul (local.get $m) (local.get $aRow)))))
        (local.set $bGroup (i32.add (local.get $b) (i32.mul (local.get $g) (i32.mul (local.get $k) (local.get $oRow)))))
        (local.set $oGroup (i32.add (local.get $out) (i32.mul (local.get $g) (i32.mul (local.get $m) (local.get $oRow)))))
        (local.set $i (i32.const 0))
        (block $fourDone
          (loop $four
            (br_if $fourDone (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
            (call $rows4
              (i32.add (local.get $aGroup) (i32.mul (local.get $i) (local.get $aRow)))
              (local.get $bGroup)
              (i32.add (local.get $oGroup) (i32.mul (local.get $i) (local.get $oRow)))
              (local.get $k) (local.get $n))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $four)))
        (block $oneDone
          (loop $one
            (br_if $oneDone (i32.ge_u (local.get $i) (local.get $m)))
            (call $row
              (i32.add (local.get $aGroup) (i32.mul (local.get $i) (local.get $aRow)))
              (local.get $bGroup)
              (i32.add (local.get $oGroup) (i32.mul (local.get $i) (local.get $oRow)))
              (local.get $k) (local.get $n))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $one)))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $group))))
)
