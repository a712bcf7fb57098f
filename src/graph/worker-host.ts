/**
 * Entry point of a device-pool worker (a worker thread for `worker:N`, a child process for
 * `gpu:N`). Loads stage worker tasks on demand and runs items through them; outputs go back with
 * their typed arrays transferred. The worker initialises its own tfjs backend
 * (src/core/backend.ts) before the first task that declares `backend: true` (the default);
 * decode and tokenize are pure JS and skip it, which saves ~1.5 s of start-up on this machine.
 *
 * Messages in:  { type: 'load', key, module, export, options, context }
 *               { type: 'run', id, key, item }
 *               { type: 'weights', weights }        (kept for tasks that read synced weights: the task's
 *                                                    context gets `weights` and `weightsVersion` as of the item's arrival)
 * Messages out: { type: 'ready' } | { id, ok: true, item } | { id, ok: false, message, fatal }
 */
import { parentPort } from 'node:worker_threads';
import { transferablesOf, type GraphItem } from './items.ts';
import { loadWorkerTask, type WorkerTask, type WorkerTaskContext } from './worker-task.ts';

type Incoming =
  | { type: 'load'; key: string; module: string; export: string; backend: boolean; options: Record<string, unknown>; context: WorkerTaskContext }
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
let weightsVersion = 0;

async function handle(message: Incoming) {
  if (message.type === 'weights') { syncedWeights = message.weights; weightsVersion++; return; }
  if (message.type === 'load') {
    tasks.set(message.key, (async () => ({
      run: await loadWorkerTask(message.module, message.export, message.backend), options: message.options, context: message.context,
    }))());
    return;
  }
  const { id, key, item } = message;
  // The weights as of this item's arrival: a later push must not change what it is scored with.
  const weights = { weights: syncedWeights, weightsVersion };
  try {
    const task = await tasks.get(key);
    if (!task) throw new Error(`no task '${key}' loaded in this worker`);
    const out = await task.run(item, task.options, { ...task.context, ...weights });
    send({ id, ok: true, item: out }, transferablesOf(out));
  } catch (error) {
    const fatal = (error as Error)?.name === 'FatalStageError';
    send({ id, ok: false, message: String((error as Error)?.message ?? error), fatal });
  }
}

if (port) port.on('message', (m: Incoming) => void handle(m));
else process.on('message', (m: Incoming) => void handle(m));
