/**
 * Roles: what stages need from the container. One Symbol token per role, named like its
 * interface (theia habit), bound in src/graph/graph-module.ts (built-ins), in each area's
 * `*-module.ts`, or by a plugin's ContainerModule. Stages never construct their collaborators.
 *
 * Interfaces here are the minimal contracts the graph relies on; richer ones live beside their
 * implementation (src/method, src/model) and must stay assignable to these.
 *
 * Ref: DESIGN.md "Swapping", "Where state lives"; STYLE.md §5, §8.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Rng as SeededRng } from '../core/rng.ts';
import type { ModelConfig } from '../core/config.ts';
import type { Batch, DecodedClip, EvalResult, StepResult, TaskEnd, TokenizedClip, ClipRef } from './items.ts';

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

/** What media's decodeClip returns (src/media/decode.ts). */
export interface DecodedMedia {
  path: string;
  video: Float32Array;
  fbank: Float32Array;
  info: Record<string, unknown>;
}

export interface DecodeRequest {
  config: ModelConfig;
  mode: 'eval' | 'train';
  rng?: SeededRng;
  /** Train mode: decode each file once and augment from a cache (`true`: the decoder's default folder). */
  cache?: boolean | string;
}

/** Decodes one file; must kill its ffmpeg child when `signal` aborts. */
export interface Decoder {
  decode(path: string, request: DecodeRequest, signal?: AbortSignal): Promise<DecodedMedia>;
}
export const Decoder = Symbol('Decoder');

/** Raw patches of a decoded clip (src/media/tokenize.ts). */
export interface Tokenizer {
  tokenize(decoded: DecodedMedia, config: ModelConfig): { videoPatches: Float32Array; audioPatches: Float32Array };
}
export const Tokenizer = Symbol('Tokenizer');

/** One manifest row; `task` names the task the clip belongs to. */
export interface ManifestRow {
  path: string;
  label: string;
  task: string;
  split: string;
}
/** Reads a manifest file into rows, tasks in training order (src/media/manifest.ts). */
export interface ManifestLoader {
  load(path: string): Promise<ManifestRow[]>;
}
export const ManifestLoader = Symbol('ManifestLoader');

// ---------------------------------------------------------------------------------------------
// Method
// ---------------------------------------------------------------------------------------------

import type { PatchSelector, SelectionInput, SelectionResult } from '../method/patch-selector.ts';
export type { PatchSelector, SelectionInput, SelectionResult };

/** A whole training strategy (src/method/strategy.ts: `stella`, `der++`, `finetune`, …). */
export interface StrategySelector {
  readonly name: string;
  step(batch: unknown, context: unknown): unknown;
  onTaskEnd?(task: number): void;
  afterStep?(step: number): void;
}

/**
 * What `selector: <name>` on a train node resolves to: a built-in strategy, or a patch selector
 * (plugins; src/method/patch-selector.ts) that the trainer runs inside the STELLA step.
 */
export type Selector = PatchSelector | StrategySelector;
export const Selector = Symbol('Selector');

/**
 * One way to build a selector, contributed to the SelectorRegistry under `name`
 * (a plugin binds one of these to `SelectorContribution`).
 */
export interface SelectorContribution {
  readonly name: string;
  /** One line for `stella graph selectors` and error messages. */
  readonly description?: string;
  create(options: Record<string, unknown>): Selector;
}
export const SelectorContribution = Symbol('SelectorContribution');

/** Importance scoring of a batch (STELLA `score` stage, added by the method integration). */
export interface Scorer { score(batch: Batch): Promise<unknown> | unknown }
export const Scorer = Symbol('Scorer');

/** Replay-guided correlation assessment (STELLA `replay-assess` stage). */
export interface Assessor { assess(scored: unknown): Promise<unknown> | unknown }
export const Assessor = Symbol('Assessor');

export interface TrainContext {
  /** Steps completed so far in this run (0 before the first). */
  step: number;
  selector?: Selector;
  rng: SeededRng;
}

/** Runs one optimisation step on a batch. Must not dispose the batch (the train stage does). */
export interface Trainer {
  step(batch: Batch, context: TrainContext): Promise<Omit<StepResult, 'kind' | 'step' | 'task' | 'taskName' | 'batchSize'>>;
  /** A task ended upstream of the evaluator (optional; TrainerRole holds its next step until the task is evaluated). */
  onTaskEnd?(taskEnd: TaskEnd): void;
}
export const Trainer = Symbol('Trainer');

/** Evaluates after a task (retrieval on the eval split etc.). */
export interface Evaluator {
  evaluate(taskEnd: TaskEnd, context: { step: number; trainer?: string; manifest?: string }): Promise<EvalResult['metrics']>;
  /** Called once per evaluate node with the train node it evaluates (undefined: the only one). */
  attach?(trainer: string | undefined): void;
}
export const Evaluator = Symbol('Evaluator');

/**
 * Backbone + AVM + optimiser. The graph only needs the weight hooks for a scorer that runs on
 * another device (`syncEvery: K`, see device-pool.ts).
 */
export interface ModelService {
  exportWeights?(): Promise<Map<string, Float32Array>> | Map<string, Float32Array>;
  importWeights?(weights: Map<string, Float32Array>): Promise<void> | void;
}
export const ModelService = Symbol('ModelService');

export interface ReplayBuffer { readonly size: number }
export const ReplayBuffer = Symbol('ReplayBuffer');

/** The run's root generator; stages fork it by node id. */
export const Rng = Symbol('Rng');

/** Where a run stands, enough to resume. */
export interface StreamPosition {
  step: number;
  /** Last task that was entered, and clips of it already trained on. */
  task: number;
  clipsSeen: number;
  reason: 'stop' | 'task-end' | 'end';
}

/** Writes model + optimiser + buffer + RNG + stream position atomically; returns where. */
export interface Checkpointer {
  save(position: StreamPosition): Promise<string | undefined>;
  /**
   * The command that continues from `checkpoint` (printed after a graceful stop). The graph cannot
   * know it: only the tool that can restore this Checkpointer's files can. Without it the stop
   * message names the checkpoint only.
   */
  resumeCommand?(checkpoint: string): string | undefined;
}
export const Checkpointer = Symbol('Checkpointer');

/** The run's metrics (src/graph/metrics.ts `GraphMetrics`). */
export const Metrics = Symbol('Metrics');

/** The model config a run uses (`config: tiny` in the graph). */
export const RunConfig = Symbol('RunConfig');

export type { ClipRef, DecodedClip, TokenizedClip };
