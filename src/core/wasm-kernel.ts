/** Registration of this project's own kernels (fast-matmul.ts, sliced-matmul.ts, view-kernels.ts, layer-norm-kernel.ts, gelu-kernel.ts, weight-grads-kernel.ts, middle-mean-kernel.ts, the fused Adam in src/model/optimizer.ts), and the helpers they share to call a backend's kernels or our heap kernels from inside one. */
import * as tf from '@tensorflow/tfjs';
import type { WasmBackendInternals } from './heap-products.ts';
import { heapSimdKernels, type WasmHeapModule } from './heap-simd.ts';

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

interface AnyBackend {
  /** cpu */
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  /** wasm */
  makeOutput?(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * The backend's own kernels called in order from inside one of ours: `run` a kernel, `free` an
 * intermediate (never an input), `constant` a float32 tensor freed by `done`.
 */
export function backendCalls(backend: unknown) {
  const b = backend as AnyBackend;
  const made: tf.TensorInfo[] = [];
  const constant = (value: number, shape: number[] = []) => {
    const values = new Float32Array(tf.util.sizeFromShape(shape)).fill(value);
    const t = b.makeTensorInfo ? b.makeTensorInfo(shape, 'float32', values) : b.makeOutput!(shape, 'float32', undefined, values);
    made.push(t);
    return t;
  };
  const run = (name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo =>
    backendKernel(name)({ inputs, attrs, backend: backend as tf.KernelBackend }) as tf.TensorInfo;
  const free = (...infos: tf.TensorInfo[]) => { for (const t of infos) b.disposeData(t.dataId, true); };
  const done = () => free(...made.splice(0));
  return { constant, run, free, done };
}

/** wasm's tensors and our SIMD kernels on its heap, where they load (not on cpu, not the threaded build). */
export function wasmHeap(backend: unknown) {
  const wasm = (backend as { wasm?: WasmHeapModule }).wasm;
  const simd = wasm ? heapSimdKernels(wasm) : undefined;
  if (!simd) return undefined;
  const b = backend as WasmBackendInternals;
  return { simd, output: (shape: number[]) => b.makeOutput(shape, 'float32'), at: (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId).memoryOffset };
}
