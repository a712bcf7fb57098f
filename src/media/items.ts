/**
 * The media item kinds: clips from a manifest, in-band task boundaries, decoded and tokenized clips.
 * Every stage passes the kinds it does not handle straight through (a `task-end` reaches every
 * stage in order: `source` declares it as a marker, see src/graph/stage.ts `markers`).
 *
 *   clip ──decode──▶ decoded ──tokenize──▶ tokenized ──batch──▶ batch   (src/method/items.ts)
 *
 * Ref: DESIGN.md "What flows through the graph"; spec §1.5 (epochs restart each task).
 */

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

/** The in-band marker of a task boundary; every stage forwards it. */
export const TASK_END = 'task-end';

/** The clip fields of any clip-like item (drops payload and `kind`). */
export function clipFields(item: ClipFields): ClipFields {
  const { path, label, task, taskName, split, index, epoch } = item;
  return epoch === undefined ? { path, label, task, taskName, split, index } : { path, label, task, taskName, split, index, epoch };
}

/** A ClipRef for a bare path, so `from(['a.mp4']).pipe(decode())` works in plain RxJS. */
export function clipRefFromPath(path: string, index = 0): ClipRef {
  return { kind: 'clip', path, label: '', task: 0, taskName: 'task-0', split: 'train', index };
}
