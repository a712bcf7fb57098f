/**
 * The wasm-heap LayerNorm kernels (src/core/fused-layer-norm.ts) against the tfjs-op formulation:
 * values and all three gradients agree to float32 rounding, and nothing is left behind.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { fusedLayerNorm } from '../../src/core/fused-layer-norm.ts';

test.before(async () => {
  const info = await initBackend('wasm');
  if (info.name !== 'wasm') throw new Error(`fused-layer-norm tests need the wasm backend, got ${info.name}`);
});

const rng = Rng.fromSeed('fused-layer-norm');
const rand = (shape: number[], scale = 1, shift = 0) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => (x * 2 - 1) * scale + shift), shape);

/** The moments form, as tfjs ops (what the plain model computes). */
function reference(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

test('fusedLayerNorm equals the tfjs moments form, with its gradients for x, γ and β', (t) => {
  const eps = 1e-6;
  // Rows with an offset and a spread (a float32 two-pass mean matters there), and one constant row.
  const x = tf.concat([rand([37, 96], 3, 5), tf.fill([1, 96], 2.5)]) as tf.Tensor2D;
  const w = rand([96], 1, 1), b = rand([96]);
  const dy = rand([38, 96]);
  const tensors = tf.memory().numTensors;
  const diffs = tf.tidy(() => {
    const value = tf.max(tf.abs(tf.sub(fusedLayerNorm(x, w, b, eps), reference(x, w, b, eps)))).dataSync()[0];
    const fused = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fusedLayerNorm(xx as tf.Tensor2D, ww, bb, eps), dy)))([x, w, b]);
    const plain = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(reference(xx, ww, bb, eps), dy)))([x, w, b]);
    return [value, ...fused.map((g, i) => tf.max(tf.abs(tf.sub(g, plain[i]))).dataSync()[0] / Math.max(1, tf.max(tf.abs(plain[i])).dataSync()[0]))];
  });
  t.is(tf.memory().numTensors, tensors, 'no tensor left behind');
  const [value, dx, dGamma, dBeta] = diffs;
  t.true(value < 2e-5, `values differ by ${value}`);
  t.true(dx < 1e-4, `dx differs by ${dx} (relative to its largest entry)`);
  t.true(dGamma < 1e-5, `dγ differs by ${dGamma}`);
  t.true(dBeta < 1e-5, `dβ differs by ${dBeta}`);
  // The constant row normalises to β exactly (x − μ = 0), as the reference does.
  const last = tf.tidy(() => Array.from(tf.slice(fusedLayerNorm(x, w, b, eps), [37, 0], [1, 96]).dataSync()));
  t.deepEqual(last, Array.from(b.dataSync()));
  tf.dispose([x, w, b, dy]);
});
