/**
 * Error kinds of the graph.
 *
 * - `StageError` items (src/graph/items.ts) report one bad item and never stop the stream.
 * - `FatalStageError` thrown by a stage stops the whole graph cleanly (teardown runs).
 * - `GraphConfigError` is a bad graph file, `--set` or plugin, raised before any data flows;
 *   its message names the file, line and dotted key.
 */
import type { Observer } from 'rxjs';
import type { StageError } from './items.ts';

export class FatalStageError extends Error {
  constructor(readonly stage: string, message: string) {
    super(`stage '${stage}': ${message}`);
    this.name = 'FatalStageError';
  }
}

export interface ConfigProblem {
  /** Dotted key, e.g. `nodes.decode.options.concurrency`. */
  key: string;
  message: string;
  line?: number;
  column?: number;
}

export class GraphConfigError extends Error {
  constructor(readonly file: string, readonly problems: ConfigProblem[]) {
    super(
      problems
        .map((p) => `In '${file}'${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}${p.key ? ` at '${p.key}'` : ''}: ${p.message}`)
        .join('\n'),
    );
    this.name = 'GraphConfigError';
  }
}

/** The graph file itself is missing or unreadable: a usage error (exit 2) in every command. */
export class GraphFileError extends GraphConfigError {
  constructor(file: string, message: string) {
    super(file, [{ key: '', message }]);
    this.name = 'GraphFileError';
  }
}

/** Where per-item errors go when an operator is used without a graph (plain RxJS). */
export const STDERR_ERRORS: Pick<Observer<StageError>, 'next'> = {
  next: (e) => process.stderr.write(`[${e.stage}] ${e.path}: ${e.message}\n`),
};

export function messageOf(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) return String((error as Error).message);
  return String(error);
}
