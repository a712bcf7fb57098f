/** Layers and tables: exact GELU with a numerically checked gradient, sin-cos tables incl. the audio quirk, weight errors. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { tensorOps } from '../../src/core/fast-matmul.ts';
import { addLayerNorm, gelu, layerNorm, ParamStore } from '../../src/model/layers.ts';
import { audioPosEmbed, videoPosEmbed } from '../../src/model/pos-embed.ts';
import { createCavBackbone } from '../../src/model/cav-backbone.ts';
import { loadStateDict } from '../../src/model/weights.ts';

test.before(async () => { await initBackend(); });

test('GELU is the erf form and its gradient matches finite differences', (t) => {
  const xs = [-3, -1, -0.2, 0, 0.5, 2];
  const values = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
  t.true(Math.abs(values[4] - 0.3457312306) < 1e-6); // 0.5·Φ(0.5)
  t.true(Math.abs(values[1] + 0.1586552539) < 1e-6);
  const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(gelu(x)))(tf.tensor1d(xs)).dataSync());
  xs.forEach((x, i) => {
    const phi = (v: number) => tf.tidy(() => gelu(tf.scalar(v)).dataSync()[0]);
    const numeric = (phi(x + 1e-2) - phi(x - 1e-2)) / 2e-2;
    t.true(Math.abs(numeric - grad[i]) < 1e-3, `x=${x}: ${numeric} vs ${grad[i]}`);
  });
});

test('fast-path LayerNorm and GELU (written-out gradients) equal the autodiff forms in value and gradient', (t) => {
  const rng = Rng.fromSeed('ln');
  const store = new ParamStore('test');
  addLayerNorm(store, 'ln', 6);
  store.write('ln.weight', [6], Float32Array.from({ length: 6 }, () => 0.5 + rng.uniform()));
  store.write('ln.bias', [6], Float32Array.from({ length: 6 }, () => rng.uniform() - 0.5));
  const x = tf.tensor3d(Float32Array.from({ length: 2 * 5 * 6 }, () => rng.normal() * 2), [2, 5, 6]);
  const w = tf.tensor3d(Float32Array.from({ length: 2 * 5 * 6 }, () => rng.normal()), [2, 5, 6]);
  const fast = tensorOps(true), plain = tensorOps(false);
  for (const [what, f] of [
    ['layerNorm', (ops: typeof fast) => (xx: tf.Tensor) => layerNorm(store, 'ln', xx, 1e-6, ops)],
    ['gelu', (ops: typeof fast) => (xx: tf.Tensor) => gelu(xx, ops)],
  ] as const) {
    const run = (ops: typeof fast) => tf.tidy(() => {
      const loss = () => tf.sum(tf.mul(f(ops)(x), w)) as tf.Scalar;
      const value = f(ops)(x).dataSync();
      const grads = what === 'layerNorm' ? tf.variableGrads(loss, [store.get('ln.weight'), store.get('ln.bias')]).grads : {};
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(ops)(xx), w)))(x).dataSync();
      return { value, dx, dw: grads[store.get('ln.weight').name]?.dataSync(), db: grads[store.get('ln.bias').name]?.dataSync() };
    });
    const a = run(fast), b = run(plain);
    const maxDiff = (u?: ArrayLike<number>, v?: ArrayLike<number>) => (u && v ? Math.max(...Array.from(u, (ui, i) => Math.abs(ui - v[i]))) : 0);
    t.true(maxDiff(a.value, b.value) < 1e-5, `${what} value`);
    t.true(maxDiff(a.dx, b.dx) < 1e-4, `${what} dx: ${maxDiff(a.dx, b.dx)}`);
    if (what === 'layerNorm') {
      t.true(maxDiff(a.dw, b.dw) < 1e-4 && maxDiff(a.db, b.db) < 1e-4, 'layerNorm dγ, dβ');
      t.true(Math.abs(a.dx[0]) > 0 && Math.abs(a.dw![0]) > 0, 'gradients are not trivially zero');
    }
  }
  tf.dispose([x, w]);
  store.dispose();
});

test('audio pos-embed keeps the reshape quirk: token k codes (k mod T, ⌊k/T⌋)', (t) => {
  const d = 96, tp = 16, fp = 8;
  const table = audioPosEmbed(d, tp, fp);
  const k = 37; // t = 4, f = 5 → coded as u = 37 mod 16 = 5, v = 2
  const u = 5, v = 2;
  t.true(Math.abs(table[k * d + 0] - Math.sin(u)) < 1e-6);
  t.true(Math.abs(table[k * d + 24] - Math.cos(u)) < 1e-6);
  t.true(Math.abs(table[k * d + 48] - Math.sin(v)) < 1e-6);
  const video = videoPosEmbed(d, 4, 4);
  t.deepEqual(Array.from(video.subarray(16 * d, 17 * d)), Array.from(video.subarray(0, d)), 'frames share the spatial code');
});

test('loading weights rejects a wrong shape, an unknown name and a missing name, naming them', (t) => {
  const model = createCavBackbone(MODEL_CONFIGS.tiny, { rng: Rng.fromSeed(1) });
  t.throws(() => loadStateDict(model, new Map([['module.backbone.transformer.norm.weight', { shape: [95], dtype: 'float32' as const, data: new Float32Array(95) }]]), { strict: false }),
    { message: /tensor 'norm\.weight' has shape \[95\] but the CAV backbone parameter is \[96\]/ });
  t.throws(() => loadStateDict(model, new Map([['nonsense', { shape: [1], dtype: 'float32' as const, data: new Float32Array(1) }]]), { strict: false }), { message: /unknown tensor 'nonsense'/ });
  t.throws(() => loadStateDict(model, new Map()), { message: /missing tensor 'pos_embed_v' \[1,64,96\]/ });
  // The prefix is stripped and the Linear transposed on the way in and out.
  const w = new Float32Array(64 * 96).map((_, i) => i);
  loadStateDict(model, new Map([['module.backbone.transformer.decoder_embed.weight', { shape: [64, 96], dtype: 'float32' as const, data: w }]]), { strict: false });
  t.deepEqual(model.params.get('decoder_embed.weight').shape, [96, 64]);
  t.deepEqual(Array.from(model.params.read('decoder_embed.weight').data.subarray(0, 5)), [0, 1, 2, 3, 4]);
  model.dispose();
});

test('Mode D rejects ids of the wrong shape with a clear message', (t) => {
  const model = createCavBackbone(MODEL_CONFIGS.tiny, { rng: Rng.fromSeed(1) });
  const v = tf.zeros([2, 32, 768]) as tf.Tensor3D, a = tf.zeros([2, 64, 256]) as tf.Tensor3D;
  const ids = tf.zeros([2, 10], 'int32') as tf.Tensor2D;
  t.throws(() => model.maeSelected(v, a, ids, ids), { message: /avIds must be \[2, 64\] id permutations, got \[2,10\]/ });
  tf.dispose([v, a, ids]);
  model.dispose();
});

test('a parameter holds one tensor of its own size: the initial values are not kept beside the variable', (t) => {
  const before = tf.memory();
  const store = new ParamStore('probe');
  store.add('w', [3, 2], 'linear', Float32Array.from([1, 2, 3, 4, 5, 6]));
  store.add('b', [3], 'plain', Float32Array.from([7, 8, 9]));
  t.is(tf.memory().numTensors - before.numTensors, 2);
  t.is(tf.memory().numBytes - before.numBytes, (6 + 3) * 4);
  t.deepEqual(Array.from(store.read('w').data), [1, 2, 3, 4, 5, 6]);
  store.dispose();
  t.is(tf.memory().numTensors, before.numTensors);
  t.is(tf.memory().numBytes, before.numBytes);
});
