/**
 * Tensor backend resolution.
 *
 * Order: `STELLA_BACKEND` (or the `requested` argument) if given, else
 * tensorflow (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`) where the
 * native binding loads, else `wasm`, else the pure-JS `cpu` backend.
 * `@tensorflow/tfjs` is imported for its side effect of registering every gradient.
 * wasm runs tfjs' single-threaded SIMD build unless threads are asked for (src/core/wasm-threads.ts; `STELLA_WASM_THREADS` = N or all).
 */
import * as tf from '@tensorflow/tfjs';
import { installThreadedWasm, wasmThreadsInUse, wasmThreadsSetting } from './wasm-threads.ts';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** Resolved backend name, as reported in every run's output. */
  name: BackendName;
  /** tfjs' own backend id (`tensorflow`, `wasm`, `cpu`). */
  tfjsBackend: string;
  /** Why this one was chosen, and what was skipped. */
  detail: string;
  /** wasm only: threads its kernels compute with, and where that number came from. */
  threads?: { count: number; source: string };
}

const NATIVE_PACKAGES: Record<'tensorflow-gpu' | 'tensorflow', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

export class BackendUnavailableError extends Error {
  constructor(readonly requested: string, readonly cause_: string) {
    super(
      `tensor backend '${requested}' was requested (STELLA_BACKEND or --backend) but cannot be loaded: ${cause_}. ` +
        `Available choices: ${BACKEND_NAMES.join(', ')}; unset STELLA_BACKEND to pick automatically.`,
    );
  }
}

let resolved: BackendInfo | undefined;

async function tryNative(name: 'tensorflow-gpu' | 'tensorflow'): Promise<string | undefined> {
  try {
    await import(NATIVE_PACKAGES[name]);
    if (!(await tf.setBackend('tensorflow'))) return 'the tensorflow backend did not initialise';
    return undefined;
  } catch (e) {
    const missing = /Cannot find (package|module)/.test(String((e as Error)?.message));
    return missing ? `${NATIVE_PACKAGES[name]} is not installed` : `${NATIVE_PACKAGES[name]} failed to load its native binding (${firstLine(e)})`;
  }
}

async function tryWasm(): Promise<string | undefined> {
  // A bad STELLA_WASM_THREADS is a usage error, not a reason to fall back to another backend.
  const { threads } = wasmThreadsSetting();
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    await installThreadedWasm(threads);
    if (!(await tf.setBackend('wasm'))) return 'the wasm backend did not initialise';
    return undefined;
  } catch (e) {
    return `@tensorflow/tfjs-backend-wasm failed to load (${firstLine(e)})`;
  }
}

async function tryCpu(): Promise<string | undefined> {
  return (await tf.setBackend('cpu')) ? undefined : 'the cpu backend did not initialise';
}

/** Per backend: initialise it and return undefined, or say why it cannot be used. */
export type BackendLoaders = Record<BackendName, () => Promise<string | undefined>>;

const LOADERS: BackendLoaders = {
  'tensorflow-gpu': () => tryNative('tensorflow-gpu'),
  tensorflow: () => tryNative('tensorflow'),
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Picks and initialises the tensor backend once per process; later calls return the same answer
 * unless a different backend is explicitly requested.
 */
export function initBackend(requested: string | undefined = process.env.STELLA_BACKEND): Promise<BackendInfo> {
  // Concurrent callers share one resolution, so two runs in one process never race on setBackend.
  const run = pending.then(() => resolveBackend(requested));
  pending = run.catch(() => undefined);
  return run;
}
let pending: Promise<unknown> = Promise.resolve();

async function resolveBackend(requested: string | undefined): Promise<BackendInfo> {
  const want = requested?.trim() || undefined;
  if (resolved && (!want || want === resolved.name)) return resolved;
  resolved = await pickBackend(want, LOADERS);
  return resolved;
}

/**
 * The resolution itself, over the given loaders (tests pass fakes, so the fallback order is checked
 * whatever is installed): the requested backend or an error naming why it failed; else the first
 * of BACKEND_NAMES that loads, with what was skipped and why.
 */
export async function pickBackend(want: string | undefined, loaders: BackendLoaders): Promise<BackendInfo> {
  if (want) {
    if (!BACKEND_NAMES.includes(want as BackendName)) {
      throw new BackendUnavailableError(want, `unknown backend name`);
    }
    const failure = await loaders[want as BackendName]();
    if (failure) throw new BackendUnavailableError(want, failure);
    await tf.ready();
    return withThreads({ name: want as BackendName, tfjsBackend: tf.getBackend(), detail: 'requested explicitly' });
  }
  const skipped: string[] = [];
  for (const name of BACKEND_NAMES) {
    const failure = await loaders[name]();
    if (!failure) {
      await tf.ready();
      return withThreads({ name, tfjsBackend: tf.getBackend(), detail: skipped.length ? `skipped: ${skipped.join('; ')}` : 'first choice' });
    }
    skipped.push(`${name}: ${failure}`);
  }
  throw new Error(`no tensor backend could be initialised: ${skipped.join('; ')}`);
}

async function withThreads(info: BackendInfo): Promise<BackendInfo> {
  const count = info.name === 'wasm' ? await wasmThreadsInUse() : undefined;
  return count === undefined ? info : { ...info, threads: { count, source: wasmThreadsSetting().source } };
}

/** One line for logs and reports, e.g. `backend: wasm, 2 threads (skipped: tensorflow-gpu: ...)`. */
export function describeBackend(info: BackendInfo): string {
  const threads = info.threads ? `, ${info.threads.count} thread${info.threads.count === 1 ? '' : 's'}` : '';
  return `backend: ${info.name}${threads}${info.detail === 'first choice' || info.detail === 'requested explicitly' ? '' : ` (${info.detail})`}`;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}
