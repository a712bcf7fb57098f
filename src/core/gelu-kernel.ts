/**
 * GELU forward and backward as one kernel call each (src/model/layers.ts geluFastGrad), in place of
 * five kernels forward and seven backward:
 *   forward   t = x·√½   e = erf(t)   cdf = (e + 1)·½   y = x·cdf                  → [y, cdf]
 *   backward  s = x²·(−½)   p = (exp(s)·x)·(2π)^-½   dx = dy·(cdf + p)           → dx
 *
 * Why: each kernel call through tfjs' engine costs ~15–20 µs of bookkeeping (tape, scopes, tensor
 * tracking), and a tiny STELLA step runs GELU 15 times each way. On wasm one pass of our SIMD kernel
 * (src/core/wasm/gelu.wat) does the whole formula: it reproduces tfjs-wasm's Erf and Exp (musl's
 * erff and expf, which tfjs runs one float at a time) four floats at a time, so the values are the
 * composed form's bit for bit, in about half the time (Erf and Exp were ~12 ms of the step). Where
 * that kernel does not load (the threaded build) and on cpu, the backend's own kernels are called
 * directly, in the composed form's order with its operands, each intermediate freed at once: again
 * the composed form's values. Registered for wasm and cpu, so the tensors alive during a step, and
 * the measured memory, stay the same on both; elsewhere callers keep the composed ops.
 * Ref: docs/benchmarks.md "STELLA step".
 */
import * as tf from '@tensorflow/tfjs';
import { backendCalls, kernelOnce, onBackends, wasmHeap } from './wasm-kernel.ts';

const FORWARD = 'StellaGelu';
const BACKWARD = 'StellaGeluGrad';
const BACKENDS = ['wasm', 'cpu'];
/** φ(x)'s constant (2π)^-½; the composed form in src/model/layers.ts uses it too. */
export const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const gelu: tf.KernelFunc = ({ inputs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const heap = wasmHeap(backend);
  if (heap) {
    const out = heap.output(x.shape), cdf = heap.output(x.shape);
    // Offsets after the allocations (they may grow the heap; offsets stay valid).
    heap.simd.gelu(heap.at(x), heap.at(out), heap.at(cdf), tf.util.sizeFromShape(x.shape));
    return [out, cdf];
  }
  const k = backendCalls(backend);
  try {
    const t = k.run('Multiply', { a: x, b: k.constant(Math.SQRT1_2) });
    const e = k.run('Erf', { x: t });
    k.free(t);
    const shifted = k.run('Add', { a: e, b: k.constant(1) });
    k.free(e);
    const cdf = k.run('Multiply', { a: shifted, b: k.constant(0.5) });
    k.free(shifted);
    return [k.run('Multiply', { a: x, b: cdf }), cdf];
  } finally {
    k.done();
  }
};

const geluGrad: tf.KernelFunc = ({ inputs, backend }) => {
  const { dy, x, cdf } = inputs as Record<string, tf.TensorInfo>;
  const heap = wasmHeap(backend);
  if (heap) {
    const dx = heap.output(x.shape);
    heap.simd.geluGrad(heap.at(dy), heap.at(x), heap.at(cdf), heap.at(dx), tf.util.sizeFromShape(x.shape));
    return dx;
  }
  const k = backendCalls(backend);
  try {
    const squared = k.run('Square', { x });
    const scaled = k.run('Multiply', { a: squared, b: k.constant(-0.5) });
    k.free(squared);
    const e = k.run('Exp', { x: scaled });
    k.free(scaled);
    const ex = k.run('Multiply', { a: e, b: x });
    k.free(e);
    const pdfTimesX = k.run('Multiply', { a: ex, b: k.constant(INV_SQRT_2PI) });
    k.free(ex);
    const slope = k.run('Add', { a: cdf, b: pdfTimesX });
    k.free(pdfTimesX);
    const dx = k.run('Multiply', { a: dy, b: slope });
    k.free(slope);
    return dx;
  } finally {
    k.done();
  }
};

const ensureForward = kernelOnce(FORWARD, onBackends(BACKENDS, gelu));
const ensureBackward = kernelOnce(BACKWARD, onBackends(BACKENDS, geluGrad));
/** Whether `geluKernel` and `geluGradKernel` run for x here (wasm and cpu, float32). */
export const hasGeluKernels = (x: tf.Tensor) => BACKENDS.includes(tf.getBackend()) && x.dtype === 'float32';

/** [x·Φ(x), Φ(x)] in one kernel call, or undefined where it is not registered. No gradient (it runs inside a custom-gradient op). */
export function geluKernel(x: tf.Tensor): { out: tf.Tensor; cdf: tf.Tensor } | undefined {
  if (!hasGeluKernels(x)) return undefined;
  ensureForward();
  const [out, cdf] = tf.engine().runKernel(FORWARD, { x }, {}) as tf.Tensor[];
  return { out, cdf };
}

/** dy·(Φ(x) + x·φ(x)) in one kernel call, or undefined where it is not registered. */
export function geluGradKernel(dy: tf.Tensor, x: tf.Tensor, cdf: tf.Tensor): tf.Tensor | undefined {
  if (!hasGeluKernels(x)) return undefined;
  ensureBackward();
  return tf.engine().runKernel(BACKWARD, { dy, x, cdf }, {}) as tf.Tensor;
}
