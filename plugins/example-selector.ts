/**
 * `center-bias` selector: keeps the patches nearest the frame centre (video) and the middle of
 * the spectrogram's time axis (audio), ignoring importance. A cheap, deterministic baseline for
 * "is the scene's subject usually centred?"; also the worked example of docs/plugins.md.
 *
 * Ranking: video patch (t, h, w) by squared distance of (h + ½, w + ½) to the frame centre,
 * audio patch (t, f) by distance of t + ½ to the middle time row; ties by patch index, so the
 * result is stable. Every row of the batch gets the same indices. Options: none.
 *
 * Use it: `selector: center-bias` on a train node (plugins/ is loaded automatically, or name
 * this file in a graph's `plugins:`).
 */
import * as tf from '@tensorflow/tfjs';
import { ContainerModule } from 'inversify';
import { SelectorContribution, type PatchSelector, type SelectionInput, type SelectionResult } from '../src/method/roles.ts';

/** Patch indices sorted by `distance` (ascending), ties by index; first `keep` of them. */
function nearest(count: number, keep: number, distance: (index: number) => number): Int32Array {
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => distance(a) - distance(b) || a - b);
  return Int32Array.from(order.slice(0, keep));
}

export class CenterBiasSelector implements PatchSelector {
  readonly name = 'center-bias';
  /** Position only: the trainer can skip importance scoring. */
  readonly needsImportance = false;

  select(input: SelectionInput): SelectionResult {
    const { frames, side, timePatches, freqPatches } = input.grid;
    const rows = input.importance.video.shape[0];
    const videoCount = frames * side * side;
    const audioCount = timePatches * freqPatches;
    if (input.importance.video.shape[1] !== videoCount || input.importance.audio.shape[1] !== audioCount) {
      throw new Error(
        `center-bias: importance shapes [${input.importance.video.shape}] / [${input.importance.audio.shape}] do not match the grid (${videoCount} video, ${audioCount} audio patches)`,
      );
    }
    const centre = side / 2;
    const video = nearest(videoCount, input.keep.video, (i) => {
      const h = Math.floor((i % (side * side)) / side) + 0.5;
      const w = (i % side) + 0.5;
      return (h - centre) ** 2 + (w - centre) ** 2;
    });
    const middle = timePatches / 2;
    const audio = nearest(audioCount, input.keep.audio, (i) => Math.abs(Math.floor(i / freqPatches) + 0.5 - middle));
    return tf.tidy(() => ({
      video: tf.tile(tf.tensor2d(video, [1, video.length], 'int32'), [rows, 1]) as tf.Tensor2D,
      audio: tf.tile(tf.tensor2d(audio, [1, audio.length], 'int32'), [rows, 1]) as tf.Tensor2D,
    }));
  }
}

export default new ContainerModule(({ bind }) => {
  bind<SelectorContribution>(SelectorContribution).toConstantValue({
    name: 'center-bias',
    description: 'keeps patches nearest the frame centre and the middle of the spectrogram',
    create: () => new CenterBiasSelector(),
  });
});
