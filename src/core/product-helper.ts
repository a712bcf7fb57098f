/**
 * The product helper: a worker thread with a tfjs-wasm instance of its own that computes a share of
 * the large matrix products (rows of a 2-D product, or whole groups of a batched one) while the main
 * thread computes the rest (src/core/heap-products.ts decides the split).
 *
 * Why: tfjs-wasm's single-threaded build runs every kernel on one core, and its threaded build loses
 * on our models because its pool takes every small kernel too (docs/benchmarks.md "wasm threads").
 * The products are about half of a step's kernel time, and each output row (or group) of a product is
 * independent, so the second core can take half of them. The helper runs the same XNNPACK binary and
 * the same 2-D product; each output element is summed in the same order on either side, so the values
 * are bit for bit those of one thread (test/core/heap-products.test.ts).
 *
 * Cost: the share's operands are copied into a shared block and from there into the helper's heap,
 * and its output back; the helper packs its own copy of B; the threads meet with Atomics (Node allows
 * Atomics.wait on the main thread; kernels are synchronous, so the main thread blocks until the share
 * is in). A split product of ~1 ms runs ~1.4× faster; the whole step gains only where such products
 * dominate (measured: docs/benchmarks.md "Product helper").
 *
 * Setting: `STELLA_PRODUCT_HELPER` = on | off, off by default (`productHelperSetting` says why); only
 * beside the single-threaded wasm build, and only with two cores or more. `stella doctor` reports it.
 * If the helper fails (its heap cannot grow, the thread died) the main thread computes the share
 * itself, with the same values, and says so once on stderr.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker, isMainThread, receiveMessageOnPort } from 'node:worker_threads';
import { WASM_BASE64 as SMALL_PRODUCTS } from './wasm/small-products.wasm.ts';

export const PRODUCT_HELPER_ENV = 'STELLA_PRODUCT_HELPER';

/** Int32 slots of the shared control block (the worker reads the same table). */
export const SLOTS = { SEQ: 0, DONE: 1, STATE: 2, GROUPS: 3, ROWS: 4, INNER: 5, COLS: 6, HAS_BIAS: 7, NEW_DATA: 8, FAILED: 9, SMALL: 10 } as const;
const STATE_STARTING = 0, STATE_READY = 1, STATE_BROKEN = 2;
const WORKER_SCRIPT = fileURLToPath(new URL('./product-helper-worker.mjs', import.meta.url));
/** A share not done after this long means the helper is gone (a share takes milliseconds). */
const SHARE_TIMEOUT_MS = 60_000;

export interface ProductHelperSetting {
  enabled: boolean;
  /** Where the answer came from, for `stella doctor`. */
  source: string;
}

/**
 * Whether this process runs a product helper: `STELLA_PRODUCT_HELPER=on|off`, else off. Opt-in because
 * it pays only where products are large: measured on 2 cores, the tiny step at batch 16 runs ~1.15×
 * faster with it, at batch 4 no faster (and its first steps slower), and a run's decode worker
 * wants the second core (docs/benchmarks.md "Product helper"). Never in a worker thread unless asked,
 * so that threads do not outnumber cores.
 */
export function productHelperSetting(env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism(), mainThread = isMainThread): ProductHelperSetting {
  const raw = env[PRODUCT_HELPER_ENV]?.trim().toLowerCase();
  if (raw) {
    if (raw !== 'on' && raw !== 'off') throw new Error(`${PRODUCT_HELPER_ENV} must be 'on' or 'off' (got '${env[PRODUCT_HELPER_ENV]}')`);
    if (raw === 'on' && cores < 2) return { enabled: false, source: `${PRODUCT_HELPER_ENV}=on, but this process has ${cores} core` };
    return { enabled: raw === 'on', source: `${PRODUCT_HELPER_ENV}=${raw}` };
  }
  return { enabled: false, source: `default; it pays only for large products, ${mainThread ? `${cores} cores here` : 'and this is a worker thread'}` };
}

