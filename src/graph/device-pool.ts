/**
 * Devices: where a node runs. `device: cpu` (default) runs the stage's operator in this thread.
 * `device: worker:N` runs its per-item work (the stage's `worker` task, see stage.ts) in worker
 * thread N of the pool, so decode/tokenize overlap training on another core. Nodes naming the
 * same N share the thread. Items cross as structured clones with their typed arrays
 * transferred (moved, not copied); order and the node's concurrency are kept by `mapConcurrent`.
 * Each worker initialises its own tfjs backend (src/core/backend.ts) for the tasks that use
 * tensors (`worker.backend`, default true).
 *
 * `device: gpu:N` runs the task in a child process with CUDA_VISIBLE_DEVICES=N (a worker thread
 * shares the process environment, so CUDA could not be pinned there). It needs
 * @tensorflow/tfjs-node-gpu; without it the run refuses to start. Not exercised by the tests here.
 *
 * Weights for a model-reading node on another device: `WeightSync` exports the ModelService's
 * weights every K train steps (`syncEvery: K` on the node) and posts them to that device.
 * K = 0 (the default) means strictly in step: the node must share the trainer's device and
 * reads the live model, so no sync is needed or done. A stage that `placesItself` (score) gets the
 * pool and runs one worker task with `task(...)`, pushing weights itself (`pushWeights(…, transfer)`);
 * the worker hands the latest weights and their version to the task in its context.
 *
 * ## Example
 * ```ts
 * const pool = new DevicePool({ config, seed: 0 });
 * from(decoded).pipe(pool.operator('tokenize', tokenizeStage, {}, 'worker:0', 2))
 * await pool.close();
 * ```
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { OperatorFunction } from 'rxjs';
import { mapConcurrent } from './concurrent-map.ts';
import { FatalStageError } from './errors.ts';
import { transferablesOf, type GraphItem, type StageError } from './items.ts';
import type { ModelService } from './roles.ts';
import type { StageDefinition } from './stage.ts';

type WorkerSpec = NonNullable<StageDefinition['worker']>;

const HOST = new URL('./worker-host.ts', import.meta.url);
const TSX_API = import.meta.resolve('tsx/esm/api');

/**
 * Node flags for a child process: the parent's, plus the tsx loader if missing, so .ts files load.
 */
function childExecArgv(): string[] {
  const argv = process.execArgv.filter((a) => !a.startsWith('--input-type') && a !== '-e' && a !== '--eval');
  const hasTsx = argv.some((a) => /tsx/.test(a));
  return hasTsx ? argv : [...argv, `--import=${import.meta.resolve('tsx')}`];
}

interface Pending { resolve(item: GraphItem): void; reject(error: Error): void }

/** What the pool needs of a device: a worker thread or child process here, or Redis (remote-device.ts). */
interface PoolDevice {
  load(key: string, worker: WorkerSpec, options: Record<string, unknown>, context: Record<string, unknown>): void;
  run(key: string, item: GraphItem): Promise<GraphItem>;
  pushWeights(weights: Map<string, Float32Array>, transfer?: boolean): void;
  close(): Promise<void>;
}

class DeviceHandle implements PoolDevice {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly loaded = new Set<string>();

  constructor(readonly device: string, private readonly endpoint: Worker | ChildProcess) {
    const onMessage = (m: { id: number; ok: boolean; item?: GraphItem; message?: string; fatal?: boolean }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.item!);
      else p.reject(m.fatal ? new FatalStageError(device, m.message ?? '') : new Error(m.message));
    };
    endpoint.on('message', onMessage);
    endpoint.on('error', (e: Error) => this.failAll(e));
    endpoint.on('exit', (code: number) => this.failAll(new Error(`${device} exited with code ${code}`)));
  }

  private failAll(error: Error) {
    for (const p of this.pending.values()) p.reject(new FatalStageError(this.device, error.message));
    this.pending.clear();
  }

  private post(message: unknown, transfer: ArrayBuffer[] = []) {
    if (this.endpoint instanceof Worker) this.endpoint.postMessage(message, transfer);
    else this.endpoint.send(message as never);
  }

  load(key: string, worker: WorkerSpec, options: Record<string, unknown>, context: Record<string, unknown>) {
    if (this.loaded.has(key)) return;
    this.loaded.add(key);
    this.post({ type: 'load', key, module: worker.module, export: worker.export, backend: worker.backend ?? true, options, context });
  }

  run(key: string, item: GraphItem): Promise<GraphItem> {
    const id = this.nextId++;
    return new Promise<GraphItem>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'run', id, key, item }, transferablesOf(item));
    });
  }

  /** Posts weights to the device; with `transfer` their buffers move (the caller must not use them after). */
  pushWeights(weights: Map<string, Float32Array>, transfer = false) {
    const buffers = transfer ? [...weights.values()].map((a) => a.buffer).filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) : [];
    this.post({ type: 'weights', weights }, [...new Set(buffers)]);
  }

  async close() {
    if (this.endpoint instanceof Worker) await this.endpoint.terminate();
    else this.endpoint.kill();
  }
}

