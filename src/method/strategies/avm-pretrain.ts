/**
 * `avm-pretrain`: stage 2 of the authors' protocol (cl method `Finetune_submodule`), pre-training the
 * AVM with the backbone frozen. graphs/pretrain-avm.yaml runs it.
 *
 * Per batch of N current rows:
 *   1. Mode A codes of the batch, no gradient (the backbone is frozen);
 *   2. labels and pairing as STELLA's matching objective (⌊N/2⌋ matched, the rest deranged among
 *      themselves; N ≤ 2 all matched);
 *   3. Mode B of (audio codes, re-paired video codes) → AVM logit; BCE-with-logits, mean over N;
 *   4. one Adam step on the AVM's parameters only.
 * No buffer. The report's `matching` loss starts at ln 2 ≈ 0.693 and falls as the AVM learns;
 * `matching_accuracy` is the share of pairs the logit's sign gets right.
 * The authors' submodule loops forever for N = 2 (one negative cannot be deranged, spec §4.5); this port
 * uses STELLA's rule (N ≤ 2: all matched), so any batch size works.
 * Ref: spec §4.4, §4.5; avm-matching.ts for the pairing and the loss.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../../core/config.ts';
import { tokenGrid } from '../../core/config.ts';
import { matchingEmbeddings, matchingLoss, matchingPairs } from '../avm-matching.ts';
import { checkBatch, requireAvm, sumLosses, type StepReport, type Strategy, type StrategyContext, type TrainBatch } from '../strategy.ts';

export class AvmPretrainStrategy implements Strategy {
  readonly name = 'avm-pretrain';
  readonly usesAvm = true;

  bufferLayout(_config: ModelConfig): undefined {
    return undefined;
  }

  step(batch: TrainBatch, ctx: StrategyContext): StepReport {
    const config = ctx.model.config;
    const { videoTokens: Lv, audioTokens: La } = tokenGrid(config);
    const N = checkBatch(batch, config, Lv, La);
    const avm = requireAvm(ctx, this.name);
    const pairs = matchingPairs(N, ctx.rng);
    const codes = ctx.model.intermediate(batch.video, batch.audio);
    const emb = matchingEmbeddings(ctx.model, codes, pairs.videoIndex);
    tf.dispose([codes.interA, codes.interV]);
    const losses: Record<string, number> = {};
    let correct = 0;
    try {
      losses.total = ctx.trainStep(() => {
        const { loss, logits } = matchingLoss(avm, emb, pairs.labels);
        const z = logits.dataSync();
        correct = 0;
        for (let i = 0; i < N; i++) if ((z[i] > 0 ? 1 : 0) === pairs.labels[i]) correct++;
        return sumLosses({ matching: loss }, losses);
      }, 'avm');
    } finally {
      tf.dispose([emb.embA, emb.embV]);
    }
    losses.matching_accuracy = correct / N;
    return { losses, rows: N, current: N, replayed: 0, kept: { video: Lv, audio: La } };
  }
}

export const createAvmPretrain = () => new AvmPretrainStrategy();
