/**
 * Golden verifiers for the method cases: G2 (replay-guided correlation assessment and the pinned
 * sampling that follows, on G1's attention) and G3 (the audio time-chunk rule, 20 sub-cases).
 * Sizes come from each case's tensors and `config`, never from constants.
 * Tolerances (golden README): real values abs 1e-5 + rel 1e-4 (G3 chunk scores abs 1e-6), masks and ids exact;
 * id orders the reference's unstable argsort cannot reproduce are compared as sets.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { GoldenCase, GoldenTensor } from '../core/golden.ts';
import { compareClose, countMismatches, loadGolden } from '../core/golden.ts';
import { CaseChecker, type CaseResult } from '../core/golden-verify.ts';
import { initBackend } from '../core/backend.ts';
import { coreAudioPrune, keptFirstIds } from './selection.ts';
import { localizedPatchImportance, disposeImportance } from './importance.ts';
import { replayCorrelation, disposeCorrelation } from './correlation.ts';
import { stellaSelection } from './stella-selection.ts';
import { rehearsalPenalty } from './penalty.ts';
import { checkMatchingPairs, matchingLoss } from './avm-matching.ts';
import type { AvmModule } from '../model/types.ts';
import type { NamedTensor } from '../core/safetensors.ts';

/** Mismatching rows when comparing, per row, the set of the first `counts[b]` ids of two [B, L] id arrays. */
export function prefixSetMismatches(actual: ArrayLike<number>, expected: ArrayLike<number>, B: number, L: number, counts: ArrayLike<number>): number {
  let bad = 0;
  for (let b = 0; b < B; b++) {
    const k = counts[b];
    const a = Array.from({ length: k }, (_, j) => actual[b * L + j]).sort((x, y) => x - y);
    const e = Array.from({ length: k }, (_, j) => expected[b * L + j]).sort((x, y) => x - y);
    if (a.some((x, j) => x !== e[j])) bad++;
  }
  return bad;
}

function zerosPerRow(mask: ArrayLike<number>, B: number, L: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) { let n = 0; for (let j = 0; j < L; j++) if (!mask[b * L + j]) n++; out.push(n); }
  return out;
}

export async function verifyG3(c: GoldenCase): Promise<CaseResult> {
  const check = new CaseChecker();
  const subcases: { id: string; num_cand_audio: number }[] = c.config.subcases;
  if (!Array.isArray(subcases) || subcases.length === 0) throw new Error('config.subcases is missing or empty');
  const grid = { freqTokens: Number(c.config.num_freq_tokens ?? c.config.derived?.num_freq_tokens), chunkTimes: Number(c.config.num_core_audio_times ?? c.config.stella?.num_core_audio_times) };
  if (!(grid.freqTokens > 0 && grid.chunkTimes > 0)) throw new Error('config.num_freq_tokens / num_core_audio_times are missing');
  for (const sc of subcases) {
    const p = `${sc.id}.`;
    const aVal = c.get(p + 'a_val');
    const [B, L] = aVal.shape;
    const res = coreAudioPrune({ data: aVal.data, rows: B }, c.get(p + 'a_prune_in').data, sc.num_cand_audio, {
      order: c.get(p + 'important_timeline').data,
      coin: c.get(p + 'coin').data,
      grid,
    });
    check.close(`${p}avg_a_val`, compareClose(res.chunkScores, c.get(p + 'avg_a_val').data, 1e-6));
    check.exact(`${p}prune_out`, countMismatches(res.pruned, c.get(p + 'prune_out').data));
    check.exact(`${p}coin_used`, countMismatches(res.coinUsed, c.get(p + 'coin_used').data));
    const ids = keptFirstIds(res.pruned, B, L);
    check.exact(`${p}argsort_ids (kept set per row)`, prefixSetMismatches(ids, c.get(p + 'argsort_ids').data, B, L, zerosPerRow(res.pruned, B, L)));
  }
  return check.result();
}

/** Rows of a [B, L] array gathered at per-row ids [B, K] → [B, K]. */
function gatherRows(x: ArrayLike<number>, ids: ArrayLike<number>, B: number, L: number, K: number): Float32Array {
  const out = new Float32Array(B * K);
  for (let b = 0; b < B; b++) for (let j = 0; j < K; j++) out[b * K + j] = x[b * L + ids[b * L + j]];
  return out;
}

/** [B, H, L] gathered along the last axis at per-row ids (first K of [B, L]) → [B, H, K]. */
function gatherHeads(x: ArrayLike<number>, ids: ArrayLike<number>, B: number, H: number, L: number, K: number): Float32Array {
  const out = new Float32Array(B * H * K);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let j = 0; j < K; j++) out[(b * H + h) * K + j] = x[(b * H + h) * L + ids[b * L + j]];
  return out;
}

const tensorOf = (g: GoldenTensor) => tf.tensor(g.data, g.shape);

