import test from 'ava';
import { rocAuc, localizationAuc } from '../../src/eval/localization.ts';
import { Rng } from '../../src/core/rng.ts';

test('perfect, reversed and tied scores give 1, 0 and 0.5', (t) => {
  const labels = [0, 0, 1, 1, 0, 1];
  t.is(rocAuc([0.1, 0.2, 0.8, 0.9, 0.3, 0.7], labels), 1);
  t.is(rocAuc([0.9, 0.8, 0.2, 0.1, 0.7, 0.3], labels), 0);
  t.is(rocAuc([5, 5, 5, 5, 5, 5], labels), 0.5);
});

test('ties between a positive and a negative count one half', (t) => {
  // pairs (pos, neg): (0.5 vs 0.5) = ½, (0.5 vs 0.1) = 1, (0.9 vs both) = 2 → 3.5 / 4
  t.is(rocAuc([0.5, 0.9, 0.5, 0.1], [true, true, false, false]), 3.5 / 4);
  // 3 positives × 2 negatives; pos scores 2,2,4, neg 1,2: wins 1+½ + 1+½ + 2 = 5 → 5/6
  t.is(rocAuc([2, 2, 4, 1, 2], [1, 1, 1, 0, 0]), 5 / 6);
});

test('random scores give an AUC near 0.5', (t) => {
  const rng = Rng.fromSeed('auc');
  const n = 4000;
  const scores = Array.from({ length: n }, () => rng.uniform());
  const labels = Array.from({ length: n }, () => (rng.uniform() < 0.3 ? 1 : 0));
  const auc = rocAuc(scores, labels)!;
  t.true(Math.abs(auc - 0.5) < 0.04, `auc ${auc}`);
});

test('clips with one class only are skipped and counted', (t) => {
  const s = localizationAuc([
    { scores: Float32Array.from([0.1, 0.9]), labels: [0, 1] },
    { scores: Float32Array.from([0.9, 0.1]), labels: [0, 1] },
    { scores: Float32Array.from([0.3, 0.2]), labels: [1, 1] },
    { scores: Float32Array.from([0.3, 0.2]), labels: [0, 0] },
  ]);
  t.is(s.meanAuc, 0.5);
  t.is(s.clips, 2);
  t.is(s.skipped, 2);
  t.deepEqual(s.perClip, [1, 0, null, null]);
  t.true(Number.isNaN(localizationAuc([{ scores: [1], labels: [1] }]).meanAuc));
});

test('a length mismatch names the clip', (t) => {
  t.throws(() => localizationAuc([{ scores: [1, 2], labels: [1], path: 'a.mp4' }]), { message: /a\.mp4: 2 scores but 1 labels/ });
  t.throws(() => rocAuc([1, NaN], [1, 0]), { message: /score 1 is NaN/ });
});
