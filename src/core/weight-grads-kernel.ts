/**
 * The weight and bias gradients of a linear y = x·W + β as one kernel call:
 *   StellaWeightGrads(g [rows, out], x [rows, in]) → [dW = xᵀ·g [in, out], dβ = Σ_rows g [out]]
 *
 * On wasm it is our SIMD loop (src/core/wasm/weight-grads.wat) on tfjs' heap: no transpose of x, no
 * XNNPACK operator to create and no right operand to pack for every gradient (the composed path paid
 * all three, ~10 engine calls per linear). Each output is summed over the rows in order from +0, as
 * XNNPACK's product and tfjs' Sum sum them, so dW and dβ are the composed path's bit for bit
 * (test/core/weight-grads-kernel.test.ts). On cpu, and on wasm where the heap kernels do not load, the
 * backend's own Transpose, product and Sum run in the composed path's order: again its values. Both
 * backends register it, so the tensors alive during a step stay the same on each (the memory bench).
 * Ref: src/core/fast-matmul.ts weightAndBiasGrads (the composed path), docs/benchmarks.md "STELLA step".
 */
import * as tf from '@tensorflow/tfjs';
import { linear2d } from './view-kernels.ts';
import { backendCalls, kernelOnce, onBackends, wasmHeap } from './wasm-kernel.ts';

const NAME = 'StellaWeightGrads';
const BACKENDS = ['wasm', 'cpu'];

const weightGrads: tf.KernelFunc = ({ inputs, backend }) => {
  const g = inputs.g as tf.TensorInfo, x = inputs.x as tf.TensorInfo;
  const [rows, inDim] = x.shape, outDim = g.shape[1];
  const heap = wasmHeap(backend);
  if (heap) {
    const dw = heap.output([inDim, outDim]), db = heap.output([outDim]);
    // Offsets after the allocations (they may grow the heap; offsets stay valid).
    heap.simd.weightGrads(heap.at(x), heap.at(g), heap.at(dw), heap.at(db), rows, inDim, outDim);
    return [dw, db];
  }
  const calls = backendCalls(backend);
  const transpose = (t: tf.TensorInfo) => calls.run('Transpose', { x: t }, { perm: [1, 0] });
  const product = (a: tf.TensorInfo, b: tf.TensorInfo) => linear2d({ inputs: { x: a, w: b }, attrs: {}, backend }) as tf.TensorInfo;
  try {
    if (inDim < outDim) {
      // dWᵀ = gᵀ·x with the narrower x as the right operand, then transposed; dβ a last-axis sum of gᵀ.
      const gT = transpose(g);
      const dwT = product(gT, x);
      const dw = transpose(dwT);
      const db = calls.run('Sum', { x: gT }, { axis: [1], keepDims: false });
      calls.free(gT, dwT);
      return [dw, db];
    }
    const xT = transpose(x);
    const dw = product(xT, g);
    calls.free(xT);
    const db = product(calls.constant(1, [1, rows]), g);
    return [dw, { ...db, shape: [outDim] }];
  } finally {
    calls.done();
  }
};

const ensureKernel = kernelOnce(NAME, onBackends(BACKENDS, weightGrads));

/**
 * [dW, dβ] of y = x·W + β for the upstream gradient g, one kernel call; undefined where it is not
 * registered (the caller composes them). No gradient: it runs inside a gradient function.
 */
export function weightGradsKernel(g: tf.Tensor2D, x: tf.Tensor2D): [tf.Tensor2D, tf.Tensor1D] | undefined {
  if (!BACKENDS.includes(tf.getBackend()) || g.dtype !== 'float32' || x.dtype !== 'float32') return undefined;
  if (g.shape[0] !== x.shape[0]) throw new Error(`weightGradsKernel: g has ${g.shape[0]} rows and x ${x.shape[0]}`);
  ensureKernel();
  return tf.engine().runKernel(NAME, { g, x }, {}) as unknown as [tf.Tensor2D, tf.Tensor1D];
}
