/**
 * Matrix products and row gathers that stay on tfjs-wasm's fast kernels, with gradients that do too.
 *
 * Why: on tfjs-wasm a plain 2-D MatMul runs on XNNPACK (~25 GFLOP/s here) while a transposed or
 * batched MatMul falls to a slow loop (~2 GFLOP/s); `tf.matMul` of [B, L, D] × [D, E] is a batched
 * one, and every matmul gradient is a transposed one. So each product here is a 2-D or per-group
 * product kernel of ours (view-kernels.ts, sliced-matmul.ts: our SIMD loop on wasm, transposes inside
 * the call), forward and backward (`tf.customGrad`, each gradient wrapped in `freeingGrad` so what it
 * holds is freed when it returns); a linear's weight and bias gradients are one call
 * (weight-grads-kernel.ts).
 * Gathers get a ScatterNd gradient because wasm has no UnsortedSegmentSum.
 * Column sums (bias gradients) avoid wasm's axis-0 Sum (see `sumRows`). `withSharedSaves` runs a
 * training forward/backward without wasm's copy of every tensor saved for the gradient or cast to its
 * own dtype.
 *
 * `tensorOps(fast)` gives the model its primitives: `fast = false` is plain tfjs (the naive
 * baseline of `stella bench step --naive`); `fast = true` uses the forms above.
 * Ref: DESIGN.md "Speed notes"; spec Appendix B.
 */
import * as tf from '@tensorflow/tfjs';
import { geluGradKernel, geluKernel, hasGeluKernels } from './gelu-kernel.ts';
import { slicedMatMul } from './sliced-matmul.ts';
import { weightGradsKernel } from './weight-grads-kernel.ts';
import { linearKernel, product2d, transposeHalves } from './view-kernels.ts';
import { wasmKernelOnce } from './wasm-kernel.ts';

/**
 * xᵀ of a 2-D tensor. wasm's rank-2 Transpose is slow when the output row stride is a large power
 * of two ([1024, 256]: ~1.9 ms; the same data as a rank-3 transpose: ~0.6 ms), so such inputs are
 * viewed as [2, M/2, N] and transposed to [N, 2, M/2] = [N, M].
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [m, n] = x.shape;
  if (m % 128 !== 0) return tf.transpose(x);
  return transposeHalves(x);
}

/**
 * Column sums of x [M, N] → [N]. wasm's axis-0 Sum transposes with its rank-2 kernel first (slow for
 * power-of-two row counts), so the transpose goes through `transpose2d` and the sum runs over the last
 * axis (~1.6× faster at [1024, 256]). A ones-row product is no better for a fresh operand: XNNPACK
 * packs the right operand on every new data id, which costs more than the sum.
 */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(transpose2d(x), -1);
}

/**
 * A customGrad gradient that frees, as soon as it returns, what only it needed: the tensors it made on
 * the way, its incoming gradient dy and the tensors its forward saved. tfjs runs a customGrad's
 * gradFunc outside the per-node tidy scope and frees every node's dy and saved tensors only when the
 * whole backward ends, so without this all of them stay alive together at the backward's peak. The
 * values are unchanged (the same ops in the same order); only lifetimes shorten. Each node's gradFunc
 * runs once per backward, and dy and the saved clones belong to this node alone.
 * Ref: tfjs-core engine.customGrad, tape.backpropagateGradients; docs/benchmarks.md "Memory at base".
 */
export function freeingGrad<S extends tf.Tensor[]>(gradFunc: (dy: tf.Tensor, saved: S) => tf.Tensor[]): (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] {
  return (dy, saved) => {
    const grads = tf.tidy(() => gradFunc(dy, saved as S));
    const keep = new Set(grads);
    for (const t of [dy, ...saved]) if (t && !keep.has(t)) t.dispose();
    return grads;
  };
}

