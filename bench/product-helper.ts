/**
 * The product helper (src/core/product-helper.ts) on the training step, side by side in one process:
 * one prepared step runner takes its steps alternately with the helper paused (one thread computes
 * every product) and in use, so both halves share the machine's load minute by minute. Prints the
 * medians, the median of the per-pair ratios and the shares the helper computed per step.
 * Usage: npm run bench:product-helper -- [--pairs 40] [--selector stella] [--batch 4] [--runs 3] [--write]
 * (--write: also rewrite the "Product helper" section of docs/benchmarks.md.)
 */
import os from 'node:os';
import { arg } from './args.ts';
import { writeBenchmarkSection } from './docs-section.ts';
import { describeBackend, initBackend } from '../src/core/backend.ts';
import { modelConfig } from '../src/core/config.ts';
import { pauseProductHelper, productHelper, productHelperReady } from '../src/core/product-helper.ts';
import { median, prepareBench } from '../src/model/step-bench.ts';
import '../src/cli/bench.ts'; // registers the strategies' step runners

const pairs = Number(arg('pairs', '40'));
const runs = Number(arg('runs', '3'));
const selector = arg('selector', 'stella');
const batch = Number(arg('batch', '4'));
const write = process.argv.includes('--write');

const backend = await initBackend('wasm');
if (!(await productHelperReady())) throw new Error(`bench:product-helper needs the product helper (${describeBackend(backend)}); is STELLA_PRODUCT_HELPER=off or STELLA_WASM_THREADS above 1?`);
const helper = productHelper()!;
const loadBefore = os.loadavg()[0];
const rows: string[] = [];
const ratios: number[] = [];
for (let run = 0; run < runs; run++) {
  const bench = prepareBench({ config: modelConfig('tiny'), selector, batch, steps: pairs, naive: false });
  const alone: number[] = [], split: number[] = [], pairRatios: number[] = [];
  let shares = 0;
  try {
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first, so neither always follows the other.
      const order = i % 2 ? [false, true] : [true, false];
      let a = 0, b = 0;
      for (const paused of order) {
        pauseProductHelper(paused);
        const before = helper.sharesDone;
        const [ms] = bench.run(1);
        if (paused) a = ms;
        else { b = ms; shares += helper.sharesDone - before; }
      }
      alone.push(a); split.push(b); pairRatios.push(a / b);
    }
  } finally {
    pauseProductHelper(false);
    bench.dispose();
  }
  const ratio = median(pairRatios);
  ratios.push(ratio);
  const line = `| ${run + 1} | ${median(alone).toFixed(1)} ms | ${median(split).toFixed(1)} ms | ${ratio.toFixed(3)}× | ${(shares / pairs).toFixed(0)} |`;
  rows.push(line);
  process.stdout.write(`${line}\n`);
}
const section = [
  '## Product helper',
  '',
  `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores; 1-minute load ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after), Node ${process.version}, ${describeBackend(backend)}. ` +
    `The tiny \`${selector}\` step at batch ${batch}, ${pairs} pairs of steps per run, each pair one step with the helper paused (this thread computes every product) and one with it in use, in alternating order, in one process. Reproduce: \`npm run bench:product-helper -- --pairs ${pairs} --runs ${runs}\`.`,
  '',
  '| run | step, one thread | step, with the helper | speed-up (median of per-pair ratios) | shares per step |',
  '| --- | --- | --- | --- | --- |',
  ...rows,
  '',
  `Median over runs: **${median(ratios).toFixed(3)}×**. The values are the same either way (test/core/heap-products.test.ts).`,
  '',
].join('\n');
process.stdout.write(`\n${section}\n`);
if (write) await writeBenchmarkSection('Product helper', section);
