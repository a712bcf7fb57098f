/**
 * Emscripten's pthread worker for tfjs' threaded wasm build, as a file Node can start.
 *
 * Why: @tensorflow/tfjs-backend-wasm ships the worker only as a string (`wasmWorkerContents`) and
 * hands it to workers as a Blob URL, which Node's `Worker` cannot load (ERR_WORKER_PATH). This file
 * runs that same string, with `require` and `__filename` of a CommonJS module as it expects. The
 * string's "\n" escapes are restored first, as tfjs does before it makes the Blob.
 * Started by src/core/wasm-threads.ts (its `locateFile`); never imported.
 */
'use strict';
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');

new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename);
