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
