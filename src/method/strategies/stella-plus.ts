/**
 * STELLA+ (spec §5.5): STELLA whose buffer holds only the selected patches, and whose replay rows are
 * trained exactly as stored (same patches, same ids; only Mode D's masking is re-drawn).
 *
 * Behaviour per batch: scoring, AVM loss and RCA as STELLA (past queries from the stored rows); selection
 * for the current rows only — Bernoulli pruning from π, 'selected ascending then the rest ascending' video
 * ids (§11 Q30), the audio chunk rule on the current rows; first step: importance top-K. Mode D on
 * [current selected ; stored], α·penalty on the stored rows, insertion of the current selected patches,
 * ids, logits and queries.
 * Quirk Q2: the reference's audio correlation pairs new-order rows with old-order weights; this port uses
 * the fixed form sc_a = s·⟨K_a, q_v⟩ (the same identity as STELLA). The buggy form is not offered.
 * Options: as `stella` (alpha, temperature, coreVideoRatio, coreAudioRatio, chunkTimes, matchingLossWeight).
 * Ref: spec §5.5, §6.6 (row size), §11 Q1, Q2, Q30.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import { tokenGrid } from '../../core/config.ts';
import { candidateCount } from '../importance.ts';
import { scoreBatch, disposeScored } from '../scoring.ts';
import { replayCorrelation, disposeCorrelation } from '../correlation.ts';
import { stellaSelection, type SelectionRows } from '../stella-selection.ts';
import { matchingPairs, matchingLoss } from '../avm-matching.ts';
import { rehearsalPenalty } from '../penalty.ts';
import { FIELD, stellaPlusLayout, type BufferLayout } from '../replay-buffer.ts';
import { stellaOptionsSchema, type StellaOptions } from './stella-family.ts';
import {
  checkBatch, selectedStepReport, gatherSelected, requireAvm, requireBuffer, rowsTensor, sumLosses, valuesOf,
  type StepReport, type Strategy, type StrategyContext, type TrainBatch,
} from '../strategy.ts';

export class StellaPlusStrategy implements Strategy {
  readonly name = 'stella-plus';
  readonly usesAvm = true;
  private readonly o: z.output<typeof stellaOptionsSchema>;

  constructor(options: StellaOptions = {}) {
    this.o = stellaOptionsSchema.parse(options);
  }

  private counts(config: ModelConfig) {
    const g = tokenGrid(config);
    return { g, kV: candidateCount(g.videoTokens, this.o.coreVideoRatio), kA: candidateCount(g.audioTokens, this.o.coreAudioRatio) };
  }

  bufferLayout(config: ModelConfig): BufferLayout {
    const { kV, kA } = this.counts(config);
    return stellaPlusLayout(config, kV, kA);
  }

  step(batch: TrainBatch, ctx: StrategyContext): StepReport {
    const config = ctx.model.config;
    const { g, kV, kA } = this.counts(config);
    const { videoTokens: Lv, audioTokens: La } = g;
    const N = checkBatch(batch, config, Lv, La);
    const buffer = requireBuffer(ctx, this.name, this.bufferLayout(config));
    const avm = requireAvm(ctx, this.name);
    const grid = { freqTokens: g.freqPatches, chunkTimes: this.o.chunkTimes };
    const owned: tf.Tensor[] = [];
    const release: (() => void)[] = [];
    try {
      const pairs = matchingPairs(N, ctx.rng);
      const s = scoreBatch(ctx.model, avm, batch.video, batch.audio, pairs.videoIndex, { temperature: this.o.temperature, coreVideoRatio: this.o.coreVideoRatio, coreAudioRatio: this.o.coreAudioRatio });
      release.push(() => disposeScored(s));
      const imp = s.importance;
      const current: SelectionRows & { orderV: Int32Array; orderA: Int32Array } = {
        importanceV: valuesOf(imp.importanceV), importanceA: valuesOf(imp.importanceA),
        orderV: Int32Array.from(imp.orderV.dataSync()), orderA: Int32Array.from(imp.orderA.dataSync()),
        probV: new Float32Array(N * Lv), probA: new Float32Array(N * La),
      };
      const replay = buffer.sample(N, ctx.rng);
      const M = replay?.count ?? 0;
      if (replay) {
        const dh = config.embedDim / config.avmHeads;
        const pastV = tf.tensor3d(replay.rows[FIELD.videoQuery] as Float32Array, [M, config.avmHeads, dh]);
        const pastA = tf.tensor3d(replay.rows[FIELD.audioQuery] as Float32Array, [M, config.avmHeads, dh]);
        owned.push(pastV, pastA);
        const cor = replayCorrelation({ kV: s.keysV, kA: s.keysA, queryV: imp.queryV, queryA: imp.queryA, pastQueryV: pastV, pastQueryA: pastA, candidateMaskV: imp.candidateMaskV, candidateMaskA: imp.candidateMaskA });
        current.probV = valuesOf(cor.probV);
        current.probA = valuesOf(cor.probA);
        disposeCorrelation(cor);
      }
      // Current rows only; a zero-row replay block selects the sampled path after the first step.
      const empty = { importanceV: new Float32Array(0), importanceA: new Float32Array(0), probV: new Float32Array(0), probA: new Float32Array(0) };
      const sel = stellaSelection({ current, replay: replay ? empty : undefined, N, Lv, La, kV, kA, grid, videoIds: 'selected-ascending' }, ctx.rng);
      const curVideo = gatherSelected(batch.video, sel.avIds, kV), curAudio = gatherSelected(batch.audio, sel.vaIds, kA);
      owned.push(curVideo, curAudio);
      let videoSel = curVideo, audioSel = curAudio;
      let avIdsAll = sel.avIds, vaIdsAll = sel.vaIds;
      let storedA: tf.Tensor2D | undefined, storedV: tf.Tensor2D | undefined;
      if (M > 0) {
        const rv = rowsTensor(replay!.rows[FIELD.video] as Float32Array, M, kV), ra = rowsTensor(replay!.rows[FIELD.audio] as Float32Array, M, kA);
        videoSel = tf.concat([curVideo, rv]) as tf.Tensor3D;
        audioSel = tf.concat([curAudio, ra]) as tf.Tensor3D;
        avIdsAll = Int32Array.from([...sel.avIds, ...(replay!.rows[FIELD.avIds] as Int32Array)]);
        vaIdsAll = Int32Array.from([...sel.vaIds, ...(replay!.rows[FIELD.vaIds] as Int32Array)]);
        storedA = tf.tensor2d(replay!.rows[FIELD.logitsA] as Float32Array, [M, config.embedDim]);
        storedV = tf.tensor2d(replay!.rows[FIELD.logitsV] as Float32Array, [M, config.embedDim]);
        owned.push(rv, ra, videoSel, audioSel, storedA, storedV);
      }
      const rows = N + M;
      const avIds = tf.tensor2d(avIdsAll, [rows, Lv], 'int32'), vaIds = tf.tensor2d(vaIdsAll, [rows, La], 'int32');
      owned.push(avIds, vaIds);
      const losses: Record<string, number> = {};
      let logitsA: Float32Array = new Float32Array(0), logitsV: Float32Array = new Float32Array(0);
      losses.total = ctx.trainStep(() => {
        const out = ctx.model.maeSelected(videoSel, audioSel, avIds, vaIds);
        logitsA = valuesOf(tf.slice(out.audioOutput, 0, N));
        logitsV = valuesOf(tf.slice(out.videoOutput, 0, N));
        const terms: Record<string, tf.Scalar> = {
          mae_audio: out.maeAudioLoss, mae_video: out.maeVideoLoss, contrastive: out.contrastiveLoss,
          matching: matchingLoss(avm, s.matching, pairs.labels, this.o.matchingLossWeight).loss,
        };
        if (storedA && storedV) {
          terms.penalty = rehearsalPenalty(storedA, tf.slice(out.audioOutput, rows - M, M) as tf.Tensor2D, storedV, tf.slice(out.videoOutput, rows - M, M) as tf.Tensor2D, this.o.alpha);
        }
        return sumLosses(terms, losses);
      });
      buffer.add({
        [FIELD.video]: valuesOf(curVideo), [FIELD.audio]: valuesOf(curAudio),
        [FIELD.avIds]: sel.avIds.slice(0, N * Lv), [FIELD.vaIds]: sel.vaIds.slice(0, N * La),
        [FIELD.logitsA]: logitsA, [FIELD.logitsV]: logitsV,
        [FIELD.audioQuery]: valuesOf(imp.queryA), [FIELD.videoQuery]: valuesOf(imp.queryV),
      }, N, ctx.rng);
      return selectedStepReport({ losses, rows, N, M, Lv, La, kV, kA, current, avIds: sel.avIds, vaIds: sel.vaIds, firstStep: sel.firstStep, buffer });
    } finally {
      tf.dispose(owned);
      for (const r of release) r();
    }
  }
}
