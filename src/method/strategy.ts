/**
 * The continual-learning strategy contract: what the training stage calls once per batch.
 *
 * A Strategy owns the method's per-step logic (scoring, replay, selection, losses, buffer insertion);
 * the caller owns the model, the optimiser, the buffer and the batch tensors.
 *   step(batch, ctx) → StepReport
 *   batch: video [N, Lv, 3P²] and audio [N, La, P²] patch tokens (tokenize stage output), clips (opaque);
 *   ctx:   model (CavBackbone), avm (AvmModule; required when `usesAvm`), buffer (a ReplayBuffer built
 *          with `bufferLayout(config)`; required when that is defined), rng (all draws), and
 *          trainStep(lossFn) (differentiates the returned scalar w.r.t. backbone + AVM variables, applies
 *          the optimiser, returns the value; e.g. ModelService.trainStep).
 * Every tensor a strategy creates is disposed before `step` returns; the batch is never disposed.
 * Ref: spec §5.2 (STELLA), §5.5 (STELLA+), §8 (baselines); DESIGN.md "Where state lives".
 */
import * as tf from '@tensorflow/tfjs';
import { fastGatherRows } from '../core/fast-matmul.ts';
import type { Rng } from '../core/rng.ts';
import type { ModelConfig } from '../core/config.ts';
import type { AvmModule, CavBackbone } from '../model/types.ts';
import type { BufferLayout, ReplayBuffer } from './replay-buffer.ts';

export interface TrainBatch {
  video: tf.Tensor3D;
  audio: tf.Tensor3D;
  clips?: readonly unknown[];
}

export interface StrategyContext {
  model: CavBackbone;
  avm?: AvmModule;
  buffer?: ReplayBuffer;
  rng: Rng;
  /**
   * Differentiates `lossFn` and applies the optimiser; `vars` limits the update to one group
   * ('avm' keeps the backbone frozen, as in AVM pre-training; default 'all').
   */
  trainStep(lossFn: () => tf.Scalar, vars?: 'backbone' | 'avm' | 'all'): number;
  /**
   * The same step with a part of the loss on its own group of variables, differentiated first and
   * freed before the rest runs (`ModelService.trainStepSplit`: the same gradients when the two parts
   * share no variable, a lower peak). Optional: without it, callers use `trainStep` on the sum.
   */
  trainStepSplit?(part: { lossFn: () => tf.Scalar; vars: 'backbone' | 'avm' }, lossFn: (partValue: tf.Scalar) => tf.Scalar): number;
}

/** Selection of the current rows, for reports and importance overlays (STELLA variants only). */
export interface SelectionSnapshot {
  /** Current rows N and token counts. */
  rows: number;
  Lv: number;
  La: number;
  kV: number;
  kA: number;
  /** I_v [N·Lv], I_a [N·La] (uniform for the Random ablation). */
  importanceV: Float32Array;
  importanceA: Float32Array;
  /** π_v, π_a [N·L] (0 at the first step). */
  probV: Float32Array;
  probA: Float32Array;
  /** Id permutations of the current rows [N·L]; the first K are the kept patches. */
  avIds: Int32Array;
  vaIds: Int32Array;
  firstStep: boolean;
}

export interface StepReport {
  /** Loss values by name (`mae_audio`, `mae_video`, `contrastive`, `matching`, `penalty`) and `total`. */
  losses: Record<string, number>;
  /** Rows in the training forward (current + replay, or mixed rows for LUMP). */
  rows: number;
  current: number;
  replayed: number;
  /** Tokens per row fed to the training forward (K under selection, L otherwise). */
  kept: { video: number; audio: number };
  selection?: SelectionSnapshot;
  buffer?: { size: number; seen: number; bytes: number };
}

export interface Strategy {
  readonly name: string;
  readonly usesAvm: boolean;
  /** The replay-buffer row layout this strategy needs; undefined = no buffer. */
  bufferLayout(config: ModelConfig): BufferLayout | undefined;
  step(batch: TrainBatch, ctx: StrategyContext): StepReport;
}

/** A loss became NaN or ±Inf: the step is abandoned before the update, so the model stays as it was. */
export class NonFiniteLossError extends Error {
  constructor(readonly loss: string, readonly value: number, kind: 'loss' | 'value' = 'loss') {
    super(`${kind} '${loss}' is ${value}; the step was not applied`);
  }
}

