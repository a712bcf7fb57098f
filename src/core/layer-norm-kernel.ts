/**
 * LayerNorm over the last axis as one kernel forward and one backward (wasm: src/core/wasm/layer-norm.wat
 * on tfjs' heap; cpu: the same loops in JS), in place of the ~9 forward and ~13 backward kernels of
 * the composed form in src/model/layers.ts.
 *
 * Why: a tiny STELLA step normalises ~70 times; at ~15–20 µs of engine bookkeeping per kernel call
 * the composed form cost more in calls than in arithmetic, and each of its kernels made a pass over
 * memory. The values are the composed form's on wasm, bit for bit: row sums in order from 0 (tfjs-wasm's
 * Mean and Sum), every other step one float32 operation in the same order (see the .wat header). The
 * cpu kernel computes the same operations (Math.fround after each), so both backends agree; it exists
 * so that the tensors alive during a step, and so the measured memory, are the same on both.
 * Elsewhere (tfjs-node, webgl) callers keep the composed form.
 */
import * as tf from '@tensorflow/tfjs';
import { heapSimdKernels, type HeapSimdKernels, type WasmHeapModule } from './heap-simd.ts';
import { kernelOnce } from './wasm-kernel.ts';

const FORWARD = 'StellaLayerNorm';
const BACKWARD = 'StellaLayerNormGrad';

interface WasmBackend {
  wasm: WasmHeapModule;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
interface CpuBackend {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

const f = Math.fround;

/** The JS loops of the .wat, float32 after every operation. */
const cpu = {
  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, out: Float32Array, normed: Float32Array, rstd: Float32Array, rows: number, dim: number, eps: number) {
    for (let r = 0, o = 0; r < rows; r++, o += dim) {
      let s = 0;
      for (let j = 0; j < dim; j++) s = f(s + x[o + j]);
      const mean = f(s / dim);
      let s2 = 0;
      for (let j = 0; j < dim; j++) {
        const c = f(x[o + j] - mean);
        normed[o + j] = c;
        s2 = f(s2 + f(c * c));
      }
      const rs = f(1 / f(Math.sqrt(f(f(s2 / dim) + eps))));
      rstd[r] = rs;
      for (let j = 0; j < dim; j++) {
        const n = f(normed[o + j] * rs);
        normed[o + j] = n;
        out[o + j] = f(f(n * gamma[j]) + beta[j]);
      }
    }
  },
  layerNormGrad(dy: Float32Array, normed: Float32Array, rstd: Float32Array, gamma: Float32Array, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, rows: number, dim: number) {
    dgamma.fill(0);
    dbeta.fill(0);
    for (let r = 0, o = 0; r < rows; r++, o += dim) {
      let sg = 0, sgn = 0;
      for (let j = 0; j < dim; j++) sg = f(sg + f(dy[o + j] * gamma[j]));
      for (let j = 0; j < dim; j++) sgn = f(sgn + f(f(dy[o + j] * gamma[j]) * normed[o + j]));
      const mg = f(sg / dim), mgn = f(sgn / dim), rs = rstd[r];
      for (let j = 0; j < dim; j++) {
        const d = dy[o + j], n = normed[o + j];
        dx[o + j] = f(rs * f(f(f(d * gamma[j]) - mg) - f(n * mgn)));
        dgamma[j] = f(dgamma[j] + f(d * n));
        dbeta[j] = f(dbeta[j] + d);
      }
    }
  },
};

/** Our heap kernels on this wasm backend, or undefined (the threaded build: shared memory). */
const heapKernels = (backend: WasmBackend): HeapSimdKernels | undefined => heapSimdKernels(backend.wasm);

const ensureForward = kernelOnce(FORWARD, {
  wasm: ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackend;
    const x = inputs.x as tf.TensorInfo, [rows, dim] = x.shape;
    const outs = [wasm.makeOutput([rows, dim], 'float32'), wasm.makeOutput([rows, dim], 'float32'), wasm.makeOutput([rows, 1], 'float32')];
    // Offsets after the allocations (they may grow the heap; offsets stay valid).
    const at = (t: tf.TensorInfo) => wasm.dataIdMap.get(t.dataId).memoryOffset;
    heapKernels(wasm)!.layerNorm(at(x), at(inputs.gamma as tf.TensorInfo), at(inputs.beta as tf.TensorInfo), at(outs[0]), at(outs[1]), at(outs[2]), rows, dim, attrs!.eps as number);
    return outs;
  },
  cpu: ({ inputs, backend, attrs }) => {
    const c = backend as unknown as CpuBackend;
    const values = (t: tf.TensorInfo) => c.data.get(t.dataId).values;
    const x = inputs.x as tf.TensorInfo, [rows, dim] = x.shape;
    const out = new Float32Array(rows * dim), normed = new Float32Array(rows * dim), rstd = new Float32Array(rows);
    cpu.layerNorm(values(x), values(inputs.gamma as tf.TensorInfo), values(inputs.beta as tf.TensorInfo), out, normed, rstd, rows, dim, attrs!.eps as number);
    return [c.makeTensorInfo([rows, dim], 'float32', out), c.makeTensorInfo([rows, dim], 'float32', normed), c.makeTensorInfo([rows, 1], 'float32', rstd)];
  },
});

