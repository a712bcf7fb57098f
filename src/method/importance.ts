/**
 * Localized Patch Importance Scoring (LPIS): which patches each modality's partner attends to.
 *
 * Behaviour (batched tensor code, no per-sample loops):
 *   I_v[n, j] = mean_h mean_i softmax_j(S_av[n, h, i, :] / τ)[j]     [B, Lv], rows sum to 1
 *   I_a[n, i] = mean_h mean_j softmax_i(S_va[n, h, j, :] / τ)[i]     [B, La]
 *   ord_* = argsort(I_*, descending); candidates C_* = ord_*[:, :K_*] with K = int(L·(1 − ρ)).
 *   Summary queries q_v[n, h] = Σ_{l∈C_v} I_v[l]·Q_v[n, h, l] / Σ_{l∈C_v} I_v[l]   [B, H, d_h]; q_a likewise.
 *   K = int(L·(1−ρ)) is the spec's formula (§2.5); at the default ρ = 0.5 it equals int(L·ρ).
 *
 * Inputs: the raw (unnormalised) AVM logits S_av [B, H, La, Lv], S_va [B, H, Lv, La] and the per-head
 * queries Q_v [B, H, Lv, d_h], Q_a [B, H, La, d_h] (AvmModule.inferAttention).
 * Outputs: tensors owned by the caller (`disposeImportance`); `orderV/orderA` int32.
 * Options: `temperature` τ (0.4), `coreVideoRatio` ρ_v (0.5), `coreAudioRatio` ρ_a (0.5).
 * Ref: spec §5.2 steps (2) and (4); paper-results §1.2; golden G1 (`n_pos_cross_attn_*`, `att_*_ids`).
 */
import * as tf from '@tensorflow/tfjs';
import { meanOverMiddle } from '../core/middle-mean-kernel.ts';
import { z } from 'zod';

export const importanceOptionsSchema = z.object({
  temperature: z.number().positive().default(0.4),
  coreVideoRatio: z.number().min(0).max(1).default(0.5),
  coreAudioRatio: z.number().min(0).max(1).default(0.5),
});
export type ImportanceOptions = z.input<typeof importanceOptionsSchema>;

export interface ImportanceInput {
  sAV: tf.Tensor4D;
  sVA: tf.Tensor4D;
  qV: tf.Tensor4D;
  qA: tf.Tensor4D;
}

export interface Importance {
  /** I_v [B, Lv] and I_a [B, La]. */
  importanceV: tf.Tensor2D;
  importanceA: tf.Tensor2D;
  /** Descending argsorts [B, L] (int32). */
  orderV: tf.Tensor2D;
  orderA: tf.Tensor2D;
  /** Candidate counts K_v, K_a. */
  kV: number;
  kA: number;
  /** 1 on the candidate (top-K) patches, 0 elsewhere, in patch order [B, L]. */
  candidateMaskV: tf.Tensor2D;
  candidateMaskA: tf.Tensor2D;
  /** Summary queries q_v, q_a [B, H, d_h] (what the buffer stores as video_query / audio_query). */
  queryV: tf.Tensor3D;
  queryA: tf.Tensor3D;
}

/** K = int(L·(1 − ρ)) (float64 truncation as the reference). */
export function candidateCount(tokens: number, ratio: number): number {
  return Math.trunc(tokens * (1 - ratio));
}

function checkShapes(x: ImportanceInput): { B: number; H: number; La: number; Lv: number } {
  const [B, H, La, Lv] = x.sAV.shape;
  const want = (name: string, t: tf.Tensor, shape: number[]) => {
    if (t.rank !== shape.length || t.shape.some((d, i) => shape[i] >= 0 && d !== shape[i])) {
      throw new RangeError(`importance: ${name} has shape [${t.shape}], expected [${shape.map((d) => (d < 0 ? '·' : d))}] (from sAV [${x.sAV.shape}])`);
    }
  };
  want('sAV', x.sAV, [-1, -1, -1, -1]);
  want('sVA', x.sVA, [B, H, Lv, La]);
  want('qV', x.qV, [B, H, Lv, -1]);
  want('qA', x.qA, [B, H, La, -1]);
  return { B, H, La, Lv };
}

/** Mean over heads and query rows of softmax(S / τ) over the key axis: [B, H, Lq, Lk] → [B, Lk]. */
export function keyImportance(s: tf.Tensor4D, temperature: number): tf.Tensor2D {
  return tf.tidy(() => meanOverMiddle(tf.softmax(tf.div(s, temperature)) as tf.Tensor4D));
}

/** Importance-weighted mean of the candidates' queries per head: q [B, H, L, d], w [B, L] (0 off-candidate) → [B, H, d]. */
export function summaryQuery(q: tf.Tensor4D, candidateWeights: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , L] = q.shape;
    const w = candidateWeights.reshape([B, 1, L, 1]);
    const total = tf.sum(candidateWeights, 1).reshape([B, 1, 1]);
    return tf.div(tf.sum(tf.mul(q, w), 2), total) as tf.Tensor3D;
  });
}

/** 1 at the first `k` entries of each row of `order`, scattered to patch positions: [B, L] float32. */
export function topMask(order: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, L] = order.shape;
    if (k === 0) return tf.zeros([B, L]) as tf.Tensor2D;
    const top = tf.slice(order, [0, 0], [B, k]);
    return tf.sum(tf.oneHot(top, L), 1).toFloat() as tf.Tensor2D;
  });
}

export function localizedPatchImportance(input: ImportanceInput, options: ImportanceOptions = {}): Importance {
  const o = importanceOptionsSchema.parse(options);
  const { La, Lv } = checkShapes(input);
  const kV = candidateCount(Lv, o.coreVideoRatio);
  const kA = candidateCount(La, o.coreAudioRatio);
  return tf.tidy(() => {
    const importanceV = keyImportance(input.sAV, o.temperature);
    const importanceA = keyImportance(input.sVA, o.temperature);
    // topk sorts descending; ties (not expected with float scores) go to the lower index.
    const orderV = tf.topk(importanceV, Lv, true).indices as tf.Tensor2D;
    const orderA = tf.topk(importanceA, La, true).indices as tf.Tensor2D;
    const candidateMaskV = topMask(orderV, kV);
    const candidateMaskA = topMask(orderA, kA);
    const queryV = summaryQuery(input.qV, tf.mul(importanceV, candidateMaskV) as tf.Tensor2D);
    const queryA = summaryQuery(input.qA, tf.mul(importanceA, candidateMaskA) as tf.Tensor2D);
    return { importanceV, importanceA, orderV, orderA, kV, kA, candidateMaskV, candidateMaskA, queryV, queryA };
  });
}

export function disposeImportance(x: Importance): void {
  tf.dispose([x.importanceV, x.importanceA, x.orderV, x.orderA, x.candidateMaskV, x.candidateMaskA, x.queryV, x.queryA]);
}
