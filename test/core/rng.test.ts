import test from 'ava';
import { Rng } from '../../src/core/rng.ts';

test('same seed replays the same stream; forks are independent of draw order', (t) => {
  const a = Rng.fromSeed(2021), b = Rng.fromSeed(2021);
  const xs = Array.from({ length: 5 }, () => a.uniform());
  t.deepEqual(xs, Array.from({ length: 5 }, () => b.uniform()));
  const f1 = Rng.fromSeed(7).fork('masking').uniform();
  const r = Rng.fromSeed(7); r.uniform(); r.uniform();
  t.is(r.fork('masking').uniform(), f1);
  t.not(Rng.fromSeed(7).fork('other').uniform(), f1);
});

test('state round-trips exactly', (t) => {
  const a = Rng.fromSeed('x'); a.uniform();
  const b = Rng.fromState(a.state());
  t.deepEqual([a.uniform(), a.int(10), a.normal()], [b.uniform(), b.int(10), b.normal()]);
});

test('uniform mean and int range are sane', (t) => {
  const r = Rng.fromSeed(1);
  let s = 0; const n = 20000;
  for (let i = 0; i < n; i++) { const u = r.uniform(); t.true(u >= 0 && u < 1); s += u; }
  t.true(Math.abs(s / n - 0.5) < 0.01);
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[r.int(6)]++;
  for (const c of counts) t.true(c > 850 && c < 1150);
});

test('weightedPermutation is a permutation, zero weights last, inclusion tracks weight', (t) => {
  const r = Rng.fromSeed(3);
  const w = [0, 1, 3, 0, 6];
  let firstIs4 = 0;
  for (let i = 0; i < 3000; i++) {
    const p = Array.from(r.weightedPermutation(w));
    t.deepEqual([...p].sort(), [0, 1, 2, 3, 4]);
    t.deepEqual(p.slice(3).sort(), [0, 3]);
    if (p[0] === 4) firstIs4++;
  }
  t.true(Math.abs(firstIs4 / 3000 - 0.6) < 0.04);
  t.throws(() => r.weightedPermutation([1, -1]), { message: /weight 1 is -1/ });
});

test('beta(0.5, 0.5) has mean 0.5 and stays in (0, 1)', (t) => {
  const r = Rng.fromSeed(9);
  let s = 0;
  for (let i = 0; i < 5000; i++) { const x = r.beta(0.5, 0.5); t.true(x >= 0 && x <= 1); s += x; }
  t.true(Math.abs(s / 5000 - 0.5) < 0.02);
});
