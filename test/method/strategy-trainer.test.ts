import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/core/safetensors.ts';
import { loadStateDict } from '../../src/model/weights.ts';
import { AVM_PREFIX } from '../../src/model/model-service.ts';
import type { PatchSelector } from '../../src/method/patch-selector.ts';
import { NonFiniteLossError, sumLosses } from '../../src/method/strategy.ts';
import { StrategyTrainer } from '../../src/method/strategy-trainer.ts';

const config = MODEL_CONFIGS.tiny;
const grid = tokenGrid(config);
test.before(async () => { await initBackend(); });

function batch(seed: number, N = 2) {
  const rng = Rng.fromSeed(`batch-${seed}`);
  const v = new Float32Array(N * grid.videoTokens * grid.videoPatchDim).map(() => rng.normal());
  const a = new Float32Array(N * grid.audioTokens * grid.audioPatchDim).map(() => rng.normal());
  return { video: tf.tensor3d(v, [N, grid.videoTokens, grid.videoPatchDim]), audio: tf.tensor3d(a, [N, grid.audioTokens, grid.audioPatchDim]) };
}

function run(trainer: StrategyTrainer, from: number, to: number) {
  const losses: number[] = [];
  for (let s = from; s < to; s++) {
    const b = batch(s);
    losses.push(trainer.step(b).losses.total);
    tf.dispose([b.video, b.audio]);
  }
  return losses;
}

function weightsOf(trainer: StrategyTrainer): Map<string, Float32Array> {
  return new Map([...trainer.model.weights()].map(([k, v]) => [k, Float32Array.from(v.data as Float32Array)]));
}

test('state() + weights restore a trainer that continues bit for bit like an uninterrupted one', (t) => {
  const straight = new StrategyTrainer(config, Rng.fromSeed('resume'), { memory: 4 });
  const first = new StrategyTrainer(config, Rng.fromSeed('resume'), { memory: 4 });
  const full = run(straight, 0, 4);
  const head = run(first, 0, 2);
  t.deepEqual(head, full.slice(0, 2));
  // Round-trip everything through bytes, as a checkpoint does.
  const state = JSON.parse(JSON.stringify(first.state(), (_k, v) => (ArrayBuffer.isView(v) ? { typed: v.constructor.name, data: Array.from(v as Float32Array) } : v)),
    (_k, v) => (v && v.typed ? new (globalThis as any)[v.typed](v.data) : v));
  const bytes = serializeSafetensors(first.model.weights());
  const resumed = new StrategyTrainer(config, Rng.fromSeed('resume'), { memory: 4 });
  const tensors = parseSafetensors(bytes).tensors;
  loadStateDict(resumed.model.backbone, new Map([...tensors].filter(([k]) => !k.startsWith(AVM_PREFIX))));
  loadStateDict(resumed.model.avm, new Map([...tensors].filter(([k]) => k.startsWith(AVM_PREFIX))));
  resumed.restore(state);
  const tail = run(resumed, 2, 4);
  t.deepEqual(tail, full.slice(2));
  const a = weightsOf(straight), b = weightsOf(resumed);
  let differing = 0;
  for (const [k, v] of a) if (!v.every((x, i) => Object.is(x, b.get(k)![i]))) differing++;
  t.is(differing, 0);
  for (const tr of [straight, first, resumed]) tr.dispose();
});

test('a plugin PatchSelector drives the kept patches of the STELLA step', (t) => {
  const firstK: PatchSelector = {
    name: 'first-k',
    select: ({ importance, keep }) => tf.tidy(() => {
      const rows = importance.video.shape[0];
      return {
        video: tf.tile(tf.range(0, keep.video, 1, 'int32').expandDims(0), [rows, 1]) as tf.Tensor2D,
        audio: tf.tile(tf.range(0, keep.audio, 1, 'int32').expandDims(0), [rows, 1]) as tf.Tensor2D,
      };
    }),
  };
  const trainer = new StrategyTrainer(config, Rng.fromSeed('plugin'), { memory: 4 });
  for (let s = 0; s < 2; s++) {
    const b = batch(s);
    const out = trainer.step(b, firstK);
    tf.dispose([b.video, b.audio]);
    t.true(Number.isFinite(out.losses.total));
    t.is(out.memory.rows, s === 0 ? 2 : 4); // replay rows join from the second step
  }
  const sel = trainer.lastSelection!;
  t.deepEqual(Array.from(sel.avIds.subarray(0, sel.kV)), Array.from({ length: sel.kV }, (_, i) => i));
  t.deepEqual(Array.from(sel.vaIds.subarray(0, sel.kA)), Array.from({ length: sel.kA }, (_, i) => i));
  t.is(trainer.strategyName, 'first-k');
  t.throws(() => trainer.use('stella'), { message: /already 'first-k'/ });
  trainer.dispose();
});

test('a NaN loss is refused by name before the optimiser runs', (t) => {
  const record: Record<string, number> = {};
  const bad = { mae_audio: tf.scalar(1), penalty: tf.scalar(NaN) };
  const error = t.throws(() => sumLosses(bad, record), { instanceOf: NonFiniteLossError });
  t.regex(error!.message, /loss 'penalty' is NaN/);
  tf.dispose(Object.values(bad));
  t.throws(() => new StrategyTrainer(config, Rng.fromSeed(1)).use('nope'), { message: /unknown strategy 'nope'/ });
});
