/**
 * Matrix products inside tfjs-wasm's heap: G products [M, K]·[K, N] (+ bias [N]), each tfjs' own 2-D
 * XNNPACK product run on heap views of the operands, the larger ones shared with the product helper.
 *
 *   heapProducts(backend, a, b, bias, groups, m, k, n) → out [groups, m, n]
 *
 * One group (a 2-D product) uses the operands' own tensor ids, as tfjs' kernel does, so XNNPACK's
 * operator packed for B is cached and reused under B's id. Several groups get heap views per group
 * (registered as tensor ids, no copy) that are dropped again, which also deletes the operator packed
 * for that slice; groups of at most SMALL_GROUP_MACS multiply-adds (attention's, at our sizes) run in
 * our SIMD loop instead, which sums as XNNPACK does. While the helper is ready, a large enough product gives it its last rows (B whole)
 * or its last groups, about half, less what the helper's share costs beyond its arithmetic
 * (`helperShareOf`).
 * Values are the same in every case: rows and groups are independent, and both threads run the same
 * kernel (test/core/heap-products.test.ts).
 * Ref: tfjs-backend-wasm src/cc/batch_mat_mul_impl.cc and kernels/_FusedMatMul.ts (the entry used here).
 */
import * as tf from '@tensorflow/tfjs';
import { heapSimdKernels, type WasmHeapModule } from './heap-simd.ts';
import { type HelperShare, productHelper } from './product-helper.ts';

/**
 * What the helper's share costs beyond its multiply-adds, in multiply-adds at XNNPACK's rate here:
 * packing its own copy of B (~34 per element of B; our side reuses the operator tfjs cached for B)
 * and the meeting (copies in and out, waking the thread: ~60 µs). The split gives the helper fewer
 * rows by that much, so both sides end together. Measured on the tiny step's products; only the
 * balance depends on them, never the values.
 */
const PACK_MACS_PER_B_ELEMENT = 34;
const MEETING_MACS = 850_000;
/** A split must take at least this share off our side, or it is not worth the meeting. */
const MIN_GAIN = 0.2;

/**
 * Groups of at most this many multiply-adds run in our own SIMD loop (src/core/wasm/small-products.wat)
 * instead of one XNNPACK operator each: creating, packing and deleting the operator costs more than
 * the arithmetic of such a group. Same values either way (the loop sums as XNNPACK does).
 */
export const SMALL_GROUP_MACS = 1 << 20;

/** How much of a product to give the helper: rows of a 2-D product, or groups; 0 for none. */
export function helperShareOf(groups: number, m: number, k: number, n: number): number {
  if (groups > 1) {
    const helperGroups = Math.floor((groups - MEETING_MACS / (m * k * n)) / 2);
    return helperGroups / groups >= MIN_GAIN ? helperGroups : 0;
  }
  const helperRows = Math.floor((m - PACK_MACS_PER_B_ELEMENT - MEETING_MACS / (k * n)) / 2);
  return helperRows / m >= MIN_GAIN ? helperRows : 0;
}
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
      shapes: wasm._malloc(6 * 4),
    };
    entries.set(backend, e);
  }
  return e;
}

/** out [groups, m, n] = a [groups, m, k]·b [groups, k, n] (+ bias [n]); see the header. */
export function heapProducts(backend: WasmBackendInternals, a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | undefined, groups: number, m: number, k: number, n: number): tf.TensorInfo {
  const out = backend.makeOutput([groups, m, n], 'float32');
  // Offsets after makeOutput: an allocation may grow the heap, but offsets stay valid.
  const ids = backend.dataIdMap;
  const aData = ids.get(a.dataId), bData = ids.get(b.dataId), outData = ids.get(out.dataId);
  const biasData = bias ? ids.get(bias.dataId) : undefined;
  const small = groups > 1 && !biasData && m * k * n <= SMALL_GROUP_MACS ? heapSimdKernels(backend.wasm) : undefined;
  const e = entriesOf(backend);
  const helperPart = helperShareOf(groups, m, k, n);
  const helper = helperPart > 0 ? productHelper() : undefined;
  const run = (rows: number, aId: number, bId: number, outId: number) => {
    backend.wasm.HEAP32.set([1, rows, k, 1, k, n], e.shapes / 4);
    e.product(aId, e.shapes, 3, bId, e.shapes + 3 * 4, 3, 0, 0, 0, biasData?.id ?? 0, 0, 0, outId);
  };
  /** Rows [from, to) of a 2-D product, on heap views of A's and the output's rows and B itself. */
  const rowsOnViews = (from: number, to: number) => {
    const aId = backend.dataIdNextNumber++, outId = backend.dataIdNextNumber++;
    e.registerTensor(aId, (to - from) * k, aData.memoryOffset + from * k * F32);
    e.registerTensor(outId, (to - from) * n, outData.memoryOffset + from * n * F32);
    run(to - from, aId, bData.id, outId);
    e.disposeData(aId);
    e.disposeData(outId);
  };
  /** Groups [from, to): small ones in our SIMD loop, others each on heap views of its slices. */
  const groupsOnViews = (from: number, to: number) => {
    if (small) {
      small.batchedProduct(aData.memoryOffset + from * m * k * F32, bData.memoryOffset + from * k * n * F32, outData.memoryOffset + from * m * n * F32, to - from, m, k, n);
      return;
    }
    for (let g = from; g < to; g++) {
      const aId = backend.dataIdNextNumber++, bId = backend.dataIdNextNumber++, outId = backend.dataIdNextNumber++;
      e.registerTensor(aId, m * k, aData.memoryOffset + g * m * k * F32);
      e.registerTensor(bId, k * n, bData.memoryOffset + g * k * n * F32);
      e.registerTensor(outId, m * n, outData.memoryOffset + g * m * n * F32);
      run(m, aId, bId, outId);
      e.disposeData(aId);
      e.disposeData(bId);
      e.disposeData(outId);
    }
  };

  if (!helper) {
    if (groups === 1) run(m, aData.id, bData.id, outData.id);
    else groupsOnViews(0, groups);
    return out;
  }
  const heap = () => backend.wasm.HEAPF32;
  const [aAt, bAt, outAt] = [aData, bData, outData].map((d) => d.memoryOffset / F32);
  const biasAt = biasData ? biasData.memoryOffset / F32 : undefined;
  if (groups > 1) {
    const mine = groups - helperPart;
    const share: HelperShare = { groups: groups - mine, rows: m, inner: k, cols: n, a: aAt + mine * m * k, b: bAt + mine * k * n, bias: biasAt, small: !!small };
    helper.begin(heap(), share);
    groupsOnViews(0, mine);
    if (!helper.finish(heap, outAt + mine * m * n)) groupsOnViews(mine, groups);
  } else {
    const mine = m - helperPart;
    helper.begin(heap(), { groups: 1, rows: m - mine, inner: k, cols: n, a: aAt + mine * k, b: bAt, bias: biasAt });
    rowsOnViews(0, mine);
    if (!helper.finish(heap, outAt + mine * n)) rowsOnViews(mine, m);
  }
  return out;
}
