/**
 * `stella sweep`: one continual run per selector × seed, then the mean ± std table over seeds.
 *
 * Each run gets `--set seed=… --set selector=…` plus the sweep's `--set` values and writes
 * `<out>/<selector>-seed<seed>/` (results.json, report.html, checkpoints/, run.log). The runs go to an
 * executor: local child processes, `jobs` at a time (the embedded default), or BullMQ jobs on Redis
 * done by `stella worker` processes (src/scale/redis-sweep.ts). A failed run is retried up to
 * `attempts` times in all, resuming from its newest checkpoint; one that still fails is recorded with
 * its error and the sweep goes on. A run whose folder already holds results.json of the same
 * configuration is reused (`fresh` reruns it), one with checkpoints is resumed, so an interrupted
 * sweep continues where it stopped.
 *
 * Writes `<out>/sweep.json`: `{ options, wallSeconds, runs: [{ selector, seed, dir, worker, attempts,
 * wallSeconds, reused, error?, results }], aggregates, table }` and `<out>/sweep.md` (the table).
 * `tableOnly` runs nothing and tabulates what is finished (sweep-partial.json / .md).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRunSets, RunParamError, type RunParams } from '../cli/run-params.ts';
import type { Results } from '../eval/results.ts';
import { clearRun, inspectRunFolder, readResultsFile } from './run-folder.ts';
import { startRun } from './run-process.ts';
import { SweepProgress } from './sweep-progress.ts';
import { aggregate, tables, type SelectorAggregate } from './sweep-table.ts';

export interface SweepOptions {
  graph?: string;
  selectors: string[];
  seeds: number[];
  /** `key=value` run keys or graph keys for every run (not seed or selector). */
  sets: string[];
  out: string;
  /** Local runs at a time. */
  jobs: number;
  /** Tries per run in all (a BullMQ job's `attempts`). */
  attempts: number;
  fresh: boolean;
  tableOnly: boolean;
  /** redis://host:port: runs become BullMQ jobs for `stella worker`s. */
  redis?: string;
  log: (line: string) => void;
  /** How often the progress line is printed while nothing changes (ms). */
  progressEveryMs?: number;
  /** Stops waiting for Redis jobs (the jobs stay queued; a later sweep collects them). */
  signal?: AbortSignal;
}

/** One planned run. */
export interface RunSpec {
  selector: string;
  seed: number;
  /** `<selector>-seed<seed>`, safe as a folder name and a job id. */
  key: string;
  dir: string;
  /** The `--set` values of this run (the sweep's plus seed and selector). */
  sets: string[];
  params: RunParams;
}

export interface SweepRun {
  selector: string;
  seed: number;
  dir: string;
  /** `host:pid` of the process that finished (or last tried) the run; `reused` for an earlier result. */
  worker: string;
  /** Tries started (a resumed try counts; a reused result counts 0). */
  attempts: number;
  wallSeconds: number;
  reused: boolean;
  error?: string;
  results: Results | null;
}

export interface SweepOutcome { runs: SweepRun[]; aggregates: SelectorAggregate[]; table: string; wallSeconds: number; file: string }

/** Runs every spec; reports states to `progress`; resolves with one record per spec. */
export type SweepExecutor = (specs: RunSpec[], o: SweepOptions, progress: SweepProgress) => Promise<SweepRun[]>;

