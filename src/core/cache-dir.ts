/**
 * Where on-disk caches live: `<repo>/.cache/` (generated corpora in `corpus/`, decoded clips in
 * `decoded/`), or `$STELLA_CACHE`, or a folder the caller names (`stella run --set data.cache=DIR`).
 * Every cache takes its base folder from `cacheRoot()`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `folder` when given (non-empty), else $STELLA_CACHE, else the repository's .cache/; absolute. */
export function cacheRoot(folder?: string): string {
  return path.resolve(folder || process.env.STELLA_CACHE || path.join(REPO, '.cache'));
}
