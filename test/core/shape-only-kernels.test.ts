/**
 * Shape-only kernels: every rule gives the real kernel's output shape and dtype, a real STELLA step's
 * in-step peak is unchanged by them (so the `base` memory figure cannot drift from the real code path),
 * and the real kernels are back afterwards, even after a throw.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { modelConfig } from '../../src/core/config.ts';
import {
  installShapeOnlyKernels, productShape, SHAPE_ONLY_KERNELS, timeKernels, withShapeOnlyKernels,
} from '../../src/core/shape-only-kernels.ts';
import '../../src/cli/bench.ts'; // registers the strategy step selectors
import { prepareBench } from '../../src/model/step-bench.ts';

test.before(async () => { await initBackend('cpu'); });

/** Ops covering every rule, with broadcasting, transposes, keepDims, negative axes and -1 sizes. */
const CASES: [string, () => tf.Tensor | tf.Tensor[]][] = [
  ['BatchMatMul batched, transposed, broadcast', () => tf.matMul(tf.ones([2, 3, 4]), tf.ones([1, 5, 4]), false, true)],
  ['BatchMatMul transposeA 2-D', () => tf.matMul(tf.ones([4, 3]), tf.ones([4, 5]), true, false)],
  ['_FusedMatMul with bias', () => tf.fused.matMul({ a: tf.ones([3, 4]) as tf.Tensor2D, b: tf.ones([4, 6]) as tf.Tensor2D, bias: tf.ones([6]) })],
  ['Add broadcast', () => tf.add(tf.ones([2, 1, 3]), tf.ones([4, 1]))],
  ['Sub int32', () => tf.sub(tf.ones([3], 'int32'), tf.ones([2, 1], 'int32'))],
  ['Multiply', () => tf.mul(tf.ones([2, 3]), tf.scalar(2))],
  ['RealDiv', () => tf.div(tf.ones([2, 3]), tf.ones([3]))],
  ['SquaredDifference', () => tf.squaredDifference(tf.ones([2, 3]), tf.ones([1, 3]))],
  ['Softmax', () => tf.softmax(tf.ones([2, 3, 5]))],
  ['unary Exp, Log, Erf, Square, Sqrt, Rsqrt', () => [tf.exp, tf.log, tf.erf, tf.square, tf.sqrt, tf.rsqrt].map((f) => f(tf.ones([2, 3])))],
  ['Transpose', () => tf.transpose(tf.ones([2, 3, 4]), [2, 0, 1])],
  ['Sum keepDims, int32', () => [tf.sum(tf.ones([2, 3, 4]), [0, -1], true), tf.sum(tf.ones([2, 3], 'int32'), 1)]],
  ['Mean', () => tf.mean(tf.ones([2, 3, 4]), 1)],
  ['Concat axis 1', () => tf.concat([tf.ones([2, 3]), tf.ones([2, 5])], 1)],
  ['SplitV sizes and count', () => [...tf.split(tf.ones([6, 2]), [1, 5], 0), ...tf.split(tf.ones([2, 6]), 3, -1)]],
  ['Slice with -1 size', () => tf.slice(tf.ones([4, 5]), [1, 2], [-1, 2])],
  ['GatherV2 axis 1', () => tf.gather(tf.ones([3, 4, 2]), tf.tensor2d([[0, 1], [2, 3]], [2, 2], 'int32'), 1)],
];

const shapesOf = (x: tf.Tensor | tf.Tensor[]) => (Array.isArray(x) ? x : [x]).map((t) => `${t.dtype}[${t.shape}]`);

for (const [name, op] of CASES) {
  test(`shape-only ${name} gives the real kernel's shape and dtype`, (t) => {
    const real = tf.tidy(() => shapesOf(op()));
    const shaped = withShapeOnlyKernels(() => tf.tidy(() => shapesOf(op())));
    t.deepEqual(shaped, real);
  });
}

test('shape-only products are zeros; afterwards the real product is back', (t) => {
  const a = tf.tensor2d([[1, 2], [3, 4]]), b = tf.tensor2d([[5, 6], [7, 8]]);
  t.deepEqual(withShapeOnlyKernels(() => tf.matMul(a, b).arraySync()), [[0, 0], [0, 0]]);
  t.deepEqual(tf.matMul(a, b).arraySync(), [[19, 22], [43, 50]]);
  t.deepEqual(tf.add(a, b).arraySync(), [[6, 8], [10, 12]]);
});

