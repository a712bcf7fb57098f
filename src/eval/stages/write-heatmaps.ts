/**
 * `write-heatmaps`: scored clips → PNGs of what the model attends to (a sink).
 *
 * Behaviour: for every clip of a phase item (`scored`, `assessed` or `selected`), writes
 *   <dir>/<clip-name>.frames.png       the frames, then the frames with the importance I_v as a heat
 *                                      overlay and the top-K_v patches outlined;
 *   <dir>/<clip-name>.spectrogram.png  the log-mel spectrogram, likewise with I_a and the top-K_a;
 * via src/eval/pictures.ts `renderClipPictures` (the pictures of `stella inspect`). The frames and the
 * spectrogram are the batch's patch tokens put back in place (patching only re-arranges values).
 * Top-K is STELLA's first-step selection: the K = int(L·(1 − ρ)) most important patches (spec §5.2 (4)).
 * Each item is disposed after writing; a failed item becomes a StageError. Emits nothing (`task-end`
 * passes through).
 *
 * Inputs:  `scored`, `assessed`, `selected`. Passes `task-end` through.
 * Outputs: none.
 * Options (defaults): dir (required; created if needed).
 * Roles: RunConfig.
 *
 * Example node:
 *   heatmaps: { stage: write-heatmaps, options: { dir: runs/score-only/heatmaps } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * const host = modelHost(model, Rng.fromSeed(0));
 * batches$.pipe(score({}, { host }), writeHeatmaps({ dir: 'out' }, { config }))
 * ```
 * Ref: spec §5.2 (2), (4); §2.1–2.3 (patch layout); src/cli/inspect.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { filter, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import { renderClipPictures } from '../pictures.ts';
import { unpatchifyAudio, unpatchifyVideo } from '../../media/patchify.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { disposeItem, type StageError } from '../../graph/items.ts';
import { isPhaseItem, type AnyPhaseItem, type StellaItem } from '../../method/items.ts';
import { RunConfig } from '../../graph/roles.ts';
import { defineStage } from '../../graph/stage.ts';

export const writeHeatmapsOptionsSchema = z.object({
  /** Folder for the PNGs. */
  dir: z.string().min(1),
});

export interface WriteHeatmapsDeps {
  config: ModelConfig;
  errors?: { next(e: StageError): void };
  stage?: string;
  /** Called with each written file (tests, the CLI). */
  onWrite?: (file: string) => void;
}

export function writeHeatmaps(options: z.input<typeof writeHeatmapsOptionsSchema>, deps: WriteHeatmapsDeps): OperatorFunction<StellaItem, StellaItem> {
  const { dir } = writeHeatmapsOptionsSchema.parse(options);
  const { config } = deps;
  const S = config.imageSize, T = config.numFrames, P = config.patchSize;
  return (source) =>
    source.pipe(
      mapConcurrent<StellaItem, StellaItem | undefined>(
        async (item) => {
          if (!isPhaseItem(item)) {
            disposeItem(item);
            throw new Error(`write-heatmaps takes scored items, got '${item.kind}' (is a 'score' stage upstream?)`);
          }
          const it = item;
          try {
            const { N, Lv, La, kV, kA } = it.phase.sizes;
            const video = it.batch.video.dataSync() as Float32Array, audio = it.batch.audio.dataSync() as Float32Array;
            const dv = video.length / (N * Lv), da = audio.length / (N * La);
            await mkdir(dir, { recursive: true });
            for (let r = 0; r < N; r++) {
              const clip = it.batch.clips[r];
              const { framesPng, spectrogramPng } = renderClipPictures({
                path: clip.path,
                frames: unpatchifyVideo(video.subarray(r * Lv * dv, (r + 1) * Lv * dv), T, S, S, P),
                frameShape: [T, S, S],
                fbank: unpatchifyAudio(audio.subarray(r * La * da, (r + 1) * La * da), config.audioFrames, config.melBins, P),
                fbankShape: [config.audioFrames, config.melBins],
                patch: P,
                videoImportance: it.phase.current.importanceV.subarray(r * Lv, (r + 1) * Lv),
                audioImportance: it.phase.current.importanceA.subarray(r * La, (r + 1) * La),
                videoSelected: it.phase.current.orderV.subarray(r * Lv, r * Lv + kV),
                audioSelected: it.phase.current.orderA.subarray(r * La, r * La + kA),
              });
              const base = path.join(dir, path.basename(clip.path, path.extname(clip.path)));
              for (const [file, png] of [[`${base}.frames.png`, framesPng], [`${base}.spectrogram.png`, spectrogramPng]] as const) {
                await writeFile(file, png);
                deps.onWrite?.(file);
              }
            }
            return undefined;
          } finally {
            it.dispose();
          }
        },
        {
          stage: deps.stage ?? 'write-heatmaps',
          concurrency: 1,
          errors: deps.errors,
          passThrough: (item) => item.kind === 'task-end',
          pathOf: (item) => (item as AnyPhaseItem).batch?.clips?.[0]?.path ?? '',
        },
      ),
      filter((x): x is StellaItem => x !== undefined),
    );
}

export const stage = defineStage({
  type: 'write-heatmaps',
  description: 'scored clips → PNGs: frames and spectrogram with the importance overlay and the top-K patches',
  inputs: ['scored', 'assessed', 'selected'],
  outputs: [],
  optionsSchema: writeHeatmapsOptionsSchema,
  roles: [RunConfig],
  create: (deps, options) => writeHeatmaps(options, { config: deps.get<ModelConfig>(RunConfig), errors: deps.errors, stage: deps.node }),
});
