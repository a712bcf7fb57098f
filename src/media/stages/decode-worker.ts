/**
 * The `decode` stage's per-clip work, shared by the in-thread operator (decode.ts) and the worker
 * task (`decodeTask`, run on `device: worker:N` or a remote device): the options, the per-clip
 * request with its rng fork, and the cache warmer. A worker imports only this module, not the
 * stage file, so its start-up does not load the container or RxJS (half a second here).
 *
 * Ref: decode.ts (behaviour and options), src/graph/worker-task.ts.
 */
import { z } from 'zod';
import type { ModelConfig } from '../../core/config.ts';
import { Rng as SeededRng } from '../../core/rng.ts';
import type { WorkerTask } from '../../graph/worker-task.ts';
import { TaskWarmer } from '../cache-warmer.ts';
import { mediaDecoder, mediaManifestLoader } from '../default-roles.ts';
import { clipFields, type ClipRef } from '../items.ts';
import type { Decoder, ManifestLoader } from '../roles.ts';

export const DECODE_DEFAULTS = { concurrency: 2, mode: 'train' as const, cache: false, warm: false as const };

export const decodeOptionsSchema = z.object({
  concurrency: z.number().int().positive().default(DECODE_DEFAULTS.concurrency),
  mode: z.enum(['train', 'eval']).default(DECODE_DEFAULTS.mode),
  /** The decoded cache (true: the decoder's folder; or a folder). Train mode: decode once, augment per epoch; eval mode: the clip itself, bit for bit. */
  cache: z.union([z.boolean(), z.string().min(1)]).default(DECODE_DEFAULTS.cache),
  /** With the cache: a manifest whose clips of the requested task and the next are decoded ahead (cache-warmer.ts). */
  warm: z.union([z.literal(false), z.string().min(1)]).default(DECODE_DEFAULTS.warm),
});
export type ParsedDecodeOptions = z.infer<typeof decodeOptionsSchema>;

/** The Decoder request for one clip: the per-clip rng fork keeps draws independent of order and concurrency. */
export function decodeRequest(clip: ClipRef, options: ParsedDecodeOptions, config: ModelConfig, rng: SeededRng) {
  const train = options.mode === 'train';
  return {
    config,
    mode: options.mode,
    rng: train ? rng.fork(`${clip.path}#${clip.epoch ?? 1}`) : undefined,
    ...(options.cache ? { cache: options.cache } : {}),
  };
}

/** The warmer the options ask for, or undefined (no `warm`, the cache off, eval mode, or a decoder that cannot warm). */
export function warmerFor(options: ParsedDecodeOptions, config: ModelConfig, decoder: Decoder, loader: ManifestLoader): TaskWarmer | undefined {
  const { warm, cache } = options;
  if (!warm || !cache || options.mode !== 'train' || !decoder.warm) return undefined;
  return new TaskWarmer(() => loader.load(warm), (paths, signal) => decoder.warm!(paths, { config, mode: 'train', cache }, signal));
}

/** Worker side: one warmer per worker thread and options (a worker lives as long as its graph). */
const workerWarmers = new Map<string, TaskWarmer | undefined>();

/** Worker side: media's decoder in the worker; the same per-clip rng fork as in-thread. */
export const decodeTask: WorkerTask = async (item, options, context) => {
  const clip = item as ClipRef;
  const rng = SeededRng.fromSeed(context.seed).fork(context.node);
  // On a remote device the file is a local copy of the clip's bytes; the clip keeps its path (and rng fork).
  const file = context.localPath?.(clip.path) ?? clip.path;
  const parsed = decodeOptionsSchema.parse(options);
  const config = context.config as ModelConfig;
  // A remote device has local copies of requested clips only: it cannot read the manifest's files.
  if (!context.localPath) {
    const key = JSON.stringify([context.node, parsed, config]);
    if (!workerWarmers.has(key)) workerWarmers.set(key, warmerFor(parsed, config, mediaDecoder, mediaManifestLoader));
    workerWarmers.get(key)?.requested(clip);
  }
  const media = await mediaDecoder.decode(file, decodeRequest(clip, parsed, config, rng));
  return { kind: 'decoded', ...clipFields(clip), video: media.video, fbank: media.fbank, info: media.info };
};
