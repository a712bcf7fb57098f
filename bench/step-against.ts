/**
 * The training step of this checkout against an earlier commit's, side by side: each round runs
 * `stella bench step` once per variant, each in its own child process (the earlier commit from a
 * temporary git worktree sharing this checkout's node_modules), the order flipped every other
 * round; each child reports the median of its timed steps, and the table gives the median over
 * rounds. Variants: the earlier commit, this checkout on 1 wasm thread, and on all cores.
 * Usage: npm run bench:step-against -- [--against 003e58e] [--rounds 5] [--steps 8] [--selector stella] [--batch 4] [--write]
 * (--write: also rewrite the "Step against an earlier commit" section of docs/benchmarks.md.)
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchmarkSection } from './docs-section.ts';
import { arg } from './args.ts';
import { median } from '../src/model/step-bench.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const against = arg('against', '003e58e');
const rounds = Number(arg('rounds', '5'));
const steps = arg('steps', '8');
const selector = arg('selector', 'stella');
const batch = arg('batch', '4');
const write = process.argv.includes('--write');
const cores = os.cpus().length;

function stepMs(checkout: string, threads: number | undefined): Promise<number> {
  const env = { ...process.env, ...(threads ? { STELLA_WASM_THREADS: String(threads) } : {}) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(checkout, 'bin/stella.js'), 'bench', 'step', '--config', 'tiny', '--selector', selector, '--batch', batch, '--steps', steps, '--json'], { cwd: checkout, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench step in ${checkout} exited ${code}: ${err.slice(-400)}`));
      const json = JSON.parse(out.slice(out.indexOf('{'))) as { results: { medianMs: number }[] };
      resolve(json.results[0].medianMs);
    });
  });
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-step-against-'));
  const base = path.join(dir, 'base');
  execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', base, against], { stdio: 'ignore' });
  const commit = execFileSync('git', ['-C', base, 'log', '-1', '--format=%h %ad %s', '--date=short']).toString().trim();
  const head = execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%h', 'HEAD']).toString().trim();
  if (!existsSync(path.join(base, 'node_modules'))) symlinkSync(path.join(ROOT, 'node_modules'), path.join(base, 'node_modules'));
  const variants: { name: string; run: () => Promise<number> }[] = [
    { name: `${against} (as filed)`, run: () => stepMs(base, undefined) },
    { name: `${head}, 1 thread`, run: () => stepMs(ROOT, 1) },
    { name: `${head}, ${cores} threads`, run: () => stepMs(ROOT, cores) },
  ];
  const ms: number[][] = variants.map(() => []);
  const loadBefore = os.loadavg()[0];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...variants.keys()].reverse() : [...variants.keys()];
      for (const i of order) {
        const m = await variants[i].run();
        ms[i].push(m);
        process.stdout.write(`round ${round + 1} ${variants[i].name}: ${m.toFixed(0)} ms\n`);
      }
    }
  } finally {
    execFileSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', base], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg()[0];
  const baseMedian = median(ms[0]);
  // Each round's variants ran back to back, so a round's ratio shares that round's load.
  const roundRatios = (i: number) => ms[i].map((m, r) => ms[0][r] / m);
  const rows = variants.map((v, i) => `| ${v.name} | ${median(ms[i]).toFixed(0)} ms | ${(baseMedian / median(ms[i])).toFixed(2)}× | ${median(roundRatios(i)).toFixed(2)}× (${roundRatios(i).map((x) => x.toFixed(2)).join(', ')}) | ${ms[i].map((m) => m.toFixed(0)).join(', ')} |`);
  const section = [
    '## Step against an earlier commit',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'cpu'} (${cores} cores; 1-minute load ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after), Node ${process.version}. ` +
      `\`stella bench step --config tiny --selector ${selector} --batch ${batch} --steps ${steps}\` (wasm), each variant in its own child process per round, ${rounds} rounds, the order flipped every other round; each cell is a child's median step; the table gives the median over rounds, and the median of the per-round ratios (the variants of a round ran back to back under the same load). Earlier commit: ${commit}. Reproduce: \`npm run bench:step-against -- --against ${against} --rounds ${rounds}\`.`,
    '',
    '| code | median step | speed vs the earlier commit (medians) | speed, median of per-round ratios | per round (ms) |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(`\n${section}\n`);
  if (write) await writeBenchmarkSection('Step against an earlier commit', section);
}

await main();
