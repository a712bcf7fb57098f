/**
 * `stella bench step` per selector: two strategies side by side (JSON and table fields, STELLA and
 * DER++ training on current + replay rows), the true peak of tensor bytes within a step, selector
 * lists and the STELLA-vs-DER++ reductions.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { parseSelectorList, reductions, resultTable } from '../../src/cli/bench.ts';
import { measurePeakBytes, stepSelectorNames, type BenchResult } from '../../src/model/step-bench.ts';
import { STRATEGY_NAMES } from '../../src/method/strategy-registry.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('bench step --selector stella,der++ --json: side by side, replay rows included, every field present', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, [
    path.join(ROOT, 'bin', 'stella.js'), 'bench', 'step', '--selector', 'stella,der++', '--steps', '2', '--batch', '2', '--json',
  ], { cwd: ROOT, timeout: 120_000 });
  const out = JSON.parse(stdout) as { backend: string; results: BenchResult[]; reduction?: { memory: number; time: number; met: { memory: boolean; time: boolean } } };
  t.deepEqual(out.results.map((r) => r.selector), ['stella', 'der++']);
  for (const r of out.results) {
    t.is(r.steps, 2);
    t.is(r.stepMs.length, 2);
    t.true(r.medianMs > 0 && r.samplesPerSecond > 0, r.selector);
    // Warm buffer: N = 2 current rows + 2 replay rows in the training forward.
    t.is(r.rows, 4, `${r.selector} rows`);
    t.is(r.replayed, 2, `${r.selector} replayed`);
    t.true(r.bufferBytes > 0, `${r.selector} buffer`);
    t.true(r.peakTensorBytes > r.residentTensorBytes && r.residentTensorBytes > 0, `${r.selector} peak ${r.peakTensorBytes} resident ${r.residentTensorBytes}`);
    t.is(r.leakedTensorBytes, 0, `${r.selector} leaks`);
    t.true(r.peakRssBytes > 0);
  }
  const [stella, der] = out.results;
  t.is(stella.gflops, undefined);
  t.truthy(stella.flopsNote);
  t.true(der.gflops! > 0 && der.flopsPerStep! > 0);
  // The printed reductions are those of the printed results (the formula has its known-answer test below).
  t.deepEqual(out.reduction, reductions(out.results));
  t.true(out.reduction!.memory > 0, 'STELLA trains on fewer patches than DER++, so its peak is lower');
  // The table names every selector with its rows (replay) and buffer.
  const table = resultTable(out.results);
  t.regex(table, /^selector\s+variant\s+rows \(replay\)\s+median ms/m);
  t.regex(table, /^stella\s+fast\s+4 \(2\)/m);
  t.regex(table, /^der\+\+\s+fast\s+4 \(2\)/m);
  t.regex(table, /no analytic count/);
});

test('measurePeakBytes sees a high-water mark between kernels, not only at the end', async (t) => {
  await initBackend();
  const m = measurePeakBytes(() => {
    const a = tf.zeros([1024, 256]); // 1 MiB
    const b = tf.zeros([1024, 512]); // 2 MiB
    a.dispose();
    b.dispose();
    return tf.memory().numBytes;
  });
  t.is(m.peakBytes - m.startBytes, 3 * 2 ** 20);
  t.is(m.heldRise, 3 * 2 ** 20);
  t.is(m.endBytes, m.startBytes);
  t.is(m.heldNet, 0);
  t.is(m.result, m.startBytes);
  t.throws(() => measurePeakBytes(() => measurePeakBytes(() => 0)), { message: /nested/ });
  // The hook is gone afterwards.
  t.false(Object.prototype.hasOwnProperty.call(tf.engine(), 'trackTensor'));
});

test('measurePeakBytes counts a reshaped view once in held bytes, and a buffer made before it when it is freed', async (t) => {
  await initBackend();
  const before = tf.zeros([1024, 256]); // 1 MiB, made outside the measurement
  const m = measurePeakBytes(() => {
    const a = tf.zeros([1024, 512]); // 2 MiB
    const view = tf.reshape(a, [512, 1024]); // the same buffer
    const b = tf.zeros([1024, 256]); // 1 MiB
    tf.dispose([view, b]);
    before.dispose(); // frees 1 MiB held since before the start
    return a;
  });
  t.is(m.peakBytes - m.startBytes, 5 * 2 ** 20, 'handles: a, its view and b');
  t.is(m.heldRise, 3 * 2 ** 20, 'buffers: a and b');
  t.is(m.heldNet, 2 ** 20, 'a stays, the earlier buffer went');
  m.result.dispose();
  t.false(Object.prototype.hasOwnProperty.call(tf.engine(), 'removeDataId'));
});

test('every strategy is a bench selector; lists and all resolve, unknown names are refused', (t) => {
  const known = stepSelectorNames();
  for (const s of [...STRATEGY_NAMES, 'full']) t.true(known.includes(s), s);
  t.deepEqual(parseSelectorList('all', known), known);
  t.deepEqual(parseSelectorList('stella, der++,stella', known), ['stella', 'der++']);
  t.throws(() => parseSelectorList('stella,nope', known), { message: /unknown selector\(s\) nope; known: .*der\+\+/ });
});

test('reductions compare STELLA with DER++ against the goals', (t) => {
  const r = (selector: string, peakTensorBytes: number, medianMs: number) => ({ selector, naive: false, peakTensorBytes, medianMs }) as BenchResult;
  const d = reductions([r('der++', 1000, 100), r('stella', 550, 70)])!;
  t.true(Math.abs(d.memory - 0.45) < 1e-12);
  t.true(Math.abs(d.time - 0.3) < 1e-12);
  t.deepEqual(d.met, { memory: true, time: false });
  t.is(reductions([r('stella', 1, 1)]), undefined);
});