export async function verifyG2(c: GoldenCase, dir: string): Promise<CaseResult> {
  await initBackend();
  const check = new CaseChecker();
  const g1 = loadGolden(path.join(dir, 'g1_avm.json'));
  const REAL = [1e-5, 1e-4] as const;
  const close = (name: string, actual: ArrayLike<number>, expected = c.get(name).data) => check.close(name, compareClose(actual, expected, ...REAL));
  const [N, H, La, Lv] = g1.get('cross_attn_av').shape;
  const temperature = Number(c.config.stella?.att_temperature ?? 0.4);
  const grid = { freqTokens: Number(c.config.derived?.num_freq_tokens ?? 8), chunkTimes: Number(c.config.stella?.num_core_audio_times ?? 4) };
  const input = {
    sAV: tensorOf(g1.get('cross_attn_av')) as tf.Tensor4D, sVA: tensorOf(g1.get('cross_attn_va')) as tf.Tensor4D,
    qV: tensorOf(g1.get('v_q')) as tf.Tensor4D, qA: tensorOf(g1.get('a_q')) as tf.Tensor4D,
    kV: tensorOf(g1.get('v_k')) as tf.Tensor4D, kA: tensorOf(g1.get('a_k')) as tf.Tensor4D,
  };
  const imp = localizedPatchImportance(input, {
    temperature, coreVideoRatio: Number(c.config.stella?.core_video_ratio ?? 0.5), coreAudioRatio: Number(c.config.stella?.core_audio_ratio ?? 0.5),
  });
  const pastV = tensorOf(c.get('buf_video_query')) as tf.Tensor3D, pastA = tensorOf(c.get('buf_audio_query')) as tf.Tensor3D;
  const cor = replayCorrelation({
    kV: input.kV, kA: input.kA, queryV: imp.queryV, queryA: imp.queryA, pastQueryV: pastV, pastQueryA: pastA,
    candidateMaskV: imp.candidateMaskV, candidateMaskA: imp.candidateMaskA,
  });
  try {
    const { kV, kA } = imp;
    if (c.get('discri_n_pos_cross_attn_av').shape[1] !== kV) check.fail(`discri_n_pos_cross_attn_av: ${c.get('discri_n_pos_cross_attn_av').shape[1]} candidates, computed K_v = ${kV}`);
    const iV = imp.importanceV.dataSync(), iA = imp.importanceA.dataSync();
    const ordV = imp.orderV.dataSync(), ordA = imp.orderA.dataSync();
    close('discri_n_pos_cross_attn_av', gatherRows(iV, ordV, N, Lv, kV));
    close('discri_n_pos_cross_attn_va', gatherRows(iA, ordA, N, La, kA));
    close('pos_v_cls', imp.queryV.dataSync());
    close('pos_a_cls', imp.queryA.dataSync());
    close('v_spu_att', gatherHeads(cor.pastLogitV.dataSync(), ordV, N, H, Lv, kV));
    close('v_pos_att', gatherHeads(cor.currentLogitV.dataSync(), ordV, N, H, Lv, kV));
    close('a_spu_att', gatherHeads(cor.pastLogitA.dataSync(), ordA, N, H, La, kA));
    close('a_pos_att', gatherHeads(cor.currentLogitA.dataSync(), ordA, N, H, La, kA));
    const probV = cor.probV.dataSync() as Float32Array, probA = cor.probA.dataSync() as Float32Array;
    const pair = (p: Float32Array, ord: ArrayLike<number>, L: number, K: number) => {
      const g = gatherRows(p, ord, N, L, K);
      return Float32Array.from({ length: N * K * 2 }, (_, i) => (i % 2 === 0 ? g[i >> 1] : 1 - g[i >> 1]));
    };
    close('v_att', pair(probV, ordV, Lv, kV));
    close('a_att', pair(probA, ordA, La, kA));
    close('prob_v_att', probV);
    close('prob_a_att', probA);

    // Sampling with every draw pinned.
    const M = c.get('buf_prob_v_att').shape[0];
    const sel = stellaSelection({
      current: { importanceV: iV as Float32Array, importanceA: iA as Float32Array, probV, probA, orderV: ordV, orderA: ordA },
      replay: {
        importanceV: c.get('buf_n_attn_av').data as Float32Array, importanceA: c.get('buf_n_attn_va').data as Float32Array,
        probV: c.get('buf_prob_v_att').data as Float32Array, probA: c.get('buf_prob_a_att').data as Float32Array,
      },
      N, Lv, La, kV, kA, grid,
    }, {
      uniformsCurrentV: c.get('bern_u_v').data, uniformsCurrentA: c.get('bern_u_a').data,
      uniformsReplayV: c.get('bern_u_buf_v').data, uniformsReplayA: c.get('bern_u_buf_a').data,
      videoOrder: c.get('att_av_ids_final').data, chunkOrder: c.get('important_timeline').data, coin: c.get('coin').data,
    });
    check.exact('v_prune_mat', countMismatches(sel.pruneV, c.get('v_prune_mat').data));
    check.exact('a_prune_mat', countMismatches(sel.pruneA, c.get('a_prune_mat').data));
    check.exact('buf_v_prune_mat', countMismatches(sel.replayPruneV, c.get('buf_v_prune_mat').data));
    check.exact('buf_a_prune_mat', countMismatches(sel.replayPruneA, c.get('buf_a_prune_mat').data));
    close('prune_n_pos_cross_attn_av', sel.videoWeights.subarray(0, N * Lv));
    close('concat_n_attn_av', sel.videoWeights);
    close('concat_n_attn_va', Float32Array.from([...iA, ...c.get('buf_n_attn_va').data]));
    check.exact('concat_a_prune_in', countMismatches(sel.audioPruneIn, c.get('concat_a_prune_in').data));
    close('avg_a_val', sel.chunkScores);
    check.exact('concat_a_prune_out', countMismatches(sel.audioPruneOut, c.get('concat_a_prune_out').data));
    check.exact('coin_used', countMismatches(sel.coinUsed, c.get('coin_used').data));
    check.exact('final_att_map_av_ids', countMismatches(sel.avIds, c.get('final_att_map_av_ids').data));
    check.exact('att_va_ids_final (kept set per row)', prefixSetMismatches(sel.vaIds, c.get('att_va_ids_final').data, N + M, La, zerosPerRow(sel.audioPruneOut, N + M, La)));
    // The pinned video order must respect the pruning: no zero-weight patch among the first K_v.
    let zeroInSelection = 0;
    for (let b = 0; b < N + M; b++) for (let j = 0; j < kV; j++) if (sel.videoWeights[b * Lv + sel.avIds[b * Lv + j]] === 0) zeroInSelection++;
    check.exact('att_av_ids_final (zero-weight patches among the first K_v)', zeroInSelection);

    // Matching objective: labels / pairing invariants, then the loss through the real AVM when available.
    for (const f of checkMatchingPairs(c.get('vam_labels').data, c.get('vam_video_indices').data)) check.fail(f);
    for (const f of await verifyMatchingLoss(c, g1)) check.fail(f);

    const la = tensorOf(c.get('buf_logits_a')) as tf.Tensor2D, lv = tensorOf(c.get('buf_logits_v')) as tf.Tensor2D;
    const zA = tf.zerosLike(la), zV = tf.zerosLike(lv);
    const pen = rehearsalPenalty(la, zA as tf.Tensor2D, lv, zV as tf.Tensor2D, Number(c.config.stella?.alpha ?? 0.5));
    close('penalty_loss', pen.dataSync());
    tf.dispose([zA, zV, la, lv, pen]);
  } finally {
    disposeImportance(imp);
    disposeCorrelation(cor);
    tf.dispose([...Object.values(input), pastV, pastA]);
  }
  return check.result();
}

