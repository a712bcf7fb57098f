import test from 'ava';
import { Rng } from '../../src/core/rng.ts';
import {
  bernoulliMask, coreAudioPrune, keptFirstIds, selectedFirstIds, weightedOrder, zeroPruned, keptCounts, drawUniforms,
} from '../../src/method/selection.ts';
import { stellaSelection } from '../../src/method/stella-selection.ts';

/** Random importance rows (positive, softmax-like) and STELLA-like prune masks: only the top-K are prunable. */
function randomCase(rng: Rng, B: number, L: number, K: number, p: number) {
  const W = new Float32Array(B * L), P = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < L; j++) W[b * L + j] = Math.exp(3 * rng.normal());
    const order = Array.from({ length: L }, (_, j) => j).sort((x, y) => W[b * L + y] - W[b * L + x]);
    for (let j = 0; j < K; j++) if (rng.uniform() < p) P[b * L + order[j]] = 1;
  }
  return { W, P };
}

test('audio chunk rule: exactly K kept, whole chunks + one partial chunk trimmed on the correct side, pruned never kept', (t) => {
  const rng = Rng.fromSeed('audio-props');
  const S = 32;
  for (let trial = 0; trial < 300; trial++) {
    const L = trial % 3 === 0 ? 512 : 128, K = L / 2, B = 1 + rng.int(8), C = L / S;
    const { W, P } = randomCase(rng, B, L, K, rng.uniform());
    const r = coreAudioPrune({ data: W, rows: B }, P, K, rng.fork(String(trial)));
    const kept = keptCounts(r.pruned, B, L);
    for (let b = 0; b < B; b++) {
      t.is(kept[b], K, `trial ${trial} row ${b}`);
      const base = b * L;
      for (let j = 0; j < L; j++) if (P[base + j]) t.is(r.pruned[base + j], 1, 'a Bernoulli-pruned token was kept');
      // Walk the order: full chunks (all non-pruned kept), at most one partial, then empty chunks.
      const order = Array.from(r.order.subarray(b * C, (b + 1) * C));
      t.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: C }, (_, k) => k));
      let phase: 'full' | 'after' = 'full';
      for (let i = 0; i < C; i++) {
        const k = order[i];
        const avail: number[] = [], keptHere: number[] = [];
        for (let s = 0; s < S; s++) { if (!P[base + k * S + s]) avail.push(s); if (!r.pruned[base + k * S + s]) keptHere.push(s); }
        if (phase === 'after') { t.is(keptHere.length, 0); continue; }
        if (keptHere.length === avail.length) continue;
        phase = 'after';
        // Partial chunk: the dropped available tokens form a suffix (END) or prefix (START) of the available ones.
        const dropped = avail.filter((s) => !keptHere.includes(s));
        const suffix = dropped.every((s) => s > Math.max(-1, ...keptHere));
        const prefix = dropped.every((s) => s < Math.min(S, ...keptHere));
        t.true(suffix || prefix, 'partial chunk is contiguous from one side');
        const earlier = order.slice(0, i);
        const left = earlier.includes(k - 1), right = earlier.includes(k + 1);
        if (keptHere.length > 0 && left && !right) t.true(suffix, 'left neighbour kept: trim from the end');
        if (keptHere.length > 0 && right && !left) t.true(prefix, 'right neighbour kept: trim from the start');
      }
    }
  }
});

test('audio chunk rule: fewer than K available leaves the mask unchanged and draws no coin', (t) => {
  const P = new Uint8Array(128).fill(1);
  for (let j = 0; j < 40; j++) P[j * 3] = 0;
  const r = coreAudioPrune({ data: new Float32Array(128).fill(1), rows: 1 }, P, 64, Rng.fromSeed(1));
  t.deepEqual(Array.from(r.pruned), Array.from(P));
  t.is(r.coinUsed[0], 0);
});

test('weighted video order: a permutation, zero weights never among the first K when at least K are positive', (t) => {
  const rng = Rng.fromSeed('video-props');
  for (let trial = 0; trial < 200; trial++) {
    const L = 64, K = 32, B = 1 + rng.int(6);
    const { W, P } = randomCase(rng, B, L, K, rng.uniform());
    const order = weightedOrder(zeroPruned(W, P), B, L, rng);
    for (let b = 0; b < B; b++) {
      const row = Array.from(order.subarray(b * L, (b + 1) * L));
      t.is(new Set(row).size, L);
      for (let j = 0; j < K; j++) t.is(P[b * L + row[j]], 0);
    }
  }
});

