/**
 * The STELLA step as four phases: one code path for the fused `train` stage
 * (`StellaFamilyStrategy.step` = the four in sequence) and for the explicit graph stages
 * `score` → `replay-assess` → `sample` → `train` (src/method/stages/).
 *
 *   scorePhase(strategy, batch, ctx)      → Scored    (1)–(4): AVM pairs, LPIS importance, queries (no gradient)
 *   assessPhase(strategy, scored, ctx)    → Assessed  (5): replay draw of N rows, RCA π from the stored queries
 *   samplePhase(strategy, assessed, ctx)  → Selected  (6)–(8): stellaSelection, or the variant's plugin PatchSelector
 *   trainSelectedPhase(strategy, selected, ctx) → StepReport  (9)–(12): gather, one optimiser step, insertion
 *
 * Ownership: each phase consumes its input. On success the tensors still needed travel on in the output
 * (after scoring: importance, AVM keys and matching embeddings; after RCA only the matching embeddings);
 * the rest is disposed. On failure everything the input owned is disposed. `disposePhase` frees a
 * payload that is dropped between phases (idempotent). The batch itself is never disposed here.
 * Randomness: the score phase draws from `ctx.rng` and the later phases from the payload's `rng`
 * (the same stream). The fused step passes the trainer's stream, so nothing changes; the graph stages
 * score with a copy of the trainer's stream and `trainSelectedPhase` writes the copy's state back into
 * `ctx.rng`, so a dropped step (stop, error) never advances the trainer's stream, and a completed one
 * leaves it exactly where the fused step would: the same draws in the same order.
 * Ref: spec §5.2 (1)–(12), §6, §7.4, §11 Q10, Q14, Q19, Q20; docs/method.md "The STELLA step".
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { Rng as SeededRng } from '../core/rng.ts';
import { tokenGrid } from '../core/config.ts';
import type { JointEmbeddings } from '../model/types.ts';
import { candidateCount, disposeImportance, type Importance } from './importance.ts';
import { scoreBatch } from './scoring.ts';
import { replayCorrelation, disposeCorrelation } from './correlation.ts';
import { stellaSelection, type SelectionRows } from './stella-selection.ts';
import { selectWith, type PatchSelector } from './patch-selector.ts';
import { matchingPairs, matchingLoss } from './avm-matching.ts';
import { rehearsalPenalty } from './penalty.ts';
import { FIELD, type ReplayDraw } from './replay-buffer.ts';
import {
  checkBatch, selectedStepReport, gatherSelected, requireAvm, requireBuffer, rowsTensor, sumLosses, valuesOf,
  type StepReport, type StrategyContext, type TrainBatch,
} from './strategy.ts';
import type { StellaFamilyStrategy } from './strategies/stella-family.ts';

/** What the score, assess and sample phases need: the trainer's context without the optimiser. */
export type PhaseContext = Omit<StrategyContext, 'trainStep'>;

export interface StepSizes {
  N: number;
  Lv: number;
  La: number;
  kV: number;
  kA: number;
}

/** Current rows' selection inputs: importance, order (descending importance), π (zeros until RCA). */
export type CurrentRows = SelectionRows & { orderV: Int32Array; orderA: Int32Array };

interface PhaseBase {
  /** The strategy that produced it (a phase refuses another strategy's payload). */
  strategy: string;
  sizes: StepSizes;
  current: CurrentRows;
  /** Summary queries q_v, q_a [N·D] (zeros without the AVM). */
  queryV: Float32Array;
  queryA: Float32Array;
  /** AVM matching labels and the constant Mode-B embeddings of the re-paired rows (AVM variants). */
  labels?: Float32Array;
  matching?: JointEmbeddings;
  /** The stream the later phases draw from. */
  rng: Rng;
}

export interface Scored extends PhaseBase {
  phase: 'scored';
  /** Importance bundle and AVM keys for RCA (AVM variants); freed by the assess phase. */
  importance?: Importance;
  keysV?: tf.Tensor4D;
  keysA?: tf.Tensor4D;
}

export interface Assessed extends PhaseBase {
  phase: 'assessed';
  /** The replay rows drawn for this step (copies), undefined while the buffer is empty. */
  replay?: ReplayDraw;
}

