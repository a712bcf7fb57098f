/**
 * The no-gradient front of a STELLA step (spec §5.2 steps (1)–(4) and the Mode-B half of (3)):
 * Mode A codes → Mode B → AVM.inferAttention → LPIS, plus Mode B on the AVM's re-paired codes.
 * Inputs: backbone, AVM, the batch's patch tokens, the matching pairs' video index, importance options.
 * Output (caller-owned tensors, `disposeScored`): the importance bundle, the AVM keys K_v/K_a (for RCA)
 * and the constant matching embeddings. The codes and joint embeddings are freed here.
 * Ref: spec §5.2, §4.4, Appendix A passes 1–3.
 */
import * as tf from '@tensorflow/tfjs';
import type { AvmModule, CavBackbone, JointEmbeddings } from '../model/types.ts';
import { NonFiniteLossError } from './strategy.ts';
import { localizedPatchImportance, disposeImportance, type Importance, type ImportanceOptions } from './importance.ts';
import { matchingEmbeddings } from './avm-matching.ts';

export interface ScoredBatch {
  importance: Importance;
  keysV: tf.Tensor4D;
  keysA: tf.Tensor4D;
  matching: JointEmbeddings;
}

export function scoreBatch(
  model: CavBackbone, avm: AvmModule, video: tf.Tensor3D, audio: tf.Tensor3D, videoIndex: Int32Array, options: ImportanceOptions,
): ScoredBatch {
  const scored = tf.tidy(() => {
    const codes = model.intermediate(video, audio);
    const emb = model.jointFromCodes(codes);
    const att = avm.inferAttention(emb.embA, emb.embV);
    const importance = localizedPatchImportance(att, options);
    const matching = matchingEmbeddings(model, codes, videoIndex, emb);
    return { importance, keysV: att.kV, keysA: att.kA, matching } as unknown as tf.TensorContainer;
  }) as unknown as ScoredBatch;
  // A diverged model shows here first (before any loss): refuse it by name rather than sample from NaN.
  const bad = tf.tidy(() => tf.logicalNot(tf.isFinite(tf.concat([scored.importance.importanceV.flatten(), scored.importance.importanceA.flatten()]))).any().dataSync()[0]);
  if (bad) {
    disposeScored(scored);
    throw new NonFiniteLossError('importance', NaN, 'value');
  }
  return scored;
}

export function disposeScored(s: ScoredBatch): void {
  disposeImportance(s.importance);
  tf.dispose([s.keysV, s.keysA, s.matching.embA, s.matching.embV]);
}
