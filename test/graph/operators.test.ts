import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, from, Subject, take, toArray } from 'rxjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { pullable } from '../../src/graph/bounded-queue.ts';
import type { Batch } from '../../src/method/items.ts';
import type { StageError } from '../../src/graph/items.ts';
import type { StellaItem as GraphItem } from '../../src/method/items.ts';
import type { TokenizedClip } from '../../src/media/items.ts';
import { batch } from '../../src/method/stages/batch.ts';
import { decode } from '../../src/media/stages/decode.ts';
import { evaluate } from '../../src/eval/stages/evaluate.ts';
import { clipStream } from '../../src/media/stages/source.ts';
import { tokenize } from '../../src/media/stages/tokenize.ts';
import { train } from '../../src/method/stages/train.ts';
import { CenterBiasSelector } from '../../plugins/example-selector.ts';
import { FakeDecoder, FakeEvaluator, FakeTrainer, TINY, grid, manifestRows, patchTokenizer } from './fakes.ts';

test.before(async () => { await initBackend(); });

const collect = <T>(o: import('rxjs').Observable<T>) => firstValueFrom(o.pipe(toArray()));

test('source: tasks in order, epochs per task, TaskEnd after each, seeded shuffle independent of other draws', (t) => {
  const rows = manifestRows({ a: 3, b: 2 }).concat(manifestRows({ a: 2 }, 'test'));
  const items = [...clipStream(rows, { split: 'train', epochs: 2, shuffle: false, tasks: [], limit: 0 }, Rng.fromSeed(1))];
  t.deepEqual(items.map((i) => (i.kind === 'clip' ? `${i.taskName}${i.index}e${i.epoch}` : `end${i.task}`)), [
    'a0e1', 'a1e1', 'a2e1', 'a0e2', 'a1e2', 'a2e2', 'end0', 'b0e1', 'b1e1', 'b0e2', 'b1e2', 'end1',
  ]);
  const shuffled = (seed: number) => [...clipStream(rows, { split: 'train', epochs: 1, shuffle: true, tasks: ['a'], limit: 0 }, Rng.fromSeed(seed))].map((i) => (i.kind === 'clip' ? i.index : -1));
  t.deepEqual(shuffled(7), shuffled(7));
  t.deepEqual([...shuffled(7)].sort(), [-1, 0, 1, 2]);
  t.throws(() => [...clipStream(rows, { split: 'train', epochs: 1, shuffle: false, tasks: ['zz'], limit: 0 }, Rng.fromSeed(1))], { message: /task 'zz' is not in the manifest; tasks: a, b/ });
});

test('decode: keeps order under concurrency, bounds concurrency, turns a bad clip into a StageError and goes on', async (t) => {
  const decoder = new FakeDecoder(3);
  const errors: StageError[] = [];
  const paths = ['/d/clip-0.mp4', '/d/bad-clip-1.mp4', '/d/clip-2.mp4', '/d/clip-3.mp4', '/d/clip-4.mp4'];
  const out = await collect(from(paths).pipe(decode({ concurrency: 2, mode: 'eval' }, { decoder, config: TINY, errors: { next: (e) => errors.push(e) } })));
  t.deepEqual(out.map((d) => (d.kind === 'decoded' ? d.index : -1)), [0, 2, 3, 4]);
  t.deepEqual(out.map((d) => (d.kind === 'decoded' ? d.video[0] : -1)), [0, 2, 3, 4], 'each output is its own clip');
  t.is(decoder.maxActive, 2);
  t.deepEqual(errors, [{ path: '/d/bad-clip-1.mp4', stage: 'decode', message: 'ffmpeg exited with code 1 for /d/bad-clip-1.mp4' }]);
  t.deepEqual(await collect(from([] as string[]).pipe(decode({}, { decoder, config: TINY }))), [], 'empty stream');
});

test('decode: unsubscribing aborts every in-flight decode (ffmpeg children get their signal)', async (t) => {
  // Only clip 0 finishes; the two behind it would run forever if nothing aborted them.
  const decoder = new FakeDecoder(0, (p) => !p.endsWith('clip-0.mp4'));
  const first = await firstValueFrom(pullable(['/d/clip-0.mp4', '/d/clip-1.mp4', '/d/clip-2.mp4']).pipe(decode({ concurrency: 3 }, { decoder, config: TINY }), take(1)).pipe(toArray()));
  t.deepEqual(first.map((d) => (d.kind === 'decoded' ? d.index : -1)), [0]);
  t.is(decoder.maxActive, 3, 'all three were decoding at once');
  t.is(decoder.aborted, 2, 'the two decodes behind the first were aborted');
  await new Promise(setImmediate); // one turn of the event loop: their rejections settle
  t.is(decoder.active, 0);
});

