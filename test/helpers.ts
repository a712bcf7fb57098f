/** Shared test helpers: where the golden cases live, backend set-up. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Golden reference cases: `STELLA_GOLDEN` or `../shared/golden` beside the checkout. */
export const GOLDEN_DIR = process.env.STELLA_GOLDEN ?? path.resolve(REPO_ROOT, '../shared/golden');
export const golden = (file: string) => path.join(GOLDEN_DIR, file);
