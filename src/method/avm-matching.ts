/**
 * The AVM's matching objective on the current batch (STELLA's `learn_multimodal_relationship`).
 *
 * Behaviour:
 *   - labels: N ≤ 2 → all positive; else ⌊N/2⌋ ones and N − ⌊N/2⌋ zeros in a seeded random order;
 *   - pairing: positives keep their own video; the negatives' videos are re-assigned by a random
 *     derangement among the negatives (rejection sampling of permutations until no fixed point);
 *   - loss: BCE-with-logits (mean over N) of AvmModule.forward on Mode B of (audio codes, re-paired video
 *     codes), × `matchingLossWeight` (1.0).
 * Gradient flow (spec §4.4): only the AVM learns from this loss. `matchingEmbeddings` runs Mode B outside
 * any gradient tape and its result is a constant; `matchingLoss` is what goes inside the loss function.
 * Inputs: N (rows), an Rng; Mode-A codes; a CavBackbone and an AvmModule (src/model/types.ts).
 * Ref: spec §4.4, §5.2 step (3), §11 Q21, Q26; golden G2 (`vam_*`).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { fastGatherRows } from '../core/fast-matmul.ts';
import type { AvmModule, CavBackbone, IntermediateCodes, JointEmbeddings } from '../model/types.ts';

export const DEFAULT_MATCHING_LOSS_WEIGHT = 1.0;

export interface MatchingPairs {
  /** [N] 1 = matched pair, 0 = deranged negative. */
  labels: Float32Array;
  /** [N] the video row paired with each audio row. */
  videoIndex: Int32Array;
}

/** Labels and derangement (draws: one permutation of N, then one permutation of |Z| per attempt). */
export function matchingPairs(N: number, rng: Rng): MatchingPairs {
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`matchingPairs: batch size must be a positive integer, got ${N}`);
  const labels = new Float32Array(N).fill(1);
  const videoIndex = Int32Array.from({ length: N }, (_, i) => i);
  if (N <= 2) return { labels, videoIndex };
  const order = rng.permutation(N);
  const positives = Math.floor(N / 2);
  for (let i = positives; i < N; i++) labels[order[i]] = 0;
  const negatives: number[] = [];
  for (let i = 0; i < N; i++) if (labels[i] === 0) negatives.push(i);
  // |Z| ≥ 2 here (N ≥ 3), so a derangement exists; the expected number of attempts is about e.
  for (;;) {
    const p = rng.permutation(negatives.length);
    if (p.every((v, i) => v !== i)) {
      negatives.forEach((z, i) => { videoIndex[z] = negatives[p[i]]; });
      return { labels, videoIndex };
    }
  }
}

/** Consistency of labels and pairing; returns one message per violation (empty when valid). */
export function checkMatchingPairs(labels: ArrayLike<number>, videoIndex: ArrayLike<number>): string[] {
  const N = labels.length, out: string[] = [];
  if (videoIndex.length !== N) return [`matching pairs: ${N} labels but ${videoIndex.length} video indices`];
  const ones = Array.from(labels).filter((l) => l === 1).length;
  const expectOnes = N <= 2 ? N : Math.floor(N / 2);
  if (ones !== expectOnes) out.push(`matching pairs: ${ones} positive labels, expected ${expectOnes} of ${N}`);
  const used = new Set<number>();
  for (let i = 0; i < N; i++) {
    const v = videoIndex[i];
    if (labels[i] === 1 && v !== i) out.push(`matching pairs: positive row ${i} is paired with video ${v}`);
    if (labels[i] === 0 && (v === i || labels[v] !== 0)) out.push(`matching pairs: negative row ${i} is paired with video ${v} (must be another negative)`);
    used.add(v);
  }
  if (used.size !== N) out.push('matching pairs: video indices are not a permutation');
  return out;
}

/**
 * Mode B on (audio codes, video codes re-paired by `videoIndex`). Call it outside the loss function: its
 * result must be a constant. `truePairs`, Mode B of the codes as paired (`jointFromCodes(codes)`), lets
 * the rows that keep their own video be taken from it instead of computed again: Mode B is row by row
 * (every kernel of blocks_u works within a row), so those rows are the same values, and only the
 * re-paired rows (half of the batch) run.
 */
export function matchingEmbeddings(backbone: CavBackbone, codes: IntermediateCodes, videoIndex: Int32Array, truePairs?: JointEmbeddings): JointEmbeddings {
  const N = videoIndex.length;
  if (codes.interA.shape[0] !== N || codes.interV.shape[0] !== N) throw new RangeError(`matchingEmbeddings: ${N} pairs for codes of ${codes.interA.shape[0]} audio and ${codes.interV.shape[0]} video rows`);
  // Called outside the gradient tape, so these tensors are constants for the AVM loss.
  return tf.tidy(() => {
    if (!truePairs) {
      const e = backbone.jointFromCodes({ interA: codes.interA, interV: rowsOf(codes.interV, videoIndex) });
      return { embA: e.embA, embV: e.embV };
    }
    const repaired = Array.from(videoIndex.keys()).filter((i) => videoIndex[i] !== i);
    if (repaired.length === 0) return { embA: tf.clone(truePairs.embA), embV: tf.clone(truePairs.embV) };
    const e = backbone.jointFromCodes({
      interA: rowsOf(codes.interA, Int32Array.from(repaired)),
      interV: rowsOf(codes.interV, Int32Array.from(repaired, (i) => videoIndex[i])),
    });
    // Row i of [truePairs; e]: i itself, or N + its place among the re-paired rows.
    const source = Int32Array.from(videoIndex.keys());
    repaired.forEach((row, j) => { source[row] = N + j; });
    return { embA: rowsOf(tf.concat([truePairs.embA, e.embA]), source), embV: rowsOf(tf.concat([truePairs.embV, e.embV]), source) };
  });
}

/** Rows `rows` of `x` [B, L, D] (row copies on the fast path). */
function rowsOf(x: tf.Tensor3D, rows: Int32Array): tf.Tensor3D {
  const [b, l, d] = x.shape;
  return tf.tidy(() => tf.reshape(fastGatherRows(tf.reshape(x, [b, l * d]), tf.tensor1d(rows, 'int32')), [rows.length, l, d]));
}

/** BCE-with-logits of the AVM's matching logits against the labels (mean over rows) × weight. */
export function matchingLoss(avm: AvmModule, emb: JointEmbeddings, labels: Float32Array, weight = DEFAULT_MATCHING_LOSS_WEIGHT): { loss: tf.Scalar; logits: tf.Tensor2D } {
  return tf.tidy(() => {
    const logits = avm.forward(emb.embA, emb.embV);
    const y = tf.tensor2d(labels, [labels.length, 1]);
    const loss = tf.mul(tf.losses.sigmoidCrossEntropy(y, logits), weight) as tf.Scalar;
    return { loss, logits };
  });
}
