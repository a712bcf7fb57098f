/** Registration of this project's own wasm kernels (fast-matmul.ts, sliced-matmul.ts, the fused Adam in src/model/optimizer.ts). */
import * as tf from '@tensorflow/tfjs';

/**
 * A wasm kernel (and its gradient) registered on first use; returns the function that ensures it.
 * tfjs refuses a second registration under one name, and the kernels are only wanted on wasm.
 */
export function wasmKernelOnce(kernelName: string, kernelFunc: tf.KernelFunc, gradFunc?: tf.GradFunc): () => void {
  let registered = false;
  return () => {
    if (registered) return;
    registered = true;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    if (gradFunc) tf.registerGradient({ kernelName, gradFunc });
  };
}
