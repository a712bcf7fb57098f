/**
 * LayerNorm over the last axis as two wasm-heap kernels, forward and backward, instead of ~6 and ~10
 * tfjs kernels (Mean, Sub, Square, Rsqrt, Mul, Add, and the column sums of the gradient).
 *
 * Why: a tiny STELLA step runs ~40 LayerNorms forward and ~20 backward on small rows (C = 64…96);
 * each tfjs kernel costs engine bookkeeping and a heap pass, so LayerNorm was ~15 % of the kernel
 * calls. One pass per row here, with the statistics accumulated in float64 (more accurate than the
 * float32 kernels; results agree with them to float32 rounding, test/core/fused-layer-norm.test.ts).
 *   forward:  μ, r = (σ² + ε)^-½, x̂ = (x − μ)·r, y = x̂·γ + β          → y, x̂, r
 *   backward: g = dy·γ; dx = r·(g − mean(g) − x̂·mean(g·x̂)); dγ = Σ_rows dy·x̂; dβ = Σ_rows dy
 * Other backends: the same formulas as tfjs ops (src/model/layers.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { freeingGrad } from './fast-matmul.ts';
import { wasmKernelOnce } from './wasm-kernel.ts';

const FORWARD = 'StellaLayerNorm';
const BACKWARD = 'StellaLayerNormGrad';

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

const ensureForward = wasmKernelOnce(FORWARD, ({ inputs, backend, attrs }) => {
  const heap = backend as unknown as HeapBackend;
  const x = inputs.x as tf.TensorInfo;
  const [rows, cols] = x.shape;
  const eps = attrs!.eps as number;
  // Allocate first: an allocation may grow the heap and detach earlier views.
  const outs = [heap.makeOutput([rows, cols], 'float32'), heap.makeOutput([rows, cols], 'float32'), heap.makeOutput([rows, 1], 'float32')];
  const [xs, gamma, beta] = [x, inputs.gamma, inputs.beta].map((t) => heap.typedArrayFromHeap(t as tf.TensorInfo));
  const [y, normed, rstd] = outs.map((t) => heap.typedArrayFromHeap(t));
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += xs[o + c];
    const mean = sum / cols;
    let squares = 0;
    for (let c = 0; c < cols; c++) {
      const d = xs[o + c] - mean;
      squares += d * d;
    }
    const rs = 1 / Math.sqrt(squares / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) {
      const n = (xs[o + c] - mean) * rs;
      normed[o + c] = n;
      y[o + c] = n * gamma[c] + beta[c];
    }
  }
  return outs;
});

const ensureBackward = wasmKernelOnce(BACKWARD, ({ inputs, backend }) => {
  const heap = backend as unknown as HeapBackend;
  const dy = inputs.dy as tf.TensorInfo;
  const [rows, cols] = dy.shape;
  const outs = [heap.makeOutput([rows, cols], 'float32'), heap.makeOutput([cols], 'float32'), heap.makeOutput([cols], 'float32')];
  const [g, normed, rstd, gamma] = [dy, inputs.normed, inputs.rstd, inputs.gamma].map((t) => heap.typedArrayFromHeap(t as tf.TensorInfo));
  const [dx, dGamma, dBeta] = outs.map((t) => heap.typedArrayFromHeap(t));
  const gammaSums = new Float64Array(cols), betaSums = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    let meanG = 0, meanGN = 0;
    for (let c = 0; c < cols; c++) {
      const gc = g[o + c] * gamma[c];
      meanG += gc;
      meanGN += gc * normed[o + c];
      gammaSums[c] += g[o + c] * normed[o + c];
      betaSums[c] += g[o + c];
    }
    meanG /= cols;
    meanGN /= cols;
    const rs = rstd[r];
    for (let c = 0; c < cols; c++) dx[o + c] = rs * (g[o + c] * gamma[c] - meanG - normed[o + c] * meanGN);
  }
  dGamma.set(gammaSums);
  dBeta.set(betaSums);
  return outs;
});

/** LayerNorm of x [R, C] with γ, β [C] on wasm's heap kernels; gradients for x, γ and β. */
export function fusedLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  ensureForward();
  ensureBackward();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- customGrad's typing is variadic
  const op = tf.customGrad(((xx: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, normed, rstd] = tf.engine().runKernel(FORWARD, { x: xx, gamma: w, beta: b }, { eps }) as unknown as tf.Tensor[];
    save([normed, rstd, w]);
    return {
      value: y,
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sn, sr, sw] = saved;
        return tf.engine().runKernel(BACKWARD, { dy, normed: sn, rstd: sr, gamma: sw }, {}) as unknown as tf.Tensor[];
      }),
    };
  }) as any);
  return op(x, gamma, beta) as tf.Tensor2D;
}
