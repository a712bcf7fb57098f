import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { createStrategy } from '../../src/method/strategy-registry.ts';
import type { StrategyContext, TrainBatch } from '../../src/method/strategy.ts';

const config = MODEL_CONFIGS.tiny;
const grid = tokenGrid(config);

test.before(async () => { await initBackend(); });

function batchOf(rng: Rng, N: number): TrainBatch {
  const v = Float32Array.from({ length: N * grid.videoTokens * grid.videoPatchDim }, () => rng.normal());
  const a = Float32Array.from({ length: N * grid.audioTokens * grid.audioPatchDim }, () => rng.normal());
  return { video: tf.tensor3d(v, [N, grid.videoTokens, grid.videoPatchDim]), audio: tf.tensor3d(a, [N, grid.audioTokens, grid.audioPatchDim]) };
}

function setup(seed: string, contrastiveWeight?: number) {
  const rng = Rng.fromSeed(seed);
  const service = new ModelService({ config, rng: rng.fork('model'), contrastiveWeight, adam: { lr: 1e-3 } });
  const ctx: StrategyContext = { model: service.backbone, avm: service.avm, rng: rng.fork('method'), trainStep: (f, vars) => service.trainStep(f, vars) };
  return { service, ctx, rng: rng.fork('data') };
}

const snapshot = (m: Map<string, tf.Variable>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
const changed = (before: Map<string, Float32Array>, m: Map<string, tf.Variable>) =>
  [...m].filter(([k, v]) => (v.dataSync() as Float32Array).some((x, i) => x !== before.get(k)![i])).map(([k]) => k);

test('avm-pretrain: the backbone stays frozen, every AVM parameter moves, and each step lowers the matching loss of its pairs', (t) => {
  const strategy = createStrategy('avm-pretrain');
  t.true(strategy.usesAvm);
  t.is(strategy.bufferLayout(config), undefined);
  const { service, ctx, rng } = setup('avm-pretrain');
  const batch = batchOf(rng, 6);
  const backbone = snapshot(service.backbone.variables), avm = snapshot(service.avm.variables);
  const tensors = tf.memory().numTensors;
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    // Same pairs twice: the second value is measured after the first update.
    const pairing = ctx.rng.state();
    const report = strategy.step(batch, ctx);
    ctx.rng = Rng.fromState(pairing);
    const again = strategy.step(batch, ctx).losses.matching;
    t.true(again < report.losses.matching, `step ${step}: ${again} < ${report.losses.matching}`);
    losses.push(report.losses.matching);
    t.is(report.losses.total, report.losses.matching);
    t.true(report.losses.matching_accuracy >= 0 && report.losses.matching_accuracy <= 1);
    t.deepEqual([report.rows, report.current, report.replayed], [6, 6, 0]);
  }
  t.is(tf.memory().numTensors, tensors, 'no tensor leaks');
  t.deepEqual(changed(backbone, service.backbone.variables), [], 'backbone frozen');
  t.deepEqual(changed(avm, service.avm.variables).sort(), [...service.avm.variables.keys()].sort(), 'every AVM parameter trained');
  t.true(Math.abs(losses[0] - Math.LN2) < 0.05, `first loss ${losses[0]} ≈ ln 2`);
  tf.dispose([batch.video, batch.audio]);
});

test('cav-pretrain: MAE + contrastive on the backbone only, contrastive term scaled by the model\'s weight, no buffer', (t) => {
  const strategy = createStrategy('cav-pretrain');
  t.false(strategy.usesAvm);
  t.is(strategy.bufferLayout(config), undefined);
  const a = setup('cav', 0.1), b = setup('cav', 1);
  const batch = batchOf(a.rng, 4);
  const ra = strategy.step(batch, { ...a.ctx, avm: undefined });
  const rb = strategy.step(batch, { ...b.ctx, avm: undefined });
  t.deepEqual(Object.keys(ra.losses).sort(), ['contrastive', 'mae_audio', 'mae_video', 'total']);
  // Same init, same masking stream: only the weight differs (to float32 rounding).
  t.true(Math.abs(rb.losses.contrastive - 10 * ra.losses.contrastive) < 1e-4 * rb.losses.contrastive, `${rb.losses.contrastive} = 10 × ${ra.losses.contrastive}`);
  t.is(rb.losses.mae_audio, ra.losses.mae_audio);
  tf.dispose([batch.video, batch.audio]);
});