/**
 * fn(x) off the gradient tape, for values derived from data (the MAE targets): autodiff would keep
 * every intermediate of their computation alive until the backward ends, though none can lead to a
 * parameter. The values are the same ops'; the result is a constant (its gradient is never taken).
 */
export function asConstant<T extends tf.Tensor>(x: tf.Tensor, fn: (x: tf.Tensor) => T): T {
  // Ops inside a customGrad forward are not recorded on the tape (tfjs records at kernel depth 0).
  const op = tf.customGrad(((xx: tf.Tensor) => ({ value: fn(xx), gradFunc: () => tf.zerosLike(xx) })) as any);
  return op(x) as T;
}

/**
 * Saves `tensors` for a gradient except the variables among them, and returns how the gradient gets
 * all of them back: a variable is read directly, since none changes between a forward and its
 * backward (the optimiser runs after). A saved handle of a weight holds no new buffer where saves
 * share them, but tfjs counts its bytes again in tf.memory() at every use, and each save is a kernel
 * call.
 */
function saveExceptVariables(save: tf.GradSaveFunc, tensors: tf.Tensor[]): (saved: tf.Tensor[]) => tf.Tensor[] {
  const isVariable = tensors.map((t) => t instanceof tf.Variable);
  save(tensors.filter((_, i) => !isVariable[i]));
  return (saved) => {
    let next = 0;
    return tensors.map((t, i) => (isVariable[i] ? t : saved[next++]));
  };
}

/** 2-D product on the fast path; its gradient uses only fast-path products. */
export function fastMatMul2d(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- customGrad's typing is variadic
  const op = tf.customGrad(((x: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
    const restore = saveExceptVariables(save, [x, y]);
    return {
      value: product2d(x as tf.Tensor2D, y as tf.Tensor2D, transposeA, transposeB),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = restore(saved) as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        // C = op(A)·op(B): dA = dC·op(B)ᵀ (transposed back if A was), dB likewise.
        const da = transposeA ? product2d(sb, g, transposeB, true) : product2d(g, sb, false, !transposeB);
        const db = transposeB ? product2d(g, sa, true, transposeA) : product2d(sa, g, !transposeA, false);
        return [da, db];
      }),
    };
  }) as any);
  return op(a, b) as tf.Tensor2D;
}

/**
 * Product of [G, M, K] and [G, K, N] ([G, N, K] with `transposeB`). One group is a 2-D product on
 * the fast path; several are one product per group (`slicedMatMul`), gradients included.
 */
export function fastBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const [g, m] = a.shape;
  const n = transposeB ? b.shape[1] : b.shape[2];
  if (g === 1) {
    return tf.reshape(fastMatMul2d(tf.reshape(a, [a.shape[1], a.shape[2]]), tf.reshape(b, [b.shape[1], b.shape[2]]), false, transposeB), [1, m, n]);
  }
  return batchedWithFastGrad(a, b, transposeB);
}

/**
 * Batched product with an explicit gradient, every product (forward and both gradients) one product
 * per group (`slicedMatMul`): wasm's own batched kernel is a scalar loop.
 */
export function batchedWithFastGrad(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const op = tf.customGrad(((x: tf.Tensor3D, y: tf.Tensor3D, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: slicedMatMul(x, y, false, transposeB),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor3D[];
        const g = dy as tf.Tensor3D;
        // C = A·op(B): dA = dC·op(B)ᵀ; dB = Aᵀ·dC (transposed back when B was).
        const da = slicedMatMul(g, sb, false, !transposeB);
        const db = transposeB ? slicedMatMul(g, sa, true, false) : slicedMatMul(sa, g, true, false);
        return [da, db];
      }),
    };
  }) as any);
  return op(a, b) as tf.Tensor3D;
}

/**
 * x [M, N] + v [N] with the gradient of v as a fast column sum (autodiff's broadcast gradient is
 * wasm's slow axis-0 Sum).
 */
