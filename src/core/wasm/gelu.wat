;; GELU forward and backward on tfjs-wasm's heap (src/core/gelu-kernel.ts), four floats at a time,
;; bit for bit what tfjs-wasm's kernels give for the composed form:
;;   forward   t = x·√½   e = erf(t)   cdf = (e + 1)·½   y = x·cdf
;;   backward  s = (x·x)·(−½)   p = (exp(s)·x)·(2π)^-½   dx = dy·(cdf + p)
;; tfjs-wasm computes Erf and Exp one float at a time with the libc it is built against (musl):
;; erff (FreeBSD's, in musl's form with erfc2) and expf (ARM's optimized routines: a 32-entry table
;; of 2^(i/32) and a cubic in double). Here the same operations run on four lanes: every float32
;; and float64 operation of those routines, in their order, so the results are the same floats
;; (checked on every float, and by test/core/gelu-kernel.test.ts). erff's branches are computed for
;; four lanes and each lane's own selected; a branch no lane needs is skipped. wasm has no implicit fused multiply-add and keeps subnormals, as the
;; scalar code does.
;; $tab: a heap block of 352 bytes, 8-byte aligned: 32 i64 (bits of 2^(i/32) − (i << 47)), then
;; 96 bytes of scratch (the forward's queue, and the last n mod 4 elements). Pointers are byte offsets; n need not divide by 4.
(module
  (import "env" "memory" (memory 1))

  ;; Two doubles of expf before the final rounding to float: 2^(k/32)·(1 + c2·r + c1·r² + c0·r³).
  (func $expHalf (param $xd v128) (param $tab i32) (result v128)
    (local $z v128) (local $kd v128) (local $r v128) (local $t v128) (local $poly v128)
    (local.set $z (f64x2.mul (f64x2.splat (f64.const 0x1.71547652b82fep+5)) (local.get $xd)))
    ;; k = round(z) by the 1.5·2^52 shift; its low bits index the table.
    (local.set $kd (f64x2.add (local.get $z) (f64x2.splat (f64.const 0x1.8p+52))))
    (local.set $t (i64x2.replace_lane 1
      (i64x2.splat (i64.load (i32.add (local.get $tab)
        (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 0 (local.get $kd))) (i32.const 31)) (i32.const 3)))))
      (i64.load (i32.add (local.get $tab)
        (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 1 (local.get $kd))) (i32.const 31)) (i32.const 3))))))
    ;; s = 2^(k/32): the table entry plus k in the exponent bits.
    (local.set $t (i64x2.add (local.get $t) (i64x2.shl (local.get $kd) (i32.const 47))))
    (local.set $kd (f64x2.sub (local.get $kd) (f64x2.splat (f64.const 0x1.8p+52))))
    (local.set $r (f64x2.sub (local.get $z) (local.get $kd)))
    (local.set $poly (f64x2.add (f64x2.mul (f64x2.splat (f64.const 0x1.c6af84b912394p-20)) (local.get $r)) (f64x2.splat (f64.const 0x1.ebfce50fac4f3p-13))))
    (f64x2.mul
      (f64x2.add
        (f64x2.mul (local.get $poly) (f64x2.mul (local.get $r) (local.get $r)))
        (f64x2.add (f64x2.mul (f64x2.splat (f64.const 0x1.62e42ff0c52d6p-6)) (local.get $r)) (f64x2.splat (f64.const 1))))
      (local.get $t)))

  ;; expf of four floats.
  (func $expf (param $x v128) (param $tab i32) (result v128)
    (local $y v128)
    (local.set $y (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
      (f32x4.demote_f64x2_zero (call $expHalf (f64x2.promote_low_f32x4 (local.get $x)) (local.get $tab)))
      (f32x4.demote_f64x2_zero (call $expHalf
        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))
        (local.get $tab)))))
    ;; Out of range: above log(2^128) ∞, below log(2^-150) 0 (−∞ included), NaN stays NaN.
    (local.set $y (v128.bitselect (f32x4.splat (f32.const inf)) (local.get $y) (f32x4.gt (local.get $x) (f32x4.splat (f32.const 0x1.62e42ep+6)))))
    (local.set $y (v128.bitselect (f32x4.splat (f32.const 0)) (local.get $y) (f32x4.lt (local.get $x) (f32x4.splat (f32.const -0x1.9fe368p+6)))))
    (v128.bitselect (f32x4.add (local.get $x) (local.get $x)) (local.get $y) (f32x4.ne (local.get $x) (local.get $x))))

  ;; erff's branch for |x| < 0.84375: x + x·R(x²)/S(x²); below 2^-28, 0.125·(8x + efx8·x).
  (func $erfSmall (param $x v128) (result v128)
    (local $z v128)
    (local.set $z (f32x4.mul (local.get $x) (local.get $x)))
    (v128.bitselect
      (f32x4.mul (f32x4.splat (f32.const 0x1p-3))
        (f32x4.add (f32x4.mul (f32x4.splat (f32.const 8)) (local.get $x)) (f32x4.mul (f32x4.splat (f32.const 0x1.06eba80000000p+0)) (local.get $x))))
      (f32x4.add (local.get $x) (f32x4.mul (local.get $x) (f32x4.div (f32x4.add (f32x4.splat (f32.const 0x1.06eba80000000p-3)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const -0x1.4cd7d60000000p-2)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const -0x1.d2a51e0000000p-6)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const -0x1.7a29120000000p-8)) (f32x4.mul (local.get $z) (f32x4.splat (f32.const -0x1.8ead620000000p-16)))))))))) (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 0x1.97779c0000000p-2)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 0x1.0a54c60000000p-4)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 0x1.4d022c0000000p-8)) (f32x4.mul (local.get $z) (f32x4.add (f32x4.splat (f32.const 0x1.15dc920000000p-13)) (f32x4.mul (local.get $z) (f32x4.splat (f32.const -0x1.09c4340000000p-18)))))))))))))))
      (i32x4.lt_s (f32x4.abs (local.get $x)) (i32x4.splat (i32.const 0x31800000)))))

  ;; erff for |x| ≥ 0.84375 (and NaN): ±(1 − erfc2(|x|)); at |x| ≥ 6 erfc2 is 2^-120 (1 − 2^-120 rounds to 1).
  (func $erfLarge (param $x v128) (param $tab i32) (result v128)
    (local $ax v128) (local $s v128) (local $near v128) (local $mid v128) (local $tail v128)
    (local $e2 v128) (local $e2Tail v128) (local $zt v128)
    (local.set $ax (f32x4.abs (local.get $x)))
    (local.set $mid (i32x4.lt_s (local.get $ax) (i32x4.splat (i32.const 0x3fa00000))))
    (local.set $tail (i32x4.lt_s (local.get $ax) (i32x4.splat (i32.const 0x40c00000))))
    (local.set $e2 (f32x4.splat (f32.const 0x1p-120)))
    ;; |x| < 1.25: erfc2 = (1 − erx) − P(s)/Q(s), s = |x| − 1.
    (if (v128.any_true (local.get $mid)) (then
      (local.set $s (f32x4.sub (local.get $ax) (f32x4.splat (f32.const 1))))
      (local.set $e2 (v128.bitselect
        (f32x4.sub (f32x4.splat (f32.const 0x1.3d4fa80000000p-3)) (f32x4.div (f32x4.add (f32x4.splat (f32.const -0x1.359b8c0000000p-9)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.a8d00a0000000p-2)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const -0x1.7d24100000000p-2)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.45fca80000000p-2)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const -0x1.c639840000000p-4)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.22a3660000000p-5)) (f32x4.mul (local.get $s) (f32x4.splat (f32.const -0x1.1bf3800000000p-9)))))))))))))) (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.b3e6620000000p-4)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.14af0a0000000p-1)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.2635ce0000000p-4)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.02660e0000000p-3)) (f32x4.mul (local.get $s) (f32x4.add (f32x4.splat (f32.const 0x1.bedc260000000p-7)) (f32x4.mul (local.get $s) (f32x4.splat (f32.const 0x1.88b5460000000p-7))))))))))))))))
        (local.get $e2) (local.get $mid)))))
    ;; 1.25 ≤ |x| < 6: erfc2 = expf(−z² − 0.5625)·expf((z − |x|)(z + |x|) + R(s)/S(s)) / |x|, s = 1/x²,
    ;; z = |x| with its 13 low bits cleared; R/S from the set for |x| < 1/0.35 or the one above.
    (if (v128.any_true (v128.andnot (local.get $tail) (local.get $mid))) (then
      (local.set $s (f32x4.div (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $ax) (local.get $ax))))
      (local.set $near (i32x4.lt_s (local.get $ax) (i32x4.splat (i32.const 0x4036db6d))))
      (local.set $zt (v128.and (local.get $ax) (i32x4.splat (i32.const 0xffffe000))))
      (local.set $e2Tail (f32x4.div
        (f32x4.mul
          (call $expf (f32x4.sub (f32x4.neg (f32x4.mul (local.get $zt) (local.get $zt))) (f32x4.splat (f32.const 0x1.2p-1))) (local.get $tab))
          (call $expf (f32x4.add
            (f32x4.mul (f32x4.sub (local.get $zt) (local.get $ax)) (f32x4.add (local.get $zt) (local.get $ax)))
            (f32x4.div (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.4341260000000p-7)) (f32x4.splat (f32.const -0x1.4341240000000p-7)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.63416e0000000p-1)) (f32x4.splat (f32.const -0x1.993ba80000000p-1)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.51e0440000000p+3)) (f32x4.splat (f32.const -0x1.1c20960000000p+4)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.f300ae0000000p+5)) (f32x4.splat (f32.const -0x1.4145d40000000p+7)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.44cb180000000p+7)) (f32x4.splat (f32.const -0x1.3ec8820000000p+9)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.7135ce0000000p+7)) (f32x4.splat (f32.const -0x1.0046160000000p+10)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const -0x1.4526560000000p+6)) (f32x4.splat (f32.const -0x1.e384ea0000000p+8)) (local.get $near)) (f32x4.mul (local.get $s) (v128.bitselect (f32x4.splat (f32.const -0x1.3a0efc0000000p+3)) (f32x4.splat (f32.const 0x0.0p+0)) (local.get $near)))))))))))))))) (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.3a6b9c0000000p+4)) (f32x4.splat (f32.const 0x1.e568b20000000p+4)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.1350c60000000p+7)) (f32x4.splat (f32.const 0x1.45cae20000000p+8)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.b290de0000000p+8)) (f32x4.splat (f32.const 0x1.802eb20000000p+10)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.42b1920000000p+9)) (f32x4.splat (f32.const 0x1.8ffb760000000p+11)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.ad02160000000p+8)) (f32x4.splat (f32.const 0x1.3f219c0000000p+11)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.b28a3e0000000p+6)) (f32x4.splat (f32.const 0x1.da874e0000000p+8)) (local.get $near)) (f32x4.mul (local.get $s) (f32x4.add (v128.bitselect (f32x4.splat (f32.const 0x1.a47ef80000000p+2)) (f32x4.splat (f32.const -0x1.670e240000000p+4)) (local.get $near)) (f32x4.mul (local.get $s) (v128.bitselect (f32x4.splat (f32.const -0x1.eeff2e0000000p-5)) (f32x4.splat (f32.const 0x0.0p+0)) (local.get $near)))))))))))))))))))) (local.get $tab)))
        (local.get $ax)))
      (local.set $e2 (v128.bitselect (local.get $e2) (local.get $e2Tail) (local.get $mid)))
      (local.set $e2 (v128.bitselect (local.get $e2) (f32x4.splat (f32.const 0x1p-120)) (local.get $tail)))))
    ;; 1 − erfc2 is positive: x's sign bit makes it ±; NaN stays NaN.
    (v128.bitselect
      (f32x4.add (local.get $x) (local.get $x))
      (v128.or (f32x4.sub (f32x4.splat (f32.const 1)) (local.get $e2)) (v128.and (local.get $x) (i32x4.splat (i32.const 0x80000000))))
      (f32x4.ne (local.get $x) (local.get $x))))

  ;; Lanes of x in erff's first branch (|x| < 0.84375).
  (func $isSmall (param $x v128) (result v128)
    (i32x4.lt_s (f32x4.abs (local.get $x)) (i32x4.splat (i32.const 0x3f580000))))

  ;; erff of four floats.
  (func $erff (param $x v128) (param $tab i32) (result v128)
    (local $small v128)
    (local.set $small (call $isSmall (local.get $x)))
    (if (result v128) (i32x4.all_true (local.get $small))
      (then (call $erfSmall (local.get $x)))
      (else (v128.bitselect (call $erfSmall (local.get $x)) (call $erfLarge (local.get $x) (local.get $tab)) (local.get $small)))))

  ;; The forward's values from erf(x·√½): cdf = (e + 1)·½, y = x·cdf.
  (func $cdfOf (param $e v128) (result v128)
    (f32x4.mul (f32x4.add (local.get $e) (f32x4.splat (f32.const 1))) (f32x4.splat (f32.const 0.5))))

  ;; The forward keeps every vector on erff's cheap first branch and queues the lanes that need the
  ;; others (|x·√½| ≥ 0.84375, a minority of activations), four at a time, so that the costly branches
  ;; run on full vectors. The queue at $q (scratch): x [4] at 0, where y goes [4] at 16, where Φ goes
  ;; [4] at 32.
  (func $flush (param $q i32) (param $count i32) (param $tab i32)
    (local $x v128) (local $cdf v128) (local $y v128)
    (local.set $x (v128.load (local.get $q)))
    (local.set $cdf (call $cdfOf (call $erfLarge (f32x4.mul (local.get $x) (f32x4.splat (f32.const 0x1.6a09e60000000p-1))) (local.get $tab))))
    (local.set $y (f32x4.mul (local.get $x) (local.get $cdf)))
    (f32.store (i32.load offset=16 (local.get $q)) (f32x4.extract_lane 0 (local.get $y)))
    (f32.store (i32.load offset=32 (local.get $q)) (f32x4.extract_lane 0 (local.get $cdf)))
    (if (i32.gt_u (local.get $count) (i32.const 1)) (then
      (f32.store (i32.load offset=20 (local.get $q)) (f32x4.extract_lane 1 (local.get $y)))
      (f32.store (i32.load offset=36 (local.get $q)) (f32x4.extract_lane 1 (local.get $cdf)))))
    (if (i32.gt_u (local.get $count) (i32.const 2)) (then
      (f32.store (i32.load offset=24 (local.get $q)) (f32x4.extract_lane 2 (local.get $y)))
      (f32.store (i32.load offset=40 (local.get $q)) (f32x4.extract_lane 2 (local.get $cdf)))))
    (if (i32.gt_u (local.get $count) (i32.const 3)) (then
      (f32.store (i32.load offset=28 (local.get $q)) (f32x4.extract_lane 3 (local.get $y)))
      (f32.store (i32.load offset=44 (local.get $q)) (f32x4.extract_lane 3 (local.get $cdf))))))

  ;; Queues lane value x (its y at outp, its Φ at cdfp); flushes a full queue. Returns the new count.
  (func $enqueue (param $q i32) (param $count i32) (param $x f32) (param $outp i32) (param $cdfp i32) (param $tab i32) (result i32)
    (local $at i32)
    (local.set $at (i32.add (local.get $q) (i32.shl (local.get $count) (i32.const 2))))
    (f32.store (local.get $at) (local.get $x))
    (i32.store offset=16 (local.get $at) (local.get $outp))
    (i32.store offset=32 (local.get $at) (local.get $cdfp))
    (local.set $count (i32.add (local.get $count) (i32.const 1)))
    (if (i32.eq (local.get $count) (i32.const 4)) (then
      (call $flush (local.get $q) (i32.const 4) (local.get $tab))
      (local.set $count (i32.const 0))))
    (local.get $count))

  ;; One vector of the forward: the first branch's y and Φ stored for all four lanes, the other lanes queued.
  (func $gelu4 (param $xp i32) (param $outp i32) (param $cdfp i32) (param $q i32) (param $count i32) (param $tab i32) (result i32)
    (local $x v128) (local $t v128) (local $cdf v128) (local $small v128)
    (local.set $x (v128.load (local.get $xp)))
    (local.set $t (f32x4.mul (local.get $x) (f32x4.splat (f32.const 0x1.6a09e60000000p-1))))
    (local.set $cdf (call $cdfOf (call $erfSmall (local.get $t))))
    (v128.store (local.get $cdfp) (local.get $cdf))
    (v128.store (local.get $outp) (f32x4.mul (local.get $x) (local.get $cdf)))
    (local.set $small (call $isSmall (local.get $t)))
    (if (i32.eqz (i32x4.all_true (local.get $small))) (then
      (if (i32.eqz (i32x4.extract_lane 0 (local.get $small))) (then
        (local.set $count (call $enqueue (local.get $q) (local.get $count) (f32x4.extract_lane 0 (local.get $x)) (local.get $outp) (local.get $cdfp) (local.get $tab)))))
      (if (i32.eqz (i32x4.extract_lane 1 (local.get $small))) (then
        (local.set $count (call $enqueue (local.get $q) (local.get $count) (f32x4.extract_lane 1 (local.get $x))
          (i32.add (local.get $outp) (i32.const 4)) (i32.add (local.get $cdfp) (i32.const 4)) (local.get $tab)))))
      (if (i32.eqz (i32x4.extract_lane 2 (local.get $small))) (then
        (local.set $count (call $enqueue (local.get $q) (local.get $count) (f32x4.extract_lane 2 (local.get $x))
          (i32.add (local.get $outp) (i32.const 8)) (i32.add (local.get $cdfp) (i32.const 8)) (local.get $tab)))))
      (if (i32.eqz (i32x4.extract_lane 3 (local.get $small))) (then
        (local.set $count (call $enqueue (local.get $q) (local.get $count) (f32x4.extract_lane 3 (local.get $x))
          (i32.add (local.get $outp) (i32.const 12)) (i32.add (local.get $cdfp) (i32.const 12)) (local.get $tab)))))))
    (local.get $count))

  ;; One vector of the backward: dx at dxp.
  (func $geluGrad4 (param $dyp i32) (param $xp i32) (param $cdfp i32) (param $dxp i32) (param $tab i32)
    (local $x v128)
    (local.set $x (v128.load (local.get $xp)))
    (v128.store (local.get $dxp) (f32x4.mul (v128.load (local.get $dyp))
      (f32x4.add (v128.load (local.get $cdfp))
        (f32x4.mul
          (f32x4.mul
            (call $expf (f32x4.mul (f32x4.mul (local.get $x) (local.get $x)) (f32x4.splat (f32.const -0.5))) (local.get $tab))
            (local.get $x))
          (f32x4.splat (f32.const 0x1.9884540000000p-2)))))))

  ;; Copies n floats (n < 4) from src to dst; the rest of dst's vector becomes 0 when pad.
  (func $copyTail (param $src i32) (param $dst i32) (param $n i32) (param $pad i32)
    (local $i i32)
    (if (local.get $pad) (then (v128.store (local.get $dst) (v128.const i32x4 0 0 0 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (f32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; y = x·Φ(x) and Φ(x) for n floats.
  (func (export "gelu") (param $x i32) (param $out i32) (param $cdf i32) (param $n i32) (param $tab i32)
    (local $at i32) (local $end i32) (local $rest i32) (local $q i32) (local $count i32)
    (local.set $q (i32.add (local.get $tab) (i32.const 256)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $count (call $gelu4 (i32.add (local.get $x) (local.get $at)) (i32.add (local.get $out) (local.get $at)) (i32.add (local.get $cdf) (local.get $at))
          (local.get $q) (local.get $count) (local.get $tab)))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next)))
    ;; The last n mod 4 floats go through scratch vectors (x at 48, y at 64, Φ at 80).
    (local.set $rest (i32.and (local.get $n) (i32.const 3)))
    (if (local.get $rest) (then
      (call $copyTail (i32.add (local.get $x) (local.get $end)) (i32.add (local.get $q) (i32.const 48)) (local.get $rest) (i32.const 1))
      (local.set $count (call $gelu4 (i32.add (local.get $q) (i32.const 48)) (i32.add (local.get $q) (i32.const 64)) (i32.add (local.get $q) (i32.const 80))
        (local.get $q) (local.get $count) (local.get $tab)))))
    (if (local.get $count) (then (call $flush (local.get $q) (local.get $count) (local.get $tab))))
    (if (local.get $rest) (then
      (call $copyTail (i32.add (local.get $q) (i32.const 64)) (i32.add (local.get $out) (local.get $end)) (local.get $rest) (i32.const 0))
      (call $copyTail (i32.add (local.get $q) (i32.const 80)) (i32.add (local.get $cdf) (local.get $end)) (local.get $rest) (i32.const 0)))))

  ;; dx = dy·(Φ(x) + x·φ(x)) for n floats.
  (func (export "gelu_grad") (param $dy i32) (param $x i32) (param $cdf i32) (param $dx i32) (param $n i32) (param $tab i32)
    (local $at i32) (local $end i32) (local $rest i32) (local $scratch i32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (call $geluGrad4 (i32.add (local.get $dy) (local.get $at)) (i32.add (local.get $x) (local.get $at)) (i32.add (local.get $cdf) (local.get $at)) (i32.add (local.get $dx) (local.get $at)) (local.get $tab))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next)))
    (local.set $rest (i32.and (local.get $n) (i32.const 3)))
    (if (local.get $rest) (then
      (local.set $scratch (i32.add (local.get $tab) (i32.const 256)))
      (call $copyTail (i32.add (local.get $dy) (local.get $end)) (local.get $scratch) (local.get $rest) (i32.const 1))
      (call $copyTail (i32.add (local.get $x) (local.get $end)) (i32.add (local.get $scratch) (i32.const 16)) (local.get $rest) (i32.const 1))
      (call $copyTail (i32.add (local.get $cdf) (local.get $end)) (i32.add (local.get $scratch) (i32.const 32)) (local.get $rest) (i32.const 1))
      (call $geluGrad4 (local.get $scratch) (i32.add (local.get $scratch) (i32.const 16)) (i32.add (local.get $scratch) (i32.const 32)) (i32.add (local.get $scratch) (i32.const 48)) (local.get $tab))
      (call $copyTail (i32.add (local.get $scratch) (i32.const 48)) (i32.add (local.get $dx) (local.get $end)) (local.get $rest) (i32.const 0)))))

  ;; erf and exp of n floats (for tests and for comparing with tfjs' own kernels).
  (func (export "erf") (param $x i32) (param $out i32) (param $n i32) (param $tab i32)
    (local $at i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (v128.store (i32.add (local.get $out) (local.get $at)) (call $erff (v128.load (i32.add (local.get $x) (local.get $at))) (local.get $tab)))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next))))
  (func (export "exp") (param $x i32) (param $out i32) (param $n i32) (param $tab i32)
    (local $at i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (v128.store (i32.add (local.get $out) (local.get $at)) (call $expf (v128.load (i32.add (local.get $x) (local.get $at))) (local.get $tab)))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next)))))
