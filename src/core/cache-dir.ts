/**
 * Where on-disk caches live: `<repo>/.cache/` (generated corpora in `corpus/`, decoded clips in
 * `decoded/`). Every cache takes its base folder from `cacheRoot()`, so making it configurable
 * (an environment variable or a run key) is a change here only.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function cacheRoot(): string {
  return path.join(REPO, '.cache');
}