test('the real kernels are restored after a throw, and installs do not nest', (t) => {
  t.throws(() => withShapeOnlyKernels(() => { throw new Error('inside'); }), { message: 'inside' });
  t.deepEqual(tf.matMul(tf.tensor2d([[2]]), tf.tensor2d([[3]])).arraySync(), [[6]]);
  const restore = installShapeOnlyKernels();
  try {
    t.throws(() => installShapeOnlyKernels(), { message: /already installed/ });
  } finally {
    restore();
  }
  restore(); // idempotent
  t.deepEqual(tf.softmax(tf.tensor1d([0, 0])).arraySync(), [0.5, 0.5]);
  t.throws(() => installShapeOnlyKernels(['Conv2D']), { message: /no shape rule for Conv2D/ });
  t.throws(() => installShapeOnlyKernels(undefined, 'no-such-backend'), { message: /need the cpu backend \(STELLA_BACKEND=cpu\)/ });
});

test('productShape refuses operands that do not multiply, naming the shapes', (t) => {
  t.deepEqual(productShape([3, 1, 2, 4], [5, 4, 6], false, false), [3, 5, 2, 6]);
  t.throws(() => productShape([2, 3], [4, 5], false, false), { message: /inner dimensions 3 of \[2,3\] and 4 of \[4,5\] differ/ });
  t.throws(() => productShape([2, 2, 3], [3, 3, 5], false, false), { message: /do not broadcast/ });
  t.throws(() => productShape([3], [3, 2], false, false), { message: /rank ≥ 2/ });
});

test('timeKernels counts kernel calls and restores the kernels', (t) => {
  const { result, kernels } = timeKernels(() => tf.tidy(() => tf.matMul(tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])), tf.ones([2, 2])).arraySync()));
  t.deepEqual(result, [[4, 4], [4, 4]]);
  t.is(kernels.find((k) => k.name === 'BatchMatMul')?.calls, 2);
  t.true(kernels.every((k) => k.ms >= 0));
  t.is(tf.getKernel('BatchMatMul', 'cpu').kernelFunc.name, tf.getKernelsForBackend('cpu').find((k) => k.kernelName === 'BatchMatMul')!.kernelFunc.name);
});

/** In-step peak (resident + rise) of one measured step after a warm-up step that fills the buffer. */
function stepPeak(selector = 'stella'): number {
  const bench = prepareBench({ config: modelConfig('tiny'), selector, steps: 1, batch: 2, naive: false, warmup: 1 });
  try {
    return bench.summary(bench.run(1)).peakTensorBytes;
  } finally {
    bench.dispose();
  }
}

test('a STELLA step has the same in-step peak with shape-only kernels as with the real ones', (t) => {
  const count = () => tf.memory().numTensors;
  const before = count();
  const real = stepPeak();
  const leftByReal = count() - before;
  const shaped = withShapeOnlyKernels(() => stepPeak());
  t.true(real > 10 * 2 ** 20, `peak ${real} bytes`);
  t.is(shaped, real);
  t.is(count() - before, 2 * leftByReal, 'shape-only kernels leave no more tensors behind than the real ones');
  t.deepEqual(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).arraySync(), [[11]]);
  t.true(SHAPE_ONLY_KERNELS.includes('BatchMatMul'));
});

test('a training step keeps only what its gradients need: per-block scopes, a freeing backward (DER++ and STELLA peaks at tiny, batch 2)', (t) => {
  // Measured when written: DER++ 26.7 MiB and STELLA 18.6 MiB (docs/benchmarks.md "Memory at base",
  // fourteen changes). With the first seven only, 62.3 and 50.2 MiB; without the freeing backward
  // (every upstream gradient alive until the backward ends) 66.3 and 58.9 MiB; without the per-block
  // tidy scopes as well (every forward intermediate alive too) 87.1 and 61.4 MiB.
  const MiB = 2 ** 20;
  const der = withShapeOnlyKernels(() => stepPeak('der++')), stella = withShapeOnlyKernels(() => stepPeak('stella'));
  t.true(der < 28 * MiB, `DER++ peaks at ${(der / MiB).toFixed(1)} MiB`);
  t.true(stella < 20 * MiB, `STELLA peaks at ${(stella / MiB).toFixed(1)} MiB`);
});
