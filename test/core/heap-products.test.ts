/**
 * Products split with the product helper: the same values as one thread, bit for bit; how much the
 * helper takes; the setting; a helper that dies mid-run; and a process that exits with it running.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../src/core/backend.ts';
import { SMALL_GROUP_MACS, helperShareOf } from '../../src/core/heap-products.ts';
import { ProductHelper, pauseProductHelper, productHelper, productHelperSetting, startProductHelper } from '../../src/core/product-helper.ts';
import { heapSimdKernels, type WasmHeapModule } from '../../src/core/heap-simd.ts';
import { Rng } from '../../src/core/rng.ts';
import { slicedMatMul } from '../../src/core/sliced-matmul.ts';
import { linearKernel, product2d } from '../../src/core/view-kernels.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let helper: ProductHelper;

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`heap-products tests need the wasm backend, got ${tf.getBackend()}`);
  const started = startProductHelper({ enabled: true, source: 'test' });
  if (!started || !(await started.whenStarted())) throw new Error('the product helper did not start');
  helper = started;
});

test.afterEach.always(() => pauseProductHelper(false));

const rng = Rng.fromSeed('heap-products');
const rand = (shape: number[]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

/** fn's values with the helper paused (this thread alone) and running, and the shares the helper took. */
function bothWays(fn: () => tf.Tensor): { alone: Float32Array; split: Float32Array; shares: number } {
  pauseProductHelper(true);
  const one = fn();
  const alone = one.dataSync() as Float32Array;
  pauseProductHelper(false);
  const before = helper.sharesDone;
  const two = fn();
  const split = two.dataSync() as Float32Array;
  tf.dispose([one, two]);
  return { alone, split, shares: helper.sharesDone - before };
}

test.serial('a split 2-D product equals one thread\'s, bit for bit, with and without a bias', (t) => {
  for (const [m, k, n] of [[768, 384, 96], [512, 96, 96], [301, 200, 384], [1024, 64, 768]]) {
    t.true(helperShareOf(1, m, k, n) > 0, `[${m}, ${k}]·[${k}, ${n}] is large enough to split`);
    const x = rand([m, k]) as tf.Tensor2D, w = rand([k, n]) as tf.Tensor2D, b = rand([n]);
    const plain = bothWays(() => product2d(x, w));
    t.is(plain.shares, 1, `product [${m}, ${k}]·[${k}, ${n}]: the helper took one share`);
    t.deepEqual(plain.split, plain.alone, `product [${m}, ${k}]·[${k}, ${n}]`);
    const withBias = bothWays(() => linearKernel(x, w, b)!);
    t.is(withBias.shares, 1);
    t.deepEqual(withBias.split, withBias.alone, `linear [${m}, ${k}]·[${k}, ${n}] + b`);
    // And both equal tfjs' own kernels (the entry used on the heap is tfjs').
    const theirs = tf.matMul(x, w);
    t.deepEqual(plain.split, theirs.dataSync());
    tf.dispose([x, w, b, theirs]);
  }
});

test.serial('split batched products equal one thread\'s, bit for bit', (t) => {
  for (const [g, m, k, n] of [[16, 192, 192, 24], [48, 64, 128, 8], [5, 300, 96, 96]]) {
    t.true(helperShareOf(g, m, k, n) > 0);
    const a = rand([g, m, k]) as tf.Tensor3D, b = rand([g, k, n]) as tf.Tensor3D;
    const r = bothWays(() => slicedMatMul(a, b));
    t.is(r.shares, 1, `[${g}, ${m}, ${k}]·[${g}, ${k}, ${n}]: the helper took one share`);
    t.deepEqual(r.split, r.alone, `[${g}, ${m}, ${k}]·[${g}, ${k}, ${n}]`);
    tf.dispose([a, b]);
  }
});

test.serial('small groups run in our SIMD loop and equal XNNPACK\'s 2-D product per group, bit for bit (row and column tails included)', (t) => {
  t.truthy(heapSimdKernels((tf.backend() as unknown as { wasm: WasmHeapModule }).wasm), 'the SIMD loop is available on this backend');
  for (const [g, m, k, n] of [[32, 25, 24, 25], [3, 7, 5, 9], [48, 64, 8, 128], [2, 1, 96, 96], [16, 192, 192, 24], [4, 13, 300, 6]]) {
    t.true(m * k * n <= SMALL_GROUP_MACS, `[${m}, ${k}]·[${k}, ${n}] is a small group`);
    const a = rand([g, m, k]) as tf.Tensor3D, b = rand([g, k, n]) as tf.Tensor3D;
    pauseProductHelper(true);
    const mine = slicedMatMul(a, b);
    const perGroup = tf.tidy(() => tf.stack(tf.unstack(a).map((ag, i) => tf.matMul(ag as tf.Tensor2D, tf.unstack(b)[i] as tf.Tensor2D))));
    t.deepEqual(mine.dataSync(), perGroup.dataSync(), `[${g}, ${m}, ${k}]·[${g}, ${k}, ${n}]`);
    tf.dispose([a, b, mine, perGroup]);
  }
});