export function addRowVector(x: tf.Tensor2D, v: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad(((xx: tf.Tensor, vv: tf.Tensor) => ({
    value: tf.add(xx, vv),
    gradFunc: freeingGrad((dy) => [dy, tf.reshape(sumRows(dy as tf.Tensor2D), vv.shape)]),
  })) as any);
  return op(x, v) as tf.Tensor2D;
}

/** x·w + b as one kernel call where `linearKernel` is registered, else tfjs' fused product (same kernel). */
const fusedLinear = (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D => linearKernel(x, w, b) ?? (tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D);

/** x [M, K]·w [K, N] + b [N] in one fused kernel; gradients as fast 2-D products. */
export function fastLinear2d(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor): tf.Tensor2D {
  if (!b) return fastMatMul2d(x, w);
  const op = tf.customGrad(((xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const restore = saveExceptVariables(save, [xx, ww]);
    return {
      value: fusedLinear(xx, ww, bb),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = restore(saved) as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        return [product2d(g, sw, false, true), ...weightAndBiasGrads(g, sx, sw.shape)];
      }),
    };
  }) as any);
  return op(x, w, b) as tf.Tensor2D;
}

/**
 * GELU(x)·w + b for rows x [N, K], w [K, M], b [M] (a ViT block's fc2 on its GELU), or undefined
 * where the GELU kernels do not run. The gradient keeps x and Φ(x), not GELU(x): the weight gradient's
 * GELU(x) is made again in the backward as x·Φ(x), the very product of the forward kernel (one
 * float32 multiply), so the same bits. GELU's own saves and the linear's together would keep all
 * three, one [N, K] per block more than PyTorch, which keeps GELU's input and output.
 */
export function fastGeluLinear2d(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D | undefined {
  if (!hasGeluKernels(x)) return undefined;
  return geluLinearRows(x, w, b);
}

/** `fastGeluLinear2d` for x [..., K] (rows flattened and shaped back), or undefined where it does not run. */
export function fastGeluLinear(x: tf.Tensor, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor | undefined {
  if (!hasGeluKernels(x)) return undefined;
  return onRows(x, w, (rows) => geluLinearRows(rows, w, b));
}

function geluLinearRows(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad(((xx: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const { out, cdf } = geluKernel(xx)!;
    const restore = saveExceptVariables(save, [xx, cdf, ww]);
    const value = fusedLinear(out as tf.Tensor2D, ww, bb);
    out.dispose();
    return {
      value,
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sc, sw] = restore(saved) as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        const [dw, db] = weightAndBiasGrads(g, tf.mul(sx, sc) as tf.Tensor2D, sw.shape);
        return [geluGradKernel(product2d(g, sw, false, true), sx, sc)!, dw, db];
      }),
    };
  }) as any);
  return op(x, w, b) as tf.Tensor2D;
}

/**
 * The same linear for an input that is data, not a result (patch embeddings of the raw patches):
 * no gradient flows to x, so the backward skips the dx = dy·wᵀ product.
 */
export function fastLinearOfData(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad(((ww: tf.Tensor2D, bb: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([x]); // of the weight, only its shape is needed
    return {
      value: fusedLinear(x, ww, bb),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => weightAndBiasGrads(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, ww.shape)),
    };
  }) as any);
  return op(w, b) as tf.Tensor2D;
}

/** dW [in, out] and dβ [out] of y = x·W + β for upstream g [M, out]. */
function weightAndBiasGrads(g: tf.Tensor2D, x: tf.Tensor2D, [inDim, outDim]: [number, number]): [tf.Tensor, tf.Tensor] {
  // One kernel call where registered (wasm, cpu): the same values as the composition below.
  const fused = weightGradsKernel(g, x);
  if (fused) return fused;
  if (inDim < outDim) {
    // (Backends without the kernel.) XNNPACK packs the right operand on every call: make it the
    // narrower x [M, in], compute dWᵀ = dYᵀ·x and transpose the small result; dβ a last-axis sum of dYᵀ.
    const gT = transpose2d(g);
    return [transpose2d(product2d(gT, x)), tf.sum(gT, -1)];
  }
  const dw = product2d(transpose2d(x), g);
  // Same right operand and shape as the product above: its packed operator (cached under g's
  // data id) is reused, so the bias gradient costs one GEMV.
  const db = tf.reshape(tf.matMul(tf.ones([1, g.shape[0]]) as tf.Tensor2D, g), [outDim]);
  return [dw, db];
}