/** A device whose module loads asynchronously; calls wait for it, in order. */
class LazyDevice implements PoolDevice {
  constructor(private readonly device: Promise<PoolDevice>) { device.catch(() => {}); }
  // A device that failed to start reports it through run(), once per graph (FatalStageError).
  load(...args: Parameters<PoolDevice['load']>) { this.device.then((d) => d.load(...args), () => {}); }
  async run(key: string, item: GraphItem) { return (await this.device).run(key, item); }
  pushWeights(weights: Map<string, Float32Array>, transfer?: boolean) { this.device.then((d) => d.pushWeights(weights, transfer), () => {}); }
  async close() { await (await this.device.catch(() => undefined))?.close(); }
}

export class DevicePool {
  private readonly devices = new Map<string, PoolDevice>();

  constructor(private readonly settings: {
    /** The graph's resolved `config:`, passed to worker tasks as is. */
    config: unknown;
    seed: number | string;
    /** Finds an installed package (default: Node's resolution); tests stand in for what is installed. */
    resolvePackage?: (id: string) => string;
    /** Redis for `device: redis` (redis://host:port); default $STELLA_REDIS. */
    redis?: string;
  }) {}

  /** The worker or child process for a device string, started on first use. */
  handle(device: string): PoolDevice {
    let handle = this.devices.get(device);
    if (handle) return handle;
    const [kind, index] = device.split(':');
    if (kind === 'redis') {
      const url = this.settings.redis ?? process.env.STELLA_REDIS;
      if (!url) throw new FatalStageError(device, `device 'redis' needs a Redis server: pass --redis redis://host:port or set STELLA_REDIS (docs/scale-out.md)`);
      // Loaded on first use, so graphs without a remote node never load the Redis client.
      // A bad URL fails the graph once, not every item.
      handle = new LazyDevice(import('./remote-device.ts').then((m) => new m.RedisStageDevice(device, url)).catch((e: Error) => {
        throw new FatalStageError(device, e.message);
      }));
    } else if (kind === 'worker') {
      // The entry is a short script that registers tsx's loader in the worker, then imports the
      // host: loader hooks of the main thread do not reach worker threads on Node 20.
      const boot = `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(HOST.href)}); });`;
      handle = new DeviceHandle(device, new Worker(boot, { eval: true, execArgv: childExecArgv() }));
    } else if (kind === 'gpu') {
      try {
        (this.settings.resolvePackage ?? createRequire(import.meta.url).resolve)('@tensorflow/tfjs-node-gpu');
      } catch {
        throw new FatalStageError(device, `device '${device}' needs @tensorflow/tfjs-node-gpu, which is not installed; use cpu or worker:N`);
      }
      const child = fork(HOST, [], {
        env: { ...process.env, CUDA_VISIBLE_DEVICES: index, STELLA_BACKEND: 'tensorflow-gpu' },
        serialization: 'advanced',
        execArgv: childExecArgv(),
      });
      handle = new DeviceHandle(device, child);
    } else {
      throw new Error(`device '${device}' is not a pool device (worker:N, gpu:N or redis)`);
    }
    this.devices.set(device, handle);
    return handle;
  }

  /** The node's operator, running `stage.worker` on `device` with `concurrency` items in flight. */
  operator(
    node: string,
    stage: StageDefinition,
    options: Record<string, unknown>,
    device: string,
    concurrency = 2,
    errors?: { next(e: StageError): void },
  ): OperatorFunction<GraphItem, GraphItem> {
    if (!stage.worker) {
      throw new Error(`node '${node}': stage '${stage.type}' offers no worker task, so it cannot run on '${device}' (use device: cpu)`);
    }
    const handle = this.handle(device);
    handle.load(node, stage.worker, options, { config: this.settings.config, seed: this.settings.seed, node });
    return mapConcurrent<GraphItem, GraphItem>((item) => handle.run(node, item), {
      stage: node,
      concurrency,
      errors,
      passThrough: (item) => !stage.inputs.includes(item.kind),
    });
  }

  pushWeights(device: string, weights: Map<string, Float32Array>, transfer = false) { this.handle(device).pushWeights(weights, transfer); }

  /**
   * One worker task on `device` for a stage that places its own work (`placesItself`, e.g. `score`):
   * `run(item)` posts an item (typed arrays transferred) and resolves with the task's output.
   */
  task(node: string, device: string, worker: WorkerSpec, options: Record<string, unknown> = {}): { run(item: GraphItem): Promise<GraphItem> } {
    const handle = this.handle(device);
    handle.load(node, worker, options, { config: this.settings.config, seed: this.settings.seed, node });
    return { run: (item) => handle.run(node, item) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.devices.values()].map((d) => d.close()));
    this.devices.clear();
  }
}

/**
 * Copies the model's weights to a remote scorer every `everySteps` train steps.
 * `everySteps = 0` never copies (strictly in step: same device, live model).
 */
export class WeightSync {
  lastSyncedStep = 0;
  syncs = 0;
  constructor(
    private readonly model: ModelService,
    readonly everySteps: number,
    private readonly push: (weights: Map<string, Float32Array>) => Promise<void> | void,
  ) {
    if (!Number.isInteger(everySteps) || everySteps < 0) throw new Error(`syncEvery must be an integer ≥ 0, got ${everySteps}`);
  }
  async afterStep(step: number): Promise<void> {
    if (this.everySteps === 0 || step % this.everySteps !== 0) return;
    if (!this.model.exportWeights) throw new Error('ModelService has no exportWeights(); a remote scorer cannot be synced');
    await this.push(await this.model.exportWeights());
    this.lastSyncedStep = step;
    this.syncs++;
  }
}
