/**
 * What flows through a graph, as far as the engine is concerned: items tagged with a `kind`.
 * The engine never switches on a domain's kinds. An item that owns resources (tensors, a turn on
 * a shared service) says so with `dispose()`, and one that cannot be copied by `structuredClone`
 * (tensors, closures) brings its own `clone()`; the engine calls them when it drops an item
 * (a fatal error, a sink) or fans it out to a second branch.
 *
 * Two outcome kinds are part of the engine's contract because the runner reports them and derives
 * the resume position from them: `step` (one optimisation step) and `eval` (an evaluation). Every
 * other kind belongs to whoever registers the stages (STELLA's are in src/method/items.ts).
 *
 * Per-item failures never travel in the stream: they become a `StageError` on the graph's
 * error channel (a Subject) and the stream goes on.
 *
 * Ref: DESIGN.md "What flows through the graph", "Two rooms".
 */

/** Anything a stage emits. */
export interface GraphItem {
  readonly kind: string;
  /** Frees what the item owns; idempotent. Called by the engine when it drops the item. */
  dispose?(): void;
  /** An independent copy for a second fan-out branch (the default is `structuredClone`). */
  clone?(): GraphItem;
}

/** An item kind, as stages declare them in `inputs` / `outputs`. */
export type ItemKind = string;

/** In `inputs` or `outputs`: any kind (generic stages such as tap-metrics and write-results). */
export const ANY_KIND = '*';

/** One optimisation step's outcome. */
export interface StepResult {
  kind: 'step';
  step: number;
  /** The train node that took the step (several train nodes share one run, e.g. A/B graphs). */
  node?: string;
  task: number;
  taskName: string;
  /** Rows in the batch that produced this step. */
  batchSize: number;
  losses: Record<string, number>;
  /** Milliseconds per phase, as reported by the trainer. */
  timings?: Record<string, number>;
  /** Bytes held by a replay buffer or tensors, as reported by the trainer. */
  memory?: Record<string, number>;
}

/** Evaluation after a task: whatever the evaluator reports. */
export interface EvalResult {
  kind: 'eval';
  task: number;
  taskName: string;
  metrics: Record<string, unknown>;
}

export const isStepResult = (item: GraphItem): item is StepResult => item.kind === 'step';
export const isEvalResult = (item: GraphItem): item is EvalResult => item.kind === 'eval';

/** A per-item failure, sent to the error channel; never thrown through the stream. */
export interface StageError {
  path: string;
  stage: string;
  message: string;
}

/** Frees what an item owns (its `dispose()`); items without one are plain data. */
export function disposeItem(item: unknown): void {
  const dispose = (item as GraphItem | undefined)?.dispose;
  if (typeof dispose === 'function') dispose.call(item);
}

/** An independent copy for a second fan-out branch: the item's own `clone()`, else a structured clone. */
export function cloneItem<T extends GraphItem>(item: T): T {
  return (typeof item.clone === 'function' ? item.clone() : structuredClone(item)) as T;
}

/** Typed arrays an item carries, for transfer to a worker without copying. */
export function transferablesOf(item: unknown): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  if (item && typeof item === 'object') {
    for (const value of Object.values(item)) {
      // Only a view that owns its whole buffer moves; a slice of a shared buffer is copied instead.
      if (
        ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer &&
        value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && !out.includes(value.buffer)
      ) {
        out.push(value.buffer);
      }
    }
  }
  return out;
}
