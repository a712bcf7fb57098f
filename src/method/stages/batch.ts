/**
 * `batch`: groups `size` TokenizedClips into one Batch tensor pair.
 *
 * Behaviour: video `[B, Lv, 768]` and audio `[B, La, 256]` float32 tensors, clips in arrival
 * order. A `task-end` flushes the partial batch first (kept unless `dropLast`), then passes on,
 * so a batch never mixes tasks. At the end of the stream the partial batch is flushed the same
 * way. A clip whose patch count differs from the batch's first clip becomes a StageError.
 * Pull-aware: asks for one item at a time, so it holds at most `size - 1` clips (arrays, not
 * tensors). Tensors are created only at emission; a Batch emitted to a closed subscriber is
 * disposed. Downstream owns each emitted Batch and must `dispose()` it.
 *
 * Inputs:  `tokenized`. Passes `task-end` (and anything else) through in order.
 * Outputs: `batch`.
 * Options (defaults): size 8, dropLast true (spec §1.5: the train sampler drops the last partial batch).
 * Roles: none.
 *
 * Example node:
 *   batch: { stage: batch, options: { size: 12 } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * tokenized$.pipe(batch({ size: 4, dropLast: false }))
 * ```
 * Ref: spec §1.5 (batching).
 */
import * as tf from '@tensorflow/tfjs';
import { Observable, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { requestFrom } from '../../graph/bounded-queue.ts';
import { STDERR_ERRORS } from '../../graph/errors.ts';
import { clipFields, type TokenizedClip } from '../../media/items.ts';
import { batchOf, type Batch, type StellaItem } from '../items.ts';
import type { StageError } from '../../graph/items.ts';
import { defineStage } from '../../graph/stage.ts';

export const BATCH_DEFAULTS = { size: 8, dropLast: true };
const VIDEO_PATCH_DIM = 768; // 3 channels · 16 · 16
const AUDIO_PATCH_DIM = 256; // 16 · 16

export const batchOptionsSchema = z.object({
  size: z.number().int().positive().default(BATCH_DEFAULTS.size),
  dropLast: z.boolean().default(BATCH_DEFAULTS.dropLast),
});

/** Stacks clips into a Batch (tensors created here; the Batch owns them). */
export function stackClips(clips: TokenizedClip[]): Batch {
  const lv = clips[0].videoPatches.length / VIDEO_PATCH_DIM;
  const la = clips[0].audioPatches.length / AUDIO_PATCH_DIM;
  const video = new Float32Array(clips.length * lv * VIDEO_PATCH_DIM);
  const audio = new Float32Array(clips.length * la * AUDIO_PATCH_DIM);
  clips.forEach((c, i) => {
    video.set(c.videoPatches, i * lv * VIDEO_PATCH_DIM);
    audio.set(c.audioPatches, i * la * AUDIO_PATCH_DIM);
  });
  const videoTensor = tf.tensor3d(video, [clips.length, lv, VIDEO_PATCH_DIM]);
  const audioTensor = tf.tensor3d(audio, [clips.length, la, AUDIO_PATCH_DIM]);
  return batchOf({ task: clips[0].task, taskName: clips[0].taskName, clips: clips.map(clipFields) }, videoTensor, audioTensor);
}

export function batch(
  options: z.input<typeof batchOptionsSchema> = {},
  deps: { errors?: { next(e: StageError): void }; stage?: string } = {},
): OperatorFunction<StellaItem, StellaItem> {
  const { size, dropLast } = batchOptionsSchema.parse(options);
  const errors = deps.errors ?? STDERR_ERRORS;
  const stageName = deps.stage ?? 'batch';
  return (input) =>
    new Observable<StellaItem>((subscriber) => {
      let pending: TokenizedClip[] = [];
      const emit = (item: StellaItem) => {
        subscriber.next(item);
        if (subscriber.closed && item.kind === 'batch') item.dispose();
      };
      const flush = (final: boolean) => {
        const clips = pending;
        pending = [];
        if (clips.length === 0 || (final && dropLast && clips.length < size)) return;
        emit(stackClips(clips));
      };
      const subscription = input.subscribe({
        next(item) {
          if (item.kind === 'tokenized') {
            const first = pending[0];
            if (first && (first.videoPatches.length !== item.videoPatches.length || first.audioPatches.length !== item.audioPatches.length)) {
              errors.next({
                path: item.path,
                stage: stageName,
                message: `patch arrays of ${item.videoPatches.length}/${item.audioPatches.length} values do not match the batch's ${first.videoPatches.length}/${first.audioPatches.length}`,
              });
            } else if (item.videoPatches.length % VIDEO_PATCH_DIM || item.audioPatches.length % AUDIO_PATCH_DIM) {
              errors.next({ path: item.path, stage: stageName, message: `patch arrays are not [L, ${VIDEO_PATCH_DIM}] / [L, ${AUDIO_PATCH_DIM}]` });
            } else {
              pending.push(item);
              if (pending.length === size) flush(false);
            }
          } else {
            if (item.kind === 'task-end') flush(true);
            emit(item);
          }
          requestFrom(input, 1);
        },
        error(error) { subscriber.error(error); },
        complete() {
          flush(true);
          subscriber.complete();
        },
      });
      requestFrom(input, 1);
      return () => {
        subscription.unsubscribe();
        pending = [];
      };
    });
}

export const stage = defineStage({
  type: 'batch',
  description: 'groups N TokenizedClips into a Batch tensor pair; flushes at TaskEnd',
  inputs: ['tokenized'],
  outputs: ['batch'],
  optionsSchema: batchOptionsSchema,
  roles: [],
  create: (deps, options) => batch(options, { errors: deps.errors, stage: deps.node }),
});
