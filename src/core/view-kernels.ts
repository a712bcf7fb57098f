/**
 * Two fast-path primitives as one kernel call each: the 2-D product or linear op(x)·op(W) (+ β), with
 * op an optional transpose, and the 2-D transpose through a rank-3 view. Each runs the backend's own
 * kernel (`_FusedMatMul` or `BatchMatMul`, `Transpose`; on wasm the product is our SIMD product on the
 * heap, heap-products.ts, which gives tfjs' values) on a view of its input with another shape, and
 * hands the output back under the shape the caller wants; transposed operands stay inside the call.
 *
 * Why: tfjs' engine spends ~15–20 µs of bookkeeping per kernel call here, which is more than a
 * Reshape costs to run. `tf.fused.matMul` on 2-D operands makes three Reshapes and a custom-gradient
 * op around its one product, and `transpose2d` two Reshapes around its Transpose; a tiny STELLA step
 * made ~900 such calls. The values are the composed ops' bit for bit (test/core/heap-products.test.ts).
 * Registered for wasm and cpu (the backends the project trains and measures memory on); elsewhere
 * callers keep the composed ops.
 * Ref: tfjs-core ops/fused/mat_mul.ts (the reshapes), docs/benchmarks.md "STELLA step".
 */
import * as tf from '@tensorflow/tfjs';
import { heapProducts, type WasmBackendInternals } from './heap-products.ts';
import { backendCalls, backendKernel, kernelOnce, onBackends, wasmHeap } from './wasm-kernel.ts';

const LINEAR = 'StellaLinear2d';
const TRANSPOSE = 'StellaTranspose2d';
const BACKENDS = ['wasm', 'cpu'];

const view = (x: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: x.dataId, shape, dtype: x.dtype });

/** The product's transposes (attrs of `StellaLinear2d`): op(x)·op(w) with op = transpose where set. */
const flags = (attrs: tf.NamedAttrMap | undefined) => ({ transposeA: !!attrs?.transposeA, transposeB: !!attrs?.transposeB });

/**
 * op(x) [M, K]·op(w) [K, N] (+ bias [N]) as the backend's own product on the views [1, M, K]·[1, K, N]
 * (exported for other kernels' composed paths, weight-grads-kernel.ts):
 * `_FusedMatMul` with a bias, `BatchMatMul` without (what tf.fused.matMul and tf.matMul run); a
 * transposed operand is transposed inside the kernel first and freed.
 */
export const linear2d: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { transposeA, transposeB } = flags(attrs);
  const calls = backendCalls(backend);
  const transposed = (t: tf.TensorInfo) => calls.run('Transpose', { x: t }, { perm: [1, 0] });
  const x = transposeA ? transposed(inputs.x as tf.TensorInfo) : inputs.x as tf.TensorInfo;
  const w = transposeB ? transposed(inputs.w as tf.TensorInfo) : inputs.w as tf.TensorInfo;
  const bias = inputs.bias as tf.TensorInfo | undefined;
  try {
    const [m, k] = x.shape, n = w.shape[1];
    const operands = { a: view(x, [1, m, k]), b: view(w, [1, k, n]) };
    const out = (bias
      ? backendKernel('_FusedMatMul')({ inputs: { ...operands, bias }, attrs: { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0.2 }, backend })
      : backendKernel('BatchMatMul')({ inputs: operands, attrs: { transposeA: false, transposeB: false }, backend })) as tf.TensorInfo;
    return view(out, [m, n]);
  } finally {
    if (x !== inputs.x) calls.free(x);
    if (w !== inputs.w) calls.free(w);
  }
};

/**
 * The same on wasm, as our product on the heap (heap-products.ts): no view tensors, no per-call
 * marshalling; a transposed x is read in place, a transposed w transposed inside first.
 */
const linear2dOnHeap: tf.KernelFunc = (args) => {
  const { transposeA, transposeB } = flags(args.attrs);
  if (transposeA && (args.inputs.bias || !wasmHeap(args.backend))) return linear2d(args);
  const calls = backendCalls(args.backend);
  const x = args.inputs.x as tf.TensorInfo;
  const w = transposeB ? calls.run('Transpose', { x: args.inputs.w as tf.TensorInfo }, { perm: [1, 0] }) : args.inputs.w as tf.TensorInfo;
  try {
    const [m, k] = transposeA ? [x.shape[1], x.shape[0]] : x.shape, n = w.shape[1];
    const out = heapProducts(args.backend as unknown as WasmBackendInternals, x, w, args.inputs.bias as tf.TensorInfo | undefined, 1, m, k, n, transposeA);
    return view(out, [m, n]);
  } finally {
    if (w !== args.inputs.w) calls.free(w);
  }
};

/** xᵀ of x [M, N] as the backend's Transpose of the view [2, M/2, N] with perm [2, 0, 1]. */
const transposeByHalves: tf.KernelFunc = ({ inputs, backend }) => {
  const x = inputs.x as tf.TensorInfo;
  const [m, n] = x.shape;
  const out = backendKernel('Transpose')({ inputs: { x: view(x, [2, m / 2, n]) }, attrs: { perm: [2, 0, 1] }, backend }) as tf.TensorInfo;
  return view(out, [n, m]);
};

const ensureLinear = kernelOnce(LINEAR, { wasm: linear2dOnHeap, cpu: linear2d });
const ensureTranspose = kernelOnce(TRANSPOSE, onBackends(BACKENDS, transposeByHalves), (dy) => ({ x: () => transposeHalves(dy as tf.Tensor2D) }));

const supported = () => BACKENDS.includes(tf.getBackend());

/**
 * x [M, K]·w [K, N] (+ b [N]) as the backend's product, one kernel call; undefined where the kernel
 * is not registered (the caller uses tf.fused.matMul or tf.matMul). No gradient: it runs inside the
 * forward or gradient of a custom-gradient op.
 */
export function linearKernel(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor): tf.Tensor2D | undefined {
  if (!supported() || x.dtype !== 'float32' || w.dtype !== 'float32') return undefined;
  ensureLinear();
  return tf.engine().runKernel(LINEAR, b ? { x, w, bias: b } : { x, w }, {}) as tf.Tensor2D;
}

/**
 * op(a)·op(b) for 2-D a and b (op = transpose where its flag is set) as one kernel call where
 * registered, else tf.matMul (the same product).
 */
export function product2d(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (!supported() || a.dtype !== 'float32' || b.dtype !== 'float32') return tf.matMul(a, b, transposeA, transposeB);
  ensureLinear();
  return tf.engine().runKernel(LINEAR, { x: a, w: b }, { transposeA, transposeB }) as tf.Tensor2D;
}

/**
 * xᵀ of x [M, N] with M even, transposed as the view [2, M/2, N] → [N, 2, M/2] = [N, M] (see
 * `transpose2d` for why); one kernel call where registered, else the reshapes around a Transpose.
 */
export function transposeHalves(x: tf.Tensor2D): tf.Tensor2D {
  const [m, n] = x.shape;
  if (!supported()) return tf.reshape(tf.transpose(tf.reshape(x, [2, m / 2, n]), [2, 0, 1]), [n, m]);
  ensureTranspose();
  return tf.engine().runKernel(TRANSPOSE, { x }, {}) as tf.Tensor2D;
}