test.serial('tokenize + batch: patches in the media layout, batches flushed at TaskEnd, tensors freed', async (t) => {
  const before = tf.memory().numTensors;
  const decoder = new FakeDecoder(0);
  const items: GraphItem[] = [
    ...[0, 1, 2].map((i) => ({ kind: 'clip' as const, path: `/d/clip-${i}.mp4`, label: '', task: 0, taskName: 'a', split: 'train', index: i })),
    { kind: 'task-end', task: 0, taskName: 'a' },
  ];
  const out = await collect(
    from(items as never[]).pipe(decode({ mode: 'eval' }, { decoder, config: TINY }), tokenize({}, { tokenizer: patchTokenizer, config: TINY }), batch({ size: 2, dropLast: false })),
  );
  t.deepEqual(out.map((i) => i.kind), ['batch', 'batch', 'task-end']);
  const [b0, b1] = out as Batch[];
  t.deepEqual(b0.video.shape, [2, grid.videoTokens, 768]);
  t.deepEqual(b0.audio.shape, [2, grid.audioTokens, 256]);
  t.deepEqual(b1.clips.map((c) => c.index), [2]);
  t.is(b0.video.arraySync()[1][0][0], 1, 'row 1 holds clip 1');
  for (const b of [b0, b1]) b.dispose();
  t.is(tf.memory().numTensors, before);
  const dropped = await collect(from(items as never[]).pipe(decode({ mode: 'eval' }, { decoder, config: TINY }), tokenize({}, { tokenizer: patchTokenizer, config: TINY }), batch({ size: 2 })));
  t.deepEqual(dropped.map((i) => i.kind), ['batch', 'task-end'], 'dropLast (spec §1.5) drops the partial batch');
  (dropped[0] as Batch).dispose();
});

test.serial('batch: a clip with a different patch count is a StageError; unsubscribing early leaks nothing', async (t) => {
  const before = tf.memory().numTensors;
  const clip = (i: number, lv = 4): TokenizedClip => ({ kind: 'tokenized', path: `p${i}`, label: '', task: 0, taskName: 'a', split: 'train', index: i, videoPatches: new Float32Array(lv * 768), audioPatches: new Float32Array(2 * 256) });
  const errors: StageError[] = [];
  const out = await collect(from([clip(0), clip(1, 5), clip(2)]).pipe(batch({ size: 2 }, { errors: { next: (e) => errors.push(e) } })));
  t.is(out.length, 1);
  t.deepEqual((out[0] as Batch).clips.map((c) => c.index), [0, 2]);
  t.regex(errors[0].message, /do not match the batch's 3072\/512/);
  (out[0] as Batch).dispose();
  const subject = new Subject<GraphItem>();
  const sub = subject.pipe(batch({ size: 2 })).subscribe();
  subject.next(clip(0));
  sub.unsubscribe();
  t.is(tf.memory().numTensors, before);
});

test.serial('train + evaluate: steps in order, batches disposed, failed step reported, one eval per task end', async (t) => {
  const before = tf.memory().numTensors;
  const trainer = new FakeTrainer();
  let calls = 0;
  const flaky = { step: async (b: Batch, c: never) => { if (++calls === 2) throw new Error('NaN loss'); return trainer.step(b, c); } };
  const mk = (task: number, i: number) => ({ kind: 'batch' as const, task, taskName: `t${task}`, clips: [{ path: `p${i}`, label: '', task, taskName: `t${task}`, split: 'train', index: i }], video: tf.zeros([1, 2, 768]) as tf.Tensor3D, audio: tf.zeros([1, 2, 256]) as tf.Tensor3D, dispose() { this.video.dispose(); this.audio.dispose(); } });
  const errors: StageError[] = [];
  const evaluator = new FakeEvaluator();
  const items: GraphItem[] = [mk(0, 0), mk(0, 1), mk(0, 2), { kind: 'task-end', task: 0, taskName: 't0' }, mk(1, 3), { kind: 'task-end', task: 1, taskName: 't1' }];
  const out = await collect(from(items).pipe(train({}, { trainer: flaky as never, selector: new CenterBiasSelector(), errors: { next: (e) => errors.push(e) } }) as never, evaluate({}, { evaluator })));
  t.deepEqual(out.map((i) => (i.kind === 'step' ? `s${i.step}` : i.kind === 'eval' ? `e${i.task}` : i.kind)), ['s1', 's2', 'e0', 'task-end', 's3', 'e1', 'task-end']);
  t.deepEqual(errors, [{ path: 'p1', stage: 'train', message: 'NaN loss' }]);
  t.deepEqual(trainer.seen.map((s) => s.selector), ['center-bias', 'center-bias', 'center-bias']);
  t.deepEqual(evaluator.calls, [{ task: 0, step: 2 }, { task: 1, step: 3 }]);
  t.is(tf.memory().numTensors, before, 'every batch disposed, the failed one too');
});

test.serial('center-bias selector keeps the patches nearest the centre and the middle time rows', (t) => {
  const selector = new CenterBiasSelector();
  const importance = { video: tf.zeros([2, grid.videoTokens]) as tf.Tensor2D, audio: tf.zeros([2, grid.audioTokens]) as tf.Tensor2D };
  const before = tf.memory().numTensors;
  const kept = selector.select({ importance, keep: { video: 4, audio: 8 }, grid: { frames: TINY.numFrames, side: grid.side, timePatches: grid.timePatches, freqPatches: grid.freqPatches } });
  // side 4: the centre patches of frame 0 are (1,1), (1,2), (2,1), (2,2) = 5, 6, 9, 10.
  t.deepEqual(kept.video.arraySync(), [[5, 6, 9, 10], [5, 6, 9, 10]]);
  // 16 time rows × 8 freq: the middle rows are 7 and 8 → indices 56..63 first (row 7) — 8 of them.
  t.deepEqual(kept.audio.arraySync()[0], [56, 57, 58, 59, 60, 61, 62, 63]);
  t.is(kept.video.dtype, 'int32');
  kept.video.dispose(); kept.audio.dispose();
  t.is(tf.memory().numTensors, before);
  t.throws(() => selector.select({ importance, keep: { video: 4, audio: 8 }, grid: { frames: 2, side: 4, timePatches: 16, freqPatches: 8 } }), { message: /do not match the grid/ });
  importance.video.dispose(); importance.audio.dispose();
});