const SPLIT_ROWS = 'StellaSplitRows';

/**
 * Registers `StellaSplitRows` for wasm: x [P·R, ...] → P contiguous pieces, each one memcpy inside the
 * wasm heap. wasm's own Slice/SplitV/Unpack first copy the whole input out of the heap per piece
 * (backend readSync), which made per-row products cost more than they saved. Gradient: concat.
 */
const ensureSplitRowsKernel = wasmKernelOnce(
  SPLIT_ROWS,
  ({ inputs, backend, attrs }) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the wasm backend's heap helpers are not in its typings
    const wasm = backend as any;
    const x = inputs.x as tf.TensorInfo;
    const pieces = attrs?.pieces as number;
    const shape = [x.shape[0] / pieces, ...x.shape.slice(1)];
    // Allocate first: an allocation may grow the heap and detach earlier views.
    const outs: tf.TensorInfo[] = Array.from({ length: pieces }, () => wasm.makeOutput(shape, x.dtype));
    const source = wasm.typedArrayFromHeap(x) as Float32Array;
    const n = source.length / pieces;
    outs.forEach((out, i) => (wasm.typedArrayFromHeap(out) as Float32Array).set(source.subarray(i * n, (i + 1) * n)));
    return outs;
  },
  (dy) => ({ x: () => tf.concat(dy as tf.Tensor[], 0) }),
);

/** x [P·R, C] → P tensors [R, C] (contiguous row blocks); gradient concatenates. */
export function splitRows(x: tf.Tensor2D, pieces: number): tf.Tensor2D[] {
  if (x.shape[0] % pieces !== 0) throw new Error(`splitRows: ${x.shape[0]} rows do not split into ${pieces} pieces`);
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return tf.split(x, pieces, 0) as tf.Tensor2D[];
  ensureSplitRowsKernel();
  return tf.engine().runKernel(SPLIT_ROWS, { x }, { pieces }) as unknown as tf.Tensor2D[];
}

const GATHER_ROWS = 'StellaGatherRows';

/**
 * Registers `StellaGatherRows` for wasm: out[i] = x[indices[i]] for x [N, D], one heap memcpy per row
 * (wasm's GatherV2 measured ~4 ms for 1024 rows of 64 floats here; this is ~20× less).
 */
const ensureGatherRowsKernel = wasmKernelOnce(GATHER_ROWS, ({ inputs, backend }) => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the wasm backend's heap helpers are not in its typings
  const wasm = backend as any;
  const x = inputs.x as tf.TensorInfo;
  const indices = inputs.indices as tf.TensorInfo;
  const [n, d] = x.shape;
  const m = indices.shape[0];
  const out = wasm.makeOutput([m, d], x.dtype);
  // Views after the allocation (it may grow the heap). Rows move by copyWithin on the one heap view:
  // no subarray per row (a gather of 1,536 decoder rows made as many objects for the GC).
  const heap = wasm.wasm.HEAPF32 as Float32Array;
  const source = wasm.typedArrayFromHeap(x) as Float32Array, target = wasm.typedArrayFromHeap(out) as Float32Array;
  const from = source.byteOffset / 4, to = target.byteOffset / 4;
  const ids = wasm.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < m; i++) {
    const row = ids[i];
    if (!(row >= 0 && row < n)) throw new Error(`gatherRows: index ${row} at position ${i} is outside [0, ${n})`);
    heap.copyWithin(to + i * d, from + row * d, from + row * d + d);
  }
  return out;
});

