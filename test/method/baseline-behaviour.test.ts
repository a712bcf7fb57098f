/**
 * Behaviour of the non-STELLA baselines (spec §8, paper-results §3.3): what each one feeds the training
 * forward, what it replays and what it stores — beyond the finite-loss smoke tests of strategy.test.ts.
 * The forward's inputs are observed by wrapping the backbone's Mode-C call on the test's own model.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { FIELD, ReplayBuffer } from '../../src/method/replay-buffer.ts';
import { createStrategy } from '../../src/method/strategy-registry.ts';
import type { Strategy, StrategyContext, TrainBatch } from '../../src/method/strategy.ts';
import { jointManifest } from '../../src/cli/run.ts';

const config = MODEL_CONFIGS.tiny;
const grid = tokenGrid(config);
const VIDEO_ROW = grid.videoTokens * grid.videoPatchDim, AUDIO_ROW = grid.audioTokens * grid.audioPatchDim;

test.before(async () => { await initBackend(); });

/** N rows whose every value is `value` (or seeded normals when `value` is undefined). */
function makeBatch(N: number, value?: number, rng = Rng.fromSeed('batch')): TrainBatch {
  const v = new Float32Array(N * VIDEO_ROW), a = new Float32Array(N * AUDIO_ROW);
  if (value === undefined) { for (let i = 0; i < v.length; i++) v[i] = rng.normal(); for (let i = 0; i < a.length; i++) a[i] = rng.normal(); } else { v.fill(value); a.fill(value); }
  return { video: tf.tensor3d(v, [N, grid.videoTokens, grid.videoPatchDim]), audio: tf.tensor3d(a, [N, grid.audioTokens, grid.audioPatchDim]) };
}

/** Buffer rows whose patches are all `rowValue(i)` (distinct per row), optional logits all `logit`. */
function fillBuffer(buffer: ReplayBuffer, count: number, rowValue: (i: number) => number, logit?: number): void {
  const video = new Float32Array(count * VIDEO_ROW), audio = new Float32Array(count * AUDIO_ROW);
  for (let i = 0; i < count; i++) { video.fill(rowValue(i), i * VIDEO_ROW, (i + 1) * VIDEO_ROW); audio.fill(rowValue(i), i * AUDIO_ROW, (i + 1) * AUDIO_ROW); }
  const rows: Record<string, Float32Array> = { [FIELD.video]: video, [FIELD.audio]: audio };
  if (logit !== undefined) { rows[FIELD.logitsA] = new Float32Array(count * config.embedDim).fill(logit); rows[FIELD.logitsV] = new Float32Array(count * config.embedDim).fill(logit); }
  buffer.add(rows, count, Rng.fromSeed('fill'));
}

/** A context on a fresh seeded model; `fed` records the video rows of every Mode-C forward (row-major values). */
function setup(strategy: Strategy, seed: string, capacity = 8) {
  const rng = Rng.fromSeed(seed);
  const service = new ModelService({ config, rng: rng.fork('model') });
  const layout = strategy.bufferLayout(config);
  const model = service.backbone;
  const fed: number[][][] = [];
  const maeRandom = model.maeRandom.bind(model);
  model.maeRandom = (video, audio, noise) => {
    const means = video.mean(2) as tf.Tensor2D;
    fed.push(means.arraySync().map((row) => [Math.min(...row), Math.max(...row)]));
    means.dispose();
    return maeRandom(video, audio, noise);
  };
  const ctx: StrategyContext = {
    model, avm: service.avm, rng: rng.fork('method'),
    buffer: layout ? new ReplayBuffer(capacity, layout) : undefined,
    trainStep: (f, vars) => service.trainStep(f, vars),
  };
  return { service, ctx, fed };
}

const near = (a: number, b: number) => Math.abs(a - b) < 1e-4;

