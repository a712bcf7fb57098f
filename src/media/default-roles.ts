/**
 * The media roles' default implementations (bound by media-module.ts where nothing else binds the
 * role). They import decode.ts, tokenize.ts and manifest.ts lazily, so that loading a graph (and
 * the worker that only tokenizes) does not pay for ffmpeg resolution and the fbank tables. A module
 * that fails to load is a FatalStageError naming the file: the graph stops cleanly at the first
 * item instead of reporting the same failure for every clip.
 */
import { FatalStageError } from '../graph/errors.ts';
import type { Decoder, ManifestLoader, ManifestRow, Tokenizer } from './roles.ts';

async function importMedia<T>(file: string, stage: string): Promise<T> {
  try {
    return (await import(new URL(`./${file}`, import.meta.url).href)) as T;
  } catch (error) {
    throw new FatalStageError(stage, `src/media/${file} could not be loaded (${(error as Error).message.split('\n')[0]}); bind the role in a plugin or wait for the media module`);
  }
}

export const mediaDecoder: Decoder = {
  async decode(path, request, signal) {
    const media = await importMedia<{ decodeClip: Function }>('decode.ts', 'decode');
    return media.decodeClip(path, request, signal);
  },
  async warm(paths, request, signal) {
    const cache = await importMedia<typeof import('./decoded-cache.ts')>('decoded-cache.ts', 'decode');
    await cache.warmStoredClips(paths, request.config, cache.cacheFolder(request.cache), signal);
  },
};

let tokenizeModule: { tokenizeClip: Function } | undefined;
/** Media's tokenizeClip; the module must be preloaded with `preloadTokenizer()` (tokenize is sync). */
export const mediaTokenizer: Tokenizer = {
  tokenize(decoded, config) {
    if (!tokenizeModule) throw new FatalStageError('tokenize', 'src/media/tokenize.ts is not loaded (call preloadTokenizer() first)');
    return tokenizeModule.tokenizeClip(decoded, config);
  },
};
export async function preloadTokenizer(): Promise<void> {
  tokenizeModule ??= await importMedia<{ tokenizeClip: Function }>('tokenize.ts', 'tokenize');
}

/**
 * Media's loadManifest, normalised to rows. Accepts `{ tasks: [{ name, clips: [...] }] }`, an
 * array of rows, or `{ clips: [...] }` whose rows carry `task`.
 */
export const mediaManifestLoader: ManifestLoader = {
  async load(path) {
    const media = await importMedia<{ loadManifest: Function; manifestClips?: Function }>('manifest.ts', 'source');
    const manifest = await media.loadManifest(path);
    // media's own flattening (task, then train/test) where available
    return normaliseManifest(media.manifestClips ? media.manifestClips(manifest) : manifest, path);
  },
};

export function normaliseManifest(manifest: unknown, file: string): ManifestRow[] {
  const rowOf = (r: Record<string, unknown>, task?: string): ManifestRow => ({
    path: String(r.path ?? r.file ?? ''),
    label: String(r.label ?? r.category ?? ''),
    task: String(task ?? r.task ?? r.taskName ?? 'task-0'),
    split: String(r.split ?? 'train'),
  });
  const m = manifest as Record<string, unknown>;
  if (Array.isArray(m)) return m.map((r) => rowOf(r));
  if (m && Array.isArray(m.tasks)) {
    return (m.tasks as Record<string, unknown>[]).flatMap((t) =>
      [
        ...((t.clips ?? t.rows ?? []) as Record<string, unknown>[]).map((r) => rowOf(r, String(t.name ?? t.task))),
        ...((t.train ?? []) as Record<string, unknown>[]).map((r) => ({ ...rowOf(r, String(t.name)), split: 'train' })),
        ...((t.test ?? []) as Record<string, unknown>[]).map((r) => ({ ...rowOf(r, String(t.name)), split: 'test' })),
      ],
    );
  }
  if (m && Array.isArray(m.clips)) return (m.clips as Record<string, unknown>[]).map((r) => rowOf(r));
  throw new FatalStageError('source', `manifest '${file}' has no tasks/clips list the graph understands`);
}
