/** The one-kernel LayerNorm: the composed tfjs ops' values on wasm bit for bit, the same on cpu. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { layerNormGradKernel, layerNormKernel } from '../../src/core/layer-norm-kernel.ts';

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`layer-norm tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('layer-norm-kernel');
/** Values with an offset and a spread per row, as activations have. */
const values = (n: number, scale = 3) => rng.fillUniform(new Float32Array(n)).map((x, i) => (x * 2 - 1) * scale + (i % 5) - 2);
const EPS = 1e-6;

/** The composed form of src/model/layers.ts (the fallback), forward and backward. */
function composed(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, dy: tf.Tensor2D) {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), EPS));
  const normed = tf.mul(centred, rstd);
  const out = tf.add(tf.mul(normed, w), b);
  const g = tf.mul(dy, w);
  const dx = tf.mul(rstd, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(normed, tf.mean(tf.mul(g, normed), -1, true))));
  const colSums = (m: tf.Tensor) => tf.sum(tf.transpose(m), -1);
  return [out, normed, rstd, dx, colSums(tf.mul(dy, normed)), colSums(dy)].map((t) => t.dataSync());
}

function fused(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, dy: tf.Tensor2D) {
  const f = layerNormKernel(x, w, b, EPS)!;
  const grads = layerNormGradKernel(dy, f.normed, f.rstd, w)!;
  return [f.out, f.normed, f.rstd, ...grads].map((t) => t.dataSync());
}

const NAMES = ['y', 'x̂', 'r', 'dx', 'dγ', 'dβ'];
const SHAPES = [[1, 4], [5, 7], [130, 96], [9, 768], [3, 1]];

test.serial('wasm: forward and backward equal the composed ops bit for bit (dims with and without a 4-lane tail)', (t) => {
  for (const [rows, dim] of SHAPES) {
    tf.tidy(() => {
      const x = tf.tensor2d(values(rows * dim), [rows, dim]), dy = tf.tensor2d(values(rows * dim, 1), [rows, dim]);
      const w = tf.tensor1d(values(dim, 0.5)), b = tf.tensor1d(values(dim, 0.5));
      const expected = composed(x, w, b, dy), actual = fused(x, w, b, dy);
      actual.forEach((a, i) => t.deepEqual(a, expected[i], `${NAMES[i]} at [${rows}, ${dim}]`));
    });
  }
});

test.serial('cpu computes what wasm computes, bit for bit', async (t) => {
  const inputs = SHAPES.map(([rows, dim]) => ({ rows, dim, x: values(rows * dim), dy: values(rows * dim, 1), w: values(dim, 0.5), b: values(dim, 0.5) }));
  const run = () => inputs.map(({ rows, dim, x, dy, w, b }) => tf.tidy(() =>
    fused(tf.tensor2d(x, [rows, dim]), tf.tensor1d(w), tf.tensor1d(b), tf.tensor2d(dy, [rows, dim]))));
  const onWasm = run();
  await tf.setBackend('cpu');
  try {
    const onCpu = run();
    onCpu.forEach((outs, s) => outs.forEach((a, i) => t.deepEqual(a, onWasm[s][i], `${NAMES[i]} at [${SHAPES[s]}]`)));
  } finally {
    await tf.setBackend('wasm');
  }
});

test.serial('a constant row normalises to zeros (σ² = 0: r = 1/√ε), and no tensor is left behind', (t) => {
  const before = tf.memory().numTensors;
  const x = tf.fill([2, 8], 3) as tf.Tensor2D, w = tf.ones([8]), b = tf.zeros([8]);
  const f = layerNormKernel(x, w, b, EPS)!;
  t.deepEqual([...f.out.dataSync()], new Array(16).fill(0));
  t.is(f.rstd.dataSync()[0], Math.fround(1 / Math.fround(Math.sqrt(Math.fround(EPS)))));
  tf.dispose([x, w, b, f.out, f.normed, f.rstd]);
  t.is(tf.memory().numTensors, before);
});
