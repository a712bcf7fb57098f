/**
 * tfjs' multi-threaded wasm build (XNNPACK on a pthread pool) under Node.
 *
 * Why: @tensorflow/tfjs-backend-wasm ships `tfjs-backend-wasm-threaded-simd.wasm` and its Emscripten
 * factory, but turns threads off under Node (tensorflow/tfjs #3830): its loader hands the pthread
 * worker and the main script to workers as Blob URLs, which Node's `Worker` cannot load, and the
 * bundled factory refers to names (`require$$0`, `commonjsGlobal`) that exist only inside its bundle.
 * Here the package's unbundled factory (`wasm-out/…threaded-simd.js`, plain `require`) is loaded on
 * the main thread and named to the workers by file path, with src/core/wasm-pthread-worker.cjs as the
 * worker script. The result is the package's own `BackendWasm`, registered under the name `wasm`, so
 * every wasm kernel (tfjs' and ours in src/core/fast-matmul.ts) runs on it unchanged.
 *
 * Thread count: `STELLA_WASM_THREADS` (`stella --wasm-threads N` sets it), else 1: tfjs' stock
 * single-threaded SIMD build. Threads are opt-in because every XNNPACK kernel of the threaded build,
 * elementwise ones included, is dispatched to the pool, and the models wasm can train (tiny; `base`
 * does not fit its 4 GiB heap) run ~3,300 small kernels per step: measured, the whole STELLA step is
 * slower on 2 threads than on 1 (docs/benchmarks.md "wasm threads"), while large products gain.
 * The build pre-creates 8 pthread workers and never uses more, so larger counts are capped at 8. Outputs are bit-identical to the single-threaded build (XNNPACK
 * splits work by output tiles; test/core/wasm-threads.test.ts checks a training step and the golden
 * cases).
 */
import * as tf from '@tensorflow/tfjs';
import type * as WasmBackendPackage from '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';

export const WASM_THREADS_ENV = 'STELLA_WASM_THREADS';
/** The threaded build pre-creates 8 pthread workers and caps its threadpool there (tfjs backend.cc). */
export const MAX_WASM_THREADS = 8;
/** tfjs-backend-wasm's own registration priority for `wasm`. */
const WASM_PRIORITY = 2;

const require = createRequire(import.meta.url);
const MAIN_SCRIPT = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
const WORKER_SCRIPT = fileURLToPath(new URL('./wasm-pthread-worker.cjs', import.meta.url));

export interface WasmThreadsSetting {
  /** Threads the backend is asked for (1 = the stock single-threaded build). */
  threads: number;
  /** Where the number came from, for `stella doctor` and logs. */
  source: string;
}

/**
 * The thread count this process asks for: `STELLA_WASM_THREADS` if set (a whole number ≥ 1, or `all`
 * for every core), else 1; capped at MAX_WASM_THREADS.
 */
export function wasmThreadsSetting(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): WasmThreadsSetting {
  const raw = env[WASM_THREADS_ENV]?.trim();
  let wanted: number;
  let source: string;
  if (raw === 'all') {
    wanted = cores;
    source = `${WASM_THREADS_ENV}=all: ${cores} cores`;
  } else if (raw) {
    if (!/^\d+$/.test(raw) || Number(raw) < 1) {
      throw new Error(`${WASM_THREADS_ENV} must be a whole number of threads, at least 1, or 'all' (got '${raw}')`);
    }
    wanted = Number(raw);
    source = `${WASM_THREADS_ENV}=${raw}`;
  } else {
    wanted = 1;
    source = 'default: faster than threads for the model sizes wasm trains';
  }
  if (wanted > MAX_WASM_THREADS) return { threads: MAX_WASM_THREADS, source: `${source}, capped at ${MAX_WASM_THREADS} by the threaded build` };
  return { threads: wanted, source };
}

let installedThreads: number | undefined;

