;; One Adam update over n float32 elements in tfjs-wasm's heap (src/model/optimizer.ts):
;;   g = decay ? grad + θ·wd : grad
;;   m = m·β1 + g·(1 − β1)           v = v·β2 + (g·g)·(1 − β2)
;;   θ' = θ − (m / (√v / √bias2 + ε)) · stepSize
;; Every operation is one IEEE float32 operation in this order (no fused multiply-add), so the
;; result is bit for bit the tensor formulation's and the JS loop's. Four lanes at a time, then
;; the tail one by one. m and v are updated in place; θ' goes to `out`. Pointers are byte offsets.
(module
  (import "env" "memory" (memory 1))
  (func (export "adam_update")
    (param $theta i32) (param $grad i32) (param $m i32) (param $v i32) (param $out i32) (param $n i32)
    (param $decay i32) (param $wd f32) (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32)
    (param $sqrtBias2 f32) (param $eps f32) (param $stepSize f32)
    (local $i i32) (local $at i32) (local $vecEnd i32)
    (local $th v128) (local $g v128) (local $mi v128) (local $vi v128)
    (local $thS f32) (local $gS f32) (local $miS f32) (local $viS f32)
    (local.set $vecEnd (i32.and (local.get $n) (i32.const -4)))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $i) (local.get $vecEnd)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $th (v128.load (i32.add (local.get $theta) (local.get $at))))
        (local.set $g (v128.load (i32.add (local.get $grad) (local.get $at))))
        (if (local.get $decay)
          (then (local.set $g (f32x4.add (local.get $g) (f32x4.mul (local.get $th) (f32x4.splat (local.get $wd)))))))
        (local.set $mi (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $at))) (f32x4.splat (local.get $b1)))
          (f32x4.mul (local.get $g) (f32x4.splat (local.get $omb1)))))
        (local.set $vi (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $at))) (f32x4.splat (local.get $b2)))
          (f32x4.mul (f32x4.mul (local.get $g) (local.get $g)) (f32x4.splat (local.get $omb2)))))
        (v128.store (i32.add (local.get $m) (local.get $at)) (local.get $mi))
        (v128.store (i32.add (local.get $v) (local.get $at)) (local.get $vi))
        (v128.store (i32.add (local.get $out) (local.get $at))
          (f32x4.sub (local.get $th)
            (f32x4.mul
              (f32x4.div (local.get $mi)
                (f32x4.add (f32x4.div (f32x4.sqrt (local.get $vi)) (f32x4.splat (local.get $sqrtBias2))) (f32x4.splat (local.get $eps))))
              (f32x4.splat (local.get $stepSize)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (local.set $thS (f32.load (i32.add (local.get $theta) (local.get $at))))
        (local.set $gS (f32.load (i32.add (local.get $grad) (local.get $at))))
        (if (local.get $decay)
          (then (local.set $gS (f32.add (local.get $gS) (f32.mul (local.get $thS) (local.get $wd))))))
        (local.set $miS (f32.add
          (f32.mul (f32.load (i32.add (local.get $m) (local.get $at))) (local.get $b1))
          (f32.mul (local.get $gS) (local.get $omb1))))
        (local.set $viS (f32.add
          (f32.mul (f32.load (i32.add (local.get $v) (local.get $at))) (local.get $b2))
          (f32.mul (f32.mul (local.get $gS) (local.get $gS)) (local.get $omb2))))
        (f32.store (i32.add (local.get $m) (local.get $at)) (local.get $miS))
        (f32.store (i32.add (local.get $v) (local.get $at)) (local.get $viS))
        (f32.store (i32.add (local.get $out) (local.get $at))
          (f32.sub (local.get $thS)
            (f32.mul
              (f32.div (local.get $miS)
                (f32.add (f32.div (f32.sqrt (local.get $viS)) (local.get $sqrtBias2)) (local.get $eps)))
              (local.get $stepSize))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))))