const ensureBackward = kernelOnce(BACKWARD, {
  wasm: ({ inputs, backend }) => {
    const wasm = backend as unknown as WasmBackend;
    const dy = inputs.dy as tf.TensorInfo, [rows, dim] = dy.shape;
    const outs = [wasm.makeOutput([rows, dim], 'float32'), wasm.makeOutput([dim], 'float32'), wasm.makeOutput([dim], 'float32')];
    const at = (t: tf.TensorInfo) => wasm.dataIdMap.get(t.dataId).memoryOffset;
    heapKernels(wasm)!.layerNormGrad(at(dy), at(inputs.normed as tf.TensorInfo), at(inputs.rstd as tf.TensorInfo), at(inputs.gamma as tf.TensorInfo), at(outs[0]), at(outs[1]), at(outs[2]), rows, dim);
    return outs;
  },
  cpu: ({ inputs, backend }) => {
    const c = backend as unknown as CpuBackend;
    const values = (t: tf.TensorInfo) => c.data.get(t.dataId).values;
    const dy = inputs.dy as tf.TensorInfo, [rows, dim] = dy.shape;
    const dx = new Float32Array(rows * dim), dgamma = new Float32Array(dim), dbeta = new Float32Array(dim);
    cpu.layerNormGrad(values(dy), values(inputs.normed as tf.TensorInfo), values(inputs.rstd as tf.TensorInfo), values(inputs.gamma as tf.TensorInfo), dx, dgamma, dbeta, rows, dim);
    return [c.makeTensorInfo([rows, dim], 'float32', dx), c.makeTensorInfo([dim], 'float32', dgamma), c.makeTensorInfo([dim], 'float32', dbeta)];
  },
});

/** Whether the kernels run here: wasm with our heap module (not the threaded build), or cpu. */
function available(): boolean {
  const name = tf.getBackend();
  if (name === 'cpu') return true;
  return name === 'wasm' && heapKernels(tf.backend() as unknown as WasmBackend) !== undefined;
}

/**
 * y = LayerNorm(x)·γ + β over the last axis of x [rows, dim], with the normalised x̂ and r = 1/√(σ² + ε)
 * [rows, 1] that the backward needs; undefined where the kernel does not run. No gradient of its own
 * (it runs inside the forward of a custom-gradient op).
 */
export function layerNormKernel(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): { out: tf.Tensor2D; normed: tf.Tensor2D; rstd: tf.Tensor2D } | undefined {
  if (!available() || x.dtype !== 'float32') return undefined;
  ensureForward();
  const [out, normed, rstd] = tf.engine().runKernel(FORWARD, { x, gamma, beta }, { eps }) as unknown as tf.Tensor2D[];
  return { out, normed, rstd };
}

/** [dx, dγ, dβ] of `layerNormKernel` for upstream dy [rows, dim]; undefined where the kernel does not run. */
export function layerNormGradKernel(dy: tf.Tensor2D, normed: tf.Tensor2D, rstd: tf.Tensor2D, gamma: tf.Tensor): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D] | undefined {
  if (!available() || dy.dtype !== 'float32') return undefined;
  ensureBackward();
  return tf.engine().runKernel(BACKWARD, { dy, normed, rstd, gamma }, {}) as unknown as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
}