/**
 * G2 `vam_logits` / `vam_loss` through the real AVM (src/model/avm.ts) with G1's weights; the stub
 * backbone of the case is the identity, so the AVM sees x_a and x_v[vam_video_indices].
 */
async function verifyMatchingLoss(c: GoldenCase, g1: GoldenCase): Promise<string[]> {
  const avm = await loadGoldenAvm(g1);
  if (!avm) return ['vam_logits / vam_loss: pending — src/model/avm.ts (AvmModule with G1 weights) is not available yet'];
  try {
  const xa = tensorOf(g1.get('x_a')) as tf.Tensor3D, xv = tensorOf(g1.get('x_v')) as tf.Tensor3D;
  const idx = tf.tensor1d(c.get('vam_video_indices').data as Int32Array, 'int32');
  const embV = tf.gather(xv, idx) as tf.Tensor3D;
  const { loss, logits } = matchingLoss(avm, { embA: xa, embV }, Float32Array.from(c.get('vam_labels').data));
  const out: string[] = [];
  const cl = compareClose(logits.dataSync(), c.get('vam_logits').data, 1e-5, 1e-4);
  if (!cl.ok) out.push(`vam_logits: max abs error ${cl.maxAbs.toExponential(3)}`);
  const cs = compareClose(loss.dataSync(), c.get('vam_loss').data, 1e-5, 1e-4);
  if (!cs.ok) out.push(`vam_loss: max abs error ${cs.maxAbs.toExponential(3)}`);
  tf.dispose([xa, xv, idx, embV, loss, logits]);
  return out;
  } finally {
    avm.dispose();
  }
}

/** The real AVM with G1's `avm.*` weights (undefined while src/model/avm.ts is absent). */
async function loadGoldenAvm(g1: GoldenCase): Promise<(AvmModule & { dispose(): void }) | undefined> {
  let mod: typeof import('../model/avm.ts');
  try { mod = await import('../model/avm.ts'); } catch { return undefined; }
  const { loadStateDict } = await import('../model/weights.ts');
  const { Rng } = await import('../core/rng.ts');
  const heads = g1.get('cross_attn_av').shape[1];
  const avm = mod.createAvm(g1.get('x_a').shape[2], heads, { rng: Rng.fromSeed('golden-g2') });
  const weights = new Map<string, NamedTensor>();
  for (const [name, t] of g1.tensors) if (name.startsWith('avm.')) weights.set(name.slice(4), t as NamedTensor);
  loadStateDict(avm, weights, { source: `${path.basename(g1.file)} avm.*` });
  return avm;
}