export interface Selected extends PhaseBase {
  phase: 'selected';
  replay?: ReplayDraw;
  /** Rows of the training forward (N + M) and the full id permutations over them, kept ids first. */
  rows: number;
  avIds: Int32Array;
  vaIds: Int32Array;
  firstStep: boolean;
}

export type StepPhase = Scored | Assessed | Selected;

/** Frees the tensors a payload still owns (safe to call twice). */
export function disposePhase(p: StepPhase | undefined): void {
  if (!p) return;
  if (p.phase === 'scored') {
    if (p.importance) disposeImportance(p.importance);
    tf.dispose([p.keysV, p.keysA].filter((t): t is tf.Tensor4D => !!t));
  }
  if (p.matching) tf.dispose([p.matching.embA, p.matching.embV]);
}

/** An independent copy (tensors cloned, arrays copied, the stream forked at its state) for a fan-out branch. */
export function clonePhase<P extends StepPhase>(p: P): P {
  const copy = structuredCloneArrays(p) as P;
  copy.rng = SeededRng.fromState(p.rng.state());
  if (p.matching) copy.matching = { embA: tf.clone(p.matching.embA), embV: tf.clone(p.matching.embV) };
  if (p.phase === 'scored') {
    const s = p as Scored, c = copy as Scored;
    if (s.importance) c.importance = Object.fromEntries(Object.entries(s.importance).map(([k, v]) => [k, tf.clone(v as tf.Tensor)])) as unknown as Importance;
    if (s.keysV) c.keysV = tf.clone(s.keysV);
    if (s.keysA) c.keysA = tf.clone(s.keysA);
  }
  return copy;
}

function structuredCloneArrays(p: StepPhase): StepPhase {
  const copyRows = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, ArrayBuffer.isView(v) ? (v as Float32Array).slice() : v])) as T;
  const out = { ...p, current: copyRows(p.current), queryV: p.queryV.slice(), queryA: p.queryA.slice(), labels: p.labels?.slice() } as StepPhase;
  if ((p.phase === 'assessed' || p.phase === 'selected') && p.replay) {
    (out as Assessed).replay = { ...p.replay, rows: copyRows(p.replay.rows) };
  }
  if (p.phase === 'selected') Object.assign(out, { avIds: p.avIds.slice(), vaIds: p.vaIds.slice() });
  return out;
}

function expectPhase<P extends StepPhase>(strategy: StellaFamilyStrategy, p: StepPhase, phase: P['phase']): P {
  if (p.phase !== phase) throw new Error(`${strategy.name}: expected a '${phase}' payload, got '${p.phase}'`);
  if (p.strategy !== strategy.name) throw new Error(`${strategy.name}: the '${p.phase}' payload was made by strategy '${p.strategy}'`);
  return p as P;
}

/** Runs `fn`; when it throws, frees what `input` owned first. */
function consuming<T>(input: StepPhase, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    disposePhase(input);
    throw error;
  }
}

/**
 * (1)–(4) and the Mode-B half of (3): importance, order and summary queries of the current rows.
 * `score` computes the tensors (default `scoreBatch`; a scorer on a worker thread passes its result).
 */
