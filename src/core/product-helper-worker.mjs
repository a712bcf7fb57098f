/**
 * The product helper's thread: a tfjs-wasm instance of its own that runs its share of a split
 * product (src/core/product-helper.ts) on XNNPACK, the same binary and kernel the main thread runs.
 *
 * Protocol (Int32 slots of the shared control block, named in product-helper.ts): the main thread
 * copies the share's operands into the shared data block, writes the job's sizes and bumps SEQ; this
 * thread copies them into its heap, runs `groups` products [rows, inner]·[inner, cols] (+ bias) on
 * XNNPACK, or on our SIMD loop for small groups (SMALL), copies
 * the outputs back, and sets DONE to that SEQ. A SEQ of -1 ends the loop. It blocks in Atomics.wait
 * between jobs, so the main thread hands it a new data block by message, read synchronously.
 * Started by product-helper.ts; never imported. Plain JS so that it starts without a TypeScript loader.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

const { control, data: firstData, port, slots, smallProducts } = workerData;
const ctrl = new Int32Array(control);
const { SEQ, DONE, STATE, GROUPS, ROWS, INNER, COLS, HAS_BIAS, NEW_DATA, FAILED, SMALL } = slots;
const STATE_READY = 1, STATE_BROKEN = 2;
const SPIN_MS = 2;

function fail(error) {
  port.postMessage({ error: String(error?.stack ?? error) });
  Atomics.store(ctrl, STATE, STATE_BROKEN);
  Atomics.notify(ctrl, STATE);
}

/** The data block the main thread posted before this job (posted before SEQ was bumped, so it is queued). */
function nextBlock() {
  for (let tries = 0; tries < 1000; tries++) {
    const received = receiveMessageOnPort(port);
    if (received) return received.message;
  }
  throw new Error('the new data block did not arrive');
}

let backend;
try {
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  backend = tf.backend();
} catch (e) {
  fail(e);
}

if (backend) {
  const wasm = backend.wasm;
  // All-number signatures: Emscripten hands back the raw exports (no per-call marshalling).
  const product = wasm.cwrap('_FusedMatMul', null, Array(13).fill('number'));
  const registerTensor = wasm.cwrap('register_tensor', null, ['number', 'number', 'number']);
  const disposeData = wasm.cwrap('dispose_data', null, ['number']);
  const shapes = wasm._malloc(6 * 4);
  // src/core/wasm/small-products.wat on this heap, for the small groups heap-products keeps off XNNPACK.
  const batchedProduct = new WebAssembly.Instance(new WebAssembly.Module(smallProducts), { env: { memory: wasm.asm.memory } }).exports.batched_product;
  let data = new Float32Array(firstData);
  let block = 0, blockFloats = 0;
  let seen = 0;
  Atomics.store(ctrl, STATE, STATE_READY);
  Atomics.notify(ctrl, STATE);
  for (;;) {
    // Products come in bursts (forward, then backward, a block's linears back to back): spin a while
    // before sleeping, since waking a sleeping thread costs 50–300 µs on a virtual machine.
    const spinUntil = performance.now() + SPIN_MS;
    while (Atomics.load(ctrl, SEQ) === seen && performance.now() < spinUntil);
    Atomics.wait(ctrl, SEQ, seen);
    const seq = Atomics.load(ctrl, SEQ);
    if (seq === -1) break;
    seen = seq;
    try {
      if (ctrl[NEW_DATA]) data = new Float32Array(nextBlock());
      const groups = ctrl[GROUPS], m = ctrl[ROWS], k = ctrl[INNER], n = ctrl[COLS], hasBias = ctrl[HAS_BIAS];
      // Layout, here as in the data block: A [groups, m, k] | B [groups, k, n] | bias [n]? | out [groups, m, n].
      const aSize = groups * m * k, bSize = groups * k * n, biasSize = hasBias ? n : 0, outSize = groups * m * n;
      const inputs = aSize + bSize + biasSize, need = inputs + outSize;
      if (need > blockFloats) {
        if (block) wasm._free(block);
        block = wasm._malloc(need * 4);
        blockFloats = block ? need : 0;
        if (!block) throw new Error(`the helper's wasm heap cannot hold a share of ${(need * 4 / 2 ** 20).toFixed(1)} MiB`);
      }
      wasm.HEAPF32.set(data.subarray(0, inputs), block / 4);
      wasm.HEAP32.set([1, m, k, 1, k, n], shapes / 4);
      const biasId = hasBias ? backend.dataIdNextNumber++ : 0;
      if (hasBias) registerTensor(biasId, n, block + (aSize + bSize) * 4);
      if (ctrl[SMALL]) batchedProduct(block, block + aSize * 4, block + inputs * 4, groups, m, k, n);
      else for (let g = 0; g < groups; g++) {
        const aId = backend.dataIdNextNumber++, bId = backend.dataIdNextNumber++, outId = backend.dataIdNextNumber++;
        registerTensor(aId, m * k, block + g * m * k * 4);
        registerTensor(bId, k * n, block + (aSize + g * k * n) * 4);
        registerTensor(outId, m * n, block + (inputs + g * m * n) * 4);
        product(aId, shapes, 3, bId, shapes + 12, 3, 0, 0, 0, biasId, 0, 0, outId);
        // Views only: disposing them frees nothing, and B's view takes its packed XNNPACK operator along.
        disposeData(aId);
        disposeData(bId);
        disposeData(outId);
      }
      if (hasBias) disposeData(biasId);
      data.set(wasm.HEAPF32.subarray(block / 4 + inputs, block / 4 + need), inputs);
      ctrl[FAILED] = 0;
    } catch (e) {
      ctrl[FAILED] = 1;
      port.postMessage({ error: String(e?.stack ?? e) });
    }
    Atomics.store(ctrl, DONE, seq);
    Atomics.notify(ctrl, DONE);
  }
}
