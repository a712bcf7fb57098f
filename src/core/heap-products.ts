/**
 * Matrix products inside tfjs-wasm's heap: G products [M, K]·[K, N] (+ bias [N]).
 *
 *   heapProducts(backend, a, b, bias, groups, m, k, n) → out [groups, m, n]
 *
 * Each group is our SIMD product (src/core/wasm/product.wat) on the operands where they lie: it sums
 * as XNNPACK does (from the bias or +0, k in order), so the values are those of tfjs' own 2-D product
 * bit for bit (test/core/heap-products.test.ts), without XNNPACK's per-operand costs: tfjs creates an
 * XNNPACK operator for every new right operand and packs it, which in a training step is nearly every
 * product (the weights change every step, gradients are new every time), and a per-group product
 * needed one operator per group. Measured alone, ours runs at XNNPACK's speed with a packed operand
 * and ahead of it when it must pack (docs/benchmarks.md "STELLA step").
 * Where our kernels do not load (the threaded build's shared memory), each group is tfjs' own
 * product entry on heap views of the operands (registered as tensor ids, no copy, then dropped).
 * Ref: tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc and kernels/_FusedMatMul.ts (the entry used there).
 */
import * as tf from '@tensorflow/tfjs';
import { heapAlloc, heapSimdKernels, type WasmHeapModule } from './heap-simd.ts';

const F32 = 4;

/** tfjs-wasm's `_FusedMatMul` entry with plain numbers: (a, a shape ptr, rank, b, b shape ptr, rank, transposeA, transposeB, activation, bias, prelu, leakyrelu α, out). */
type WasmProduct = (...args: number[]) => void;

/** What this module uses of the wasm backend. */
export interface WasmBackendInternals {
  wasm: WasmHeapModule & {
    cwrap(name: string, ret: null, args: string[]): (...args: number[]) => void;
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

/** The backend's own entries, wrapped with numbers only so that Emscripten hands back the raw functions. */
function entriesOf(backend: WasmBackendInternals): Entries {
  let e = entries.get(backend);
  if (!e) {
    const wasm = backend.wasm;
    e = {
      product: wasm.cwrap('_FusedMatMul', null, Array(13).fill('number')),
      registerTensor: wasm.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: wasm.cwrap('dispose_data', null, ['number']),
      shapes: heapAlloc(wasm, 6 * 4, 'product shapes'),
    };
    entries.set(backend, e);
  }
  return e;
}

/**
 * out [groups, m, n] = a [groups, m, k]·b [groups, k, n] (+ bias [n]); see the header. With
 * `transposeA`, a is [groups, k, m] and each group is aᵀ·b, read in place by our loop (no bias).
 */
export function heapProducts(backend: WasmBackendInternals, a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | undefined, groups: number, m: number, k: number, n: number, transposeA = false): tf.TensorInfo {
  const out = backend.makeOutput([groups, m, n], 'float32');
  // Offsets after makeOutput: an allocation may grow the heap, but offsets stay valid.
  const ids = backend.dataIdMap;
  const aData = ids.get(a.dataId), bData = ids.get(b.dataId), outData = ids.get(out.dataId);
  const simd = heapSimdKernels(backend.wasm);
  if (simd) {
    const biasAt = bias ? ids.get(bias.dataId).memoryOffset : 0;
    if (transposeA && bias) throw new Error('heapProducts: a transposed left operand takes no bias');
    for (let g = 0; g < groups; g++) {
      const aAt = aData.memoryOffset + g * m * k * F32, bAt = bData.memoryOffset + g * k * n * F32, outAt = outData.memoryOffset + g * m * n * F32;
      // aᵀ·b is the weight-gradient loop without its bias sum: Σ over k of a[kk, i]·b[kk, j], in order.
      if (transposeA) simd.weightGrads(aAt, bAt, outAt, 0, k, m, n);
      else simd.product(aAt, bAt, biasAt, outAt, m, k, n);
    }
    return out;
  }
  if (transposeA) throw new Error('heapProducts: a transposed left operand needs our SIMD kernels (not loaded on this backend)');
  const biasId = bias ? ids.get(bias.dataId).id : 0;
  const e = entriesOf(backend);
  const run = (aId: number, bId: number, outId: number) => {
    backend.wasm.HEAP32.set([1, m, k, 1, k, n], e.shapes / 4);
    e.product(aId, e.shapes, 3, bId, e.shapes + 3 * 4, 3, 0, 0, 0, biasId, 0, 0, outId);
  };
  if (groups === 1) {
    run(aData.id, bData.id, outData.id);
    return out;
  }
  for (let g = 0; g < groups; g++) {
    const aId = backend.dataIdNextNumber++, bId = backend.dataIdNextNumber++, outId = backend.dataIdNextNumber++;
    e.registerTensor(aId, m * k, aData.memoryOffset + g * m * k * F32);
    e.registerTensor(bId, k * n, bData.memoryOffset + g * k * n * F32);
    e.registerTensor(outId, m * n, outData.memoryOffset + g * m * n * F32);
    run(aId, bId, outId);
    // Views only: the backend frees no memory for them, and B's view takes its packed operator along.
    e.disposeData(aId);
    e.disposeData(bId);
    e.disposeData(outId);
  }
  return out;
}
