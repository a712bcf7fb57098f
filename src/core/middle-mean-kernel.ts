/**
 * The mean of x [B, H, L, C] over its two middle axes → [B, C], as LPIS takes it over heads and query
 * rows (src/method/importance.ts keyImportance), in one pass on wasm.
 *
 * Why: tfjs-wasm's Mean reduces only the innermost axis, so for axes [1, 2] it first transposes the
 * whole attention map to [B, C, H, L] (~0.65 ms for [4, 12, 64, 128] here, twice a step). Its sum
 * runs over (h, l) in order from +0 and is then divided by H·L in float32; our column sums
 * (src/core/wasm/weight-grads.wat) add the same floats in the same order without moving them, and the
 * division is the same float32 one, so the values are tfjs' bit for bit (test/core/middle-mean-kernel.test.ts).
 * Registered for wasm only; elsewhere (and where our heap kernels do not load) it is tf.mean. No
 * gradient: LPIS runs outside any gradient tape.
 */
import * as tf from '@tensorflow/tfjs';
import { wasmHeap, wasmKernelOnce } from './wasm-kernel.ts';

const NAME = 'StellaMiddleMean';

const ensureKernel = wasmKernelOnce(NAME, ({ inputs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const [b, h, l, c] = x.shape, rows = h * l;
  const heap = wasmHeap(backend)!;
  const out = heap.output([b, c]);
  const from = heap.at(x), to = heap.at(out);
  for (let i = 0; i < b; i++) heap.simd.columnSums(from + i * rows * c * 4, to + i * c * 4, rows, c);
  // The float32 division sum / (H·L): a double quotient of two floats rounds to the same float.
  const sums = new Float32Array((backend as unknown as { wasm: { HEAPF32: Float32Array } }).wasm.HEAPF32.buffer, to, b * c);
  for (let i = 0; i < sums.length; i++) sums[i] = sums[i] / rows;
  return out;
});

/** mean(x, [1, 2]) of a float32 [B, H, L, C] tensor; one kernel call on wasm. */
export function meanOverMiddle(x: tf.Tensor4D): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || !wasmHeap(tf.backend())) return tf.mean(x, [1, 2]) as tf.Tensor2D;
  ensureKernel();
  return tf.engine().runKernel(NAME, { x }, {}) as tf.Tensor2D;
}
