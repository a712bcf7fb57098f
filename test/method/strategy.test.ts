import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { ReplayBuffer } from '../../src/method/replay-buffer.ts';
import { createStrategy, STRATEGY_NAMES } from '../../src/method/strategy-registry.ts';
import type { Strategy, StrategyContext, TrainBatch } from '../../src/method/strategy.ts';

const config = MODEL_CONFIGS.tiny;
const grid = tokenGrid(config);

test.before(async () => { await initBackend(); });

function makeBatch(rng: Rng, N: number): TrainBatch {
  const v = new Float32Array(N * grid.videoTokens * grid.videoPatchDim), a = new Float32Array(N * grid.audioTokens * grid.audioPatchDim);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal();
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return {
    video: tf.tensor3d(v, [N, grid.videoTokens, grid.videoPatchDim]),
    audio: tf.tensor3d(a, [N, grid.audioTokens, grid.audioPatchDim]),
  };
}

function setup(strategy: Strategy, seed: string, capacity = 16) {
  const rng = Rng.fromSeed(seed);
  const service = new ModelService({ config, rng: rng.fork('model') });
  const layout = strategy.bufferLayout(config);
  const ctx: StrategyContext = {
    model: service.backbone, avm: service.avm, rng: rng.fork('method'),
    buffer: layout ? new ReplayBuffer(capacity, layout) : undefined,
    trainStep: (f, vars) => service.trainStep(f, vars),
  };
  return { service, ctx, rng: rng.fork('data') };
}

test('registry knows every strategy and refuses unknown names and options with the valid choices', (t) => {
  t.deepEqual([...STRATEGY_NAMES].sort(), ['avm-pretrain', 'cav-pretrain', 'der++', 'er', 'finetune', 'lpis-only', 'lump', 'multitask', 'random', 'rca-only', 'stella', 'stella-plus']);
  t.throws(() => createStrategy('mir'), { message: /unknown strategy 'mir'; choose one of: stella, stella-plus, .*rca-only/ });
  t.throws(() => createStrategy('stella', { alhpa: 1 }), { message: /strategy 'stella': invalid options/ });
  t.true(createStrategy('stella').usesAvm);
  t.false(createStrategy('random').usesAvm);
  t.is(createStrategy('finetune').bufferLayout(config), undefined);
});

test('stella: first step top-K without replay, then N + M rows with penalty; buffer fills; no tensor leaks over 20 steps', (t) => {
  const strategy = createStrategy('stella');
  const { service, ctx, rng } = setup(strategy, 'stella-steps', 8);
  const N = 3;
  const counts: number[] = [];
  let report;
  const started = Date.now();
  for (let step = 0; step < 20; step++) {
    const batch = makeBatch(rng, N);
    report = strategy.step(batch, ctx);
    if (step === 19) t.log(`20 stella steps (N ${N}, tiny): ${Date.now() - started} ms`);
    tf.dispose([batch.video, batch.audio]);
    if (step === 0) {
      t.is(report.rows, N);
      t.is(report.replayed, 0);
      t.true(report.selection!.firstStep);
      t.false('penalty' in report.losses);
      t.true(report.selection!.probV.every((p) => p === 0));
    }
    counts.push(tf.memory().numTensors);
  }
  t.is(report!.rows, 2 * N);
  t.is(report!.replayed, N);
  t.false(report!.selection!.firstStep);
  for (const k of ['mae_audio', 'mae_video', 'contrastive', 'matching', 'penalty', 'total']) t.true(Number.isFinite(report!.losses[k]), k);
  const sum = ['mae_audio', 'mae_video', 'contrastive', 'matching', 'penalty'].reduce((s, k) => s + report!.losses[k], 0);
  t.true(Math.abs(sum - report!.losses.total) < 1e-4 * Math.max(1, Math.abs(sum)));
  t.deepEqual(report!.kept, { video: 32, audio: 64 });
  // π is zero off the candidate set and somewhere positive on it once replay exists.
  t.true(report!.selection!.probV.some((p) => p > 0));
  t.is(report!.buffer!.size, 8);
  t.is(report!.buffer!.seen, 60);
  // Flat tensor count after the optimiser's moments exist.
  t.is(counts[19], counts[2], `tensor counts: ${counts.join(',')}`);
  service.dispose();
});

for (const name of ['stella-plus', 'lpis-only', 'rca-only', 'random', 'finetune', 'multitask', 'er', 'der++', 'lump']) {
  test(`${name}: three steps train, report finite losses and leak nothing after warm-up`, (t) => {
    const strategy = createStrategy(name);
    const { service, ctx, rng } = setup(strategy, `steps-${name}`);
    const N = 3;
    const counts: number[] = [];
    let report;
    for (let step = 0; step < 3; step++) {
      const batch = makeBatch(rng, N);
      report = strategy.step(batch, ctx);
      tf.dispose([batch.video, batch.audio]);
      counts.push(tf.memory().numTensors);
    }
    t.true(Number.isFinite(report!.losses.total));
    const replays = ctx.buffer !== undefined;
    t.is(report!.current, N);
    if (name === 'lump') t.is(report!.rows, N);
    else t.is(report!.rows, replays ? 2 * N : N);
    t.is('penalty' in report!.losses, ['stella-plus', 'lpis-only', 'rca-only', 'random', 'der++'].includes(name));
    t.is('matching' in report!.losses, strategy.usesAvm);
    if (report!.selection) {
      const s = report!.selection;
      for (let b = 0; b < N; b++) {
        const ids = Array.from(s.avIds.subarray(b * s.Lv, (b + 1) * s.Lv));
        t.is(new Set(ids).size, s.Lv);
      }
      if (name === 'lpis-only' || name === 'random') t.true(s.probV.every((p) => p === 0));
      if (name === 'rca-only' || name === 'random') t.true(s.importanceV.every((x) => Math.abs(x - 1 / s.Lv) < 1e-9));
    }
    t.is(counts[2], counts[1], `tensor counts: ${counts.join(',')}`);
    service.dispose();
  });
}

test('strategies refuse a missing buffer or AVM and a mis-shaped batch', (t) => {
  const strategy = createStrategy('stella');
  const { service, ctx, rng } = setup(strategy, 'bad');
  const batch = makeBatch(rng, 2);
  t.throws(() => strategy.step(batch, { ...ctx, buffer: undefined }), { message: /needs ctx.buffer/ });
  t.throws(() => strategy.step(batch, { ...ctx, avm: undefined }), { message: /uses the AVM/ });
  t.throws(() => strategy.step({ video: batch.audio, audio: batch.video }, ctx), { message: /batch.video must be \[N, 64/ });
  t.throws(() => createStrategy('er').step(batch, { ...ctx, buffer: new ReplayBuffer(4, [{ name: 'x', size: 1, dtype: 'float32' }]) }), { message: /lacks field 'video_data'/ });
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});
