/**
 * Matrix products and row gathers that stay on tfjs-wasm's fast kernels, with gradients that do too.
 *
 * Why: on tfjs-wasm a plain 2-D MatMul runs on XNNPACK (~25 GFLOP/s here) while a transposed or
 * batched MatMul falls to a slow loop (~2 GFLOP/s); `tf.matMul` of [B, L, D] × [D, E] is a batched
 * one, and every matmul gradient is a transposed one. An explicit `tf.transpose` is cheap, so each
 * product here is "reshape to 2-D, transpose explicitly, multiply", forward and backward
 * (`tf.customGrad`). Gathers get a ScatterNd gradient because wasm has no UnsortedSegmentSum.
 * Column sums (bias gradients) are products with a ones row: wasm's axis-0 Sum is ~40× slower.
 *
 * `tensorOps(fast)` gives the model its primitives: `fast = false` is plain tfjs (the naive
 * baseline of `stella bench step --naive`); `fast = true` uses the forms above.
 * Ref: DESIGN.md "Speed notes"; spec Appendix B.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * xᵀ of a 2-D tensor. wasm's rank-2 Transpose is slow when the output row stride is a large power
 * of two ([1024, 256]: ~1.9 ms; the same data as a rank-3 transpose: ~0.6 ms), so such inputs are
 * viewed as [2, M/2, N] and transposed to [N, 2, M/2] = [N, M].
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [m, n] = x.shape;
  if (m % 128 !== 0) return tf.transpose(x);
  return tf.reshape(tf.transpose(tf.reshape(x, [2, m / 2, n]), [2, 0, 1]), [n, m]);
}

/**
 * Column sums of x [M, N] → [N] as ones[1, M]·x: one fast product instead of wasm's slow axis-0 Sum
 * (~40×). x goes through a copy: wasm caches the XNNPACK operator of a product under the data id of
 * its right operand, without the shape, so one buffer seen as `b` under two shapes (a gradient
 * reshaped to [B·L, D] here and [B, L·D] there) would reuse a wrong-sized operator and read out of
 * bounds.
 */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]) as tf.Tensor2D, tf.clone(x)), [x.shape[1]]);
}

/** a·b for 2-D tensors with optional transposes, materialised so the kernel sees plain operands. */
function plainProduct(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  const left = transposeA ? transpose2d(a) : a;
  const right = transposeB ? transpose2d(b) : b;
  return tf.matMul(left, right);
}

/** 2-D product on the fast path; its gradient uses only fast-path products. */
export function fastMatMul2d(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- customGrad's typing is variadic
  const op = tf.customGrad(((x: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: plainProduct(x as tf.Tensor2D, y as tf.Tensor2D, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        // C = op(A)·op(B): dA = dC·op(B)ᵀ (transposed back if A was), dB likewise.
        const da = transposeA ? plainProduct(sb, g, transposeB, true) : plainProduct(g, sb, false, !transposeB);
        const db = transposeB ? plainProduct(g, sa, true, transposeA) : plainProduct(sa, g, !transposeA, false);
        return [da, db];
      },
    };
  }) as any);
  return op(a, b) as tf.Tensor2D;
}

/**
 * Product of [G, M, K] and [G, K, N] ([G, N, K] with `transposeB`). One group is a 2-D product on
 * the fast path. Several groups stay one batched kernel: splitting into 2-D pieces costs more than
 * it saves, because every wasm Slice/Unpack piece copies the whole input first (backend readSync),
 * docs/benchmarks.md.
 */
export function fastBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const [g, m] = a.shape;
  const n = transposeB ? b.shape[1] : b.shape[2];
  if (g === 1) {
    return tf.reshape(fastMatMul2d(tf.reshape(a, [a.shape[1], a.shape[2]]), tf.reshape(b, [b.shape[1], b.shape[2]]), false, transposeB), [1, m, n]);
  }
  return batchedWithFastGrad(a, b, transposeB);
}

/**
 * Batched product with an explicit gradient. The batched kernel is wasm's scalar loop whatever the
 * transpose flags (measured equal), so the flags are passed through rather than materialised.
 */
export function batchedWithFastGrad(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const op = tf.customGrad(((x: tf.Tensor3D, y: tf.Tensor3D, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: tf.matMul(x, y, false, transposeB),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor3D[];
        const g = dy as tf.Tensor3D;
        // C = A·op(B): dA = dC·op(B)ᵀ; dB = Aᵀ·dC (transposed back when B was).
        const da = tf.matMul(g, sb, false, !transposeB);
        const db = transposeB ? tf.matMul(g, sa, true, false) : tf.matMul(sa, g, true, false);
        return [da, db];
      },
    };
  }) as any);
  return op(a, b) as tf.Tensor3D;
}

/**
 * x [M, N] + v [N] with the gradient of v as a fast column sum (autodiff's broadcast gradient is
 * wasm's slow axis-0 Sum).
 */
export function addRowVector(x: tf.Tensor2D, v: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad(((xx: tf.Tensor, vv: tf.Tensor) => ({
    value: tf.add(xx, vv),
    gradFunc: (dy: tf.Tensor) => [dy, tf.reshape(sumRows(dy as tf.Tensor2D), vv.shape)],
  })) as any);
  return op(x, v) as tf.Tensor2D;
}

/** x [M, K]·w [K, N] + b [N] in one fused kernel; gradients as fast 2-D products and a fast column sum. */
export function fastLinear2d(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor): tf.Tensor2D {
  if (!b) return fastMatMul2d(x, w);
  const op = tf.customGrad(((xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.fused.matMul({ a: xx, b: ww, bias: bb }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        return [tf.matMul(g, transpose2d(sw)), tf.matMul(transpose2d(sx), g), sumRows(g)];
      },
    };
  }) as any);
  return op(x, w, b) as tf.Tensor2D;
}

/** Rows `indices` (int32 [M]) of `x` [N, D] → [M, D]; the gradient scatters-adds (duplicates sum). */
export function gatherRows(x: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad(((source: tf.Tensor, save: tf.GradSaveFunc) => {
    save([indices]);
    return {
      value: tf.gather(source, indices, 0),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, source.shape),
    };
  }) as any);
  return op(x) as tf.Tensor2D;
}

/** The model's primitive products. */
export interface TensorOps {
  readonly fast: boolean;
  /** x [..., in] · w [in, out] (+ b [out]) → [..., out]. */
  linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor;
  /** [G, M, K] × [G, K, N] (or [G, N, K] with transposeB) → [G, M, N]. */
  batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB?: boolean): tf.Tensor3D;
}

const FAST: TensorOps = {
  fast: true,
  linear(x, w, b) {
    const inDim = x.shape[x.shape.length - 1];
    const outDim = w.shape[1] as number;
    const y = fastLinear2d(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D, b);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  },
  batchMatMul: fastBatchMatMul,
};

const PLAIN: TensorOps = {
  fast: false,
  linear(x, w, b) {
    // Plain tfjs: flatten to 2-D and tf.matMul; autodiff's gradient products are transposed ones.
    const inDim = x.shape[x.shape.length - 1];
    const y = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D);
    return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), w.shape[1] as number]);
  },
  batchMatMul(a, b, transposeB = false) {
    return tf.matMul(a, b, false, transposeB);
  },
};

export function tensorOps(fast: boolean): TensorOps {
  return fast ? FAST : PLAIN;
}
