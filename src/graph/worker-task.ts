/**
 * The worker side of the stage contract: a stage's per-item task, its context, and how a worker
 * loads it. Kept apart from stage.ts so that a worker thread or process imports only this (and
 * the task's own module): no inversify, RxJS or graph loader, which are most of a worker's start-up.
 *
 * Ref: stage.ts (`StageDefinition.worker`), worker-host.ts.
 */
import type { GraphItem } from './items.ts';

/**
 * A stage's per-item work as run inside a worker: gets the item (typed arrays transferred, not
 * copied), the node's parsed options and a context (the graph's config, opaque to the engine, the
 * seed and the node id); returns the output item. There is no container in the worker: the task
 * uses its own module's defaults (STELLA's decode task: media's decoder).
 */
export type WorkerTask = (item: GraphItem, options: Record<string, unknown>, context: WorkerTaskContext) => Promise<GraphItem> | GraphItem;
export interface WorkerTaskContext {
  /** The graph's resolved `config:` (opaque to the engine; the task knows its type). */
  config: unknown;
  seed: number | string;
  /** Node id, for rng forks that match the in-thread run. */
  node: string;
  /** The latest weights pushed to this worker (WeightSync) and their sequence number, as of the item's arrival. */
  weights?: Map<string, Float32Array>;
  weightsVersion?: number;
  /** Where to open a file the item names (see `worker.files`): a local copy on a remote device, else the path itself. */
  localPath?: (path: string) => string;
}

let workerBackend: Promise<unknown> | undefined;

/**
 * Imports a stage's worker task (a module URL and an exported function's name), after initialising
 * this process's tfjs backend once if the task uses tensors; a host that only decodes never pays for tfjs.
 */
export async function loadWorkerTask(module: string, exportName: string, backend = false): Promise<WorkerTask> {
  if (backend) await (workerBackend ??= import('../core/backend.ts').then((b) => b.initBackend()));
  const loaded = (await import(module)) as Record<string, unknown>;
  const run = loaded[exportName];
  if (typeof run !== 'function') throw new Error(`${module} has no exported function '${exportName}'`);
  return run as WorkerTask;
}
