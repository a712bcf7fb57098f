/** The single-call linear and transpose kernels: the composed ops' values bit for bit, one kernel call each. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { fastLinear2d, transpose2d } from '../../src/core/fast-matmul.ts';
import { linearKernel, transposeHalves } from '../../src/core/view-kernels.ts';

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`view-kernels tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('view-kernels');
const rand = (shape: number[]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

/** Top-level kernel calls made by fn (kernels inside kernels not counted). */
function kernelCalls(fn: () => tf.Tensor): string[] {
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const original = engine.runKernel;
  const names: string[] = [];
  let depth = 0;
  engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) {
    if (depth === 0) names.push(name);
    depth++;
    try { return original.call(this, name, ...rest); } finally { depth--; }
  };
  try {
    tf.dispose(fn());
  } finally {
    delete (engine as { runKernel?: unknown }).runKernel;
  }
  return names;
}

for (const backend of ['wasm', 'cpu']) {
  test.serial(`${backend}: linearKernel equals tf.fused.matMul and transposeHalves equals tf.transpose, bit for bit`, async (t) => {
    await tf.setBackend(backend);
    for (const [m, k, n] of [[7, 5, 3], [256, 64, 96], [130, 384, 96]]) {
      const x = rand([m, k]) as tf.Tensor2D, w = rand([k, n]) as tf.Tensor2D, b = rand([n]);
      const mine = linearKernel(x, w, b)!, theirs = tf.fused.matMul({ a: x, b: w, bias: b });
      t.deepEqual(mine.shape, [m, n]);
      t.deepEqual(mine.dataSync(), theirs.dataSync(), `linear [${m}, ${k}]·[${k}, ${n}]`);
      tf.dispose([x, w, b, mine, theirs]);
    }
    for (const [m, n] of [[2, 3], [256, 64], [1024, 96]]) {
      const x = rand([m, n]) as tf.Tensor2D;
      const mine = transposeHalves(x), theirs = tf.transpose(x);
      t.deepEqual(mine.shape, [n, m]);
      t.deepEqual(mine.dataSync(), theirs.dataSync(), `transpose [${m}, ${n}]`);
      tf.dispose([x, mine, theirs]);
    }
    await tf.setBackend('wasm');
  });
}

test.serial('a fast linear and a power-of-two-row transpose are one kernel call each', (t) => {
  const x = rand([256, 64]) as tf.Tensor2D, w = rand([64, 96]) as tf.Tensor2D, b = rand([96]);
  t.deepEqual(kernelCalls(() => fastLinear2d(x, w, b)), ['StellaLinear2d']);
  t.deepEqual(kernelCalls(() => transpose2d(x)), ['StellaTranspose2d']);
  tf.dispose([x, w, b]);
});

test.serial('transposeHalves has a gradient (its transpose)', (t) => {
  const x = rand([4, 6]) as tf.Tensor2D, weights = rand([6, 4]);
  const [g] = tf.grads((y: tf.Tensor) => tf.sum(tf.mul(transposeHalves(y as tf.Tensor2D), weights)))([x]);
  t.deepEqual(g.dataSync(), tf.transpose(weights).dataSync());
  tf.dispose([x, weights, g]);
});
