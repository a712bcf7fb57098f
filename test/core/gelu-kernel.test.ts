/** The one-call GELU kernels: the composed tfjs ops' values bit for bit on wasm and on cpu, one kernel call each way, nothing left behind. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { geluGradKernel, geluKernel } from '../../src/core/gelu-kernel.ts';
import { Rng } from '../../src/core/rng.ts';
import { gelu } from '../../src/model/layers.ts';

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`gelu tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('gelu-kernel');
const values = (n: number, scale = 4) => rng.fillUniform(new Float32Array(n)).map((x) => (x * 2 - 1) * scale);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** The composed form of src/model/layers.ts geluFastGrad (its fallback), forward and backward. */
function composed(x: tf.Tensor, dy: tf.Tensor) {
  const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
  const out = tf.mul(x, cdf);
  const pdfTimesX = tf.mul(tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), x), INV_SQRT_2PI);
  const dx = tf.mul(dy, tf.add(cdf, pdfTimesX));
  return [out, cdf, dx].map((t) => t.dataSync());
}

function fused(x: tf.Tensor, dy: tf.Tensor) {
  const f = geluKernel(x)!;
  const dx = geluGradKernel(dy, x, f.cdf)!;
  return [f.out, f.cdf, dx].map((t) => t.dataSync());
}

const SHAPES = [[3], [7, 5], [512, 384]];

for (const backend of ['wasm', 'cpu']) {
  test.serial(`${backend}: forward, Φ and backward equal the composed ops bit for bit`, async (t) => {
    await tf.setBackend(backend);
    try {
      for (const shape of SHAPES) {
        const n = shape.reduce((a, b) => a * b, 1);
        tf.tidy(() => {
          const x = tf.tensor(values(n), shape), dy = tf.tensor(values(n, 1), shape);
          const expected = composed(x, dy), actual = fused(x, dy);
          ['y', 'Φ', 'dx'].forEach((name, i) => t.deepEqual(actual[i], expected[i], `${name} at [${shape}]`));
        });
      }
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

test.serial('gelu on the fast path: one kernel call forward, one backward, the plain GELU\'s values and its gradient within 1e-5, no tensor left', (t) => {
  const x = tf.tensor2d(values(64 * 96), [64, 96]), dy = tf.tensor2d(values(64 * 96, 1), [64, 96]);
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const original = engine.runKernel;
  const calls: string[] = [];
  engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) {
    calls.push(name);
    return original.call(this, name, ...rest);
  };
  const before = tf.memory().numTensors;
  let fast: tf.Tensor[];
  try {
    fast = tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads((xx: tf.Tensor) => tf.mul(gelu(xx, { fast: true } as never), dy))([x]);
      return [value, grads[0]];
    });
  } finally {
    delete (engine as { runKernel?: unknown }).runKernel;
  }
  t.is(calls.filter((c) => c === 'StellaGelu').length, 1);
  t.is(calls.filter((c) => c === 'StellaGeluGrad').length, 1);
  t.false(calls.includes('Erf') || calls.includes('Exp'), `no composed GELU kernels: ${calls.join(', ')}`);
  const plain = tf.tidy(() => {
    const { value, grads } = tf.valueAndGrads((xx: tf.Tensor) => tf.mul(gelu(xx), dy))([x]);
    return [value, grads[0]];
  });
  t.deepEqual(fast[0].dataSync(), plain[0].dataSync(), 'forward equals the plain GELU');
  // The plain form's autodiff gradient is another formula (erf's registered gradient); within float error.
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fast[1], plain[1]))).dataSync()[0]);
  t.true(diff < 1e-5, `gradients within 1e-5 (max |Δ| ${diff})`);
  tf.dispose([...fast, ...plain]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([x, dy]);
});
