/**
 * Whole-step benchmark: tfjs-wasm multi-threaded (src/core/wasm-threads.ts) against the stock
 * single-threaded build.
 *
 * One process holds one wasm backend, so each measurement is a child `stella bench step … --json`
 * with `STELLA_WASM_THREADS` set; the two settings alternate within a round and the order flips each
 * round (1, N / N, 1 / …), so both see the same stretch of machine load. Reports each run's median
 * step, the per-round ratio, and the medians, with two 2-D products timed the same way
 * (bench/wasm-product.ts); with --write, replaces the "wasm threads" section of docs/benchmarks.md.
 *
 *   npm run bench:threads -- [--rounds 3] [--threads 2] [--steps 8] [--config tiny] [--selector stella] [--batch 4] [--write]
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { median } from '../src/model/step-bench.ts';
import { writeBenchmarkSection } from './docs-section.ts';

const args = process.argv.slice(2);
const value = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const rounds = Number(value('rounds', '3'));
const threads = Number(value('threads', String(os.availableParallelism())));
const steps = Number(value('steps', '8'));
const config = value('config', 'tiny');
const selector = value('selector', 'stella');
const batch = Number(value('batch', '4'));
const write = args.includes('--write');
if (!(threads > 1)) throw new Error(`--threads must be at least 2 (got ${threads})`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stepArgs = ['bench', 'step', '--config', config, '--selector', selector, '--batch', String(batch), '--steps', String(steps), '--json'];

const run = promisify(execFile);
const childEnv = (count: number) => ({ ...process.env, STELLA_WASM_THREADS: String(count), STELLA_BACKEND: 'wasm' });

/** Child processes for one setting: 2-D products (bench/wasm-product.ts), then the step. */
async function measure(count: number): Promise<{ ms: number; load: number; products: { shape: string; medianMs: number; gflops: number }[] }> {
  const product = JSON.parse((await run(process.execPath, ['--import', 'tsx', path.join(root, 'bench/wasm-product.ts')], { cwd: root, env: childEnv(count) })).stdout) as {
    threads?: number; products: { shape: string; medianMs: number; gflops: number }[];
  };
  const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...stepArgs], { cwd: root, env: childEnv(count), maxBuffer: 16 << 20 });
  const step = JSON.parse(stdout) as { threads?: number; results: { medianMs: number }[] };
  for (const got of [product.threads, step.threads]) if (got !== count) throw new Error(`asked for ${count} wasm threads, a child ran ${got}`);
  return { ms: step.results[0].medianMs, load: os.loadavg()[0], products: product.products };
}

type Measured = Awaited<ReturnType<typeof measure>>;
const rows: { round: number; single: Measured; multi: Measured; load: number }[] = [];
for (let round = 1; round <= rounds; round++) {
  const order = round % 2 ? [1, threads] : [threads, 1];
  const got = new Map<number, Measured>();
  for (const count of order) {
    const r = await measure(count);
    got.set(count, r);
    process.stderr.write(`round ${round}: ${count} thread${count === 1 ? '' : 's'} step ${r.ms.toFixed(0)} ms, products ${r.products.map((p) => `${p.medianMs.toFixed(1)} ms`).join(' / ')} (load ${r.load.toFixed(1)})\n`);
  }
  rows.push({ round, single: got.get(1)!, multi: got.get(threads)!, load: (got.get(1)!.load + got.get(threads)!.load) / 2 });
}

const ms = (x: number) => `${x.toFixed(0)} ms`;
const speedup = (single: number, multi: number) => `${(single / multi).toFixed(2)}×`;
const shapes = rows[0].single.products.map((p) => p.shape);
const productCells = (r: (typeof rows)[number]) => shapes.map((_, i) => `${r.single.products[i].medianMs.toFixed(1)} / ${r.multi.products[i].medianMs.toFixed(1)} ms (${speedup(r.single.products[i].medianMs, r.multi.products[i].medianMs)})`);
const medianOf = (pick: (r: (typeof rows)[number]) => number) => median(rows.map(pick));
const table = [
  `| round | load (1 min) | step, 1 thread | step, ${threads} threads | step speed-up | ${shapes.map((s) => `${s}, 1 / ${threads} threads`).join(' | ')} |`,
  `| --- | --- | --- | --- | --- |${shapes.map(() => ' --- |').join('')}`,
  ...rows.map((r) => `| ${r.round} | ${r.load.toFixed(1)} | ${ms(r.single.ms)} | ${ms(r.multi.ms)} | ${speedup(r.single.ms, r.multi.ms)} | ${productCells(r).join(' | ')} |`),
  `| **median** | | **${ms(medianOf((r) => r.single.ms))}** | **${ms(medianOf((r) => r.multi.ms))}** | **${(medianOf((r) => r.single.ms / r.multi.ms)).toFixed(2)}×** | ${shapes
    .map((_, i) => `${medianOf((r) => r.single.products[i].medianMs).toFixed(1)} / ${medianOf((r) => r.multi.products[i].medianMs).toFixed(1)} ms (${medianOf((r) => r.single.products[i].medianMs / r.multi.products[i].medianMs).toFixed(2)}×)`)
    .join(' | ')} |`,
].join('\n');

/** What the medians say, in words (the figures move with the machine's load). */
function reading(): string {
  const step = medianOf((r) => r.single.ms / r.multi.ms);
  const product = medianOf((r) => r.single.products[0].medianMs / r.multi.products[0].medianMs);
  const verdict = step >= 1
    ? `${threads} threads made the step ${step.toFixed(2)}× as fast`
    : `${threads} threads made the step slower (${step.toFixed(2)}× the speed of 1 thread)`;
  return `Reading: ${verdict}; the 1024³ product alone ran ${product.toFixed(2)}× as fast. The threaded build ` +
    'hands every XNNPACK kernel to its pool, elementwise ones and small products included, and a tiny step is ' +
    '~3,300 kernels (a third of them per-group attention products of a few thousand FLOPs): each parallel kernel ' +
    'waits for the slowest pool thread, and the pool threads spin after each kernel on CPU the main thread needs ' +
    '(measured: 50 products of 512² with 200 ms of JS work between them cost ~150 ms more CPU with 2 threads than ' +
    'with 1; after a kernel and a 300 ms sleep, none). Only large products gain. So wasm runs 1 thread unless ' +
    'asked (`--wasm-threads N` or `all`, `STELLA_WASM_THREADS`), the faster choice for every model wasm can train.';
}

const section = `## wasm threads

What: the whole training step, \`stella bench step ${stepArgs.slice(2, -1).join(' ')}\`, on tfjs-wasm
with 1 thread (the stock SIMD build) against ${threads} threads (the threaded SIMD build, src/core/wasm-threads.ts),
one child process per measurement (each the median of ${steps} timed steps after 2 warm-ups), the two
settings alternating within a round and the order flipped each round, ${rounds} rounds. Beside it, in
its own child process per setting just before the step, two plain 2-D products (median of 9,
bench/wasm-product.ts), to separate the kernels' speed-up from the step's:

\`\`\`
npm run bench:threads -- --rounds ${rounds} --threads ${threads} --steps ${steps} --config ${config} --selector ${selector} --batch ${batch}
\`\`\`

Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), shared: other people's builds and tests and
a training run were going on, so every figure here is taken on a loaded machine (load average in the
table); benchmarks are run under \`nice -n 15\`. Outputs are bit-identical between the two builds
(test/core/wasm-threads.test.ts).

${table}

${reading()}
`;
process.stdout.write(section);
if (write) await writeBenchmarkSection('wasm threads', section);