export function scorePhase(strategy: StellaFamilyStrategy, batch: TrainBatch, ctx: PhaseContext, score: typeof scoreBatch = scoreBatch): Scored {
  const o = strategy.options, variant = strategy.variant;
  const config = ctx.model.config;
  const g = tokenGrid(config);
  const { videoTokens: Lv, audioTokens: La } = g;
  const N = checkBatch(batch, config, Lv, La);
  const kV = candidateCount(Lv, o.coreVideoRatio), kA = candidateCount(La, o.coreAudioRatio);
  if (g.timePatches % o.chunkTimes !== 0) throw new RangeError(`${strategy.name}: ${g.timePatches} audio time rows do not split into chunks of ${o.chunkTimes}`);
  const base = { strategy: strategy.name, sizes: { N, Lv, La, kV, kA }, rng: ctx.rng };
  let scored: Scored;
  if (strategy.usesAvm) {
    const avm = requireAvm(ctx as StrategyContext, strategy.name);
    const pairs = matchingPairs(N, ctx.rng);
    const s = score(ctx.model, avm, batch.video, batch.audio, pairs.videoIndex, { temperature: o.temperature, coreVideoRatio: o.coreVideoRatio, coreAudioRatio: o.coreAudioRatio });
    const imp = s.importance;
    scored = {
      phase: 'scored', ...base, labels: pairs.labels, matching: s.matching, importance: imp, keysV: s.keysV, keysA: s.keysA,
      queryV: new Float32Array(0), queryA: new Float32Array(0),
      current: undefined as unknown as CurrentRows,
    };
    consuming(scored, () => {
      scored.queryV = valuesOf(imp.queryV);
      scored.queryA = valuesOf(imp.queryA);
      scored.current = {
        importanceV: valuesOf(imp.importanceV), importanceA: valuesOf(imp.importanceA),
        orderV: Int32Array.from(imp.orderV.dataSync()), orderA: Int32Array.from(imp.orderA.dataSync()),
        probV: new Float32Array(N * Lv), probA: new Float32Array(N * La),
      };
    });
  } else {
    scored = {
      phase: 'scored', ...base,
      queryV: new Float32Array(N * config.embedDim), queryA: new Float32Array(N * config.embedDim),
      current: {
        importanceV: new Float32Array(N * Lv), importanceA: new Float32Array(N * La),
        orderV: Int32Array.from({ length: N * Lv }, (_, i) => i % Lv), orderA: Int32Array.from({ length: N * La }, (_, i) => i % La),
        probV: new Float32Array(N * Lv), probA: new Float32Array(N * La),
      },
    };
  }
  if (variant.importance === 'uniform') {
    scored.current.importanceV.fill(1 / Lv);
    scored.current.importanceA.fill(1 / La);
  }
  return scored;
}

/** (5): the replay draw of N rows and RCA π of the current rows against the drawn rows' stored queries. */
export function assessPhase(strategy: StellaFamilyStrategy, input: Scored, ctx: PhaseContext): Assessed {
  const scored = expectPhase<Scored>(strategy, input, 'scored');
  return consuming(scored, () => {
    const config = ctx.model.config;
    // The buffer and the AVM are only read here (requireBuffer and requireAvm look at nothing else).
    const buffer = requireBuffer(ctx as StrategyContext, strategy.name, strategy.bufferLayout(config));
    const { N } = scored.sizes;
    const replay = buffer.sample(N, scored.rng);
    const M = replay?.count ?? 0;
    const current = { ...scored.current };
    if (replay && strategy.variant.correlation === 'rca' && scored.keysV && scored.keysA && scored.importance) {
      const imp = scored.importance;
      const headDim = config.embedDim / config.avmHeads;
      const pastV = tf.tensor3d(replay.rows[FIELD.videoQuery] as Float32Array, [M, config.avmHeads, headDim]);
      const pastA = tf.tensor3d(replay.rows[FIELD.audioQuery] as Float32Array, [M, config.avmHeads, headDim]);
      try {
        const cor = replayCorrelation({ kV: scored.keysV, kA: scored.keysA, queryV: imp.queryV, queryA: imp.queryA, pastQueryV: pastV, pastQueryA: pastA, candidateMaskV: imp.candidateMaskV, candidateMaskA: imp.candidateMaskA });
        try {
          current.probV = valuesOf(cor.probV);
          current.probA = valuesOf(cor.probA);
        } finally {
          disposeCorrelation(cor);
        }
      } finally {
        tf.dispose([pastV, pastA]);
      }
    }
    // Importance and keys are done with; only the matching embeddings travel on.
    if (scored.importance) disposeImportance(scored.importance);
    tf.dispose([scored.keysV, scored.keysA].filter((t): t is tf.Tensor4D => !!t));
    const { importance: _i, keysV: _kv, keysA: _ka, phase: _p, ...rest } = scored;
    return { ...rest, phase: 'assessed', current, replay };
  });
}

