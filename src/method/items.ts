/**
 * STELLA's item kinds: the media kinds (src/media/items.ts), batches, the phase items of a step split
 * into stages, and the engine's outcome kinds `step` and `eval`. One tagged union, `StellaItem`,
 * so a stage narrows on `kind`; the engine itself only sees `GraphItem` (src/graph/items.ts) and
 * calls `dispose()` / `clone()` on the items that have them.
 *
 *   clip ──decode──▶ decoded ──tokenize──▶ tokenized ──batch──▶ batch ──train──▶ step
 *   batch ──score──▶ scored ──replay-assess──▶ assessed ──sample──▶ selected ──train──▶ step
 *   task-end ─────────────────────(passed through by every stage)──────────evaluate──▶ eval
 *
 * Ref: DESIGN.md "What flows through the graph"; spec §1.5 (batching), §5.2 (the step), §9.1 (evaluation at task end).
 */
import * as tf from '@tensorflow/tfjs';
import type { EvalResult, StepResult } from '../graph/items.ts';
import type { ClipFields, ClipRef, DecodedClip, TaskEnd, TokenizedClip } from '../media/items.ts';
import type { Assessed, Scored, Selected, StepPhase } from './phases.ts';

export * from '../media/items.ts';
export type { EvalResult, StepResult } from '../graph/items.ts';

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
  /** A copy with its own tensors (a second fan-out branch owns what it receives). */
  clone?(): Batch;
}

/** A Batch over `video` and `audio`, which it owns: `dispose()` frees them once, `clone()` copies them. */
export function batchOf(fields: { task: number; taskName: string; clips: ClipFields[] }, video: tf.Tensor3D, audio: tf.Tensor3D): Batch {
  let disposed = false;
  return {
    kind: 'batch',
    task: fields.task,
    taskName: fields.taskName,
    clips: fields.clips,
    video,
    audio,
    dispose() {
      if (disposed) return;
      disposed = true;
      video.dispose();
      audio.dispose();
    },
    clone() {
      return batchOf({ ...fields, clips: fields.clips.map((c) => ({ ...c })) }, tf.clone(video), tf.clone(audio));
    },
  };
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
  /** A copy with its own tensors and random stream, but not the original's turn on the trainer. */
  clone?(): PhaseItem<K, P>;
}
/** After `score`: importance I, orders, summary queries, AVM pairs (spec §5.2 (1)–(4)). */
export type ScoredItem = PhaseItem<'scored', Scored>;
/** After `replay-assess`: + the replay rows drawn and RCA π (spec §5.2 (5)). */
export type AssessedItem = PhaseItem<'assessed', Assessed>;
/** After `sample`: + the kept patch ids of the current and replay rows (spec §5.2 (6)–(8)). */
export type SelectedItem = PhaseItem<'selected', Selected>;
export type AnyPhaseItem = ScoredItem | AssessedItem | SelectedItem;

/** Every kind a STELLA stage takes or emits. */
export type StellaItem = ClipRef | TaskEnd | DecodedClip | TokenizedClip | Batch | ScoredItem | AssessedItem | SelectedItem | StepResult | EvalResult;
export type StellaItemKind = StellaItem['kind'];
export const STELLA_ITEM_KINDS: readonly StellaItemKind[] = ['clip', 'task-end', 'decoded', 'tokenized', 'batch', 'scored', 'assessed', 'selected', 'step', 'eval'];
export const PHASE_KINDS = ['scored', 'assessed', 'selected'] as const;

export function isPhaseItem(item: unknown): item is AnyPhaseItem {
  return !!item && typeof item === 'object' && (PHASE_KINDS as readonly string[]).includes((item as { kind?: string }).kind ?? '');
}
