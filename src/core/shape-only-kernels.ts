/**
 * Shape-only kernels, and a per-kernel timer: both swap a backend's registered kernels for a while
 * and put the originals back.
 *
 * Why: tfjs's tensor-byte count (`tf.memory().numBytes`, the in-step peak of `measurePeakBytes`)
 * depends only on the shapes, dtypes and lifetimes of the tensors the engine tracks, never on their
 * values. A product's output has a shape fixed by its inputs' shapes, so a kernel that allocates a
 * zero-filled output of that shape without multiplying leaves every tracked allocation as it was,
 * while the cost of the product (most of a ViT-B step on the pure-JS cpu backend) disappears. That
 * makes the in-step peak of a `base` step measurable on the cpu backend in minutes instead of hours.
 * Values downstream are wrong (zeros), so this is for memory measurements only; the caller must show
 * that no allocation depends on values (docs/benchmarks.md "Memory at base" lists the value-dependent
 * points of the step and why they do not change shapes).
 *
 *   withShapeOnlyKernels(fn)              runs fn with SHAPE_ONLY_KERNELS shape-only (cpu backend), then restores
 *   installShapeOnlyKernels() → restore   the same, for callers that span several calls
 *   timeKernels(fn) → { result, kernels } wall time and calls per kernel name while fn runs
 *
 * The kernels made shape-only are those that cost the time of a `base` step on the cpu backend
 * (SHAPE_RULES); gradients are untouched and run through the same kernels. Kernels whose values steer
 * the step (TopK orders, OneHot masks, id tensors) stay real. Nested installs are refused.
 * Ref: docs/benchmarks.md "Memory at base"; tfjs-core engine.trackTensor (numBytes).
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type Output = { shape: number[]; dtype: tf.DataType };
/** Output shape(s) and dtype(s) of a kernel from its inputs' shapes and its attributes. */
type Rule = (inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => Output | Output[];

const same = (name: string): Rule => (inputs) => ({ shape: [...(inputs[name] as Info).shape], dtype: (inputs[name] as Info).dtype });
const broadcast: Rule = (inputs) => {
  const a = inputs.a as Info, b = inputs.b as Info;
  return { shape: tf.backend_util.assertAndGetBroadcastShape([...a.shape], [...b.shape]), dtype: tf.upcastType(a.dtype, b.dtype) };
};
const reduce = (dtype: (x: tf.DataType) => tf.DataType): Rule => (inputs, attrs) => {
  const x = inputs.x as Info;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], [...x.shape]);
  const [out] = tf.backend_util.computeOutAndReduceShapes([...x.shape], axes);
  return { shape: attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(out, axes) : out, dtype: dtype(x.dtype) };
};
const product: Rule = (inputs, attrs) => {
  const a = inputs.a as Info, b = inputs.b as Info;
  return { shape: productShape(a.shape, b.shape, !!attrs.transposeA, !!attrs.transposeB), dtype: a.dtype };
};

/**
 * Output shape and dtype per kernel made shape-only: the matrix products (forward and gradients), the
 * elementwise, softmax, transpose and reduction kernels that dominate the rest of a `base` step on the
 * cpu backend (profiled with `timeKernels`), and the copies of large activations (Concat, SplitV, Slice,
 * GatherV2), which would otherwise write every page they allocate. TopK, OneHot, ScatterNd, Cast,
 * Reshape and Identity stay real, so importance orders and id tensors are still computed.
 */
export const SHAPE_RULES: Readonly<Record<string, Rule>> = {
  BatchMatMul: product,
  _FusedMatMul: product,
  Add: broadcast,
  Sub: broadcast,
  Multiply: broadcast,
  RealDiv: broadcast,
  SquaredDifference: broadcast,
  Softmax: same('logits'),
  Exp: same('x'),
  Log: same('x'),
  Erf: same('x'),
  Square: same('x'),
  Sqrt: same('x'),
  Rsqrt: same('x'),
  Transpose: (inputs, attrs) => {
    const x = inputs.x as Info;
    return { shape: (attrs.perm as number[]).map((p) => x.shape[p]), dtype: x.dtype };
  },
  Sum: reduce((d) => tf.sumOutType(d)),
  Mean: reduce(() => 'float32'),
  Concat: (inputs, attrs) => {
    const xs = Object.values(inputs) as Info[];
    const axis = tf.util.parseAxisParam(attrs.axis as number, [...xs[0].shape])[0];
    return { shape: tf.backend_util.computeOutShape(xs.map((x) => [...x.shape]), axis), dtype: tf.upcastType(...(xs.map((x) => x.dtype) as [tf.DataType, tf.DataType])) };
  },
  SplitV: (inputs, attrs) => {
    const x = inputs.x as Info;
    const axis = tf.util.parseAxisParam(attrs.axis as number, [...x.shape])[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number | number[], axis);
    return sizes.map((n) => ({ shape: x.shape.map((d, i) => (i === axis ? n : d)), dtype: x.dtype }));
  },
  Slice: (inputs, attrs) => {
    const x = inputs.x as Info;
    const [, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
    return { shape: size, dtype: x.dtype };
  },
  GatherV2: (inputs, attrs) => {
    const x = inputs.x as Info, indices = inputs.indices as Info;
    const axis = tf.util.parseAxisParam(attrs.axis as number, [...x.shape])[0];
    const batchDims = (attrs.batchDims as number) ?? 0;
    return { shape: [...x.shape.slice(0, axis), ...indices.shape.slice(batchDims), ...x.shape.slice(axis + 1)], dtype: x.dtype };
  },
};

/** The kernels `installShapeOnlyKernels` replaces by default. */
export const SHAPE_ONLY_KERNELS: readonly string[] = Object.keys(SHAPE_RULES);

type Backend = { makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.TypedArray): tf.TensorInfo };

