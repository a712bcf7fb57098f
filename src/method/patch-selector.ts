/**
 * Patch selectors: the swappable "which patches does a row train on" rule, and its adapter into the
 * STELLA training step. A selector sees per-row importance (LPIS scores, or uniform when it says it
 * does not need them) and returns the kept patch ids; the step then trains exactly those patches with
 * Mode D, replay and the DER penalty, like STELLA (spec §5.2 steps (9)–(12)).
 *
 *   select({ importance: { video [R, Lv], audio [R, La] }, keep: { video: Kv, audio: Ka }, grid }, rng)
 *     → { video: int32 [R, Kv], audio: int32 [R, Ka] }   (distinct ids per row; caller disposes)
 *
 * Rows R are the current rows followed by the replayed rows (whose importance is the stored one).
 * A plugin binds a `SelectorContribution` (src/method/roles.ts) whose `create` returns a PatchSelector;
 * see plugins/example-selector.ts and docs/plugins.md.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';

export interface SelectionInput {
  importance: { video: tf.Tensor2D; audio: tf.Tensor2D };
  keep: { video: number; audio: number };
  /** Token grid: frames × side × side video patches, timePatches × freqPatches audio patches. */
  grid: { frames: number; side: number; timePatches: number; freqPatches: number };
}

/** Kept patch indices per row: video `[R, Kv]`, audio `[R, Ka]`, int32. The caller disposes them. */
export interface SelectionResult {
  video: tf.Tensor2D;
  audio: tf.Tensor2D;
}

export interface PatchSelector {
  readonly name: string;
  /** True when `select` reads the importance (the step then runs LPIS scoring with the AVM). */
  readonly needsImportance?: boolean;
  select(input: SelectionInput, rng: Rng): SelectionResult;
  onTaskEnd?(task: number): void;
  afterStep?(step: number): void;
}

/** Kept ids first (in the selector's order), then the other ids ascending: a full permutation per row. */
export function keptFirstPermutation(kept: Int32Array, rows: number, k: number, L: number, selector: string, modality: string): Int32Array {
  const out = new Int32Array(rows * L);
  const seen = new Uint8Array(L);
  for (let r = 0; r < rows; r++) {
    seen.fill(0);
    let o = r * L;
    for (let j = 0; j < k; j++) {
      const id = kept[r * k + j];
      if (!(id >= 0 && id < L) || seen[id]) {
        throw new RangeError(`selector '${selector}': ${modality} row ${r} keeps id ${id} ${seen[id] ? 'twice' : `outside 0..${L - 1}`}`);
      }
      seen[id] = 1;
      out[o++] = id;
    }
    for (let id = 0; id < L; id++) if (!seen[id]) out[o++] = id;
  }
  return out;
}

/** Runs a selector on flat importance rows and returns full id permutations (kept first). */
export function selectWith(
  selector: PatchSelector,
  importance: { video: Float32Array; audio: Float32Array },
  rows: number,
  sizes: { Lv: number; La: number; kV: number; kA: number; grid: SelectionInput['grid'] },
  rng: Rng,
): { avIds: Int32Array; vaIds: Int32Array } {
  const { Lv, La, kV, kA, grid } = sizes;
  const video = tf.tensor2d(importance.video, [rows, Lv]), audio = tf.tensor2d(importance.audio, [rows, La]);
  let result: SelectionResult | undefined;
  try {
    result = selector.select({ importance: { video, audio }, keep: { video: kV, audio: kA }, grid }, rng);
    const check = (t: tf.Tensor, k: number, what: string) => {
      if (t.rank !== 2 || t.shape[0] !== rows || t.shape[1] !== k) {
        throw new RangeError(`selector '${selector.name}' returned ${what} ids of shape [${t.shape}], expected [${rows}, ${k}]`);
      }
    };
    check(result.video, kV, 'video');
    check(result.audio, kA, 'audio');
    return {
      avIds: keptFirstPermutation(Int32Array.from(result.video.dataSync()), rows, kV, Lv, selector.name, 'video'),
      vaIds: keptFirstPermutation(Int32Array.from(result.audio.dataSync()), rows, kA, La, selector.name, 'audio'),
    };
  } finally {
    tf.dispose([video, audio]);
    if (result) tf.dispose([result.video, result.audio]);
  }
}