/** The helper's share of a split product: `groups` products [rows, inner]·[inner, cols] (+ bias), operands at float indices of the main heap. */
export interface HelperShare {
  groups: number;
  rows: number;
  inner: number;
  cols: number;
  /** A [groups, rows, inner], contiguous. */
  a: number;
  /** B [groups, inner, cols], contiguous (one B for all when groups = 1). */
  b: number;
  /** bias [cols], or undefined. */
  bias?: number;
  /** Run the groups with our SIMD loop (src/core/wasm/small-products.wat) rather than XNNPACK, as heap-products does for small groups. */
  small?: boolean;
}

export class ProductHelper {
  private readonly ctrl: Int32Array;
  private data: Float32Array;
  private seq = 0;
  private outOffset = 0;
  private outFloats = 0;
  private retired = false;
  /** Shares the helper has computed (benchmarks report it; tests check that a split happened). */
  sharesDone = 0;

  private constructor(private readonly worker: Worker, control: SharedArrayBuffer, data: SharedArrayBuffer, private readonly port: MessagePort, private readonly shareTimeoutMs: number) {
    this.ctrl = new Int32Array(control);
    this.data = new Float32Array(data);
  }

  /** Starts the thread; it is used once it has initialised its backend (`ready`). */
  static start({ initialFloats = 1 << 20, shareTimeoutMs = SHARE_TIMEOUT_MS } = {}): ProductHelper {
    const control = new SharedArrayBuffer(256), data = new SharedArrayBuffer(initialFloats * 4);
    const { port1, port2 } = new MessageChannel();
    // execArgv: [] — the script is plain JS, and a loader or flag of ours (tsx, --input-type) must not
    // reach it. The helper never keeps the process alive.
    const smallProducts = Buffer.from(SMALL_PRODUCTS, 'base64');
    const worker = new Worker(WORKER_SCRIPT, { workerData: { control, data, port: port2, slots: SLOTS, smallProducts }, transferList: [port2], execArgv: [] });
    worker.unref();
    port1.unref();
    const helper = new ProductHelper(worker, control, data, port1, shareTimeoutMs);
    // A thread that dies before it is ready (or later, between shares) is marked broken; a share in
    // flight is caught by finish()'s timeout instead, since the main thread is blocked there.
    const broken = () => {
      Atomics.store(helper.ctrl, SLOTS.STATE, STATE_BROKEN);
      Atomics.notify(helper.ctrl, SLOTS.STATE);
    };
    worker.on('error', broken);
    worker.on('exit', broken);
    return helper;
  }

  /** True once the thread's backend is up, until the helper fails or stops. */
  get ready(): boolean {
    if (this.retired) return false;
    const state = Atomics.load(this.ctrl, SLOTS.STATE);
    if (state === STATE_BROKEN) this.retire('its thread ended or could not start');
    return state === STATE_READY && !this.retired;
  }

  /** Waits until the thread is ready or has failed (tests, and benchmarks that time from the first step). */
  async whenStarted(timeoutMs = 30_000): Promise<boolean> {
    // Polled: Atomics.waitAsync would not keep the event loop alive, and the worker is unref'd.
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(this.ctrl, SLOTS.STATE) === STATE_STARTING && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.ready;
  }

  /** Copies the share's operands out of `heap` and starts it. Call `finish` before the next `begin`. */
  begin(heap: Float32Array, share: HelperShare): void {
    const { groups, rows, inner, cols } = share;
    const aSize = groups * rows * inner, bSize = groups * inner * cols, biasSize = share.bias === undefined ? 0 : cols;
    this.outOffset = aSize + bSize + biasSize;
    this.outFloats = groups * rows * cols;
    const need = this.outOffset + this.outFloats;
    const ctrl = this.ctrl;
    ctrl[SLOTS.NEW_DATA] = 0;
    if (need > this.data.length) {
      // Grow by doubling; the thread is waiting, so it takes the new block synchronously from the port.
      let floats = this.data.length;
      while (floats < need) floats *= 2;
      const block = new SharedArrayBuffer(floats * 4);
      this.data = new Float32Array(block);
      this.port.postMessage(block);
      ctrl[SLOTS.NEW_DATA] = 1;
    }
    const data = this.data;
    data.set(heap.subarray(share.a, share.a + aSize), 0);
    data.set(heap.subarray(share.b, share.b + bSize), aSize);
    if (share.bias !== undefined) data.set(heap.subarray(share.bias, share.bias + cols), aSize + bSize);
    ctrl[SLOTS.GROUPS] = groups;
    ctrl[SLOTS.ROWS] = rows;
    ctrl[SLOTS.INNER] = inner;
    ctrl[SLOTS.COLS] = cols;
    ctrl[SLOTS.HAS_BIAS] = biasSize ? 1 : 0;
    ctrl[SLOTS.SMALL] = share.small ? 1 : 0;
    Atomics.store(ctrl, SLOTS.SEQ, ++this.seq);
    Atomics.notify(ctrl, SLOTS.SEQ);
  }

