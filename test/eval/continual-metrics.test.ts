import test from 'ava';
import {
  averageAccuracy,
  forgetting,
  forgettingAuthors,
  summarizeRetrieval,
  accuracyMatrixFromStages,
  meanStd,
  summaryAcrossSeeds,
  type RetrievalMatrices,
} from '../../src/eval/continual-metrics.ts';
import type { RetrievalResult } from '../../src/eval/retrieval.ts';

// Worked by hand:
// A = (6 + 12 + 9) / 3 = 9
// textbook: j=0 max(10−6, 8−6) = 4; j=1 (20−12) = 8 → (4 + 8) / 2 = 6
// authors:  j=0 4; j=1 max(5−12, 20−12) = 8; j=2 max(2−9, 4−9) = −5 → (4 + 8 − 5) / 2 = 3.5
const M3 = [
  [10, 5, 2],
  [8, 20, 4],
  [6, 12, 9],
];

test('average accuracy is the mean of the last row', (t) => {
  t.is(averageAccuracy(M3), 9);
});

test('textbook forgetting covers tasks before the last, from their own stage on', (t) => {
  t.is(forgetting(M3), 6);
});

test('authors forgetting sums all T tasks, includes pre-learning stages, no clamp', (t) => {
  t.is(forgettingAuthors(M3), 3.5);
  // Task 1's only earlier stage is before it was learned: counted by the coded variant only.
  const M2 = [
    [10, 30],
    [5, 20],
  ];
  t.is(forgetting(M2), 5);
  t.is(forgettingAuthors(M2), 15);
  // Improvements give negative forgetting (no clamp at 0).
  const better = [
    [1, 1],
    [5, 5],
  ];
  t.is(forgetting(better), -4);
  t.is(forgettingAuthors(better), -8);
});

test('a single task has zero forgetting', (t) => {
  t.is(averageAccuracy([[42]]), 42);
  t.is(forgetting([[42]]), 0);
  t.is(forgettingAuthors([[42]]), 0);
});

test('rejects a non-square or non-finite matrix naming the entry', (t) => {
  t.throws(() => averageAccuracy([[1, 2], [3]]), { message: /row 1 has 1 entries, expected 2/ });
  t.throws(() => forgetting([[1, NaN], [3, 4]]), { message: /\[0\]\[1\] is NaN/ });
  t.throws(() => averageAccuracy([]), { message: /empty/ });
});

test('summary averages A, F and F_authors over R1/R5/R10', (t) => {
  const scale = (k: number) => M3.map((r) => r.map((x) => x * k));
  const matrices: RetrievalMatrices = {
    a2v: { R1: M3, R5: scale(2), R10: scale(3) },
    v2a: { R1: scale(0.5), R5: M3, R10: M3 },
  };
  const s = summarizeRetrieval(matrices);
  t.deepEqual(s.a2v.R5, { A: 18, F: 12, F_authors: 7 });
  t.deepEqual(s.a2v.avg, { A: 18, F: 12, F_authors: 7 });
  t.deepEqual(s.v2a.avg, { A: (4.5 + 9 + 9) / 3, F: (3 + 6 + 6) / 3, F_authors: (1.75 + 3.5 + 3.5) / 3 });
  t.throws(() => summarizeRetrieval({ a2v: matrices.a2v } as RetrievalMatrices), { message: /missing v2a\.R1/ });
});

test('accuracy matrix rows are stages, columns are task categories', (t) => {
  const row = (x: number) => ({ a2v: { R1: x, R5: x + 1, R10: x + 2, MR: 1 }, v2a: { R1: -x, R5: 0, R10: 0, MR: 1 } });
  const stages: RetrievalResult[] = [
    { n: 4, all: row(0), perCategory: { music: row(1), sports: row(2) } },
    { n: 4, all: row(0), perCategory: { music: row(3), sports: row(4) } },
  ];
  t.deepEqual(accuracyMatrixFromStages(stages, ['sports', 'music'], 'a2v', 'R5'), [
    [3, 2],
    [5, 4],
  ]);
  t.throws(() => accuracyMatrixFromStages(stages, ['sports', 'vehicle'], 'a2v', 'R1'), { message: /no retrieval row for task 'vehicle'/ });
  t.throws(() => accuracyMatrixFromStages(stages, ['sports'], 'a2v', 'R1'), { message: /2 evaluation stages for 1 tasks/ });
});

test('mean and population std across seeds', (t) => {
  const { mean, std } = meanStd([1, 2, 3, 4]);
  t.is(mean, 2.5);
  t.true(Math.abs(std - Math.sqrt(1.25)) < 1e-12);
  t.deepEqual(meanStd([7]), { mean: 7, std: 0 });
  const one = summarizeRetrieval({ a2v: { R1: M3, R5: M3, R10: M3 }, v2a: { R1: M3, R5: M3, R10: M3 } });
  const two = summarizeRetrieval({ a2v: { R1: [[1]], R5: [[1]], R10: [[1]] }, v2a: { R1: [[3]], R5: [[3]], R10: [[3]] } });
  const agg = summaryAcrossSeeds([one, two]);
  t.deepEqual(agg.a2v.R1.A, { mean: 5, std: 4 });
  t.deepEqual(agg.v2a.avg.F_authors, { mean: 1.75, std: 1.75 });
});
