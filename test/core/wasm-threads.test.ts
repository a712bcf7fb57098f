/**
 * Multi-threaded wasm (src/core/wasm-threads.ts): the thread-count setting, and single- against
 * multi-threaded runs of the same work in two child processes (one wasm backend per process), which
 * must agree bit for bit and exit on their own.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { MAX_WASM_THREADS, WASM_THREADS_ENV, wasmThreadsSetting } from '../../src/core/wasm-threads.ts';
import { REPO_ROOT } from '../helpers.ts';

test('the thread count defaults to 1 (the stock build) whatever the cores; all asks for every core', (t) => {
  for (const cores of [1, 2, 16]) t.deepEqual(wasmThreadsSetting({}, cores), { threads: 1, source: 'default: faster than threads for the model sizes wasm trains' });
  t.deepEqual(wasmThreadsSetting({ [WASM_THREADS_ENV]: 'all' }, 2), { threads: 2, source: `${WASM_THREADS_ENV}=all: 2 cores` });
  t.deepEqual(wasmThreadsSetting({ [WASM_THREADS_ENV]: 'all' }, 16), { threads: MAX_WASM_THREADS, source: `${WASM_THREADS_ENV}=all: 16 cores, capped at ${MAX_WASM_THREADS} by the threaded build` });
});

test(`${WASM_THREADS_ENV} sets the count, is capped at the build's pool, and refuses what is not a count`, (t) => {
  t.deepEqual(wasmThreadsSetting({ [WASM_THREADS_ENV]: ' 3 ' }, 2), { threads: 3, source: `${WASM_THREADS_ENV}=3` });
  t.deepEqual(wasmThreadsSetting({ [WASM_THREADS_ENV]: '2' }, 16), { threads: 2, source: `${WASM_THREADS_ENV}=2` });
  t.is(wasmThreadsSetting({ [WASM_THREADS_ENV]: '64' }, 2).threads, MAX_WASM_THREADS);
  for (const bad of ['0', 'two', '-1', '1.5', 'ALL']) {
    t.throws(() => wasmThreadsSetting({ [WASM_THREADS_ENV]: bad }, 2), { message: new RegExp(`${WASM_THREADS_ENV} must be a whole number of threads, at least 1, or 'all' \\(got '${bad.replace('.', '\\.')}'\\)`) });
  }
});

/** Runs the probe with `threads` wasm threads; fails if it does not exit by itself within the limit. */
async function probe(threads: number) {
  const started = performance.now();
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/core/wasm-threads-probe.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, [WASM_THREADS_ENV]: String(threads) },
    timeout: 240_000,
    killSignal: 'SIGKILL',
  });
  return { ...JSON.parse(stdout.trim().split('\n').at(-1)!), seconds: (performance.now() - started) / 1000 };
}

test('one and two threads give bit-identical kernels, training steps and golden results, and both processes exit', async (t) => {
  // Sequential: the two runs would otherwise compete for the same cores.
  const single = await probe(1);
  const multi = await probe(2);
  t.is(single.threads, 1);
  t.is(multi.threads, 2, 'the threaded build ran with 2 threads (not the build default of cores / 2)');
  t.deepEqual(multi.kernels, single.kernels, 'fast-path products, attention, row split and gather (forward and gradients)');
  t.deepEqual(multi.losses, single.losses, 'losses of three STELLA steps');
  t.is(multi.weights, single.weights, 'every weight after three steps');
  t.is(multi.optimizer, single.optimizer, 'Adam moments after three steps');
  t.deepEqual(multi.golden, single.golden, 'golden cases: same pass/fail and the same max errors');
  t.true(single.golden.length >= 6 && single.golden.every((c: { ok: boolean }) => c.ok), JSON.stringify(single.golden));
  t.log(`probe wall time: 1 thread ${single.seconds.toFixed(1)} s, 2 threads ${multi.seconds.toFixed(1)} s`);
});
