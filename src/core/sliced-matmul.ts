/**
 * Batched products op(A)·op(B) of [G, ·, ·] operands as one kernel call, one product per group.
 *
 * Why: tfjs-wasm runs a product on XNNPACK only when it is 2-D and untransposed; every batched or
 * transposed one goes to a scalar triple loop (~1 GFLOP/s here, against ~30 for a SIMD product).
 * Attention is batched (one group per row and head). On wasm each group is our SIMD product on the
 * heap (src/core/heap-products.ts); a transposed left operand is read in place (aᵀ·b), a transposed
 * right one is transposed inside the kernel first, and where our kernels do not load (the threaded
 * build) both are transposed and each group is tfjs' own product on heap views. On cpu the kernel is
 * the backend's Transpose and BatchMatMul. The transposes live inside the kernel on both backends, so
 * the tensors alive during a step (and its peak bytes) are the same on each.
 * Ref: tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc (the XNNPACK condition), docs/benchmarks.md.
 */
import * as tf from '@tensorflow/tfjs';
import { heapProducts, type WasmBackendInternals } from './heap-products.ts';
import { backendCalls, kernelOnce, onBackends, wasmHeap } from './wasm-kernel.ts';

const SLICED_MATMUL = 'StellaSlicedMatMul';

const sliced: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const a = inputs.a as tf.TensorInfo, b = inputs.b as tf.TensorInfo;
  const transposeA = !!attrs?.transposeA, transposeB = !!attrs?.transposeB;
  const calls = backendCalls(backend);
  const swapLast = (x: tf.TensorInfo) => calls.run('Transpose', { x }, { perm: [0, 2, 1] });
  const heap = wasmHeap(backend);
  // Our loop reads a transposed left operand in place; everything else gets plain operands.
  const inPlaceA = transposeA && !!heap;
  const left = transposeA && !inPlaceA ? swapLast(a) : a, right = transposeB ? swapLast(b) : b;
  try {
    const groups = a.shape[0], m = inPlaceA ? a.shape[2] : left.shape[1], inner = right.shape[1], n = right.shape[2];
    if ((backend as { wasm?: unknown }).wasm !== undefined) {
      return heapProducts(backend as unknown as WasmBackendInternals, left, right, undefined, groups, m, inner, n, inPlaceA);
    }
    return calls.run('BatchMatMul', { a: left, b: right }, { transposeA: false, transposeB: false });
  } finally {
    if (left !== a) calls.free(left);
    if (right !== b) calls.free(right);
  }
};

const ensureSlicedKernel = kernelOnce(SLICED_MATMUL, onBackends(['wasm', 'cpu'], sliced));

/**
 * op(A)·op(B) for [G, ·, ·] operands (op = transpose when its flag is set), one kernel call on wasm
 * and cpu; no gradient of its own (callers wrap it).
 */
export function slicedMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeA = false, transposeB = false): tf.Tensor3D {
  const innerA = transposeA ? a.shape[1] : a.shape[2], innerB = transposeB ? b.shape[2] : b.shape[1];
  if (innerA !== innerB) throw new Error(`slicedMatMul: inner sizes ${innerA} and ${innerB} differ ([${a.shape}]${transposeA ? 'ᵀ' : ''} · [${b.shape}]${transposeB ? 'ᵀ' : ''})`);
  if (!['wasm', 'cpu'].includes(tf.getBackend()) || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape[0] !== b.shape[0]) return tf.matMul(a, b, transposeA, transposeB);
  ensureSlicedKernel();
  return tf.engine().runKernel(SLICED_MATMUL, { a, b }, { transposeA, transposeB }) as tf.Tensor3D;
}