test('er: with rows held, the forward sees the N current rows then min(N, held) buffer rows; the buffer sees N more', (t) => {
  const strategy = createStrategy('er');
  const { service, ctx, fed } = setup(strategy, 'er');
  const buffer = ctx.buffer!;
  fillBuffer(buffer, 5, (i) => 10 + i);
  const N = 2;
  const batch = makeBatch(N, 0);
  const report = strategy.step(batch, ctx);
  t.is(report.current, N);
  t.is(report.replayed, N);
  t.is(report.rows, 2 * N);
  t.is(buffer.seen, 5 + N);
  // Per fed row: [min, max] of the token means. Current rows are all 0; replay rows are constant buffer rows.
  const rows = fed[0];
  t.is(rows.length, 2 * N);
  for (let i = 0; i < N; i++) t.deepEqual(rows[i], [0, 0]);
  const replayed = rows.slice(N).map(([lo, hi]) => { t.true(near(lo, hi)); return Math.round(lo); });
  t.is(new Set(replayed).size, N, 'distinct buffer rows');
  for (const v of replayed) t.true(v >= 10 && v <= 14, `replayed value ${v} is a buffer row`);
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});

test('der++: the penalty compares the stored logits with the replay rows\' outputs and grows with their distance', (t) => {
  const N = 2;
  const penaltyWith = (logit: number) => {
    const strategy = createStrategy('der++');
    const { service, ctx } = setup(strategy, 'der');
    fillBuffer(ctx.buffer!, 4, (i) => 0.1 * i, logit);
    const batch = makeBatch(N);
    const report = strategy.step(batch, ctx);
    tf.dispose([batch.video, batch.audio]);
    service.dispose();
    t.is(report.replayed, N);
    return report.losses.penalty;
  };
  const p0 = penaltyWith(0), p10 = penaltyWith(10), p20 = penaltyWith(20);
  t.log(`penalty with stored logits 0 / 10 / 20: ${p0.toFixed(3)} / ${p10.toFixed(1)} / ${p20.toFixed(1)}`);
  // Same model, data and masking noise; only the stored logits differ. α·(MSE_a + MSE_v) with outputs y:
  // stored c gives α·2·mean((y − c)²) ≈ 2α·c² for |c| ≫ |y| (α 0.5 → ≈ c²).
  t.true(p10 > p0 + 50, `${p10} vs ${p0}`);
  t.true(p20 > p10 + 200, `${p20} vs ${p10}`);
  t.true(Math.abs(p20 / 400 - 1) < 0.25, `penalty ${p20} ≈ 20² for stored logits 20`);
});

test('der++: the first step has no penalty and stores this forward\'s logits with the current rows', (t) => {
  const strategy = createStrategy('der++');
  const { service, ctx } = setup(strategy, 'der-store');
  const N = 2;
  const batch = makeBatch(N);
  const report = strategy.step(batch, ctx);
  t.false('penalty' in report.losses);
  const stored = ctx.buffer!.read([0, 1]).rows[FIELD.logitsA];
  t.is(stored.length, N * config.embedDim);
  t.true(stored.some((x) => x !== 0), 'logits stored, not zeros');
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});

test('lump: trains on N mixed rows λ·current + (1 − λ)·replay, reports min(N, M) replayed, stores un-mixed rows', (t) => {
  const strategy = createStrategy('lump');
  const { service, ctx, fed } = setup(strategy, 'lump');
  const buffer = ctx.buffer!;
  fillBuffer(buffer, 2, (i) => 10 + 10 * i); // rows 10 and 20
  const N = 3;
  const batch = makeBatch(N, 1);
  const report = strategy.step(batch, ctx);
  t.is(report.rows, N);
  t.is(report.replayed, 2);
  const rows = fed[0];
  t.is(rows.length, N);
  // Mixed rows: λ·1 + (1 − λ)·past, one λ per step; the third current row stays unmixed.
  for (const i of [0, 1]) t.true(near(rows[i][0], rows[i][1]), `mixed row ${i} is constant`);
  // The two drawn buffer rows (10 and 20, in either order) must give one λ ∈ (0, 1) for both mixed rows.
  const lambdaOf = (x: number, past: number) => (x - past) / (1 - past);
  const fits = [[10, 20], [20, 10]].map(([p0, p1]) => [lambdaOf(rows[0][0], p0), lambdaOf(rows[1][0], p1)])
    .filter(([l0, l1]) => Math.abs(l0 - l1) < 1e-4 && l0 > 0 && l0 < 1);
  t.is(fits.length, 1, `rows ${rows[0][0]}, ${rows[1][0]} are one-λ mixes of 1 with the buffer rows 10 and 20`);
  t.deepEqual(rows[2], [1, 1]);
  // Stored: the raw current rows (all 1).
  t.is(buffer.seen, 2 + N);
  const held = buffer.read(Array.from({ length: buffer.size }, (_, i) => i)).rows[FIELD.video];
  const ones = Array.from({ length: buffer.size }, (_, i) => held[i * VIDEO_ROW]).filter((v) => v === 1).length;
  t.true(ones >= 1, 'a current row was stored un-mixed');
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});

