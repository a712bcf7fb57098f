/**
 * Batched products [G, M, K]·[G, K, N] as G XNNPACK products inside the wasm heap.
 *
 * Why: tfjs-wasm runs a product on XNNPACK only when it is 2-D and untransposed; every batched or
 * transposed one goes to a scalar triple loop (~1 GFLOP/s here, against ~20 for XNNPACK). Attention
 * is batched (one group per row and head), so the AVM's and the encoders' attention products were
 * a fifth of the STELLA step. This kernel registers, for each group, heap views of the group's slices
 * of A, B and the output as tensor ids of the wasm backend (no copy), runs tfjs' own 2-D product on
 * them, and drops the views again; small groups run in our SIMD loop instead (src/core/heap-products.ts).
 * Transposed operands are made plain first with a rank-3 Transpose, which wasm runs natively.
 * Ref: tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc (the XNNPACK condition), docs/benchmarks.md.
 */
import * as tf from '@tensorflow/tfjs';
import { heapProducts, type WasmBackendInternals } from './heap-products.ts';
import { wasmKernelOnce } from './wasm-kernel.ts';

const SLICED_MATMUL = 'StellaSlicedMatMul';

const ensureSlicedKernel = wasmKernelOnce(SLICED_MATMUL, ({ inputs, backend }) => {
  const a = inputs.a as tf.TensorInfo, b = inputs.b as tf.TensorInfo;
  const [groups, m, k] = a.shape, n = b.shape[2];
  return heapProducts(backend as unknown as WasmBackendInternals, a, b, undefined, groups, m, k, n);
});

const swapLast = (x: tf.Tensor3D) => tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;

/**
 * op(A)·op(B) for [G, ·, ·] operands (op = transpose when its flag is set), each group an XNNPACK
 * product on wasm; no gradient of its own (callers wrap it). Transposed operands are materialised on
 * every backend, so the tensors alive during a step (and its peak bytes) do not depend on it.
 */
export function slicedMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeA = false, transposeB = false): tf.Tensor3D {
  return tf.tidy(() => {
    const left = transposeA ? swapLast(a) : a, right = transposeB ? swapLast(b) : b;
    if (left.shape[2] !== right.shape[1]) throw new Error(`slicedMatMul: inner sizes ${left.shape[2]} and ${right.shape[1]} differ ([${a.shape}]${transposeA ? 'ᵀ' : ''} · [${b.shape}]${transposeB ? 'ᵀ' : ''})`);
    if (tf.getBackend() !== 'wasm' || a.dtype !== 'float32' || b.dtype !== 'float32' || left.shape[0] !== right.shape[0]) return tf.matMul(left, right);
    ensureSlicedKernel();
    return tf.engine().runKernel(SLICED_MATMUL, { a: left, b: right }, {}) as tf.Tensor3D;
  });
}
