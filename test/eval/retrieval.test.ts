import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { diagonalRanks, retrievalMetrics, recallFromRanks } from '../../src/eval/retrieval.ts';
import { Rng } from '../../src/core/rng.ts';

test.before(async () => {
  await initBackend();
});

// D = 3 one-hot embeddings, so every similarity is exactly 0 or 1.
// video: v0 = e0, v1 = e1, v2 = e0 (a duplicate of v0), v3 = e2
// audio: a0 = e0, a1 = e1, a2 = e1, a3 = e2
// a2v rows: a0 → [1,0,1,0] diag 1, 0 greater, 1 tie;  a1 → [0,1,0,0] rank 0;
//           a2 → [0,1,0,0] diag 0, 1 greater (v1), 2 ties (v0, v3);  a3 → [0,0,0,1] rank 0
const e = (i: number) => [0, 1, 2].map((k) => (k === i ? 1 : 0));
const video = Float32Array.from([e(0), e(1), e(0), e(2)].flat());
const audio = Float32Array.from([e(0), e(1), e(1), e(2)].flat());

test('strict ranks count only strictly greater gallery items', (t) => {
  const r = retrievalMetrics(audio, video, { dim: 3 });
  // ranks [0, 0, 1, 0]
  t.deepEqual(r.all.a2v, { R1: 75, R5: 100, R10: 100, MR: 1 });
  // v2a rows: v0=e0 → [1,0,0,0] rank 0; v1=e1 → [0,1,1,0] tie; v2=e0 → [1,0,0,0] diag 0, 1 greater; v3 rank 0
  t.deepEqual(r.all.v2a, { R1: 75, R5: 100, R10: 100, MR: 1 });
  t.is(r.n, 4);
});

test('authors tie mode expands a tied row into several rank entries', (t) => {
  const r = retrievalMetrics(audio, video, { dim: 3, tieMode: 'authors' });
  // entries: a0 → 0,1; a1 → 0; a2 → 1,2,3; a3 → 0  → 7 entries, 3 at rank 0, median 1
  t.is(r.all.a2v.R1, (100 * 3) / 7);
  t.is(r.all.a2v.R5, 100);
  t.is(r.all.a2v.MR, 2);
});

test('per-category rows restrict the queries, not the gallery', (t) => {
  const r = retrievalMetrics(audio, video, { dim: 3, categories: ['x', 'x', 'y', 'y'] });
  t.is(r.perCategory.x.a2v.R1, 100);
  // a2's competitor v1 belongs to category x; it still counts because the gallery is all clips.
  t.is(r.perCategory.y.a2v.R1, 50);
  t.is(r.perCategory.y.a2v.MR, 1.5);
});

test('batched similarity matches a brute-force ranking and leaks no tensors', (t) => {
  const rng = Rng.fromSeed('retrieval');
  const n = 37, d = 8;
  const a = Float32Array.from({ length: n * d }, () => rng.normal());
  const v = Float32Array.from({ length: n * d }, (_, i) => a[i] + 1.5 * rng.normal());
  const unit = (x: Float32Array, i: number) => {
    const row = Array.from(x.subarray(i * d, (i + 1) * d));
    const norm = Math.hypot(...row);
    return row.map((y) => y / norm);
  };
  const dot = (p: number[], q: number[]) => p.reduce((s, y, k) => s + y * q[k], 0);
  const bruteRanks = (q: Float32Array, g: Float32Array) =>
    Array.from({ length: n }, (_, i) => {
      const sims = Array.from({ length: n }, (_, j) => dot(unit(q, i), unit(g, j)));
      return sims.filter((s) => s > sims[i] + 1e-6).length;
    });
  const before = tf.memory().numTensors;
  const aT = tf.tensor2d(a, [n, d]);
  const vT = tf.tensor2d(v, [n, d]);
  // The batched ranks are the brute-force ones, in both directions.
  const brute = { a2v: bruteRanks(a, v), v2a: bruteRanks(v, a) };
  t.deepEqual([...diagonalRanks(aT, vT, 5).greater], brute.a2v);
  t.deepEqual([...diagonalRanks(vT, aT, 5).greater], brute.v2a);
  const r = retrievalMetrics(aT, vT, { queryBatch: 5 });
  t.deepEqual(r, retrievalMetrics(aT, vT), 'the query batch size changes nothing');
  const within = (ranks: number[], k: number) => (100 * ranks.filter((x) => x < k).length) / n;
  t.deepEqual([r.all.a2v.R1, r.all.a2v.R5, r.all.a2v.R10], [within(brute.a2v, 1), within(brute.a2v, 5), within(brute.a2v, 10)]);
  t.deepEqual([r.all.v2a.R1, r.all.v2a.R5, r.all.v2a.R10], [within(brute.v2a, 1), within(brute.v2a, 5), within(brute.v2a, 10)]);
  t.true(r.all.a2v.R1 > 10 && r.all.a2v.R10 < 100, 'the toy problem is neither trivial nor hopeless');
  aT.dispose();
  vT.dispose();
  t.is(tf.memory().numTensors, before);
});

test('recallFromRanks: R@K counts 0-based ranks below K; MR is the NumPy median + 1', (t) => {
  // Odd count: ranks 0, 0, 3, 7, 12 → R@1 2/5, R@5 3/5, R@10 4/5; median 3 → MR 4.
  t.deepEqual(recallFromRanks([7, 0, 12, 3, 0]), { R1: 40, R5: 60, R10: 80, MR: 4 });
  // Even count: ranks 0, 2, 5, 9 → R@1 1/4, R@5 2/4 (rank 5 is 6th), R@10 4/4; median (2 + 5) / 2 → MR 4.5.
  t.deepEqual(recallFromRanks([9, 5, 0, 2]), { R1: 25, R5: 50, R10: 100, MR: 4.5 });
  // Ranks are numbers, not strings: 10 sorts after 9.
  t.is(recallFromRanks([10, 9, 1]).MR, 10);
  t.true(Number.isNaN(recallFromRanks([]).MR));
});

test('bad shapes are refused with the sizes', (t) => {
  const before = tf.memory().numTensors;
  t.throws(() => retrievalMetrics(audio, video.subarray(0, 9), { dim: 3 }), { message: /\[4,3\].*\[3,3\]/ });
  t.throws(() => retrievalMetrics(audio, video), { message: /options\.dim/ });
  t.throws(() => retrievalMetrics(audio, video, { dim: 3, categories: ['x'] }), { message: /1 categories given for 4 clips/ });
  t.is(tf.memory().numTensors, before);
});
