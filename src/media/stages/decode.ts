/**
 * `decode`: ClipRef → DecodedClip via the `Decoder` role (src/media/decode.ts `decodeClip`).
 *
 * Behaviour: up to `concurrency` clips decode at once; outputs keep input order. Each call gets
 * an AbortSignal that fires on unsubscribe, so ffmpeg children die with the graph. A clip that
 * fails (missing file, ffmpeg exits non-zero, bad stream) becomes a StageError with its path and
 * the stream goes on. Train-mode augmentation draws from `rng.fork('<path>#<epoch>')`, so a clip's
 * draws do not depend on decode order or concurrency. Bare strings are accepted as paths.
 *
 * Inputs:  `clip` (or a path string). Passes `task-end` through in order.
 * Outputs: `decoded`.
 * Options (defaults): concurrency 2, mode 'train' ('eval': deterministic middle window, spec §1.2),
 *   cache false (train mode: `true` decodes each file once into the decoder's cache folder, media's
 *   `.cache/decoded/`, or a folder path; every epoch then draws its augmentation from the cache
 *   with the same per-clip draws, src/media/decoded-cache.ts says what matches exactly; eval mode:
 *   the decoded clip is stored and read back bit for bit),
 *   warm false (with the cache on: a manifest path; when a task's clips are requested, the
 *   manifest's clips of that task and the next are decoded into the cache in the background, eight
 *   per ffmpeg run at nice 10, so the next task's epoch 1 need not wait on ffmpeg;
 *   src/media/cache-warmer.ts. Results do not change. Ignored with the cache off and on a remote device).
 * Roles: Decoder, RunConfig, Rng, ManifestLoader (warm).
 *
 * Example node:
 *   decode: { stage: decode, device: worker:0, options: { concurrency: 2, cache: true, warm: data/corpus/manifest.json } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * from(['a.mp4', 'b.mp4']).pipe(decode({ mode: 'eval' }, { config: modelConfig('tiny') }))
 * ```
 * Ref: spec §1.2–1.4 (clip timing, video and audio transforms).
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { modelConfig, type ModelConfig } from '../../core/config.ts';
import { Rng as SeededRng } from '../../core/rng.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import type { TaskWarmer } from '../cache-warmer.ts';
import { mediaDecoder, mediaManifestLoader } from '../default-roles.ts';
import { clipFields, clipRefFromPath, type ClipRef, type DecodedClip, type TaskEnd } from '../items.ts';
import type { StageError } from '../../graph/items.ts';
import { Decoder, ManifestLoader } from '../roles.ts';
import { Rng, RunConfig } from '../../graph/roles.ts';
import { defineStage } from '../../graph/stage.ts';
import type { StellaItem } from '../../method/items.ts';

import { decodeOptionsSchema, decodeRequest, warmerFor } from './decode-worker.ts';

export { DECODE_DEFAULTS, decodeOptionsSchema, decodeTask } from './decode-worker.ts';

export interface DecodeDeps {
  decoder?: Decoder;
  manifestLoader?: ManifestLoader;
  config?: ModelConfig;
  rng?: SeededRng;
  errors?: { next(error: StageError): void };
  stage?: string;
}

export function decode(
  options: z.input<typeof decodeOptionsSchema> = {},
  deps: DecodeDeps = {},
): OperatorFunction<ClipRef | TaskEnd | string, DecodedClip | TaskEnd> {
  const parsed = decodeOptionsSchema.parse(options);
  const decoder = deps.decoder ?? mediaDecoder;
  const config = deps.config ?? modelConfig('tiny');
  const rng = deps.rng ?? SeededRng.fromSeed(0).fork('decode');
  let position = 0;
  const decodeEach = (warmer: TaskWarmer | undefined) => mapConcurrent<ClipRef | TaskEnd | string, DecodedClip>(
    async (item, signal) => {
      const clip = typeof item === 'string' ? clipRefFromPath(item, position++) : (item as ClipRef);
      warmer?.requested(clip);
      const media = await decoder.decode(clip.path, decodeRequest(clip, parsed, config, rng), signal);
      return { kind: 'decoded', ...clipFields(clip), video: media.video, fbank: media.fbank, info: media.info };
    },
    {
      stage: deps.stage ?? 'decode',
      concurrency: parsed.concurrency,
      errors: deps.errors,
      passThrough: (item) => typeof item !== 'string' && item.kind !== 'clip',
      pathOf: (item) => (typeof item === 'string' ? item : (item as ClipRef).path),
    },
  );
  // One warmer per subscription; unsubscribing stops it (and kills its ffmpeg) with the decodes.
  return (source) => new Observable<DecodedClip | TaskEnd>((subscriber) => {
    const warmer = warmerFor(parsed, config, decoder, deps.manifestLoader ?? mediaManifestLoader);
    const subscription = (decodeEach(warmer)(source) as Observable<DecodedClip | TaskEnd>).subscribe(subscriber);
    return () => {
      subscription.unsubscribe();
      warmer?.stop();
    };
  });
}

export const stage = defineStage({
  type: 'decode',
  description: 'ClipRef → DecodedClip (ffmpeg), bounded concurrency, order kept',
  inputs: ['clip'],
  outputs: ['decoded'],
  optionsSchema: decodeOptionsSchema,
  roles: [Decoder, RunConfig, Rng, ManifestLoader],
  worker: { module: new URL('./decode-worker.ts', import.meta.url).href, export: 'decodeTask', backend: false, files: ['path'] },
  oneToOne: true,
  create: (deps, options) =>
    decode(options, {
      decoder: deps.get<Decoder>(Decoder),
      manifestLoader: deps.get<ManifestLoader>(ManifestLoader),
      config: deps.get<ModelConfig>(RunConfig),
      rng: deps.get<SeededRng>(Rng).fork(deps.node),
      errors: deps.errors,
      stage: deps.node,
    }) as OperatorFunction<StellaItem, StellaItem>,
});
