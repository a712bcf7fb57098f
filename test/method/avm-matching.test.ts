import test from 'ava';
import { Rng } from '../../src/core/rng.ts';
import { matchingPairs, checkMatchingPairs } from '../../src/method/avm-matching.ts';

test('labels: ⌊N/2⌋ positives, negatives deranged among themselves, seeded and reproducible', (t) => {
  const rng = Rng.fromSeed('vam');
  for (let trial = 0; trial < 500; trial++) {
    const N = 3 + (trial % 14);
    const p = matchingPairs(N, rng);
    t.deepEqual(checkMatchingPairs(p.labels, p.videoIndex), []);
    t.is(p.labels.reduce((a, b) => a + b, 0), Math.floor(N / 2));
  }
  t.deepEqual(matchingPairs(12, Rng.fromSeed(4)), matchingPairs(12, Rng.fromSeed(4)));
});

test('N ≤ 2 is all positive (no derangement loop)', (t) => {
  for (const N of [1, 2]) {
    const p = matchingPairs(N, Rng.fromSeed(1));
    t.deepEqual(Array.from(p.labels), new Array(N).fill(1));
    t.deepEqual(Array.from(p.videoIndex), Array.from({ length: N }, (_, i) => i));
  }
  t.throws(() => matchingPairs(0, Rng.fromSeed(1)), { message: /positive integer, got 0/ });
});

test('the pairing checker catches a negative that keeps its own video', (t) => {
  t.true(checkMatchingPairs([1, 0, 0, 1], [0, 1, 2, 3]).some((m) => /negative row 1/.test(m)));
  t.true(checkMatchingPairs([1, 1, 0, 0], [0, 1, 3, 2]).length === 0);
});
