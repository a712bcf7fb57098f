/**
 * What a backend cannot hold, checked before a run allocates it.
 *
 * tfjs-wasm runs in 32-bit WebAssembly: its heap stops at 4 GiB (Emscripten's getHeapMax,
 * 4 GiB − 64 KiB), whatever the machine has. The weights of a ViT-B (`base`) and Adam's two moments
 * take 2.1 GiB of it before any activation. Measured here (1 thread): a DER++ step at batch 1 and a
 * STELLA step at batch 2 fill the heap and abort inside the wasm module (`Aborted()`, or `memory access
 * out of bounds`), which kills the process without a usable message; only STELLA at batch 1 fits
 * (about 39 s a step). So training such a config on wasm is refused up front, naming the limit and what
 * to use instead. Ref: docs/benchmarks.md "Memory at base".
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.ts';

/** tfjs-wasm's heap ceiling in bytes (wasm32 address space; Emscripten getHeapMax()). */
export const WASM_HEAP_LIMIT_BYTES = 4294901760;

/** Model configs whose training step was measured not to fit the wasm heap at batch 1. */
const TOO_LARGE_FOR_WASM_TRAINING: ReadonlySet<string> = new Set(['base']);

export class BackendLimitError extends Error {
  override readonly name = 'BackendLimitError';
}

/**
 * Throws BackendLimitError when a training step of `config` cannot fit the current backend
 * (`backend` defaults to tfjs' active one); returns quietly otherwise.
 */
export function assertTrainingFitsBackend(config: ModelConfig, backend: string = tf.getBackend()): void {
  if (backend !== 'wasm' || !TOO_LARGE_FOR_WASM_TRAINING.has(config.name)) return;
  const gib = (WASM_HEAP_LIMIT_BYTES / 2 ** 30).toFixed(0);
  throw new BackendLimitError(
    `config '${config.name}' (${config.embedDim} wide, ${config.depth} blocks, decoder ${config.decoderDim} × ${config.decoderDepth}) cannot train on the wasm backend: ` +
      `tfjs-wasm's heap is limited to ${gib} GiB (32-bit WebAssembly), and a '${config.name}' training step needs more ` +
      `(measured: the weights and Adam's moments take 2.1 GiB; DER++ at batch 1 and STELLA at batch 2 fill the heap and abort). Use the tensorflow backend instead (npm install @tensorflow/tfjs-node, then STELLA_BACKEND=tensorflow; ` +
      `with a GPU, @tensorflow/tfjs-node-gpu and STELLA_BACKEND=tensorflow-gpu), or STELLA_BACKEND=cpu (no heap limit, but slow), or config=tiny.`,
  );
}
