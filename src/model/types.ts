/**
 * The model contract every other part codes against (spec §3–§4, forward modes A–E).
 *
 * Inputs are patch tokens, not pixels (the tokenize stage's output):
 *   video [B, Lv, 3·P·P] in (c, p, q) order, token t·h·w;  audio [B, La, P·P] in (p, q) order, token t·f.
 * Selected-patch inputs are [B, K, same] plus full id permutations whose first K entries name them.
 * All returned tensors belong to the caller (dispose them, or call inside tf.tidy).
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';

export interface IntermediateCodes {
  /** Mode A: [B, La, D] after blocks_a (no inter_pos_embed). */
  interA: tf.Tensor3D;
  /** Mode A: [B, Lv, D] after blocks_v. */
  interV: tf.Tensor3D;
}

export interface JointEmbeddings {
  /** Mode B: [B, La, D], before the final norm: the AVM's audio input. */
  embA: tf.Tensor3D;
  /** Mode B: [B, Lv, D]. */
  embV: tf.Tensor3D;
}

export interface RetrievalEmbeddings {
  /** Mode E: L2-normalised token means [B, D]. */
  a: tf.Tensor2D;
  v: tf.Tensor2D;
}

/** Pinned masking noise (tests/golden); drawn from the model's Rng when absent. */
export interface MaskingNoise {
  audio?: Float32Array; // [B, La] (Mode C) or [B, Ka] (Mode D)
  video?: Float32Array; // [B, Lv] or [B, Kv]
}

/** What a training forward (Mode C or D) returns: scalar losses and the un-normalised unimodal token means. */
export interface TrainForward {
  maeAudioLoss: tf.Scalar;
  maeVideoLoss: tf.Scalar;
  /** Already weighted (0.1 × mean of both InfoNCE directions). */
  contrastiveLoss: tf.Scalar;
  /** [B, D] token means of the visible audio tokens after blocks_u('a') + norm_a: the "logits" DER stores. */
  audioOutput: tf.Tensor2D;
  videoOutput: tf.Tensor2D;
}

export interface AvmAttention {
  /** Raw scaled logits [B, H, La, Lv] (audio queries × video keys). */
  sAV: tf.Tensor4D;
  /** [B, H, Lv, La]. */
  sVA: tf.Tensor4D;
  /** Per-head projections [B, H, L, d_h]. */
  qV: tf.Tensor4D;
  kV: tf.Tensor4D;
  qA: tf.Tensor4D;
  kA: tf.Tensor4D;
}

export interface CavBackbone {
  readonly config: ModelConfig;
  /** Mode A. */
  intermediate(video: tf.Tensor3D, audio: tf.Tensor3D): IntermediateCodes;
  /** Mode B. */
  jointFromCodes(codes: IntermediateCodes): JointEmbeddings;
  /** Mode E. */
  embed(video: tf.Tensor3D, audio: tf.Tensor3D): RetrievalEmbeddings;
  /** Mode E from Mode A's codes (the same values as `embed` on the inputs that gave them). */
  embedFromCodes?(codes: IntermediateCodes): RetrievalEmbeddings;
  /** Mode C: random MAE masking of full inputs. */
  maeRandom(video: tf.Tensor3D, audio: tf.Tensor3D, noise?: MaskingNoise): TrainForward;
  /**
   * Mode D: STELLA's selected-patch forward. `avIds` [B, Lv] / `vaIds` [B, La] are full permutations
   * (int32) whose first Kv / Ka entries name the selected patches in `videoSel` [B, Kv, ·] / `audioSel` [B, Ka, ·].
   */
  maeSelected(videoSel: tf.Tensor3D, audioSel: tf.Tensor3D, avIds: tf.Tensor2D, vaIds: tf.Tensor2D, noise?: MaskingNoise): TrainForward;
  /** Trainable variables, by state_dict name. */
  readonly variables: Map<string, tf.Variable>;
}

export interface AvmModule {
  /** infer_attention(normalize=False). */
  inferAttention(embA: tf.Tensor3D, embV: tf.Tensor3D): AvmAttention;
  /** Matching logit [B, 1] (with the head-reshape quirk). */
  forward(embA: tf.Tensor3D, embV: tf.Tensor3D): tf.Tensor2D;
  readonly variables: Map<string, tf.Variable>;
}