/** (6)–(8): which patches of the current + replay rows are trained on. */
export function samplePhase(strategy: StellaFamilyStrategy, input: Assessed, ctx: PhaseContext): Selected {
  const assessed = expectPhase<Assessed>(strategy, input, 'assessed');
  return consuming(assessed, () => {
    const config = ctx.model.config;
    const g = tokenGrid(config);
    const { N, Lv, La, kV, kA } = assessed.sizes;
    const replay = assessed.replay;
    // Uniform weights never use the deterministic first-step top-K.
    const replayRows: SelectionRows | undefined = replay
      ? { importanceV: replay.rows[FIELD.importanceV] as Float32Array, importanceA: replay.rows[FIELD.importanceA] as Float32Array, probV: replay.rows[FIELD.probV] as Float32Array, probA: replay.rows[FIELD.probA] as Float32Array }
      : strategy.variant.importance === 'uniform'
        ? { importanceV: new Float32Array(0), importanceA: new Float32Array(0), probV: new Float32Array(0), probA: new Float32Array(0) }
        : undefined;
    const grid = { freqTokens: g.freqPatches, chunkTimes: strategy.options.chunkTimes };
    const sel = strategy.variant.selector
      ? selectWithPlugin(strategy.variant.selector, assessed.current, replayRows, { N, Lv, La, kV, kA, grid: { frames: config.numFrames, side: g.side, timePatches: g.timePatches, freqPatches: g.freqPatches } }, assessed.rng)
      : stellaSelection({ current: assessed.current, replay: replayRows, N, Lv, La, kV, kA, grid }, assessed.rng);
    const { phase: _p, ...rest } = assessed;
    return { ...rest, phase: 'selected', rows: sel.rows, avIds: sel.avIds, vaIds: sel.vaIds, firstStep: sel.firstStep };
  });
}

/** (9)–(12): one optimiser step on the selected patches, then reservoir insertion of the current rows. */
export function trainSelectedPhase(strategy: StellaFamilyStrategy, input: Selected, batch: TrainBatch, ctx: StrategyContext): StepReport {
  const selected = expectPhase<Selected>(strategy, input, 'selected');
  const owned: tf.Tensor[] = [];
  try {
    const config = ctx.model.config;
    const { N, Lv, La, kV, kA } = selected.sizes;
    if (batch.video.shape[0] !== N) throw new RangeError(`${strategy.name}: the selection is for ${N} rows but the batch has ${batch.video.shape[0]}`);
    const buffer = requireBuffer(ctx, strategy.name, strategy.bufferLayout(config));
    const { replay, rows, current } = selected;
    const M = replay?.count ?? 0;
    const o = strategy.options;

    // (9) gather the selected patches of current + replay rows.
    let videoAll = batch.video, audioAll = batch.audio;
    if (M > 0) {
      const rv = rowsTensor(replay!.rows[FIELD.video] as Float32Array, M, Lv), ra = rowsTensor(replay!.rows[FIELD.audio] as Float32Array, M, La);
      videoAll = tf.concat([batch.video, rv]) as tf.Tensor3D;
      audioAll = tf.concat([batch.audio, ra]) as tf.Tensor3D;
      owned.push(rv, ra, videoAll, audioAll);
    }
    const videoSel = gatherSelected(videoAll, selected.avIds, kV), audioSel = gatherSelected(audioAll, selected.vaIds, kA);
    const avIds = tf.tensor2d(selected.avIds, [rows, Lv], 'int32'), vaIds = tf.tensor2d(selected.vaIds, [rows, La], 'int32');
    owned.push(videoSel, audioSel, avIds, vaIds);
    const storedA = M > 0 ? tf.tensor2d(replay!.rows[FIELD.logitsA] as Float32Array, [M, config.embedDim]) : undefined;
    const storedV = M > 0 ? tf.tensor2d(replay!.rows[FIELD.logitsV] as Float32Array, [M, config.embedDim]) : undefined;
    if (storedA && storedV) owned.push(storedA, storedV);

    // (10)–(11) one optimiser step; the current rows' outputs are captured for insertion.
    const losses: Record<string, number> = {};
    let logitsA: Float32Array = new Float32Array(0), logitsV: Float32Array = new Float32Array(0);
    const memb = selected.matching, labels = selected.labels;
    // L_avm reads constant embeddings, so it reaches the AVM's weights alone: its forward and backward
    // run first and are freed before the backbone's (trainStepSplit; the same gradients, a lower peak).
    const matching = memb && labels ? () => matchingLoss(requireAvm(ctx, strategy.name), memb, labels, o.matchingLossWeight).loss : undefined;
    const total = (matchingValue?: tf.Scalar) => {
      const out = ctx.model.maeSelected(videoSel, audioSel, avIds, vaIds);
      logitsA = valuesOf(tf.slice(out.audioOutput, 0, N));
      logitsV = valuesOf(tf.slice(out.videoOutput, 0, N));
      const terms: Record<string, tf.Scalar> = { mae_audio: out.maeAudioLoss, mae_video: out.maeVideoLoss, contrastive: out.contrastiveLoss };
      if (matching) terms.matching = matchingValue ?? matching();
      if (storedA && storedV) {
        // Q14: the penalty uses the last M rows (the replay rows).
        terms.penalty = rehearsalPenalty(storedA, tf.slice(out.audioOutput, rows - M, M) as tf.Tensor2D, storedV, tf.slice(out.videoOutput, rows - M, M) as tf.Tensor2D, o.alpha);
      }
      return sumLosses(terms, losses);
    };
    losses.total = matching && ctx.trainStepSplit ? ctx.trainStepSplit({ lossFn: matching, vars: 'avm' }, total) : ctx.trainStep(() => total());

    // (12) reservoir insertion of the raw current rows.
    buffer.add({
      [FIELD.video]: valuesOf(batch.video), [FIELD.audio]: valuesOf(batch.audio),
      [FIELD.logitsA]: logitsA, [FIELD.logitsV]: logitsV,
      [FIELD.audioQuery]: selected.queryA, [FIELD.videoQuery]: selected.queryV,
      [FIELD.probV]: current.probV, [FIELD.probA]: current.probA,
      [FIELD.importanceV]: current.importanceV, [FIELD.importanceA]: current.importanceA,
    }, N, selected.rng);

    return selectedStepReport({ losses, rows, N, M, Lv, La, kV, kA, current, avIds: selected.avIds, vaIds: selected.vaIds, firstStep: selected.firstStep, buffer });
  } finally {
    tf.dispose(owned);
    disposePhase(selected);
    // A step scored on a copy of the trainer's stream hands its draws back (a no-op for the fused step).
    if (selected.rng !== ctx.rng) ctx.rng.setState(selected.rng.state());
  }
}

