/**
 * What a backend cannot hold, checked before a run allocates it.
 *
 * tfjs-wasm runs in 32-bit WebAssembly: its heap stops at 4 GiB (Emscripten's getHeapMax,
 * 4 GiB − 64 KiB), whatever the machine has. A ViT-B (`base`) training step does not fit there even
 * at batch 1: the weights alone take 0.8 GiB of heap, and measured here a STELLA step at batch 1
 * filled the heap and aborted inside XNNPACK (`xnn_create_fully_connected_nc_f32 … status 6`,
 * `Aborted()`), which kills the process without a usable message. So training such a config on wasm
 * is refused up front, naming the limit and what to use instead. Ref: docs/benchmarks.md "Memory at base".
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
      `tfjs-wasm's heap is limited to ${gib} GiB (32-bit WebAssembly), and a '${config.name}' training step needs more even at batch 1 ` +
      `(measured: the heap fills and XNNPACK aborts). Use the tensorflow backend instead (npm install @tensorflow/tfjs-node, then STELLA_BACKEND=tensorflow; ` +
      `with a GPU, @tensorflow/tfjs-node-gpu and STELLA_BACKEND=tensorflow-gpu), or STELLA_BACKEND=cpu (no heap limit, but slow), or config=tiny.`,
  );
}
