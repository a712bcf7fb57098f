;; LayerNorm over the last axis of x [rows, dim] in tfjs-wasm's heap, forward and backward
;; (src/model/layers.ts layerNormFastGrad). Each value is the one tfjs' kernels give for the op
;; sequence it replaces, bit for bit:
;;   forward   μ = Σx / dim            c = x − μ              σ² = Σ(c·c) / dim
;;             r = 1 / √(σ² + ε)       n = c·r                y = n·γ + β
;;   backward  g = dy·γ   mg = Σg / dim   mgn = Σ(g·n) / dim   dx = r·((g − mg) − n·mgn)
;;             dγ = Σ_rows dy·n        dβ = Σ_rows dy
;; Row sums run one element after another from 0, as tfjs-wasm's Mean and Sum kernels do (a float
;; sum's value depends on its order); the elementwise steps and the column sums (each lane its own
;; column, rows in order) take four lanes at a time. Every operation is one IEEE float32 operation
;; (wasm has no implicit fused multiply-add). Pointers are byte offsets; dim need not divide by 4.
(module
  (import "env" "memory" (memory 1))

  ;; Σ p[0..n) in order, one float at a time.
  (func $sum (param $p i32) (param $n i32) (result f32)
    (local $i i32) (local $s f32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (f32.add (local.get $s) (f32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))

  ;; Σ a[i]·b[i] in order, each product rounded before it is added.
  (func $sumProducts (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $i i32) (local $at i32) (local $s f32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (i32.add (local.get $a) (local.get $at))) (f32.load (i32.add (local.get $b) (local.get $at))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))

  ;; Σ (a[i]·w[i])·n[i] in order: the g·n of the backward, g = dy·γ rounded first.
  (func $sumScaledProducts (param $a i32) (param $w i32) (param $b i32) (param $n i32) (result f32)
    (local $i i32) (local $at i32) (local $s f32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul
            (f32.mul (f32.load (i32.add (local.get $a) (local.get $at))) (f32.load (i32.add (local.get $w) (local.get $at))))
            (f32.load (i32.add (local.get $b) (local.get $at))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))

  (func (export "layer_norm")
    (param $x i32) (param $gamma i32) (param $beta i32) (param $out i32) (param $normed i32) (param $rstd i32)
    (param $rows i32) (param $dim i32) (param $eps f32)
    (local $r i32) (local $j i32) (local $at i32) (local $row i32) (local $vecEnd i32)
    (local $size f32) (local $mean f32) (local $rs f32) (local $c f32) (local $nv v128) (local $n f32)
    (local.set $size (f32.convert_i32_u (local.get $dim)))
    (local.set $vecEnd (i32.and (local.get $dim) (i32.const -4)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $dim)) (i32.const 2)))
        (local.set $mean (f32.div (call $sum (i32.add (local.get $x) (local.get $row)) (local.get $dim)) (local.get $size)))
        ;; c = x − μ, kept in `normed` until r is known.
        (local.set $j (i32.const 0))
        (block $cDone
          (loop $cVec
            (br_if $cDone (i32.ge_u (local.get $j) (local.get $vecEnd)))
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (i32.add (local.get $normed) (local.get $at))
              (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $at))) (f32x4.splat (local.get $mean))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $cVec)))
        (block $cTailDone
          (loop $cTail
            (br_if $cTailDone (i32.ge_u (local.get $j) (local.get $dim)))
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
            (f32.store (i32.add (local.get $normed) (local.get $at))
              (f32.sub (f32.load (i32.add (local.get $x) (local.get $at))) (local.get $mean)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $cTail)))
        (local.set $rs (f32.div (f32.const 1)
          (f32.sqrt (f32.add
            (f32.div (call $sumProducts (i32.add (local.get $normed) (local.get $row)) (i32.add (local.get $normed) (local.get $row)) (local.get $dim)) (local.get $size))
            (local.get $eps)))))
        (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))) (local.get $rs))
        ;; n = c·r, y = n·γ + β.
        (local.set $j (i32.const 0))
        (block $yDone
          (loop $yVec
            (br_if $yDone (i32.ge_u (local.get $j) (local.get $vecEnd)))
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $nv (f32x4.mul (v128.load (i32.add (local.get $normed) (local.get $at))) (f32x4.splat (local.get $rs))))
            (v128.store (i32.add (local.get $normed) (local.get $at)) (local.get $nv))
            (v128.store (i32.add (local.get $out) (local.get $at))
              (f32x4.add
                (f32x4.mul (local.get $nv) (v128.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2)))))
                (v128.load (i32.add (local.get $beta) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $yVec)))
        (block $yTailDone
          (loop $yTail
            (br_if $yTailDone (i32.ge_u (local.get $j) (local.get $dim)))
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $n (f32.mul (f32.load (i32.add (local.get $normed) (local.get $at))) (local.get $rs)))
            (f32.store (i32.add (local.get $normed) (local.get $at)) (local.get $n))
            (f32.store (i32.add (local.get $out) (local.get $at))
              (f32.add
                (f32.mul (local.get $n) (f32.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2)))))
                (f32.load (i32.add (local.get $beta) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $yTail)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop))))

  (func (export "layer_norm_grad")
    (param $dy i32) (param $normed i32) (param $rstd i32) (param $gamma i32)
    (param $dx i32) (param $dgamma i32) (param $dbeta i32) (param $rows i32) (param $dim i32)
    (local $r i32) (local $j i32) (local $at i32) (local $col i32) (local $row i32) (local $vecEnd i32)
    (local $size f32) (local $mg f32) (local $mgn f32) (local $rs f32)
    (local $d v128) (local $nv v128) (local $g v128) (local $ds f32) (local $ns f32) (local $gs f32)
    (local.set $size (f32.convert_i32_u (local.get $dim)))
    (local.set $vecEnd (i32.and (local.get $dim) (i32.const -4)))
    ;; Column sums start at 0.
    (local.set $j (i32.const 0))
    (block $zDone
      (loop $zero
        (br_if $zDone (i32.ge_u (local.get $j) (local.get $dim)))
        (f32.store (i32.add (local.get $dgamma) (i32.shl (local.get $j) (i32.const 2))) (f32.const 0))
        (f32.store (i32.add (local.get $dbeta) (i32.shl (local.get $j) (i32.const 2))) (f32.const 0))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $zero)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $dim)) (i32.const 2)))
        (local.set $mg (f32.div (call $sumProducts (i32.add (local.get $dy) (local.get $row)) (local.get $gamma) (local.get $dim)) (local.get $size)))
        (local.set $mgn (f32.div
          (call $sumScaledProducts (i32.add (local.get $dy) (local.get $row)) (local.get $gamma) (i32.add (local.get $normed) (local.get $row)) (local.get $dim))
          (local.get $size)))
        (local.set $rs (f32.load (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $j (i32.const 0))
        (block $vDone
          (loop $vec
            (br_if $vDone (i32.ge_u (local.get $j) (local.get $vecEnd)))
            (local.set $col (i32.shl (local.get $j) (i32.const 2)))
            (local.set $at (i32.add (local.get $row) (local.get $col)))
            (local.set $d (v128.load (i32.add (local.get $dy) (local.get $at))))
            (local.set $nv (v128.load (i32.add (local.get $normed) (local.get $at))))
            (local.set $g (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $gamma) (local.get $col)))))
            (v128.store (i32.add (local.get $dx) (local.get $at))
              (f32x4.mul (f32x4.splat (local.get $rs))
                (f32x4.sub
                  (f32x4.sub (local.get $g) (f32x4.splat (local.get $mg)))
                  (f32x4.mul (local.get $nv) (f32x4.splat (local.get $mgn))))))
            (v128.store (i32.add (local.get $dgamma) (local.get $col))
              (f32x4.add (v128.load (i32.add (local.get $dgamma) (local.get $col))) (f32x4.mul (local.get $d) (local.get $nv))))
            (v128.store (i32.add (local.get $dbeta) (local.get $col))
              (f32x4.add (v128.load (i32.add (local.get $dbeta) (local.get $col))) (local.get $d)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $vec)))
        (block $tDone
          (loop $tail
            (br_if $tDone (i32.ge_u (local.get $j) (local.get $dim)))
            (local.set $col (i32.shl (local.get $j) (i32.const 2)))
            (local.set $at (i32.add (local.get $row) (local.get $col)))
            (local.set $ds (f32.load (i32.add (local.get $dy) (local.get $at))))
            (local.set $ns (f32.load (i32.add (local.get $normed) (local.get $at))))
            (local.set $gs (f32.mul (local.get $ds) (f32.load (i32.add (local.get $gamma) (local.get $col)))))
            (f32.store (i32.add (local.get $dx) (local.get $at))
              (f32.mul (local.get $rs)
                (f32.sub (f32.sub (local.get $gs) (local.get $mg)) (f32.mul (local.get $ns) (local.get $mgn)))))
            (f32.store (i32.add (local.get $dgamma) (local.get $col))
              (f32.add (f32.load (i32.add (local.get $dgamma) (local.get $col))) (f32.mul (local.get $ds) (local.get $ns))))
            (f32.store (i32.add (local.get $dbeta) (local.get $col))
              (f32.add (f32.load (i32.add (local.get $dbeta) (local.get $col))) (local.get $ds)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tail)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop)))))
