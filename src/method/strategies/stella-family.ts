/**
 * The STELLA step and its ablations (one code path, switched by two options).
 *
 * Behaviour per batch (spec §5.2; N current rows, M ≤ N replay rows):
 *   (1)–(2) no gradient: Mode A codes → Mode B → AVM.inferAttention → importance I, order, summary queries;
 *   (3)     AVM labels + derangement; Mode B on the re-paired codes (constants: AVM-only gradient);
 *   (5)     replay draw of N rows; RCA π from the stored past queries (row n ↔ replay row n);
 *   (6)–(8) Bernoulli pruning, weighted video permutation over current+replay rows, audio chunk rule;
 *   (9)–(11) one optimiser step on Mode D(selected patches of current+replay rows) + L_avm + α·DER penalty
 *           on the replay rows (their stored logits vs this forward's outputs);
 *   (12)    reservoir insertion of the raw current patches, this forward's current logits, q_a/q_v, π, I.
 * Variants (options):
 *   importance 'lpis' (importance-weighted sampling) | 'uniform' (every patch weight 1; first step sampled too);
 *   correlation 'rca' (π from replay) | 'none' (π = 0: nothing pruned).
 *   stella = lpis+rca; lpis-only = lpis+none; rca-only = uniform+rca; random = uniform+none without the AVM.
 *   `selector`: a PatchSelector (plugins) replaces steps (6)–(8): it picks the kept ids of every row from
 *   the rows' importance (LPIS when it `needsImportance`, else uniform); no pruning.
 * The step is split into phases (src/method/phases.ts: score → assess → sample → train-selected) that the
 * graph can also run as separate stages; `step` runs them in sequence.
 * Options: alpha 0.5, temperature 0.4, coreVideoRatio/coreAudioRatio 0.5, chunkTimes 4, matchingLossWeight 1.
 * Ref: spec §5.1–§5.3, §6, §7.4, §11 Q10–Q14, Q19, Q20, Q26; paper-results §3.3 (ablations).
 */
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import type { PatchSelector } from '../patch-selector.ts';
import { runPhases } from '../phases.ts';
import { stellaLayout, type BufferLayout } from '../replay-buffer.ts';
import type { StepReport, Strategy, StrategyContext, TrainBatch } from '../strategy.ts';

export const stellaOptionsSchema = z.object({
  alpha: z.number().nonnegative().default(0.5),
  temperature: z.number().positive().default(0.4),
  coreVideoRatio: z.number().min(0).lt(1).default(0.5),
  coreAudioRatio: z.number().min(0).lt(1).default(0.5),
  /** Time rows per audio chunk (`num_core_audio_times`). */
  chunkTimes: z.number().int().positive().default(4),
  matchingLossWeight: z.number().nonnegative().default(1),
}).strict();
export type StellaOptions = z.input<typeof stellaOptionsSchema>;

export interface StellaVariant {
  name: string;
  importance: 'lpis' | 'uniform';
  correlation: 'rca' | 'none';
  /** Replaces the built-in sampling (steps (6)–(8)) with a plugin's choice. */
  selector?: PatchSelector;
}

export class StellaFamilyStrategy implements Strategy {
  readonly name: string;
  readonly usesAvm: boolean;
  readonly options: z.output<typeof stellaOptionsSchema>;

  constructor(readonly variant: StellaVariant, options: StellaOptions = {}) {
    this.name = variant.name;
    this.usesAvm = variant.importance === 'lpis' || variant.correlation === 'rca';
    if (variant.selector && variant.correlation !== 'none') throw new Error(`${variant.name}: a plugin selector replaces RCA pruning; use correlation 'none'`);
    this.options = stellaOptionsSchema.parse(options);
  }

  bufferLayout(config: ModelConfig): BufferLayout {
    return stellaLayout(config);
  }

  /** The whole step: the four phases of src/method/phases.ts in sequence, continuing from a payload the batch carries. */
  step(batch: TrainBatch, ctx: StrategyContext): StepReport {
    return runPhases(this, batch, ctx);
  }
}
