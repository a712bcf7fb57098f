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
 * Options: alpha 0.5, temperature 0.4, coreVideoRatio/coreAudioRatio 0.5, chunkTimes 4, matchingLossWeight 1.
 * Ref: spec §5.1–§5.3, §6, §7.4, §11 Q10–Q14, Q19, Q20, Q26; paper-results §3.3 (ablations).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import type { JointEmbeddings } from '../../model/types.ts';
import { tokenGrid } from '../../core/config.ts';
import { candidateCount } from '../importance.ts';
import { scoreBatch, disposeScored } from '../scoring.ts';
import { replayCorrelation, disposeCorrelation } from '../correlation.ts';
import { stellaSelection, type SelectionRows } from '../stella-selection.ts';
import { selectWith, type PatchSelector } from '../patch-selector.ts';
import { matchingPairs, matchingLoss } from '../avm-matching.ts';
import { rehearsalPenalty } from '../penalty.ts';
import { FIELD, stellaLayout, type BufferLayout } from '../replay-buffer.ts';
import {
  bufferStats, checkBatch, gatherSelected, requireAvm, requireBuffer, rowsTensor, sumLosses, valuesOf,
  type StepReport, type Strategy, type StrategyContext, type TrainBatch,
} from '../strategy.ts';

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
  private readonly o: z.output<typeof stellaOptionsSchema>;

  constructor(private readonly variant: StellaVariant, options: StellaOptions = {}) {
    this.name = variant.name;
    this.usesAvm = variant.importance === 'lpis' || variant.correlation === 'rca';
    if (variant.selector && variant.correlation !== 'none') throw new Error(`${variant.name}: a plugin selector replaces RCA pruning; use correlation 'none'`);
    this.o = stellaOptionsSchema.parse(options);
  }

  bufferLayout(config: ModelConfig): BufferLayout {
    return stellaLayout(config);
  }

  step(batch: TrainBatch, ctx: StrategyContext): StepReport {
    const config = ctx.model.config;
    const g = tokenGrid(config);
    const { videoTokens: Lv, audioTokens: La } = g;
    const N = checkBatch(batch, config, Lv, La);
    const buffer = requireBuffer(ctx, this.name, this.bufferLayout(config));
    const kV = candidateCount(Lv, this.o.coreVideoRatio), kA = candidateCount(La, this.o.coreAudioRatio);
    const grid = { freqTokens: g.freqPatches, chunkTimes: this.o.chunkTimes };
    if (g.timePatches % this.o.chunkTimes !== 0) throw new RangeError(`${this.name}: ${g.timePatches} audio time rows do not split into chunks of ${this.o.chunkTimes}`);
    const owned: tf.Tensor[] = [];
    const release: (() => void)[] = [];
    try {
      // (1)–(4) scoring, and (3) the AVM pairs' embeddings; all without gradient.
      let current: SelectionRows & { orderV: Int32Array; orderA: Int32Array };
      let queryA: Float32Array = new Float32Array(N * config.embedDim), queryV: Float32Array = new Float32Array(N * config.embedDim);
      let memb: JointEmbeddings | undefined;
      let labels: Float32Array | undefined;
      let keys: { kV: tf.Tensor4D; kA: tf.Tensor4D; queryV: tf.Tensor3D; queryA: tf.Tensor3D; candV: tf.Tensor2D; candA: tf.Tensor2D } | undefined;
      if (this.usesAvm) {
        const avm = requireAvm(ctx, this.name);
        const pairs = matchingPairs(N, ctx.rng);
        labels = pairs.labels;
        const scored = scoreBatch(ctx.model, avm, batch.video, batch.audio, pairs.videoIndex, { temperature: this.o.temperature, coreVideoRatio: this.o.coreVideoRatio, coreAudioRatio: this.o.coreAudioRatio });
        release.push(() => disposeScored(scored));
        const imp = scored.importance;
        memb = scored.matching;
        keys = { kV: scored.keysV, kA: scored.keysA, queryV: imp.queryV, queryA: imp.queryA, candV: imp.candidateMaskV, candA: imp.candidateMaskA };
        queryV = valuesOf(imp.queryV);
        queryA = valuesOf(imp.queryA);
        current = {
          importanceV: valuesOf(imp.importanceV), importanceA: valuesOf(imp.importanceA),
          orderV: Int32Array.from(imp.orderV.dataSync()), orderA: Int32Array.from(imp.orderA.dataSync()),
          probV: new Float32Array(N * Lv), probA: new Float32Array(N * La),
        };
      } else {
        current = {
          importanceV: new Float32Array(N * Lv), importanceA: new Float32Array(N * La),
          orderV: Int32Array.from({ length: N * Lv }, (_, i) => i % Lv), orderA: Int32Array.from({ length: N * La }, (_, i) => i % La),
          probV: new Float32Array(N * Lv), probA: new Float32Array(N * La),
        };
      }
      if (this.variant.importance === 'uniform') {
        current.importanceV.fill(1 / Lv);
        current.importanceA.fill(1 / La);
      }

      // (5) replay draw and correlation.
      const replay = buffer.sample(N, ctx.rng);
      const M = replay?.count ?? 0;
      if (replay && this.variant.correlation === 'rca' && keys) {
        const pastV = tf.tensor3d(replay.rows[FIELD.videoQuery] as Float32Array, [M, config.avmHeads, config.embedDim / config.avmHeads]);
        const pastA = tf.tensor3d(replay.rows[FIELD.audioQuery] as Float32Array, [M, config.avmHeads, config.embedDim / config.avmHeads]);
        owned.push(pastV, pastA);
        const cor = replayCorrelation({ kV: keys.kV, kA: keys.kA, queryV: keys.queryV, queryA: keys.queryA, pastQueryV: pastV, pastQueryA: pastA, candidateMaskV: keys.candV, candidateMaskA: keys.candA });
        current.probV = valuesOf(cor.probV);
        current.probA = valuesOf(cor.probA);
        disposeCorrelation(cor);
      }

      // (6)–(8) selection. Uniform weights never use the deterministic first-step top-K.
      const replayRows: SelectionRows | undefined = replay
        ? { importanceV: replay.rows[FIELD.importanceV] as Float32Array, importanceA: replay.rows[FIELD.importanceA] as Float32Array, probV: replay.rows[FIELD.probV] as Float32Array, probA: replay.rows[FIELD.probA] as Float32Array }
        : this.variant.importance === 'uniform'
          ? { importanceV: new Float32Array(0), importanceA: new Float32Array(0), probV: new Float32Array(0), probA: new Float32Array(0) }
          : undefined;
      const sel = this.variant.selector
        ? this.selectWithPlugin(this.variant.selector, current, replayRows, { N, Lv, La, kV, kA, grid: { frames: config.numFrames, side: g.side, timePatches: g.timePatches, freqPatches: g.freqPatches } }, ctx)
        : stellaSelection({ current, replay: replayRows, N, Lv, La, kV, kA, grid }, ctx.rng);
      const rows = sel.rows;

      // (9) gather the selected patches of current + replay rows.
      let videoAll = batch.video, audioAll = batch.audio;
      if (M > 0) {
        const rv = rowsTensor(replay!.rows[FIELD.video] as Float32Array, M, Lv), ra = rowsTensor(replay!.rows[FIELD.audio] as Float32Array, M, La);
        videoAll = tf.concat([batch.video, rv]) as tf.Tensor3D;
        audioAll = tf.concat([batch.audio, ra]) as tf.Tensor3D;
        owned.push(rv, ra, videoAll, audioAll);
      }
      const videoSel = gatherSelected(videoAll, sel.avIds, kV), audioSel = gatherSelected(audioAll, sel.vaIds, kA);
      const avIds = tf.tensor2d(sel.avIds, [rows, Lv], 'int32'), vaIds = tf.tensor2d(sel.vaIds, [rows, La], 'int32');
      owned.push(videoSel, audioSel, avIds, vaIds);
      const storedA = M > 0 ? tf.tensor2d(replay!.rows[FIELD.logitsA] as Float32Array, [M, config.embedDim]) : undefined;
      const storedV = M > 0 ? tf.tensor2d(replay!.rows[FIELD.logitsV] as Float32Array, [M, config.embedDim]) : undefined;
      if (storedA && storedV) owned.push(storedA, storedV);

      // (10)–(11) one optimiser step; the current rows' outputs are captured for insertion.
      const losses: Record<string, number> = {};
      let logitsA: Float32Array = new Float32Array(0), logitsV: Float32Array = new Float32Array(0);
      losses.total = ctx.trainStep(() => {
        const out = ctx.model.maeSelected(videoSel, audioSel, avIds, vaIds);
        logitsA = valuesOf(tf.slice(out.audioOutput, 0, N));
        logitsV = valuesOf(tf.slice(out.videoOutput, 0, N));
        const terms: Record<string, tf.Scalar> = { mae_audio: out.maeAudioLoss, mae_video: out.maeVideoLoss, contrastive: out.contrastiveLoss };
        if (memb && labels) terms.matching = matchingLoss(requireAvm(ctx, this.name), memb, labels, this.o.matchingLossWeight).loss;
        if (storedA && storedV) {
          // Q14: the penalty uses the last M rows (the replay rows).
          terms.penalty = rehearsalPenalty(storedA, tf.slice(out.audioOutput, rows - M, M) as tf.Tensor2D, storedV, tf.slice(out.videoOutput, rows - M, M) as tf.Tensor2D, this.o.alpha);
        }
        return sumLosses(terms, losses);
      });

      // (12) reservoir insertion of the raw current rows.
      buffer.add({
        [FIELD.video]: valuesOf(batch.video), [FIELD.audio]: valuesOf(batch.audio),
        [FIELD.logitsA]: logitsA, [FIELD.logitsV]: logitsV,
        [FIELD.audioQuery]: queryA, [FIELD.videoQuery]: queryV,
        [FIELD.probV]: current.probV, [FIELD.probA]: current.probA,
        [FIELD.importanceV]: current.importanceV, [FIELD.importanceA]: current.importanceA,
      }, N, ctx.rng);

      return {
        losses, rows, current: N, replayed: M, kept: { video: kV, audio: kA },
        selection: {
          rows: N, Lv, La, kV, kA, importanceV: current.importanceV, importanceA: current.importanceA,
          probV: current.probV, probA: current.probA, avIds: sel.avIds.slice(0, N * Lv), vaIds: sel.vaIds.slice(0, N * La), firstStep: sel.firstStep,
        },
        buffer: bufferStats(buffer),
      };
    } finally {
      tf.dispose(owned);
      for (const r of release) r();
    }
  }

  /** Plugin selection over current + replay rows: the selector's kept ids first, the rest ascending. */
  private selectWithPlugin(
    selector: PatchSelector, current: SelectionRows, replay: SelectionRows | undefined,
    sizes: { N: number; Lv: number; La: number; kV: number; kA: number; grid: { frames: number; side: number; timePatches: number; freqPatches: number } },
    ctx: StrategyContext,
  ): { rows: number; firstStep: boolean; avIds: Int32Array; vaIds: Int32Array } {
    const M = replay ? replay.importanceV.length / sizes.Lv : 0;
    const join = (a: Float32Array, b: Float32Array | undefined) => {
      if (!b || b.length === 0) return a;
      const out = new Float32Array(a.length + b.length);
      out.set(a); out.set(b, a.length);
      return out;
    };
    const rows = sizes.N + M;
    const ids = selectWith(selector, { video: join(current.importanceV, replay?.importanceV), audio: join(current.importanceA, replay?.importanceA) }, rows, sizes, ctx.rng);
    return { rows, firstStep: M === 0, ...ids };
  }
}