/** gatherRows on the fast path: same values and gradient, a heap-memcpy kernel on wasm. */
export function fastGatherRows(x: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || indices.dtype !== 'int32') return gatherRows(x, indices);
  ensureGatherRowsKernel();
  const op = tf.customGrad(((source: tf.Tensor, save: tf.GradSaveFunc) => {
    save([indices]);
    return {
      value: tf.engine().runKernel(GATHER_ROWS, { x: source, indices }, {}) as tf.Tensor2D,
      gradFunc: freeingGrad((dy, saved) => [tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, source.shape)]),
    };
  }) as any);
  return op(x) as tf.Tensor2D;
}

/** Rows `indices` (int32 [M]) of `x` [N, D] → [M, D]; the gradient scatters-adds (duplicates sum). */
export function gatherRows(x: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad(((source: tf.Tensor, save: tf.GradSaveFunc) => {
    save([indices]);
    return {
      value: tf.gather(source, indices, 0),
      gradFunc: freeingGrad((dy, saved) => [tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, source.shape)]),
    };
  }) as any);
  return op(x) as tf.Tensor2D;
}

let sharedSavesDepth = 0;
let sharedKernelsInstalled = false;

/**
 * Replaces wasm's Identity kernel, and its Cast to the input's own dtype, by ones that share the
 * input's buffer (as the cpu backend's do) while `sharedSavesDepth > 0`, and runs the original copy
 * otherwise. tfjs clones every tensor a gradient saves (`Engine.saveTensorsForBackwardMode`,
 * customGrad's `save`) through Identity, and every Multiply gradient casts the other operand to
 * float32 (a no-op cast for ours); wasm copies the whole buffer for both. Tensors are immutable, so
 * sharing is safe, and the tensors a step holds are then the same on wasm as on cpu.
 */
function ensureSharedKernels(): void {
  if (sharedKernelsInstalled) return;
  sharedKernelsInstalled = true;
  const share = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo => {
    const x = args.inputs.x as tf.TensorInfo;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- incRef is not in the backend's public typings
    (args.backend as any).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  const sharing: Record<string, (args: tf.KernelFunc extends (a: infer A) => unknown ? A : never) => boolean> = {
    Identity: (args) => (args.inputs.x as tf.TensorInfo).dtype !== 'string',
    Cast: (args) => (args.inputs.x as tf.TensorInfo).dtype === args.attrs?.dtype && (args.inputs.x as tf.TensorInfo).dtype !== 'string',
  };
  for (const [kernelName, shares] of Object.entries(sharing)) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      setupFunc: original.setupFunc,
      kernelFunc: (args) => (sharedSavesDepth > 0 && shares(args) ? share(args) : original.kernelFunc(args)),
    });
  }
}

/**
 * Runs `fn` (a forward + backward) with the tensors that gradients save sharing their buffers
 * instead of copying them (wasm only; other backends already share).
 */
export function withSharedSaves<T>(fn: () => T): T {
  if (tf.getBackend() !== 'wasm') return fn();
  ensureSharedKernels();
  sharedSavesDepth++;
  try {
    return fn();
  } finally {
    sharedSavesDepth--;
  }
}

let freeingDepth = 0;
let freeingTapeInstalled = false;

/**
 * Kernels whose registered gradient reads only the shapes of the tensors tfjs saves for it (checked
 * against tfjs-core's gradients/*_grad.js): `Reshape` and `Add`, for instance, save their inputs just
 * to reshape or reduce dy back to them. A disposed tensor keeps its shape, so these saves are let go
 * as the node is recorded instead of holding every residual stream and head split until the backward
 * reaches them.
 */
const SHAPE_ONLY_SAVES = new Set(['Reshape', 'ExpandDims', 'Add', 'Sub', 'AddN', 'Concat', 'Pack', 'Mean', 'Sum', 'PadV2', 'Slice']);