test('finetune: no buffer layout, no buffer needed; trains on exactly the N current rows', (t) => {
  const strategy = createStrategy('finetune');
  t.is(strategy.bufferLayout(config), undefined);
  const { service, ctx, fed } = setup(strategy, 'finetune');
  const N = 2;
  const batch = makeBatch(N, 3);
  const report = strategy.step(batch, { ...ctx, buffer: undefined });
  t.is(report.rows, N);
  t.is(report.replayed, 0);
  t.is(report.buffer, undefined);
  t.deepEqual(fed[0], [[3, 3], [3, 3]]);
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});

test('multitask: the runner\'s joint manifest is one task holding every task\'s training clips', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'joint-'));
  try {
    const file = path.join(dir, 'manifest.json');
    await writeFile(file, JSON.stringify({
      seed: 7,
      tasks: [
        { name: 'a', train: [{ path: 'a/1.mp4', label: 'dog' }, { path: 'a/2.mp4', label: 'cat' }], test: [{ path: 'a/t.mp4', label: 'dog' }] },
        { name: 'b', train: [{ path: 'b/1.mp4', label: 'car' }], test: [{ path: 'b/t.mp4', label: 'car' }] },
      ],
    }));
    const out = await jointManifest(file);
    t.is(path.dirname(out), dir);
    const joint = JSON.parse(await readFile(out, 'utf8'));
    t.is(joint.seed, 7);
    t.is(joint.tasks.length, 1);
    t.deepEqual(joint.tasks[0].train, [{ path: 'a/1.mp4', label: 'dog' }, { path: 'a/2.mp4', label: 'cat' }, { path: 'b/1.mp4', label: 'car' }]);
    t.deepEqual([...joint.tasks[0].classes].sort(), ['car', 'cat', 'dog']);
    t.deepEqual(joint.tasks[0].test, []);
    t.is(createStrategy('multitask').bufferLayout(config), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('random: STELLA\'s patch budget (50 % of tokens) chosen with uniform importance and no pruning', (t) => {
  const strategy = createStrategy('random');
  t.false(strategy.usesAvm);
  const { service, ctx } = setup(strategy, 'random');
  const N = 2;
  const batch = makeBatch(N);
  const report = strategy.step(batch, { ...ctx, avm: undefined });
  t.deepEqual(report.kept, { video: grid.videoTokens / 2, audio: grid.audioTokens / 2 });
  const s = report.selection!;
  t.true(s.importanceV.every((x) => Math.abs(x - 1 / s.Lv) < 1e-9), 'uniform video importance');
  t.true(s.probV.every((p) => p === 0), 'nothing pruned');
  // Each row keeps a different random subset (an importance-driven choice of equal rows would repeat).
  const kept = (b: number) => [...s.avIds.subarray(b * s.Lv, b * s.Lv + report.kept.video)].sort((x, y) => x - y).join(',');
  t.not(kept(0), kept(1));
  tf.dispose([batch.video, batch.audio]);
  service.dispose();
});
