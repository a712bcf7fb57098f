import test from 'ava';
import { Rng } from '../../src/core/rng.ts';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { ReplayBuffer, stellaLayout, stellaPlusLayout, patchLayout, FIELD } from '../../src/method/replay-buffer.ts';

const tiny = MODEL_CONFIGS.tiny;
const idLayout = [{ name: 'id', size: 1, dtype: 'int32' as const }, { name: 'x', size: 2, dtype: 'float32' as const }];

test('reservoir: each of n offered rows is retained with probability ≈ min(1, c/n)', (t) => {
  const rng = Rng.fromSeed('reservoir');
  const c = 10, n = 50, trials = 3000;
  const kept = new Array(n).fill(0);
  for (let trial = 0; trial < trials; trial++) {
    const b = new ReplayBuffer(c, idLayout);
    for (let i = 0; i < n; i += 5) {
      b.add({ id: Int32Array.from({ length: 5 }, (_, j) => i + j), x: new Float32Array(10) }, 5, rng);
    }
    t.is(b.seen, n);
    t.is(b.size, c);
    const all = b.read(Int32Array.from({ length: c }, (_, j) => j)).rows.id;
    for (const id of all) kept[id]++;
  }
  // Binomial(3000, 0.2): sd ≈ 0.0073; allow 4.5 sd.
  for (let i = 0; i < n; i++) t.true(Math.abs(kept[i] / trials - c / n) < 0.033, `row ${i}: ${kept[i] / trials}`);
});

test('the first `capacity` rows fill the slots in order; later rows replace with randint(0, seen) inclusive', (t) => {
  const b = new ReplayBuffer(3, idLayout);
  const rng = Rng.fromSeed(5);
  const slots = b.add({ id: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), x: new Float32Array(16) }, 8, rng);
  t.deepEqual(Array.from(slots.subarray(0, 3)), [0, 1, 2]);
  for (const s of slots.subarray(3)) t.true(s >= -1 && s < 3);
  t.is(b.seen, 8);
});

test('sample: min(requested, available) distinct rows, copies that do not alias the buffer', (t) => {
  const b = new ReplayBuffer(8, idLayout);
  const rng = Rng.fromSeed(9);
  t.is(b.sample(4, rng), undefined);
  b.add({ id: Int32Array.from([10, 11, 12]), x: Float32Array.from([1, 1, 2, 2, 3, 3]) }, 3, rng);
  const d = b.sample(5, rng)!;
  t.is(d.count, 3);
  t.deepEqual([...d.rows.id].sort(), [10, 11, 12]);
  d.rows.x.fill(-1);
  t.deepEqual(Array.from(b.read([0, 1, 2]).rows.x), [1, 1, 2, 2, 3, 3]);
  t.is(b.sample(2, rng)!.count, 2);
});

test('state round trip keeps rows, seen and the byte accounting', (t) => {
  const b = new ReplayBuffer(4, idLayout);
  const rng = Rng.fromSeed(1);
  t.is(b.bytes(), 0);
  b.add({ id: Int32Array.from([1, 2, 3, 4, 5, 6]), x: new Float32Array(12).map((_, i) => i) }, 6, rng);
  t.is(b.bytes(), 4 * (1 + 2) * 4);
  const st = b.toState();
  const r = ReplayBuffer.fromState({ meta: JSON.parse(JSON.stringify(st.meta)), data: st.data });
  t.is(r.seen, 6);
  t.deepEqual(r.read([0, 1, 2, 3]), b.read([0, 1, 2, 3]));
  // The restored reservoir continues identically.
  const r1 = Rng.fromSeed(2), r2 = Rng.fromSeed(2);
  t.deepEqual(b.add({ id: Int32Array.from([7]), x: new Float32Array(2) }, 1, r1), r.add({ id: Int32Array.from([7]), x: new Float32Array(2) }, 1, r2));
  t.throws(() => ReplayBuffer.fromState({ meta: b.toState().meta, data: {} }), { message: /field 'id' has 0 bytes/ });
});

test('layouts: STELLA row holds patches, logits, queries, π and I; STELLA+ about half of it', (t) => {
  const s = new ReplayBuffer(2, stellaLayout(tiny));
  // tiny: 64·768 + 128·256 + 2·96 + 2·96 + 2·(64+128) floats.
  t.is(s.rowBytes(), 4 * (64 * 768 + 128 * 256 + 192 + 192 + 384));
  const p = new ReplayBuffer(2, stellaPlusLayout(tiny, 32, 64));
  t.is(p.rowBytes(), 4 * (32 * 768 + 64 * 256 + 64 + 128 + 192 + 192));
  t.is(new ReplayBuffer(2, patchLayout(tiny, { logits: true })).rowBytes(), 4 * (64 * 768 + 128 * 256 + 192));
  t.true(stellaLayout(tiny).some((f) => f.name === FIELD.probV));
});

test('bad rows are refused naming the field', (t) => {
  const b = new ReplayBuffer(2, idLayout);
  const rng = Rng.fromSeed(0);
  t.throws(() => b.add({ id: Int32Array.from([1]) }, 1, rng), { message: /missing field 'x'/ });
  t.throws(() => b.add({ id: Int32Array.from([1]), x: new Float32Array(3) }, 1, rng), { message: /field 'x' has 3 values, expected 1 rows × 2/ });
  t.throws(() => b.add({ id: Int32Array.from([1]), x: new Float32Array(2), y: new Float32Array(1) }, 1, rng), { message: /unknown field 'y'/ });
  t.throws(() => new ReplayBuffer(0, idLayout), { message: /capacity|Too small|>0|positive/i });
});
