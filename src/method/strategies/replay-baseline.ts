/**
 * The Mode-C replay baselines (spec §8): Finetune / Multitask (no buffer), ER, DER++, LUMP.
 *
 * Behaviour per batch (N current rows):
 *   - finetune, multitask: Mode C (random 80% MAE masking of full inputs) on the current rows; MAE + contrastive.
 *     Multitask is the same step; the runner feeds all tasks as one.
 *   - er: draw min(N, held) replay rows; Mode C on [current ; replay]; insert the current patches (reservoir).
 *   - der++: ER + α·MSE(stored logits, this forward's replay-row outputs) per modality (α 0.5); stores the
 *     current rows' outputs of this forward as logits.
 *   - lump: no concatenation. With replay: λ ~ Beta(0.5, 0.5) (one draw per step); train only on the mixed rows
 *     λ·current + (1 − λ)·replay for the first min(N, M) rows (any further current rows stay unmixed, spec
 *     §11 Q14); without replay, a plain step. Stores the un-mixed current patches. Mixing patch tokens equals
 *     mixing the normalised inputs (patching is a permutation of values).
 * Options: alpha (der++) 0.5; mixAlpha (lump) 0.5.
 * Ref: spec §8, §7.4, §11 Q13, Q14.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import { tokenGrid } from '../../core/config.ts';
import { rehearsalPenalty } from '../penalty.ts';
import { FIELD, patchLayout, type BufferLayout } from '../replay-buffer.ts';
import {
  bufferStats, checkBatch, requireBuffer, rowsTensor, sumLosses, valuesOf,
  type StepReport, type Strategy, type StrategyContext, type TrainBatch,
} from '../strategy.ts';

export type ReplayBaselineKind = 'finetune' | 'multitask' | 'cav-pretrain' | 'er' | 'der++' | 'lump';

export const replayBaselineOptionsSchema = z.object({
  /** DER++ penalty weight per modality. */
  alpha: z.number().nonnegative().default(0.5),
  /** LUMP's Beta(a, a) mixing parameter. */
  mixAlpha: z.number().positive().default(0.5),
}).strict();
export type ReplayBaselineOptions = z.input<typeof replayBaselineOptionsSchema>;

export class ReplayBaselineStrategy implements Strategy {
  readonly usesAvm = false;
  private readonly o: z.output<typeof replayBaselineOptionsSchema>;

  constructor(readonly name: ReplayBaselineKind, options: ReplayBaselineOptions = {}) {
    this.o = replayBaselineOptionsSchema.parse(options);
  }

  bufferLayout(config: ModelConfig): BufferLayout | undefined {
    if (this.name === 'finetune' || this.name === 'multitask' || this.name === 'cav-pretrain') return undefined;
    return patchLayout(config, { logits: this.name === 'der++' });
  }

  step(batch: TrainBatch, ctx: StrategyContext): StepReport {
    const config = ctx.model.config;
    const { videoTokens: Lv, audioTokens: La } = tokenGrid(config);
    const N = checkBatch(batch, config, Lv, La);
    const layout = this.bufferLayout(config);
    const buffer = layout ? requireBuffer(ctx, this.name, layout) : undefined;
    const owned: tf.Tensor[] = [];
    try {
      const replay = buffer?.sample(N, ctx.rng);
      const M = replay?.count ?? 0;
      let video = batch.video, audio = batch.audio, rows = N;
      if (M > 0) {
        const rv = rowsTensor(replay!.rows[FIELD.video] as Float32Array, M, Lv), ra = rowsTensor(replay!.rows[FIELD.audio] as Float32Array, M, La);
        owned.push(rv, ra);
        if (this.name === 'lump') {
          const lambda = ctx.rng.beta(this.o.mixAlpha, this.o.mixAlpha);
          const P = Math.min(N, M);
          const mix = (cur: tf.Tensor3D, past: tf.Tensor3D) => tf.tidy(() => {
            const mixed = tf.add(tf.mul(tf.slice(cur, 0, P), lambda), tf.mul(tf.slice(past, 0, P), 1 - lambda));
            return (P === N ? mixed : tf.concat([mixed, tf.slice(cur, P, N - P)])) as tf.Tensor3D;
          });
          video = mix(batch.video, rv);
          audio = mix(batch.audio, ra);
        } else {
          video = tf.concat([batch.video, rv]) as tf.Tensor3D;
          audio = tf.concat([batch.audio, ra]) as tf.Tensor3D;
          rows = N + M;
        }
        owned.push(video, audio);
      }
      const derPenalty = this.name === 'der++' && M > 0;
      const storedA = derPenalty ? tf.tensor2d(replay!.rows[FIELD.logitsA] as Float32Array, [M, config.embedDim]) : undefined;
      const storedV = derPenalty ? tf.tensor2d(replay!.rows[FIELD.logitsV] as Float32Array, [M, config.embedDim]) : undefined;
      if (storedA && storedV) owned.push(storedA, storedV);
      const losses: Record<string, number> = {};
      let logitsA: Float32Array = new Float32Array(0), logitsV: Float32Array = new Float32Array(0);
      losses.total = ctx.trainStep(() => {
        const out = ctx.model.maeRandom(video, audio);
        if (this.name === 'der++') {
          logitsA = valuesOf(tf.slice(out.audioOutput, 0, N));
          logitsV = valuesOf(tf.slice(out.videoOutput, 0, N));
        }
        const terms: Record<string, tf.Scalar> = { mae_audio: out.maeAudioLoss, mae_video: out.maeVideoLoss, contrastive: out.contrastiveLoss };
        if (storedA && storedV) {
          terms.penalty = rehearsalPenalty(storedA, tf.slice(out.audioOutput, rows - M, M) as tf.Tensor2D, storedV, tf.slice(out.videoOutput, rows - M, M) as tf.Tensor2D, this.o.alpha);
        }
        return sumLosses(terms, losses);
      });
      if (buffer) {
        const add: Record<string, Float32Array> = { [FIELD.video]: valuesOf(batch.video), [FIELD.audio]: valuesOf(batch.audio) };
        if (this.name === 'der++') { add[FIELD.logitsA] = logitsA; add[FIELD.logitsV] = logitsV; }
        buffer.add(add, N, ctx.rng);
      }
      return {
        losses, rows, current: N, replayed: this.name === 'lump' ? Math.min(N, M) : M, kept: { video: Lv, audio: La },
        buffer: bufferStats(buffer),
      };
    } finally {
      tf.dispose(owned);
    }
  }
}
