/**
 * Batched products [G, M, K]·[G, K, N] as G XNNPACK products inside the wasm heap.
 *
 * Why: tfjs-wasm runs a product on XNNPACK only when it is 2-D and untransposed; every batched or
 * transposed one goes to a scalar triple loop (~1 GFLOP/s here, against ~20 for XNNPACK). Attention
 * is batched (one group per row and head), so the AVM's and the encoders' attention products were
 * a fifth of the STELLA step. This kernel registers, for each group, heap views of the group's slices
 * of A, B and the output as tensor ids of the wasm backend (no copy), runs tfjs' own 2-D product on
 * them, and drops the views again (which also deletes the XNNPACK operator packed for that slice).
 * Transposed operands are made plain first with a rank-3 Transpose, which wasm runs natively.
 * Ref: tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc (the XNNPACK condition), docs/benchmarks.md.
 */
import * as tf from '@tensorflow/tfjs';
import { wasmKernelOnce } from './wasm-kernel.ts';

const SLICED_MATMUL = 'StellaSlicedMatMul';
const F32 = 4;

/** tfjs-wasm's `BatchMatMul` entry with plain pointers: (a id, a shape ptr, rank, b id, b shape ptr, rank, transposeA, transposeB, out id). */
type WasmProduct = (aId: number, aShape: number, aRank: number, bId: number, bShape: number, bRank: number, transposeA: number, transposeB: number, outId: number) => void;

interface WasmBackendInternals {
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...args: number[]) => void;
    _malloc(bytes: number): number;
    HEAP32: Int32Array;
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

interface Entries {
  product: WasmProduct;
  registerTensor: (id: number, size: number, offset: number) => void;
  disposeData: (id: number) => void;
  /** Two rank-3 shapes [1, M, K] and [1, K, N] (int32) in the heap, written per call. */
  shapes: number;
}

const entries = new WeakMap<object, Entries>();

/**
 * The backend's own entries, wrapped with numbers only so that Emscripten hands back the raw
 * functions (no per-call argument marshalling); the shapes live in one small heap block.
 */
function entriesOf(backend: WasmBackendInternals): Entries {
  let e = entries.get(backend);
  if (!e) {
    const wasm = backend.wasm;
    e = {
      product: wasm.cwrap('BatchMatMul', null, Array(9).fill('number')) as WasmProduct,
      registerTensor: wasm.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: wasm.cwrap('dispose_data', null, ['number']),
      shapes: wasm._malloc(6 * 4),
    };
    entries.set(backend, e);
  }
  return e;
}

const ensureSlicedKernel = wasmKernelOnce(SLICED_MATMUL, ({ inputs, backend }) => {
  const wasm = backend as unknown as WasmBackendInternals;
  const a = inputs.a as tf.TensorInfo, b = inputs.b as tf.TensorInfo;
  const [groups, m, k] = a.shape, n = b.shape[2];
  const out = wasm.makeOutput([groups, m, n], 'float32');
  // Offsets after makeOutput: an allocation may grow the heap, but offsets stay valid.
  const aOffset = wasm.dataIdMap.get(a.dataId).memoryOffset;
  const bOffset = wasm.dataIdMap.get(b.dataId).memoryOffset;
  const outOffset = wasm.dataIdMap.get(out.dataId).memoryOffset;
  const { product, registerTensor, disposeData, shapes } = entriesOf(wasm);
  wasm.wasm.HEAP32.set([1, m, k, 1, k, n], shapes / 4);
  const aShape = shapes, bShape = shapes + 3 * 4;
  for (let g = 0; g < groups; g++) {
    const aId = wasm.dataIdNextNumber++, bId = wasm.dataIdNextNumber++, outId = wasm.dataIdNextNumber++;
    registerTensor(aId, m * k, aOffset + g * m * k * F32);
    registerTensor(bId, k * n, bOffset + g * k * n * F32);
    registerTensor(outId, m * n, outOffset + g * m * n * F32);
    product(aId, aShape, 3, bId, bShape, 3, 0, 0, outId);
    // Views only: the backend frees no memory for them, and B's view takes its packed operator along.
    disposeData(aId);
    disposeData(bId);
    disposeData(outId);
  }
  return out;
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
