/**
 * DER-style rehearsal penalty (STELLA, DER++): α·MSE(stored audio logits, current) + α·MSE(stored video
 * logits, current), each mean over all M·D elements; 0 without replay rows.
 * Inputs: stored [M, D] and current [M, D] un-normalised token means per modality. Output: a scalar tensor.
 * Ref: spec §5.2 step (11), §7.4, §8 (DER++), §11 Q14 (the last M rows of the training batch).
 */
import * as tf from '@tensorflow/tfjs';

export const DEFAULT_PENALTY_ALPHA = 0.5;

export function rehearsalPenalty(
  storedA: tf.Tensor2D, currentA: tf.Tensor2D, storedV: tf.Tensor2D, currentV: tf.Tensor2D, alpha = DEFAULT_PENALTY_ALPHA,
): tf.Scalar {
  for (const [name, s, c] of [['audio', storedA, currentA], ['video', storedV, currentV]] as const) {
    if (s.shape.join() !== c.shape.join()) throw new RangeError(`rehearsalPenalty: stored ${name} logits [${s.shape}] and current [${c.shape}] differ in shape`);
  }
  return tf.tidy(() => {
    if (storedA.shape[0] === 0) return tf.scalar(0);
    return tf.add(tf.mul(alpha, tf.losses.meanSquaredError(storedA, currentA)), tf.mul(alpha, tf.losses.meanSquaredError(storedV, currentV))) as tf.Scalar;
  });
}