/** The tape node processed last: what flowed into it, what was saved for it, what its thunks returned. */
interface ProcessedNode {
  dys: tf.Tensor[];
  saved: tf.Tensor[];
  /** Tensors its gradient function made before returning its thunks (Softmax's dy·y), read by them. */
  made: tf.Tensor[];
  returned: Set<tf.Tensor>;
  /** Returned gradients that tfjs added into an input's existing gradient (dead once added). */
  added: tf.Tensor[];
}
let processed: ProcessedNode | undefined;
/** Ids of the tensors that already have a gradient in this backward, and the gradients that became theirs. */
let accumulated = { inputs: new Set<number>(), gradients: new Set<tf.Tensor>() };

/**
 * Frees what the node processed last no longer needs: its upstream gradients, the tensors saved for
 * it (its own handles: tfjs keeps a clone per node, so a buffer goes only when nothing else holds it),
 * what its gradient function made for its thunks, and the gradients tfjs has already added into an
 * input's total.
 */
function releaseProcessed(): void {
  if (!processed) return;
  const { dys, saved, made, returned, added } = processed;
  for (const t of [...dys, ...saved, ...made]) if (!returned.has(t)) t.dispose();
  for (const t of added) if (!accumulated.gradients.has(t)) t.dispose();
  processed = undefined;
}

/**
 * Wraps the gradient of every tape node recorded while `freeingDepth > 0`. tfjs' backprop visits the
 * nodes in reverse, calling a node's gradient and then all of its input thunks before it moves on,
 * and frees nothing until the whole backward ends. So when the next node's gradient is called, the
 * previous node's upstream gradients (its outputs' dy), its saved tensors and whatever its gradient
 * function made for its thunks are dead, except a tensor a thunk passed on as is; and a thunk's
 * result is dead too where its input already had a gradient, since tfjs then keeps the sum (a weight
 * used twice, a residual stream).
 */
function ensureFreeingTape(): void {
  if (freeingTapeInstalled) return;
  freeingTapeInstalled = true;
  type TapeNode = {
    kernelName?: string;
    inputs?: Record<string, tf.Tensor>;
    saved?: tf.Tensor[];
    gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  };
  const engine = tf.engine() as unknown as { state: { activeTape: TapeNode[]; activeScope: { track: tf.Tensor[] } | null } };
  const proto = Object.getPrototypeOf(engine) as { addTapeNode: (...args: unknown[]) => void };
  const addTapeNode = proto.addTapeNode;
  proto.addTapeNode = function (this: typeof engine, ...args: unknown[]) {
    addTapeNode.apply(this, args);
    const node = this.state.activeTape[this.state.activeTape.length - 1];
    if (unreadable) {
      for (const input of Object.values(node.inputs ?? {})) {
        const name = unreadable.variables.get(input);
        if (name !== undefined) throw new Error(`${unreadable.what} reads '${name}', which this step has already updated`);
      }
    }
    if (freeingDepth === 0) return;
    if (node.kernelName && SHAPE_ONLY_SAVES.has(node.kernelName)) for (const t of node.saved ?? []) t.dispose();
    const gradient = node.gradient;
    if (!gradient) return;
    node.gradient = (dys) => {
      releaseProcessed();
      const scope = engine.state.activeScope, before = scope?.track.length ?? 0;
      const thunks = gradient(dys);
      const made = scope ? scope.track.slice(before) : [];
      const current: ProcessedNode = { dys: dys.filter((d): d is tf.Tensor => d != null), saved: node.saved ?? [], made, returned: new Set(), added: [] };
      processed = current;
      return Object.fromEntries(Object.entries(thunks).map(([name, thunk]) => [name, () => {
        const dx = thunk();
        current.returned.add(dx);
        const input = node.inputs?.[name];
        if (input && accumulated.inputs.has(input.id)) current.added.push(dx);
        else if (input) { accumulated.inputs.add(input.id); accumulated.gradients.add(dx); }
        return dx;
      }]));
    };
  };
}