/**
 * Replaces the named kernels of `backendName` with `wrap(original)` and returns the function that
 * restores the originals (idempotent). Throws, naming it, for a kernel the backend does not have.
 */
export function replaceKernels(backendName: string, names: readonly string[], wrap: (original: tf.KernelConfig) => tf.KernelFunc): () => void {
  const originals = names.map((name) => {
    const original = tf.getKernel(name, backendName);
    if (!original) throw new Error(`replaceKernels: backend '${backendName}' has no kernel '${name}'`);
    return original;
  });
  originals.forEach((original) => {
    tf.unregisterKernel(original.kernelName, backendName);
    tf.registerKernel({ ...original, kernelFunc: wrap(original) });
  });
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const original of originals) {
      tf.unregisterKernel(original.kernelName, backendName);
      tf.registerKernel(original);
    }
  };
}

/** Output shape of a (batched, broadcast) product [..., m, k]·[..., k, n] with optional transposes. */
export function productShape(a: readonly number[], b: readonly number[], transposeA: boolean, transposeB: boolean): number[] {
  if (a.length < 2 || b.length < 2) throw new Error(`shape-only product: operands must have rank ≥ 2, got [${a}] and [${b}]`);
  const [m, innerA] = transposeA ? [a.at(-1)!, a.at(-2)!] : [a.at(-2)!, a.at(-1)!];
  const [innerB, n] = transposeB ? [b.at(-1)!, b.at(-2)!] : [b.at(-2)!, b.at(-1)!];
  if (innerA !== innerB) throw new Error(`shape-only product: inner dimensions ${innerA} of [${a}] and ${innerB} of [${b}] differ (transposeA ${transposeA}, transposeB ${transposeB})`);
  const batchA = a.slice(0, -2), batchB = b.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batch = Array.from({ length: rank }, (_, i) => {
    const x = batchA[i - rank + batchA.length] ?? 1, y = batchB[i - rank + batchB.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shape-only product: batch dimensions of [${a}] and [${b}] do not broadcast`);
    return Math.max(x, y);
  });
  return [...batch, m, n];
}

let installed = false;

/**
 * Makes `kernels` (default SHAPE_ONLY_KERNELS) of `backendName` (default: the active backend)
 * shape-only: each returns a zero-filled output of the shape and dtype the real kernel would.
 * Returns the restore. Large zero-filled arrays cost no resident memory until written (the pages stay
 * untouched), which also keeps a `base` step's RSS down.
 */
export function installShapeOnlyKernels(kernels: readonly string[] = SHAPE_ONLY_KERNELS, backendName: string = tf.getBackend()): () => void {
  if (installed) throw new Error('installShapeOnlyKernels: shape-only kernels are already installed');
  const unknown = kernels.filter((k) => !SHAPE_RULES[k]);
  if (unknown.length) throw new Error(`installShapeOnlyKernels: no shape rule for ${unknown.join(', ')} (known: ${SHAPE_ONLY_KERNELS.join(', ')})`);
  // Outputs are made with makeTensorInfo from zero-filled JS arrays: the cpu backend's storage.
  const target = tf.findBackend(backendName) as unknown as Partial<Backend> | null;
  if (typeof target?.makeTensorInfo !== 'function') {
    throw new Error(`shape-only kernels need the cpu backend (STELLA_BACKEND=cpu); the '${backendName}' backend cannot make tensors from JS arrays inside a kernel`);
  }
  const restore = replaceKernels(backendName, kernels, (original) => ({ inputs, attrs, backend }) => {
    const out = SHAPE_RULES[original.kernelName](inputs, attrs ?? {});
    const make = ({ shape, dtype }: Output) => {
      const size = shape.reduce((p, d) => p * d, 1);
      const values = dtype === 'int32' ? new Int32Array(size) : dtype === 'bool' ? new Uint8Array(size) : new Float32Array(size);
      return (backend as unknown as Backend).makeTensorInfo(shape, dtype, values);
    };
    return Array.isArray(out) ? out.map(make) : make(out);
  });
  installed = true;
  return () => {
    restore();
    installed = false;
  };
}

/** Runs `fn` with shape-only kernels on the active backend; the real kernels are back afterwards, even on a throw. */
export function withShapeOnlyKernels<T>(fn: () => T, kernels: readonly string[] = SHAPE_ONLY_KERNELS): T {
  const restore = installShapeOnlyKernels(kernels);
  try {
    return fn();
  } finally {
    restore();
  }
}

export interface KernelTime {
  name: string;
  calls: number;
  ms: number;
}

/**
 * Wall time and call count per kernel of the active backend while `fn` runs, most expensive first.
 * Kernels calling other kernels' functions directly (not through the registry) count once.
 */
export function timeKernels<T>(fn: () => T): { result: T; kernels: KernelTime[] } {
  const backendName = tf.getBackend();
  const totals = new Map<string, KernelTime>();
  const names = tf.getKernelsForBackend(backendName).map((k) => k.kernelName);
  const restore = replaceKernels(backendName, names, (original) => (args) => {
    const t0 = performance.now();
    try {
      return original.kernelFunc(args);
    } finally {
      const entry = totals.get(original.kernelName) ?? { name: original.kernelName, calls: 0, ms: 0 };
      entry.calls++;
      entry.ms += performance.now() - t0;
      totals.set(original.kernelName, entry);
    }
  });
  try {
    const result = fn();
    return { result, kernels: [...totals.values()].sort((x, y) => y.ms - x.ms) };
  } finally {
    restore();
  }
}