test('weighted video order: inclusion in the first K is more likely for heavier patches', (t) => {
  const rng = Rng.fromSeed('video-freq');
  const L = 8, K = 2, W = Float32Array.from([8, 4, 2, 1, 1, 1, 1, 0]);
  const hits = new Array(L).fill(0);
  for (let i = 0; i < 4000; i++) { const o = weightedOrder(W, 1, L, rng); for (let j = 0; j < K; j++) hits[o[j]]++; }
  t.true(hits[0] > hits[1] && hits[1] > hits[2] && hits[2] > hits[3]);
  t.is(hits[7], 0);
  // Exact inclusion probability of patch 0: 8/18 + Σ_j (w_j/18)·8/(18 − w_j) ≈ 0.731.
  t.true(Math.abs(hits[0] / 4000 - 0.731) < 0.03);
});

test('Bernoulli masks follow u < p; id orders are kept-first ascending permutations', (t) => {
  t.deepEqual(Array.from(bernoulliMask([0.5, 0.5, 0, 1], [0.4, 0.6, 0, 0.999])), [1, 0, 0, 1]);
  t.deepEqual(Array.from(keptFirstIds([1, 0, 0, 1, 0], 1, 5)), [1, 2, 4, 0, 3]);
  t.deepEqual(Array.from(selectedFirstIds([4, 0, 2, 1, 3], 1, 5, 2)), [0, 4, 1, 2, 3]);
  const u = drawUniforms(1000, Rng.fromSeed(3));
  const m = bernoulliMask(new Float32Array(1000).fill(0.3), u);
  const rate = m.reduce((a, b) => a + b, 0) / 1000;
  t.true(rate > 0.25 && rate < 0.35);
  t.throws(() => bernoulliMask([0.5], [0.1, 0.2]), { message: /1 probabilities but 2 uniforms/ });
});

test('stella selection: first step is top-K by importance; later steps keep K_v / K_a with pruned patches excluded', (t) => {
  const rng = Rng.fromSeed('stella-sel');
  const N = 4, M = 4, Lv = 64, La = 128, kV = 32, kA = 64;
  const mk = (R: number) => {
    const v = randomCase(rng, R, Lv, kV, 0), a = randomCase(rng, R, La, kA, 0);
    const probV = new Float32Array(R * Lv), probA = new Float32Array(R * La);
    for (let i = 0; i < probV.length; i++) probV[i] = rng.uniform() < 0.5 ? rng.uniform() : 0;
    for (let i = 0; i < probA.length; i++) probA[i] = rng.uniform() < 0.5 ? rng.uniform() : 0;
    return { importanceV: v.W, importanceA: a.W, probV, probA };
  };
  const cur = mk(N);
  const orderV = Int32Array.from({ length: N * Lv }, (_, i) => Lv - 1 - (i % Lv));
  const orderA = Int32Array.from({ length: N * La }, (_, i) => i % La);
  const first = stellaSelection({ current: { ...cur, orderV, orderA }, N, Lv, La, kV, kA }, rng);
  t.true(first.firstStep);
  t.deepEqual(Array.from(first.avIds), Array.from(orderV));
  const sel = stellaSelection({ current: { ...cur, orderV, orderA }, replay: mk(M), N, Lv, La, kV, kA }, rng);
  t.is(sel.rows, N + M);
  for (let b = 0; b < N + M; b++) {
    const v = Array.from(sel.avIds.subarray(b * Lv, (b + 1) * Lv)), a = Array.from(sel.vaIds.subarray(b * La, (b + 1) * La));
    t.is(new Set(v).size, Lv);
    t.is(new Set(a).size, La);
    for (let j = 0; j < kV; j++) t.true(sel.videoWeights[b * Lv + v[j]] > 0, 'pruned video patch selected');
    for (let j = 0; j < kA; j++) t.is(sel.audioPruneIn[b * La + a[j]], 0, 'pruned audio patch selected');
    t.is(keptCounts(sel.audioPruneOut.subarray(b * La, (b + 1) * La), 1, La)[0], kA);
  }
  t.throws(() => stellaSelection({ current: { ...cur, probA: new Float32Array(3), orderV, orderA }, N, Lv, La, kV, kA }, rng), { message: /current.probA has 3 values, expected 512/ });
});