/** Sums named scalar losses inside a loss function and records their values (read synchronously). */
export function sumLosses(terms: Record<string, tf.Scalar>, record: Record<string, number>): tf.Scalar {
  const names = Object.keys(terms);
  for (const n of names) {
    record[n] = terms[n].dataSync()[0];
    // Refuse before the optimiser sees gradients of a bad loss: the step is never applied.
    if (!Number.isFinite(record[n])) throw new NonFiniteLossError(n, record[n]);
  }
  const total = names.length === 1 ? tf.clone(terms[names[0]]) : (tf.addN(names.map((n) => terms[n])) as tf.Scalar);
  return total;
}

export function checkBatch(batch: TrainBatch, config: ModelConfig, Lv: number, La: number): number {
  const N = batch.video.shape[0];
  if (batch.video.rank !== 3 || batch.video.shape[1] !== Lv) throw new RangeError(`strategy: batch.video must be [N, ${Lv}, ·] patch tokens, got [${batch.video.shape}] (config ${config.name})`);
  if (batch.audio.rank !== 3 || batch.audio.shape[1] !== La) throw new RangeError(`strategy: batch.audio must be [N, ${La}, ·] patch tokens, got [${batch.audio.shape}] (config ${config.name})`);
  if (batch.audio.shape[0] !== N) throw new RangeError(`strategy: video batch ${N} and audio batch ${batch.audio.shape[0]} differ`);
  if (N === 0) throw new RangeError('strategy: empty batch');
  return N;
}

export function requireBuffer(ctx: StrategyContext, name: string, layout: BufferLayout): ReplayBuffer {
  const b = ctx.buffer;
  if (!b) throw new Error(`strategy '${name}' needs ctx.buffer (a ReplayBuffer with its bufferLayout)`);
  for (const f of layout) {
    const have = b.layout.find((x) => x.name === f.name);
    if (!have || have.size !== f.size) throw new Error(`strategy '${name}': ctx.buffer lacks field '${f.name}' of ${f.size} values; build it with strategy.bufferLayout(config)`);
  }
  return b;
}

export function requireAvm(ctx: StrategyContext, name: string): AvmModule {
  if (!ctx.avm) throw new Error(`strategy '${name}' uses the AVM: pass ctx.avm`);
  return ctx.avm;
}

export function bufferStats(b: ReplayBuffer | undefined): StepReport['buffer'] {
  return b ? { size: b.size, seen: b.seen, bytes: b.bytes() } : undefined;
}

/** The StepReport of a selected-patch step (STELLA family, STELLA+): losses, row counts and the current rows' selection. */
export function selectedStepReport(x: {
  losses: Record<string, number>; rows: number; N: number; M: number; Lv: number; La: number; kV: number; kA: number;
  current: { importanceV: Float32Array; importanceA: Float32Array; probV: Float32Array; probA: Float32Array };
  avIds: Int32Array; vaIds: Int32Array; firstStep: boolean; buffer: ReplayBuffer;
}): StepReport {
  const { N, Lv, La, kV, kA, current } = x;
  return {
    losses: x.losses, rows: x.rows, current: N, replayed: x.M, kept: { video: kV, audio: kA },
    selection: {
      rows: N, Lv, La, kV, kA, importanceV: current.importanceV, importanceA: current.importanceA,
      probV: current.probV, probA: current.probA, avIds: x.avIds.slice(0, N * Lv), vaIds: x.vaIds.slice(0, N * La), firstStep: x.firstStep,
    },
    buffer: bufferStats(x.buffer),
  };
}

/** [R·L·D] typed rows → [R, L, D] tensor. */
export function rowsTensor(data: Float32Array, R: number, L: number): tf.Tensor3D {
  return tf.tensor3d(data, [R, L, R === 0 ? 0 : data.length / (R * L)]);
}

/**
 * The first `k` tokens of each row in id order: x [B, L, D], ids [B·L] → [B, k, D]. One row gather
 * over [B·L, D] (a heap memcpy per token on wasm, whose batched GatherV2 took ~5 ms for 256 tokens).
 */
export function gatherSelected(x: tf.Tensor3D, ids: Int32Array, k: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, L, D] = x.shape;
    const rows = new Int32Array(B * k);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < k; j++) rows[b * k + j] = b * L + ids[b * L + j];
    }
    return tf.reshape(fastGatherRows(tf.reshape(x, [B * L, D]), tf.tensor1d(rows, 'int32')), [B, k, D]);
  });
}

/** Main-thread copy of a tensor's values. */
export function valuesOf(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}
