/**
 * Matrix products and row gathers that stay on tfjs-wasm's fast kernels, with gradients that do too.
 *
 * Why: on tfjs-wasm a plain 2-D MatMul runs on XNNPACK (~25 GFLOP/s here) while a transposed or
 * batched MatMul falls to a slow loop (~2 GFLOP/s); `tf.matMul` of [B, L, D] × [D, E] is a batched
 * one, and every matmul gradient is a transposed one. An explicit `tf.transpose` is cheap, so each
 * product here is "reshape to 2-D, transpose explicitly, multiply", forward and backward
 * (`tf.customGrad`). Gathers get a ScatterNd gradient because wasm has no UnsortedSegmentSum.
 *
 * `tensorOps(fast)` gives the model its primitives: `fast = false` is plain tfjs (the naive
 * baseline of `stella bench step --naive`); `fast = true` uses the forms above.
 * Ref: DESIGN.md "Speed notes"; spec Appendix B.
 */
import * as tf from '@tensorflow/tfjs';

/** a·b for 2-D tensors with optional transposes, materialised so the kernel sees plain operands. */
function plainProduct(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  const left = transposeA ? tf.transpose(a) : a;
  const right = transposeB ? tf.transpose(b) : b;
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
 * the fast path. Several groups stay one batched kernel (splitting into 2-D pieces costs more in
 * wasm Unpack/Pack than it saves at attention sizes, docs/benchmarks.md), but every transposed
 * operand is materialised so neither direction uses the transposed variants.
 */
export function fastBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const [g, m] = a.shape;
  const n = transposeB ? b.shape[1] : b.shape[2];
  if (g === 1) {
    return tf.reshape(fastMatMul2d(tf.reshape(a, [a.shape[1], a.shape[2]]), tf.reshape(b, [b.shape[1], b.shape[2]]), false, transposeB), [1, m, n]);
  }
  return batchedWithFastGrad(a, b, transposeB);
}

/** Batched product whose gradient avoids the transposed kernels (explicit transposes instead). */
export function batchedWithFastGrad(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const t = (x: tf.Tensor) => tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;
  const op = tf.customGrad(((x: tf.Tensor3D, y: tf.Tensor3D, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: tf.matMul(x, transposeB ? t(y) : y),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor3D[];
        const g = dy as tf.Tensor3D;
        // C = A·op(B): dA = dC·op(B)ᵀ; dB = Aᵀ·dC (transposed back when B was).
        const da = tf.matMul(g, transposeB ? sb : t(sb));
        const db = transposeB ? tf.matMul(t(g), sa) : tf.matMul(t(sa), g);
        return [da, db];
      },
    };
  }) as any);
  return op(a, b) as tf.Tensor3D;
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
    const flat = tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
    let y: tf.Tensor = fastMatMul2d(flat, w as tf.Tensor2D);
    if (b) y = tf.add(y, b);
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
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