test.serial('the helper\'s data block grows for a share larger than it, and later shares still match', (t) => {
  const x = rand([2048, 768]) as tf.Tensor2D, w = rand([768, 384]) as tf.Tensor2D; // a share of ~4 MiB of A alone
  const big = bothWays(() => product2d(x, w));
  t.is(big.shares, 1);
  t.deepEqual(big.split, big.alone);
  const small = rand([512, 96]) as tf.Tensor2D, v = rand([96, 96]) as tf.Tensor2D;
  const after = bothWays(() => product2d(small, v));
  t.deepEqual(after.split, after.alone);
  tf.dispose([x, w, small, v]);
});

test('helperShareOf leaves small products alone and gives the helper less than half', (t) => {
  t.is(helperShareOf(1, 96, 96, 96), 0, 'too small: the meeting costs more than it saves');
  t.is(helperShareOf(32, 12, 24, 12), 0, 'tiny groups');
  t.is(helperShareOf(1, 1, 4096, 4096), 0, 'one row cannot be split');
  for (const [g, m, k, n] of [[1, 768, 384, 96], [1, 4096, 768, 3072], [16, 192, 192, 24]]) {
    const share = helperShareOf(g, m, k, n), whole = g > 1 ? g : m;
    t.true(share > 0 && share < whole / 2, `${share} of ${whole}`);
  }
});

test('productHelperSetting: off unless asked; on when asked with two cores or more; a bad value is an error', (t) => {
  t.deepEqual(productHelperSetting({}, 2, true), { enabled: false, source: 'default; it pays only for large products, 2 cores here' });
  t.false(productHelperSetting({}, 16, false).enabled);
  t.false(productHelperSetting({ STELLA_PRODUCT_HELPER: 'off' }, 16, true).enabled);
  t.deepEqual(productHelperSetting({ STELLA_PRODUCT_HELPER: ' ON ' }, 2, true), { enabled: true, source: 'STELLA_PRODUCT_HELPER=on' });
  t.true(productHelperSetting({ STELLA_PRODUCT_HELPER: 'on' }, 4, false).enabled);
  t.false(productHelperSetting({ STELLA_PRODUCT_HELPER: 'on' }, 1, true).enabled, 'one core: nothing to share');
  t.throws(() => productHelperSetting({ STELLA_PRODUCT_HELPER: 'yes' }, 2, true), { message: /STELLA_PRODUCT_HELPER must be 'on' or 'off' \(got 'yes'\)/ });
});

test.serial('a helper that dies: the next share runs on this thread with the same values, and products carry on without it', async (t) => {
  const doomed = ProductHelper.start({ shareTimeoutMs: 300 });
  t.true(await doomed.whenStarted());
  await doomed.kill();
  const x = rand([768, 384]) as tf.Tensor2D, w = rand([384, 96]) as tf.Tensor2D;
  const expected = tf.matMul(x, w);
  // Drive the dead helper the way heap-products does: its share must come back as "not done".
  const backend = tf.backend() as unknown as { wasm: { HEAPF32: Float32Array } };
  const heap = () => backend.wasm.HEAPF32;
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => { lines.push(String(s)); return true; }) as typeof process.stderr.write;
  let done: boolean;
  try {
    doomed.begin(heap(), { groups: 1, rows: 4, inner: 4, cols: 4, a: 0, b: 0 });
    done = doomed.finish(heap, 0);
  } finally {
    process.stderr.write = write;
  }
  t.false(done, 'the share is reported as not done, so the caller computes it');
  t.false(doomed.ready, 'and the helper is retired');
  t.regex(lines.join(''), /product helper stopped \(a share took over 0\.3 s\); the main thread computes every product from here, with the same values/);
  // The process's own helper is unaffected, and products still match.
  t.truthy(productHelper());
  t.deepEqual(product2d(x, w).dataSync(), expected.dataSync());
  tf.dispose([x, w, expected]);
});

test('a process with the helper running exits on its own, promptly', (t) => {
  const script = [
    "import * as tf from '@tensorflow/tfjs';",
    "import { initBackend } from './src/core/backend.ts';",
    "import { productHelper, startProductHelper } from './src/core/product-helper.ts';",
    "import { product2d } from './src/core/view-kernels.ts';",
    "await initBackend('wasm');",
    'await startProductHelper()?.whenStarted();',
    'const y = product2d(tf.ones([512, 384]), tf.ones([384, 96]));',
    "console.log(JSON.stringify({ helper: !!productHelper(), shares: productHelper()?.sharesDone, value: y.dataSync()[0] }));",
  ].join('\n');
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, STELLA_PRODUCT_HELPER: 'on' } });
  t.is(run.status, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), { helper: true, shares: 1, value: 384 });
  t.true(Date.now() - started < 30_000);
});
