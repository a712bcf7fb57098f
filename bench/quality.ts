/**
 * Quality benchmark: every strategy × several seeds through the whole continual run, and the table of
 * 𝒜 and ℱ (R@1/5/10 and their average, both retrieval directions, mean ± population std over seeds).
 *
 * Each (selector, seed) is one `stella run` in its own child process (`bin/stella.js run --quiet`),
 * default graph and run keys plus `seed=…`, `selector=…` and the `--set` passthrough, output in
 * `<out>/<selector>-seed<seed>/`. Runs are independent; `--jobs` of them run at a time. A run whose
 * results.json already exists is reused (`--fresh` reruns it), so an interrupted benchmark resumes.
 * Writes `<out>/quality.json` (per-run summaries and the seed aggregates) and `<out>/quality.md`
 * (the tables), and prints the tables.
 *
 *   npm run bench:quality -- [--seeds 2021,2022,2023] [--selectors stella,der++,finetune]
 *                            [--set train.lr=1e-3]... [--jobs 2] [--out runs/quality] [--fresh] [--table-only]
 *
 * `--table-only` runs nothing: it tabulates the runs already finished under `--out` (e.g. while a
 * benchmark is still going).
 *
 * Defaults: all of CONTINUAL_STRATEGY_NAMES (multitask included: the upper bound), seeds 2021–2023, 2 jobs.
 * Ref: spec §9.2–9.3 (𝒜, ℱ), paper-results §3.1 and §3.3; docs/results.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { meanStd } from '../src/eval/continual-metrics.ts';
import { parseResults, type Results } from '../src/eval/results.ts';
import { CONTINUAL_STRATEGY_NAMES } from '../src/method/strategy-registry.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The comparisons that matter first, then the rest (an interrupted run still answers the key question). */
const PRIORITY = ['stella', 'der++', 'finetune', 'multitask'];

const optionsSchema = z.object({
  seeds: z.array(z.number().int().nonnegative()).min(1),
  selectors: z.array(z.string().min(1)).min(1),
  sets: z.array(z.string().regex(/^[^=]+=.*$/, 'expected key=value')),
  jobs: z.number().int().positive(),
  out: z.string().min(1),
  fresh: z.boolean(),
  tableOnly: z.boolean(),
});
type Options = z.output<typeof optionsSchema>;