let unreadable: { variables: Map<tf.Tensor, string>; what: string } | undefined;

/**
 * Runs `fn` (a forward + backward) and throws as soon as an op on the gradient tape reads one of
 * `variables` (named by the map's values): the guard of a step that has already updated them.
 */
export function withoutReading<T>(variables: Map<tf.Tensor, string>, what: string, fn: () => T): T {
  ensureFreeingTape();
  const outer = unreadable;
  unreadable = { variables, what };
  try {
    return fn();
  } finally {
    unreadable = outer;
  }
}

/**
 * Runs `fn` (a forward + backward through tf.variableGrads or tf.grads) with what each node of the
 * backward read freed once it has run, as PyTorch's autograd does; tfjs otherwise keeps every
 * intermediate gradient and saved tensor of the step alive until the backward ends. Same values.
 */
export function withFreeingBackward<T>(fn: () => T): T {
  ensureFreeingTape();
  if (freeingDepth === 0) accumulated = { inputs: new Set(), gradients: new Set() };
  freeingDepth++;
  try {
    return fn();
  } finally {
    freeingDepth--;
    processed = undefined; // the gradients scope frees what is left
    if (freeingDepth === 0) accumulated = { inputs: new Set(), gradients: new Set() };
  }
}

/** The model's primitive products. */
export interface TensorOps {
  readonly fast: boolean;
  /** x [..., in] · w [in, out] (+ b [out]) → [..., out]. */
  linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor;
  /** The same for x that is data: no gradient flows to x (the fast path skips computing one). */
  linearOfData(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor;
  /** [G, M, K] × [G, K, N] (or [G, N, K] with transposeB) → [G, M, N]. */
  batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB?: boolean): tf.Tensor3D;
  /** x·s for a constant s (attention logits). */
  scale<T extends tf.Tensor>(x: T, s: number): T;
}

/**
 * x·s with the gradient dy·s, saving nothing: autodiff's Multiply saves both inputs for the gradient
 * of the (constant) scalar, which kept every attention logit tensor alive through the backward.
 */
export function scaleBy<T extends tf.Tensor>(x: T, s: number): T {
  const op = tf.customGrad(((xx: tf.Tensor) => ({ value: tf.mul(xx, s), gradFunc: (dy: tf.Tensor) => tf.mul(dy, s) })) as any);
  return op(x) as T;
}

/** A 2-D linear `f` on x [..., in] flattened to rows [N, in], shaped back to [..., out] (w [in, out]). */
function onRows(x: tf.Tensor, w: tf.Tensor, f: (rows: tf.Tensor2D) => tf.Tensor2D): tf.Tensor {
  const y = f(tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D);
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1] as number]);
}

const FAST: TensorOps = {
  fast: true,
  linear: (x, w, b) => onRows(x, w, (rows) => fastLinear2d(rows, w as tf.Tensor2D, b)),
  linearOfData: (x, w, b) => onRows(x, w, (rows) => fastLinearOfData(rows, w as tf.Tensor2D, b)),
  batchMatMul: fastBatchMatMul,
  scale: scaleBy,
};

const PLAIN: TensorOps = {
  fast: false,
  linear(x, w, b) {
    // Plain tfjs: flatten to 2-D and tf.matMul; autodiff's gradient products are transposed ones.
    const inDim = x.shape[x.shape.length - 1];
    const y = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D);
    return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), w.shape[1] as number]);
  },
  linearOfData(x, w, b) {
    return this.linear(x, w, b);
  },
  batchMatMul(a, b, transposeB = false) {
    return tf.matMul(a, b, false, transposeB);
  },
  scale(x, s) {
    return tf.mul(x, s);
  },
};

export function tensorOps(fast: boolean): TensorOps {
  return fast ? FAST : PLAIN;
}
