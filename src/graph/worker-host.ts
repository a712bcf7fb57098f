/**
 * Entry point of a device-pool worker (a worker thread for `worker:N`, a child process for
 * `gpu:N`). Initialises its own tfjs backend (src/core/backend.ts), loads stage worker tasks on
 * demand and runs items through them. Outputs go back with their typed arrays transferred.
 *
 * Messages in:  { type: 'load', key, module, export, options, context }
 *               { type: 'run', id, key, item }
 *               { type: 'weights', weights }        (kept for tasks that read synced weights)
 * Messages out: { type: 'ready' } | { id, ok: true, item } | { id, ok: false, message, fatal }
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../core/backend.ts';
import { transferablesOf, type GraphItem } from './items.ts';
import type { WorkerTask, WorkerTaskContext } from './stage.ts';

type Incoming =
  | { type: 'load'; key: string; module: string; export: string; options: Record<string, unknown>; context: WorkerTaskContext }
  | { type: 'run'; id: number; key: string; item: GraphItem }
  | { type: 'weights'; weights: Map<string, Float32Array> };

const port = parentPort;
const send = (message: unknown, transfer: ArrayBuffer[] = []) => {
  if (port) port.postMessage(message, transfer);
  else process.send?.(message);
};

const tasks = new Map<string, Promise<{ run: WorkerTask; options: Record<string, unknown>; context: WorkerTaskContext }>>();
/** Latest weights pushed by a WeightSync, for tasks that read the model. */
export let syncedWeights: Map<string, Float32Array> | undefined;
const backend = initBackend();

async function handle(message: Incoming) {
  if (message.type === 'weights') { syncedWeights = message.weights; return; }
  if (message.type === 'load') {
    tasks.set(message.key, (async () => {
      await backend;
      const module = (await import(message.module)) as Record<string, unknown>;
      const run = module[message.export];
      if (typeof run !== 'function') throw new Error(`${message.module} has no exported function '${message.export}'`);
      return { run: run as WorkerTask, options: message.options, context: message.context };
    })());
    return;
  }
  const { id, key, item } = message;
  try {
    const task = await tasks.get(key);
    if (!task) throw new Error(`no task '${key}' loaded in this worker`);
    const out = await task.run(item, task.options, task.context);
    send({ id, ok: true, item: out }, transferablesOf(out));
  } catch (error) {
    const fatal = (error as Error)?.name === 'FatalStageError';
    send({ id, ok: false, message: String((error as Error)?.message ?? error), fatal });
  }
}

if (port) port.on('message', (m: Incoming) => void handle(m));
else process.on('message', (m: Incoming) => void handle(m));
