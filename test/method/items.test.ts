/**
 * STELLA's items bring their own clone() and dispose(), which the engine calls when it fans an item
 * out or drops it (src/graph/runner.ts no longer knows what a Batch or a phase item is).
 */
import * as tf from '@tensorflow/tfjs';
import test from 'ava';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { cloneItem, disposeItem } from '../../src/graph/items.ts';
import { batchOf } from '../../src/method/items.ts';
import { phaseItem } from '../../src/method/phases-host.ts';
import type { Scored } from '../../src/method/phases.ts';

test.before(async () => { await initBackend(); });

const clip = (index: number) => ({ path: `c${index}.mp4`, label: 'l', task: 0, taskName: 't0', split: 'train', index });
const makeBatch = () => batchOf({ task: 0, taskName: 't0', clips: [clip(0), clip(1)] }, tf.ones([2, 3, 768]) as tf.Tensor3D, tf.fill([2, 4, 256], 2) as tf.Tensor3D);

test('a cloned batch owns its own tensors and clips; each disposes once, and nothing leaks', (t) => {
  const before = tf.memory().numTensors;
  const original = makeBatch();
  const copy = cloneItem(original);
  t.not(copy.video, original.video);
  t.not(copy.clips[0], original.clips[0]);
  t.deepEqual(copy.clips, original.clips);
  copy.dispose();
  copy.dispose(); // idempotent
  t.is(tf.tidy(() => original.video.sum().dataSync()[0]), 2 * 3 * 768, 'the original is untouched by the copy being freed');
  t.is(original.audio.dataSync()[5], 2);
  disposeItem(original);
  t.is(tf.memory().numTensors, before);
});

test('a cloned phase item copies batch, payload and stream but not the trainer\'s turn', (t) => {
  const before = tf.memory().numTensors;
  let released = 0;
  const rng = Rng.fromSeed(7);
  const phase = {
    phase: 'scored', strategy: 'stella', sizes: {}, current: { video: new Float32Array([1, 2]) },
    queryV: new Float32Array([0.5]), queryA: new Float32Array([0.25]), rng, keysV: tf.ones([1, 1, 1, 2]) as tf.Tensor4D,
  } as unknown as Scored;
  const item = phaseItem('scored', makeBatch(), phase, () => { released++; });
  const copy = cloneItem(item);
  t.is(copy.kind, 'scored');
  t.is(copy.task, 0);
  t.not(copy.batch.video, item.batch.video);
  t.not(copy.phase.keysV, phase.keysV);
  t.not(copy.phase.queryV, phase.queryV);
  t.not(copy.phase.rng, rng);
  t.is(copy.phase.rng.uniform(), Rng.fromState(rng.state()).uniform(), 'the copy draws what the original would');
  copy.dispose();
  t.is(released, 0, 'disposing the copy does not pass the trainer\'s turn on');
  t.is(item.phase.keysV!.dataSync()[1], 1);
  item.dispose();
  item.dispose();
  t.is(released, 1, 'disposing the original releases the turn once');
  t.is(tf.memory().numTensors, before);
});

test('items without clone() are structured-cloned and items without dispose() are left alone', (t) => {
  const item = { kind: 'tokenized', ...clip(3), videoPatches: new Float32Array([1, 2, 3]), audioPatches: new Float32Array([4]) };
  const copy = cloneItem(item);
  t.deepEqual(copy, item);
  t.not(copy.videoPatches, item.videoPatches);
  t.notThrows(() => disposeItem(item));
  t.notThrows(() => disposeItem(undefined));
});
