/**
 * What flows through a graph: one tagged union, so task boundaries travel in-band and no stage
 * needs a side channel. Every stage passes the kinds it does not handle straight through
 * (a `task-end` reaches every stage in order).
 *
 *   clip ──decode──▶ decoded ──tokenize──▶ tokenized ──batch──▶ batch ──train──▶ step
 *   batch ──score──▶ scored ──replay-assess──▶ assessed ──sample──▶ selected ──train──▶ step
 *   task-end ─────────────────────(passed through by every stage)──────────evaluate──▶ eval
 *
 * Per-item failures never travel in the stream: they become a `StageError` on the graph's
 * error channel (a Subject) and the stream goes on.
 *
 * Ref: DESIGN.md "What flows through the graph"; spec §1.5 (batching), §9.1 (evaluation at task end).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Assessed, Scored, Selected, StepPhase } from '../method/phases.ts';

/** One clip from the manifest. `index` is its position in the task's split (stable across epochs). */
export interface ClipRef {
  kind: 'clip';
  path: string;
  label: string;
  /** 0-based task number in training order. */
  task: number;
  taskName: string;
  split: string;
  index: number;
  /** 1-based epoch within the task (spec §1.5: epochs restart each task). */
  epoch?: number;
}

/** Follows a task's last clip of its last epoch. */
export interface TaskEnd {
  kind: 'task-end';
  task: number;
  taskName: string;
}

/** Fields a clip carries through every stage (everything except `kind`). */
export type ClipFields = Omit<ClipRef, 'kind'>;

/** A decoded clip: video `[T, 3, S, S]` and log-mel fbank `[frames, mel]`, both row-major float32. */
export interface DecodedClip extends ClipFields {
  kind: 'decoded';
  video: Float32Array;
  fbank: Float32Array;
  info: Record<string, unknown>;
}

/** Raw patches: video `[Lv, 3·16·16]` in t·h·w order, audio `[La, 16·16]` in t·f order (spec §2). */
export interface TokenizedClip extends ClipFields {
  kind: 'tokenized';
  videoPatches: Float32Array;
  audioPatches: Float32Array;
}

/** Clips stacked into tensors. Owns its tensors: whoever drops a Batch must `dispose()` it. */
export interface Batch {
  kind: 'batch';
  task: number;
  taskName: string;
  clips: ClipFields[];
  /** `[B, Lv, 768]` */
  video: tf.Tensor3D;
  /** `[B, La, 256]` */
  audio: tf.Tensor3D;
  dispose(): void;
}

/**
 * A batch part-way through the STELLA step (src/method/phases.ts): the Batch plus the payload of the
 * phases run so far. Owns both: whoever drops one must `dispose()` it (frees the batch's and the
 * payload's tensors and lets the trainer's next step be scored; idempotent).
 */
export interface PhaseItem<K extends 'scored' | 'assessed' | 'selected', P extends StepPhase> {
  kind: K;
  task: number;
  taskName: string;
  batch: Batch;
  phase: P;
  dispose(): void;
}
/** After `score`: importance I, orders, summary queries, AVM pairs (spec §5.2 (1)–(4)). */
export type ScoredItem = PhaseItem<'scored', Scored>;
/** After `replay-assess`: + the replay rows drawn and RCA π (spec §5.2 (5)). */
export type AssessedItem = PhaseItem<'assessed', Assessed>;
/** After `sample`: + the kept patch ids of the current and replay rows (spec §5.2 (6)–(8)). */
export type SelectedItem = PhaseItem<'selected', Selected>;
export type AnyPhaseItem = ScoredItem | AssessedItem | SelectedItem;

/** One optimisation step's outcome. */
export interface StepResult {
  kind: 'step';
  step: number;
  /** The train node that took the step (several train nodes share one run, e.g. A/B graphs). */
  node?: string;
  task: number;
  taskName: string;
  /** Rows in the batch that produced this step. */
  batchSize: number;
  losses: Record<string, number>;
  /** Milliseconds per phase, as reported by the trainer. */
  timings?: Record<string, number>;
  /** Bytes held by the replay buffer or tensors, as reported by the trainer. */
  memory?: Record<string, number>;
}

/** Evaluation after a task: retrieval row, localisation quality, whatever the evaluator reports. */
export interface EvalResult {
  kind: 'eval';
  task: number;
  taskName: string;
  metrics: Record<string, unknown>;
}

/** A per-item failure, sent to the error channel; never thrown through the stream. */
export interface StageError {
  path: string;
  stage: string;
  message: string;
}

export type GraphItem = ClipRef | TaskEnd | DecodedClip | TokenizedClip | Batch | ScoredItem | AssessedItem | SelectedItem | StepResult | EvalResult;
export type ItemKind = GraphItem['kind'];
export const ITEM_KINDS: readonly ItemKind[] = ['clip', 'task-end', 'decoded', 'tokenized', 'batch', 'scored', 'assessed', 'selected', 'step', 'eval'];
export const PHASE_KINDS = ['scored', 'assessed', 'selected'] as const;

export function isPhaseItem(item: unknown): item is AnyPhaseItem {
  return !!item && typeof item === 'object' && (PHASE_KINDS as readonly string[]).includes((item as { kind?: string }).kind ?? '');
}

/** The clip fields of any clip-like item (drops payload and `kind`). */
export function clipFields(item: ClipFields): ClipFields {
  const { path, label, task, taskName, split, index, epoch } = item;
  return epoch === undefined ? { path, label, task, taskName, split, index } : { path, label, task, taskName, split, index, epoch };
}

/** A ClipRef for a bare path, so `from(['a.mp4']).pipe(decode())` works in plain RxJS. */
export function clipRefFromPath(path: string, index = 0): ClipRef {
  return { kind: 'clip', path, label: '', task: 0, taskName: 'task-0', split: 'train', index };
}

/** Frees what an item owns (a Batch's or a phase item's tensors); other kinds are plain data. */
export function disposeItem(item: unknown): void {
  if (item && typeof item === 'object' && ((item as { kind?: string }).kind === 'batch' || isPhaseItem(item))) {
    (item as Batch | AnyPhaseItem).dispose();
  }
}

/** Typed arrays an item carries, for transfer to a worker without copying. */
export function transferablesOf(item: unknown): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  if (item && typeof item === 'object') {
    for (const value of Object.values(item)) {
      // Only a view that owns its whole buffer moves; a slice of a shared buffer is copied instead.
      if (
        ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer &&
        value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && !out.includes(value.buffer)
      ) {
        out.push(value.buffer);
      }
    }
  }
  return out;
}