/** Plugin selection over current + replay rows: the selector's kept ids first, the rest ascending. */
function selectWithPlugin(
  selector: PatchSelector, current: SelectionRows, replay: SelectionRows | undefined,
  sizes: StepSizes & { grid: { frames: number; side: number; timePatches: number; freqPatches: number } },
  rng: Rng,
): { rows: number; firstStep: boolean; avIds: Int32Array; vaIds: Int32Array } {
  const M = replay ? replay.importanceV.length / sizes.Lv : 0;
  const join = (a: Float32Array, b: Float32Array | undefined) => {
    if (!b || b.length === 0) return a;
    const out = new Float32Array(a.length + b.length);
    out.set(a); out.set(b, a.length);
    return out;
  };
  const rows = sizes.N + M;
  const ids = selectWith(selector, { video: join(current.importanceV, replay?.importanceV), audio: join(current.importanceA, replay?.importanceA) }, rows, sizes, rng);
  return { rows, firstStep: M === 0, ...ids };
}

/** The phase payload a batch carries when earlier stages ran some phases (see `withPhase`). */
export const PHASE = Symbol('stella.phase');
export type PhasedBatch = TrainBatch & { [PHASE]?: StepPhase };

/** A batch view carrying a phase payload, so `Strategy.step` continues from that phase. */
export function withPhase<B extends TrainBatch>(batch: B, phase: StepPhase): B & PhasedBatch {
  return Object.assign(Object.create(batch) as B, { [PHASE]: phase });
}

/** The full step from wherever the batch's payload stands. */
export function runPhases(strategy: StellaFamilyStrategy, batch: TrainBatch, ctx: StrategyContext): StepReport {
  let p: StepPhase | undefined = (batch as PhasedBatch)[PHASE];
  if (!p) p = scorePhase(strategy, batch, ctx);
  if (p.phase === 'scored') p = assessPhase(strategy, p, ctx);
  if (p.phase === 'assessed') p = samplePhase(strategy, p, ctx);
  return trainSelectedPhase(strategy, p, batch, ctx);
}