function parseArgs(argv: string[]): Options {
  const o = { seeds: [2021, 2022, 2023], selectors: [...CONTINUAL_STRATEGY_NAMES], sets: [] as string[], jobs: 2, out: path.join('runs', 'quality'), fresh: false, tableOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench:quality: ${a} needs a value`);
      return v;
    };
    if (a === '--seeds') o.seeds = value().split(',').map(Number);
    else if (a === '--selectors') o.selectors = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--set') o.sets.push(value());
    else if (a === '--jobs') o.jobs = Number(value());
    else if (a === '--out') o.out = value();
    else if (a === '--fresh') o.fresh = true;
    else if (a === '--table-only') o.tableOnly = true;
    else throw new Error(`bench:quality: unknown argument '${a}' (options: --seeds, --selectors, --set, --jobs, --out, --fresh, --table-only)`);
  }
  const parsed = optionsSchema.safeParse(o);
  if (!parsed.success) throw new Error(`bench:quality: --${String(parsed.error.issues[0].path[0])}: ${parsed.error.issues[0].message}`);
  for (const s of parsed.data.sets) {
    if (/^(seed|selector)=/.test(s)) throw new Error(`bench:quality: --set ${s}: use --seeds / --selectors instead`);
  }
  return parsed.data;
}

interface Job { selector: string; seed: number; dir: string }
interface Done extends Job { results: Results; wallSeconds: number; reused: boolean }

function runOne(job: Job, sets: string[]): Promise<number> {
  mkdirSync(job.dir, { recursive: true });
  const logFd = openSync(path.join(job.dir, 'run.log'), 'w');
  const args = [path.join(ROOT, 'bin', 'stella.js'), 'run', '--quiet', '--out', job.dir, '--set', `seed=${job.seed}`, '--set', `selector=${job.selector}`, ...sets.flatMap((s) => ['--set', s])];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', logFd, logFd] });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      closeSync(logFd);
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new Error(`${job.selector} seed ${job.seed}: stella run exited with ${code ?? signal}; see ${path.join(job.dir, 'run.log')}`));
    });
  });
}

async function runAll(o: Options, log: (l: string) => void): Promise<{ done: Done[]; failed: string[] }> {
  const order = [...PRIORITY.filter((s) => o.selectors.includes(s)), ...o.selectors.filter((s) => !PRIORITY.includes(s))];
  const queue: Job[] = order.flatMap((selector) => o.seeds.map((seed) => ({ selector, seed, dir: path.resolve(o.out, `${selector.replace(/[^\w.+-]/g, '_')}-seed${seed}`) })));
  const done: Done[] = [], failed: string[] = [];
  const total = queue.length;
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const file = path.join(job.dir, 'results.json');
      try {
        let wallSeconds = 0, reused = false;
        if (!o.fresh && existsSync(file)) reused = true;
        else if (o.tableOnly) continue;
        else wallSeconds = await runOne(job, o.sets);
        const results = parseResults(JSON.parse(await readFile(file, 'utf8')));
        if (reused) wallSeconds = results.timing.wallSeconds;
        done.push({ ...job, results, wallSeconds, reused });
        const avg = results.summary;
        log(`[${done.length + failed.length}/${total}] ${job.selector} seed ${job.seed}: A→V 𝒜 ${avg.a2v.avg.A.toFixed(2)}, V→A 𝒜 ${avg.v2a.avg.A.toFixed(2)}, ${reused ? 'reused' : `${wallSeconds.toFixed(0)} s`}`);
      } catch (e) {
        failed.push((e as Error).message);
        log(`[${done.length + failed.length}/${total}] FAILED ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, total) }, worker));
  return { done, failed };
}

const DIRECTIONS = [['a2v', 'A→V'], ['v2a', 'V→A']] as const;
const METRICS = [['R1', 'R@1'], ['R5', 'R@5'], ['R10', 'R@10'], ['avg', 'Avg']] as const;
type Score = 'A' | 'F' | 'F_authors';

export interface SelectorAggregate {
  selector: string;
  seeds: number[];
  /** [direction][metric][score] → mean ± std over seeds. */
  summary: Record<string, Record<string, Record<Score, { mean: number; std: number }>>>;
  stepMsMedian: { mean: number; std: number };
  peakTensorBytes: { mean: number; std: number };
  bufferBytes: number;
  wallSeconds: number;
}

export function aggregate(done: Done[], selectors: string[]): SelectorAggregate[] {
  const out: SelectorAggregate[] = [];
  for (const selector of selectors) {
    const runs = done.filter((d) => d.selector === selector).sort((a, b) => a.seed - b.seed);
    if (runs.length === 0) continue;
    const summary: SelectorAggregate['summary'] = {};
    for (const [d] of DIRECTIONS) {
      summary[d] = {};
      for (const [m] of METRICS) {
        const pick = (s: Score) => meanStd(runs.map((r) => (r.results.summary as any)[d][m][s] as number));
        summary[d][m] = { A: pick('A'), F: pick('F'), F_authors: pick('F_authors') };
      }
    }
    out.push({
      selector, seeds: runs.map((r) => r.seed), summary,
      stepMsMedian: meanStd(runs.map((r) => r.results.timing.stepMsMedian)),
      peakTensorBytes: meanStd(runs.map((r) => r.results.memory.peakTensorBytes)),
      bufferBytes: runs[0].results.memory.bufferBytes,
      wallSeconds: runs.reduce((s, r) => s + r.wallSeconds, 0),
    });
  }
  return out;
}

const pm = (x: { mean: number; std: number }) => `${x.mean.toFixed(2)} ± ${x.std.toFixed(2)}`;

