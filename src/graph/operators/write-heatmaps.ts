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
import { renderClipPictures } from '../../eval/pictures.ts';
import { mapConcurrent } from '../concurrent-map.ts';
import { disposeItem, isPhaseItem, type AnyPhaseItem, type GraphItem, type StageError } from '../items.ts';
import { RunConfig } from '../roles.ts';
import { defineStage } from '../stage.ts';

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

/** Video tokens [T·(H/P)·(W/P), 3·P·P] in (c, p, q) order → frames [T, 3, H, W] (inverse of patchifyVideo). */
export function unpatchifyVideo(tokens: Float32Array, T: number, H: number, W: number, P: number, C = 3): Float32Array {
  const gh = H / P, gw = W / P;
  if (tokens.length !== T * C * H * W) throw new RangeError(`video tokens have ${tokens.length} values, expected ${T}·${C}·${H}·${W}`);
  const frames = new Float32Array(T * C * H * W);
  let o = 0;
  for (let t = 0; t < T; t++)
    for (let h = 0; h < gh; h++)
      for (let w = 0; w < gw; w++)
        for (let c = 0; c < C; c++) {
          const plane = (t * C + c) * H * W;
          for (let p = 0; p < P; p++) {
            const row = plane + (h * P + p) * W + w * P;
            for (let q = 0; q < P; q++) frames[row + q] = tokens[o++];
          }
        }
  return frames;
}

/** Audio tokens [(time/P)·(mel/P), P·P] in (time, freq) order → fbank [time, mel] (inverse of patchifyAudio). */
export function unpatchifyAudio(tokens: Float32Array, time: number, mel: number, P: number): Float32Array {
  if (tokens.length !== time * mel) throw new RangeError(`audio tokens have ${tokens.length} values, expected ${time}·${mel}`);
  const gt = time / P, gf = mel / P;
  const fbank = new Float32Array(time * mel);
  let o = 0;
  for (let t = 0; t < gt; t++)
    for (let f = 0; f < gf; f++)
      for (let p = 0; p < P; p++) {
        const row = (t * P + p) * mel + f * P;
        for (let q = 0; q < P; q++) fbank[row + q] = tokens[o++];
      }
  return fbank;
}

export function writeHeatmaps(options: z.input<typeof writeHeatmapsOptionsSchema>, deps: WriteHeatmapsDeps): OperatorFunction<GraphItem, GraphItem> {
  const { dir } = writeHeatmapsOptionsSchema.parse(options);
  const { config } = deps;
  const S = config.imageSize, T = config.numFrames, P = config.patchSize;
  return (source) =>
    source.pipe(
      mapConcurrent<GraphItem, GraphItem | undefined>(
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
      filter((x): x is GraphItem => x !== undefined),
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