/**
 * Makes `tf.setBackend('wasm')` start the threaded build with `threads` threads. Call before the wasm
 * backend is first initialised; only the backend's factory is replaced (kernels are registered by backend name and stay). A no-op for 1 thread, when
 * already installed with the same count, or when the stock backend is already running.
 */
export async function installThreadedWasm(threads: number): Promise<void> {
  if (threads <= 1 || installedThreads === threads || tf.findBackend('wasm')) return;
  const wasmBackend = await loadWasmPackage(); // registers tfjs' kernels and its `wasm` factory
  if (installedThreads !== undefined) {
    throw new Error(`the threaded wasm backend is already set up for ${installedThreads} threads in this process; ${WASM_THREADS_ENV} cannot change after the backend starts`);
  }
  installedThreads = threads;
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => createThreadedBackend(wasmBackend, threads), WASM_PRIORITY);
}

/** Loaded on first use: importing the package registers the wasm backend, which only wasm runs want. */
const loadWasmPackage = (): Promise<typeof WasmBackendPackage> => import('@tensorflow/tfjs-backend-wasm');

/** Threads the running wasm backend computes with (1 for the stock build), or undefined before it starts. */
export async function wasmThreadsInUse(): Promise<number | undefined> {
  try {
    return (await loadWasmPackage()).getThreadsCount();
  } catch {
    return undefined; // not initialised yet
  }
}

async function createThreadedBackend(wasmBackend: typeof WasmBackendPackage, threads: number): Promise<WasmBackendPackage.BackendWasm> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the Emscripten module is untyped beyond tfjs' partial .d.ts
  const module: any = await loadFactory(threads)({
    // Workers get file paths: our worker script, and the factory they evaluate (importScripts).
    locateFile: (file: string, prefix: string) => (file.endsWith('.worker.js') ? WORKER_SCRIPT : prefix + file),
    mainScriptUrlOrBlob: MAIN_SCRIPT,
  });
  // The same bridge tfjs' own loader builds (backend_wasm.ts, init()).
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmBackend.setThreadsCount(threads);
  const backend = new wasmBackend.BackendWasm(module); // creates the threadpool: threads − 1 running pthreads
  // Emscripten keeps a running pthread's worker referenced, which would keep a finished process
  // alive; the pool idles between kernels, so it must not.
  for (const worker of module.PThread.runningWorkers as { unref(): void }[]) worker.unref();
  return backend;
}

/**
 * The package's unbundled threaded factory, evaluated as a CommonJS module with three names of its
 * scope supplied here rather than taken from the process:
 * - `require('os')` reports 2 × `threads` CPUs: the build caps its threadpool at half the logical
 *   CPUs it sees (it assumes two hyperthreads per core), which would leave 1 thread on 2 cores;
 * - `Worker` starts pthread workers without the parent's `execArgv` (a tsx loader there costs
 *   ~0.5 s and ~15 MB per worker, and the worker script is plain CommonJS);
 * - `global` is a private object, so the factory's `global.Worker = …` leaves the real global alone.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Emscripten factory
function loadFactory(threads: number): (config: Record<string, unknown>) => Promise<any> {
  const cpus = () => Array.from({ length: 2 * threads }, () => ({}));
  const scopedRequire = (id: string) => (id === 'os' ? { cpus } : require(id));
  class PthreadWorker extends Worker {
    constructor(file: string) {
      super(file, { execArgv: [] });
    }
  }
  const names = ['require', 'module', 'exports', '__filename', '__dirname', 'Worker', 'global'];
  const evaluate = vm.compileFunction(readFileSync(MAIN_SCRIPT, 'utf8'), names, { filename: MAIN_SCRIPT });
  const cjs = { exports: {} as unknown };
  evaluate(scopedRequire, cjs, cjs.exports, MAIN_SCRIPT, dirname(MAIN_SCRIPT), PthreadWorker, {});
  return cjs.exports as never;
}