/** Markdown: one Avg table (𝒜, ℱ_authors, textbook F) and one per-recall table per direction. */
export function tables(aggs: SelectorAggregate[]): string {
  const lines: string[] = [];
  lines.push('| Selector | seeds | A→V 𝒜 ↑ | A→V ℱ ↓ | A→V F | V→A 𝒜 ↑ | V→A ℱ ↓ | V→A F | median step | peak tensors |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const a of aggs) {
    const s = a.summary;
    lines.push(`| ${a.selector} | ${a.seeds.length} | ${pm(s.a2v.avg.A)} | ${pm(s.a2v.avg.F_authors)} | ${pm(s.a2v.avg.F)} | ${pm(s.v2a.avg.A)} | ${pm(s.v2a.avg.F_authors)} | ${pm(s.v2a.avg.F)} | ${a.stepMsMedian.mean.toFixed(0)} ms | ${(a.peakTensorBytes.mean / 2 ** 20).toFixed(1)} MiB |`);
  }
  for (const [d, label] of DIRECTIONS) {
    lines.push('', `${label}, per recall (𝒜 / ℱ = F_authors):`, '', '| Selector | R@1 𝒜 | R@1 ℱ | R@5 𝒜 | R@5 ℱ | R@10 𝒜 | R@10 ℱ |', '|---|---|---|---|---|---|---|');
    for (const a of aggs) {
      const s = a.summary[d];
      lines.push(`| ${a.selector} | ${pm(s.R1.A)} | ${pm(s.R1.F_authors)} | ${pm(s.R5.A)} | ${pm(s.R5.F_authors)} | ${pm(s.R10.A)} | ${pm(s.R10.F_authors)} |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const unknown = o.selectors.filter((s) => !CONTINUAL_STRATEGY_NAMES.includes(s));
  if (unknown.length) process.stderr.write(`bench:quality: ${unknown.join(', ')} not built in; passing to stella run as plugin selector(s)\n`);
  const log = (l: string) => process.stdout.write(l + '\n');
  mkdirSync(o.out, { recursive: true });
  const started = performance.now();
  log(`bench:quality: ${o.selectors.length} selector(s) × ${o.seeds.length} seed(s), ${o.jobs} at a time, sets [${o.sets.join(' ')}], out ${o.out}`);
  const { done, failed } = await runAll(o, log);
  const wallSeconds = (performance.now() - started) / 1000;
  const aggs = aggregate(done, o.selectors);
  const md = [
    ...(o.tableOnly ? [`Runs finished so far: ${done.length} of ${o.selectors.length * o.seeds.length}.`] : []),
    `Setting: generated corpus (defaults of \`stella run\`), tiny config, seeds ${o.seeds.join(', ')}${o.sets.length ? `, --set ${o.sets.join(' ')}` : ''}.`,
    `${o.tableOnly ? '' : `Wall time ${(wallSeconds / 60).toFixed(1)} min (${o.jobs} runs at a time); `}runs' own wall time summed ${(done.reduce((t, d) => t + d.wallSeconds, 0) / 60).toFixed(1)} min; mean ± population std over seeds; ℱ = F_authors, F = textbook.`,
    '', tables(aggs),
    ...(failed.length ? ['', 'Failed runs:', ...failed.map((f) => `- ${f}`)] : []),
  ].join('\n');
  const stem = o.tableOnly ? 'quality-partial' : 'quality';
  await writeFile(path.join(o.out, `${stem}.json`), JSON.stringify({
    options: o, wallSeconds, failed, aggregates: aggs,
    runs: done.map((d) => ({ selector: d.selector, seed: d.seed, dir: d.dir, wallSeconds: d.wallSeconds, reused: d.reused, summary: d.results.summary, memory: d.results.memory, timing: d.results.timing })),
  }, null, 2) + '\n');
  await writeFile(path.join(o.out, `${stem}.md`), md + '\n');
  log('\n' + md);
  if (failed.length) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exitCode = 1; });
}
