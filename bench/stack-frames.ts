/** Where the benchmark scripts' profilers were called from, in the project's own files. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src') + path.sep;

/**
 * The caller's first `count` frames inside src/ (paths relative to it), innermost first, joined by
 * ' < '; frames whose line contains `skip` are left out. Raise Error.stackTraceLimit first when the
 * calls pass through deep library stacks (tfjs' engine).
 */
export function projectFrames(count: number, skip?: string): string {
  return (new Error().stack ?? '').split('\n')
    .filter((l) => l.includes(SRC) && !(skip && l.includes(skip)))
    .slice(0, count)
    .map((l) => l.trim().replace(/^at /, '').replace(SRC, ''))
    .join(' < ');
}
