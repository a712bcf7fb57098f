/**
 * Training objectives of the backbone and the AVM (spec §7.1–§7.3).
 *
 * - `maeLoss`: mean over target patches of the per-patch mean squared error; with `normPix` each
 *   target patch is standardised by its mean and unbiased variance + 1e-6 first.
 * - `contrastiveLoss`: symmetric InfoNCE on L2-normalised token means, τ = 0.05, weight 0.1.
 * - `matchingLoss`: binary cross-entropy with logits, mean over rows (the AVM objective).
 * Ref: spec §7.1, §7.2, §4.4; models/objectives.py compute_mae_joint_frames, compute_vacon.
 */
import * as tf from '@tensorflow/tfjs';
import { asConstant } from '../core/fast-matmul.ts';

export const CONTRASTIVE_TAU = 0.05;
export const CONTRASTIVE_WEIGHT = 0.1;
export const NORM_PIX_EPS = 1e-6;

/** Per-patch standardisation with unbiased variance (n − 1). */
export function normalizePatches(target: tf.Tensor): tf.Tensor {
  const n = target.shape[target.shape.length - 1];
  const mean = tf.mean(target, -1, true);
  const centered = tf.sub(target, mean);
  const unbiasedVar = tf.div(tf.sum(tf.square(centered), -1, true), n - 1);
  return tf.div(centered, tf.sqrt(tf.add(unbiasedVar, NORM_PIX_EPS)));
}

/**
 * pred, target [B, L, P]; mask [B, L] (1 = reconstruction target). Returns the scalar loss.
 */
export function maeLoss(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, normPix: boolean): tf.Scalar {
  const t = normPix ? asConstant(target, normalizePatches) : target;
  const perPatch = tf.mean(tf.square(tf.sub(pred, t)), -1);
  return tf.div(tf.sum(tf.mul(perPatch, mask)), tf.sum(mask)) as tf.Scalar;
}

export interface ContrastiveResult {
  /** Already weighted: weight × mean of both directions. */
  loss: tf.Scalar;
  /** Row softmax of v·aᵀ/τ [B, B] (logged accuracy only). */
  logits: tf.Tensor2D;
}

/** Symmetric InfoNCE between unnormalised token means audio [B, D] and video [B, D]. */
export function contrastiveLoss(audio: tf.Tensor2D, video: tf.Tensor2D, tau = CONTRASTIVE_TAU, weight = CONTRASTIVE_WEIGHT): ContrastiveResult {
  const a = tf.div(audio, tf.maximum(tf.norm(audio, 'euclidean', -1, true), 1e-12));
  const v = tf.div(video, tf.maximum(tf.norm(video, 'euclidean', -1, true), 1e-12));
  const gva = tf.div(tf.matMul(v, tf.transpose(a)), tau) as tf.Tensor2D; // [B, B], row i = video i vs every audio
  const gav = tf.transpose(gva) as tf.Tensor2D; // a·vᵀ/τ
  const eye = tf.eye(gva.shape[0]);
  const nce = (g: tf.Tensor2D) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(g), eye), -1)));
  const loss = tf.mul(tf.div(tf.add(nce(gva), nce(gav)), 2), weight) as tf.Scalar;
  return { loss, logits: tf.softmax(gva) as tf.Tensor2D };
}

/** mean(max(z,0) − z·y + log(1 + e^−|z|)): BCEWithLogits, numerically stable. */
export function matchingLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const z = tf.reshape(logits, [-1]);
  const y = tf.reshape(labels, [-1]);
  return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))) as tf.Scalar;
}
