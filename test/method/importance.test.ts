import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { loadGolden, compareClose, countMismatches, type GoldenTensor } from '../../src/core/golden.ts';
import { localizedPatchImportance, disposeImportance, candidateCount, keyImportance } from '../../src/method/importance.ts';
import { golden } from '../helpers.ts';

const g1 = loadGolden(golden('g1_avm.json'));
const t4 = (g: GoldenTensor) => tf.tensor(g.data, g.shape as [number, number, number, number]) as tf.Tensor4D;

test.before(async () => { await initBackend(); });

test('G1: importance within abs 1e-7 and argsorts exact', (t) => {
  const before = tf.memory().numTensors;
  const input = { sAV: t4(g1.get('cross_attn_av')), sVA: t4(g1.get('cross_attn_va')), qV: t4(g1.get('v_q')), qA: t4(g1.get('a_q')) };
  const imp = localizedPatchImportance(input);
  const iv = compareClose(imp.importanceV.dataSync(), g1.get('n_pos_cross_attn_av').data, 1e-7);
  const ia = compareClose(imp.importanceA.dataSync(), g1.get('n_pos_cross_attn_va').data, 1e-7);
  t.true(iv.ok, `I_v max abs ${iv.maxAbs}`);
  t.true(ia.ok, `I_a max abs ${ia.maxAbs}`);
  t.is(countMismatches(imp.orderV.dataSync(), g1.get('att_av_ids').data), 0);
  t.is(countMismatches(imp.orderA.dataSync(), g1.get('att_va_ids').data), 0);
  t.is(imp.kV, 32);
  t.is(imp.kA, 64);
  // Rows sum to 1 (spec §12.5).
  const sums = imp.importanceV.sum(1);
  for (const s of sums.dataSync()) t.true(Math.abs(s - 1) < 1e-5);
  sums.dispose();
  // Candidate masks hold exactly K ones each, on the top-K ids.
  const m = imp.candidateMaskV.dataSync(), ord = imp.orderV.dataSync();
  for (let n = 0; n < 4; n++) {
    let ones = 0;
    for (let j = 0; j < 64; j++) ones += m[n * 64 + j];
    t.is(ones, 32);
    for (let j = 0; j < 32; j++) t.is(m[n * 64 + ord[n * 64 + j]], 1);
  }
  disposeImportance(imp);
  tf.dispose(Object.values(input));
  t.is(tf.memory().numTensors, before);
});

test('summary queries are the importance-weighted means of the candidate queries (G2 pos_*_cls)', (t) => {
  const g2 = loadGolden(golden('g2_replay.json'));
  const input = { sAV: t4(g1.get('cross_attn_av')), sVA: t4(g1.get('cross_attn_va')), qV: t4(g1.get('v_q')), qA: t4(g1.get('a_q')) };
  const imp = localizedPatchImportance(input);
  t.true(compareClose(imp.queryV.dataSync(), g2.get('pos_v_cls').data, 1e-5, 1e-4).ok);
  t.true(compareClose(imp.queryA.dataSync(), g2.get('pos_a_cls').data, 1e-5, 1e-4).ok);
  disposeImportance(imp);
  tf.dispose(Object.values(input));
});

test('temperature sharpens the importance and K follows int(L·(1−ρ))', (t) => {
  t.is(candidateCount(784, 0.5), 392);
  t.is(candidateCount(512, 0.5), 256);
  t.is(candidateCount(64, 0.75), 16);
  const s = tf.tensor4d([0, 1, 2, 0, 1, 2], [1, 1, 2, 3]);
  const soft = keyImportance(s, 1).dataSync(), sharp = keyImportance(s, 0.1).dataSync();
  t.true(sharp[2] > soft[2]);
  t.true(Math.abs(soft[0] + soft[1] + soft[2] - 1) < 1e-6);
  tf.dispose(s);
});

test('mismatched shapes name the tensor at fault', (t) => {
  const sAV = tf.zeros([2, 3, 8, 4]) as tf.Tensor4D;
  const sVA = tf.zeros([2, 3, 8, 4]) as tf.Tensor4D;
  const qV = tf.zeros([2, 3, 4, 5]) as tf.Tensor4D;
  const qA = tf.zeros([2, 3, 8, 5]) as tf.Tensor4D;
  t.throws(() => localizedPatchImportance({ sAV, sVA, qV, qA }), { message: /sVA has shape \[2,3,8,4\], expected \[2,3,4,8\]/ });
  tf.dispose([sAV, sVA, qV, qA]);
});