export function planRuns(o: Pick<SweepOptions, 'selectors' | 'seeds' | 'sets' | 'out'>): RunSpec[] {
  if (o.selectors.length === 0) throw new RunParamError('--selectors: give at least one selector');
  if (o.seeds.length === 0 || o.seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new RunParamError(`--seeds: expected non-negative integers, got '${o.seeds.join(',')}'`);
  for (const s of o.sets) if (/^(seed|selector)=/.test(s)) throw new RunParamError(`--set ${s}: use --seeds / --selectors instead`);
  return o.selectors.flatMap((selector) => o.seeds.map((seed) => {
    const key = `${selector.replace(/[^\w.+-]/g, '_')}-seed${seed}`;
    const sets = [...o.sets, `seed=${seed}`, `selector=${selector}`];
    return { selector, seed, key, dir: path.resolve(o.out, key), sets, params: parseRunSets(sets).params };
  }));
}

export async function sweep(options: SweepOptions): Promise<SweepOutcome> {
  const o = { ...options, graph: options.graph && path.resolve(options.graph) };
  const specs = planRuns(o);
  await mkdir(o.out, { recursive: true });
  const started = performance.now();
  const progress = new SweepProgress(specs.map((s) => s.key));
  o.log(`sweep: ${o.selectors.length} selector(s) × ${o.seeds.length} seed(s) = ${specs.length} runs, ${o.redis ? `BullMQ jobs on ${o.redis}` : `${o.jobs} local at a time`}, out ${o.out}`);
  let execute: SweepExecutor = runLocally;
  if (o.tableOnly) execute = tabulateOnly;
  // Loaded only when asked for, so local sweeps never load the Redis client.
  else if (o.redis) execute = (await import('../scale/redis-sweep.ts')).redisSweepExecutor;
  const timer = setInterval(() => o.log(progress.line()), o.progressEveryMs ?? 10_000);
  let runs: SweepRun[];
  try {
    runs = await execute(specs, o, progress);
  } finally {
    clearInterval(timer);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const finished = runs.filter((r): r is SweepRun & { results: Results } => r.results !== null);
  const aggregates = aggregate(finished, o.selectors);
  const failed = runs.filter((r) => r.error);
  const table = [
    ...(o.tableOnly ? [`Runs finished so far: ${finished.length} of ${specs.length}.`] : []),
    `Setting: ${o.graph ? `graph ${o.graph}` : 'default graph'} (defaults of \`stella run\`), seeds ${o.seeds.join(', ')}${o.sets.length ? `, --set ${o.sets.join(' ')}` : ''}.`,
    `${o.tableOnly ? '' : `Wall time ${(wallSeconds / 60).toFixed(1)} min; `}runs' own wall time summed ${(finished.reduce((t, d) => t + d.wallSeconds, 0) / 60).toFixed(1)} min; mean ± population std over seeds; ℱ = F_authors, F = textbook.`,
    '', tables(aggregates),
    ...(failed.length ? ['', 'Failed runs:', ...failed.map((f) => `- ${f.selector} seed ${f.seed} (${f.attempts} attempt(s)): ${f.error}`)] : []),
  ].join('\n');
  const stem = o.tableOnly ? 'sweep-partial' : 'sweep';
  const file = path.join(o.out, `${stem}.json`);
  const { log: _log, ...recorded } = o;
  await writeFile(file, JSON.stringify({ options: recorded, wallSeconds, runs, aggregates, table }, null, 2) + '\n');
  await writeFile(path.join(o.out, `${stem}.md`), table + '\n');
  o.log(progress.line());
  return { runs, aggregates, table, wallSeconds, file };
}

/** A reused run's record. */
export const reusedRun = (spec: RunSpec, results: Results): SweepRun => ({
  selector: spec.selector, seed: spec.seed, dir: spec.dir, worker: 'reused', attempts: 0, wallSeconds: results.timing.wallSeconds, reused: true, results,
});

const tabulateOnly: SweepExecutor = async (specs, o, progress) => {
  const runs: SweepRun[] = [];
  for (const spec of specs) {
    const state = await inspectRunFolderReadOnly(spec);
    if (state) { runs.push(reusedRun(spec, state)); progress.set(spec.key, 'done', { reused: true }); }
  }
  return runs;
};

async function inspectRunFolderReadOnly(spec: RunSpec): Promise<Results | undefined> {
  return readResultsFile(path.join(spec.dir, 'results.json')).catch(() => undefined);
}

/** The embedded executor: `jobs` child processes at a time on this machine. */
const runLocally: SweepExecutor = async (specs, o, progress) => {
  const queue = [...specs];
  const runs = new Map<string, SweepRun>();
  const slot = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      const run = await runLocalWithRetries(spec, o, progress);
      runs.set(spec.key, run);
      o.log(describeRun(run, runs.size, specs.length));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, specs.length) }, slot));
  return specs.map((s) => runs.get(s.key)!);
};

async function runLocalWithRetries(spec: RunSpec, o: SweepOptions, progress: SweepProgress): Promise<SweepRun> {
  const state = await inspectRunFolder(spec.dir, spec.params, o.fresh);
  if (state.kind === 'finished') {
    progress.set(spec.key, 'done', { reused: true });
    return reusedRun(spec, state.results);
  }
  let resume = state.kind === 'resumable', worker = '', error = '';
  const started = performance.now();
  progress.set(spec.key, 'running');
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    try {
      const child = await startRun({ graph: o.graph, sets: spec.sets, out: spec.dir, resume });
      worker = child.id;
      const { stopped } = await child.finished;
      if (stopped) throw new Error('stella run was stopped before the end (SIGINT/SIGTERM); rerun the sweep to resume it');
      const results = await readResultsFile(path.join(spec.dir, 'results.json'));
      progress.set(spec.key, 'done');
      return { selector: spec.selector, seed: spec.seed, dir: spec.dir, worker, attempts: attempt, wallSeconds: (performance.now() - started) / 1000, reused: false, results };
    } catch (e) {
      error = (e as Error).message;
      resume = (await inspectRunFolder(spec.dir, spec.params, false)).kind === 'resumable';
      if (!resume) await clearRun(spec.dir);
      if (attempt < o.attempts) o.log(`sweep: ${spec.key} attempt ${attempt} failed (${error}); retrying${resume ? ' from its checkpoint' : ''}`);
    }
  }
  progress.set(spec.key, 'failed');
  return { selector: spec.selector, seed: spec.seed, dir: spec.dir, worker, attempts: o.attempts, wallSeconds: (performance.now() - started) / 1000, reused: false, error, results: null };
}

export function describeRun(run: SweepRun, n: number, total: number): string {
  if (!run.results) return `[${n}/${total}] FAILED ${run.selector} seed ${run.seed} after ${run.attempts} attempt(s): ${run.error}`;
  const s = run.results.summary;
  return `[${n}/${total}] ${run.selector} seed ${run.seed}: A→V 𝒜 ${s.a2v.avg.A.toFixed(2)}, V→A 𝒜 ${s.v2a.avg.A.toFixed(2)}, ${run.reused ? 'reused' : `${run.wallSeconds.toFixed(0)} s on ${run.worker}, ${run.attempts} attempt(s)`}`;
}
