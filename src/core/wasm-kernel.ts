/** Registration of this project's own kernels (fast-matmul.ts, sliced-matmul.ts, view-kernels.ts, layer-norm-kernel.ts, gelu-kernel.ts, the fused Adam in src/model/optimizer.ts). */
import * as tf from '@tensorflow/tfjs';

/**
 * A kernel, per backend, and its gradient registered on first use; returns the function that
 * ensures it. tfjs refuses a second registration under one name, and a backend not named keeps
 * whatever the caller falls back to.
 */
export function kernelOnce(kernelName: string, kernels: Record<string, tf.KernelFunc>, gradFunc?: tf.GradFunc): () => void {
  let registered = false;
  return () => {
    if (registered) return;
    registered = true;
    for (const [backendName, kernelFunc] of Object.entries(kernels)) tf.registerKernel({ kernelName, backendName, kernelFunc });
    if (gradFunc) tf.registerGradient({ kernelName, gradFunc });
  };
}

/** `kernelOnce` for a kernel wanted on wasm only. */
export function wasmKernelOnce(kernelName: string, kernelFunc: tf.KernelFunc, gradFunc?: tf.GradFunc): () => void {
  return kernelOnce(kernelName, { wasm: kernelFunc }, gradFunc);
}

/** `kernelFunc` for every backend named, as `kernelOnce` takes them. */
export function onBackends(backendNames: readonly string[], kernelFunc: tf.KernelFunc): Record<string, tf.KernelFunc> {
  return Object.fromEntries(backendNames.map((b) => [b, kernelFunc]));
}

/**
 * The kernel the active backend registers under `name`, to be called directly from inside another
 * kernel (no engine bookkeeping). Looked up per call: shape-only kernels replace them for a while.
 */
export function backendKernel(name: string): tf.KernelFunc {
  const kernel = tf.getKernel(name, tf.getBackend());
  if (!kernel) throw new Error(`${name} is not registered for the ${tf.getBackend()} backend`);
  return kernel.kernelFunc;
}