  /**
   * Waits for the share started by `begin` and copies its output into `heap()` at float index `out`
   * (the heap is read after the wait: the main thread's own products may have grown it). False if the
   * helper failed; it is then retired and the caller computes the share itself.
   */
  finish(heap: () => Float32Array, out: number): boolean {
    const ctrl = this.ctrl, seq = this.seq;
    // The share is about as long as ours, so it is usually nearly done: spin before sleeping.
    const spinUntil = performance.now() + 1;
    while (Atomics.load(ctrl, SLOTS.DONE) !== seq && performance.now() < spinUntil);
    const deadline = Date.now() + this.shareTimeoutMs;
    for (let done = Atomics.load(ctrl, SLOTS.DONE); done !== seq; done = Atomics.load(ctrl, SLOTS.DONE)) {
      if (Atomics.wait(ctrl, SLOTS.DONE, done, Math.min(1000, this.shareTimeoutMs)) === 'timed-out' && Date.now() > deadline) {
        this.retire(`a share took over ${this.shareTimeoutMs / 1000} s`);
        return false;
      }
    }
    if (ctrl[SLOTS.FAILED]) {
      this.retire('a share failed');
      return false;
    }
    heap().set(this.data.subarray(this.outOffset, this.outOffset + this.outFloats), out);
    this.sharesDone++;
    return true;
  }

  /** Ends the thread abruptly, as a crash would (tests: the next share times out and runs here). */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  /** Ends the thread (it is unref'd, so a process exits without this). */
  async stop(): Promise<void> {
    this.retired = true;
    Atomics.store(this.ctrl, SLOTS.SEQ, -1);
    Atomics.notify(this.ctrl, SLOTS.SEQ);
    await this.worker.terminate();
  }

  private retire(why: string): void {
    if (this.retired) return;
    this.retired = true;
    const detail = (receiveMessageOnPort(this.port)?.message as { error?: string } | undefined)?.error;
    process.stderr.write(`product helper stopped (${why}${detail ? `: ${detail.split('\n')[0]}` : ''}); the main thread computes every product from here, with the same values\n`);
    void this.worker.terminate();
  }
}

let running: ProductHelper | undefined;
let paused = false;

/** Starts this process's helper if the setting asks for one (once; later calls return it). */
export function startProductHelper(setting = productHelperSetting(), options?: Parameters<typeof ProductHelper.start>[0]): ProductHelper | undefined {
  if (!running && setting.enabled) running = ProductHelper.start(options);
  return running;
}

/** The helper if one is running and ready, else undefined (products then run on this thread alone). */
export function productHelper(): ProductHelper | undefined {
  return !paused && running?.ready ? running : undefined;
}

/** Resolves once this process's helper is ready (true) or will not be (false); timed runs wait for it. */
export async function productHelperReady(): Promise<boolean> {
  return (await running?.whenStarted()) ?? false;
}

/** Pauses or resumes the helper's use (side-by-side benchmarks and tests; the thread stays up). */
export function pauseProductHelper(pause: boolean): void {
  paused = pause;
}

/** Stops this process's helper (tests; the CLI lets exit end it). */
export async function stopProductHelper(): Promise<void> {
  const helper = running;
  running = undefined;
  await helper?.stop();
}
