/**
 * The product helper (src/core/product-helper.ts) on the training step: each round runs
 * `stella bench step` once with STELLA_PRODUCT_HELPER=off and once with =on, each in its own child
 * process (the order flipped every other round), at each batch size; the table gives the medians over
 * rounds and the median of the per-round ratios (a round's pair ran back to back under the same load).
 * Usage: npm run bench:product-helper -- [--rounds 5] [--batches 4,16] [--steps 10] [--selector stella] [--write]
 * (--write: also rewrite the "Product helper" section of docs/benchmarks.md.)
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './args.ts';
import { writeBenchmarkSection } from './docs-section.ts';
import { median } from '../src/model/step-bench.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(arg('rounds', '5'));
const batches = arg('batches', '4,16').split(',').map(Number);
const steps = arg('steps', '10');
const selector = arg('selector', 'stella');
const write = process.argv.includes('--write');

/** One child's median step (ms), the helper on or off. */
function stepMs(batch: number, helper: 'on' | 'off'): Promise<number> {
  const env = { ...process.env, STELLA_WASM_THREADS: '1', STELLA_PRODUCT_HELPER: helper };
  const args = [path.join(ROOT, 'bin/stella.js'), 'bench', 'step', '--config', 'tiny', '--selector', selector, '--batch', String(batch), '--steps', steps, '--json'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench step (helper ${helper}, batch ${batch}) exited ${code}: ${err.slice(-400)}`));
      if (err.includes('product helper stopped')) return reject(new Error(`the helper stopped during the run: ${err.trim()}`));
      resolve((JSON.parse(out.slice(out.indexOf('{'))) as { results: { medianMs: number }[] }).results[0].medianMs);
    });
  });
}

const loadBefore = os.loadavg()[0];
const rows: string[] = [];
for (const batch of batches) {
  const off: number[] = [], on: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const helper of (round % 2 ? ['on', 'off'] : ['off', 'on']) as ('on' | 'off')[]) {
      const ms = await stepMs(batch, helper);
      (helper === 'on' ? on : off).push(ms);
      process.stdout.write(`batch ${batch} round ${round + 1} helper ${helper}: ${ms.toFixed(0)} ms\n`);
    }
  }
  const ratios = off.map((m, r) => m / on[r]);
  rows.push(`| ${batch} (+ ${batch} replayed) | ${median(off).toFixed(0)} ms | ${median(on).toFixed(0)} ms | ${median(ratios).toFixed(2)}× (${ratios.map((x) => x.toFixed(2)).join(', ')}) |`);
}
const section = [
  '## Product helper',
  '',
  `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores; 1-minute load ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after), Node ${process.version}. ` +
    `\`stella bench step --config tiny --selector ${selector} --steps ${steps}\` on wasm (1 thread), once with \`STELLA_PRODUCT_HELPER=off\` and once with \`=on\` per round, each in its own child process, ${rounds} rounds, the order flipped every other round; medians over rounds, and the median of the per-round ratios. Values are the same either way (test/core/heap-products.test.ts). Reproduce: \`npm run bench:product-helper -- --rounds ${rounds} --batches ${batches.join(',')}\`.`,
  '',
  '| batch | step, helper off | step, helper on | speed-up, median of per-round ratios |',
  '| --- | --- | --- | --- |',
  ...rows,
  '',
].join('\n');
process.stdout.write(`\n${section}\n`);
if (write) await writeBenchmarkSection('Product helper', section);
