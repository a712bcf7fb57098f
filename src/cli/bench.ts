/**
 * `stella bench step`: times training steps of the model, per selector.
 *
 *   stella bench step --config tiny --selector full --steps 10 [--batch 8] [--naive] [--compare] [--json]
 *   stella bench step --selector all --batch 4 --steps 10          # every selector, side by side
 *   stella bench step --selector stella,der++ --batch 4 --steps 10
 *
 * Selectors: `full` (the bare Mode-C step over a ModelService), every strategy of STRATEGY_NAMES and every
 * plugin patch selector (plugins/*.ts). A strategy step is one `StrategyTrainer.step` on a batch of
 * `--batch` current rows (random patch tokens, four batches in rotation) after `--warmup` untimed steps
 * (default 2), so the replay buffer already holds rows and STELLA / ER / DER++ train on N current + N
 * replay rows. Several selectors run side by side in one process, one step of each per round.
 *
 * Prints per selector the median step ms, samples/s (current rows), achieved GFLOP/s (analytic FLOPs of
 * the Mode-C step; none is written down for the STELLA family's Mode A + AVM + Mode D step, so it is
 * omitted there), rows per step (current + replay), peak tensor bytes (high-water mark within the step,
 * net of other selectors' models), replay-buffer bytes and process peak RSS; with both `stella` and
 * `der++` present, STELLA's memory and time reductions against DER++. `--naive` times the plain tfjs
 * model; `--compare` runs fast and naive side by side and prints the speedup.
 * Ref: src/model/step-bench.ts; docs/benchmarks.md "Model step", "Selectors"; paper-results §3.3.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { z } from 'zod';
import { describeBackend, initBackend } from '../core/backend.ts';
import { installShapeOnlyKernels } from '../core/shape-only-kernels.ts';
import { modelConfig, tokenGrid } from '../core/config.ts';
import { createContainer } from '../graph/container.ts';
import { SelectorRegistry } from '../method/selector-registry.ts';
import type { PatchSelector } from '../method/patch-selector.ts';
import { STRATEGY_NAMES } from '../method/strategy-registry.ts';
import { StrategyTrainer } from '../method/strategy-trainer.ts';
import { helpFooter, positiveInt } from './help.ts';
import {
  benchSideBySide, benchStep, maeRandomForwardFlops, registerStepSelector, stepSelectorNames,
  type BenchOptions, type BenchResult, type StepContext, type StepRunner,
} from '../model/step-bench.ts';

const optionsSchema = z.object({
  config: z.string().default('tiny'),
  selector: z.string().default('full'),
  steps: z.coerce.number().int().positive().default(10),
  batch: z.coerce.number().int().positive().default(8),
  warmup: z.coerce.number().int().nonnegative().default(2),
  naive: z.boolean().default(false),
  compare: z.boolean().default(false),
  shapeOnly: z.boolean().default(false),
  json: z.boolean().default(false),
});

/** Strategies whose training forward is Mode C on all rows (spec §8): the analytic count applies. */
const MODE_C_STRATEGIES = new Set(['finetune', 'multitask', 'er', 'der++', 'lump']);
/** Distinct random batches a strategy step cycles through (so the buffer holds different rows). */
const BATCH_POOL = 4;

/** One StrategyTrainer step per bench step; `choice` is a strategy name or a patch selector. */
export function strategyStepRunner(choice: string | (() => PatchSelector), ctx: StepContext): StepRunner {
  const trainer = new StrategyTrainer(ctx.config, ctx.rng.fork('trainer'), { fastMatmul: !ctx.naive });
  const strategy = trainer.use(typeof choice === 'string' ? choice : choice());
  const g = tokenGrid(ctx.config), N = ctx.batch;
  const data = ctx.rng.fork('data');
  const pool = Array.from({ length: BATCH_POOL }, () => ({
    video: data.fillUniform(new Float32Array(N * g.videoTokens * g.videoPatchDim)),
    audio: data.fillUniform(new Float32Array(N * g.audioTokens * g.audioPatchDim)),
  }));
  const modeC = MODE_C_STRATEGIES.has(strategy.name);
  let next = 0;
  return {
    step() {
      const rows = pool[next++ % BATCH_POOL];
      const video = tf.tensor3d(rows.video, [N, g.videoTokens, g.videoPatchDim]);
      const audio = tf.tensor3d(rows.audio, [N, g.audioTokens, g.audioPatchDim]);
      try {
        const out = trainer.step({ video, audio });
        const trained = out.memory.rows;
        return { rows: trained, replayed: out.memory.replayed, flops: modeC ? 3 * maeRandomForwardFlops(ctx.config, trained) : undefined };
      } finally {
        video.dispose();
        audio.dispose();
      }
    },
    flopsNote: modeC ? undefined : 'no analytic count for Mode A scoring + AVM + Mode D',
    bufferBytes: () => trainer.bufferBytes,
    dispose: () => trainer.dispose(),
  };
}

for (const name of STRATEGY_NAMES) registerStepSelector(name, (ctx) => strategyStepRunner(name, ctx));

/** Registers the plugin patch selectors (plugins/*.ts); returns their names. */
export async function registerPluginStepSelectors(): Promise<string[]> {
  const registry = (await createContainer({ autoloadPlugins: true })).get<SelectorRegistry>(SelectorRegistry);
  const plugins = registry.names().filter((n) => !STRATEGY_NAMES.includes(n) && n !== 'full');
  for (const name of plugins) {
    registerStepSelector(name, (ctx) => strategyStepRunner(() => registry.create(name) as PatchSelector, ctx));
  }
  return plugins;
}

const nonNegativeInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
};

const MiB = (b: number) => (b / 2 ** 20).toFixed(1);

export interface Reduction {
  /** 1 − STELLA / DER++ of peak tensor bytes and of median step time. */
  memory: number;
  time: number;
  goals: { memory: number; time: number };
  met: { memory: boolean; time: boolean };
}

/** STELLA's reductions against full-patch DER++ (goals ≥ 40 % memory, ≥ 35 % time). */
export function reductions(results: BenchResult[]): Reduction | undefined {
  const pick = (s: string) => results.find((r) => r.selector === s && !r.naive) ?? results.find((r) => r.selector === s);
  const stella = pick('stella'), der = pick('der++');
  if (!stella || !der) return undefined;
  const memory = 1 - stella.peakTensorBytes / der.peakTensorBytes, time = 1 - stella.medianMs / der.medianMs;
  const goals = { memory: 0.4, time: 0.35 };
  return { memory, time, goals, met: { memory: memory >= goals.memory, time: time >= goals.time } };
}

export function resultTable(results: BenchResult[]): string {
  const head = ['selector', 'variant', 'rows (replay)', 'median ms', 'samples/s', 'GFLOP/s', 'peak tensors MiB', 'resident MiB', 'buffer MiB', 'peak RSS MiB'];
  const rows = results.map((r) => [
    r.selector, r.naive ? 'naive' : 'fast', `${r.rows} (${r.replayed})`, r.medianMs.toFixed(1), r.samplesPerSecond.toFixed(2),
    r.gflops === undefined ? '—' : r.gflops.toFixed(2), MiB(r.peakTensorBytes), MiB(r.residentTensorBytes), MiB(r.bufferBytes), (r.peakRssBytes / 2 ** 20).toFixed(0),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  const lines = [fmt(head), ...rows.map(fmt)];
  const notes = [...new Set(results.filter((r) => r.gflops === undefined && r.flopsNote).map((r) => r.flopsNote!))];
  if (notes.length) lines.push(`GFLOP/s —: ${notes.join('; ')}`);
  if (results.length > 1) lines.push('peak RSS is the process high-water mark, shared by the selectors run side by side');
  const leaks = results.filter((r) => r.leakedTensorBytes !== 0);
  for (const r of leaks) lines.push(`warning: ${r.selector} left ${r.leakedTensorBytes} tensor bytes behind over its timed steps`);
  return lines.join('\n');
}

function reductionLine(d: Reduction): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return `stella vs der++: peak tensor memory ${pct(d.memory)} less (goal ≥ ${pct(d.goals.memory)}: ${d.met.memory ? 'met' : 'NOT met'}), ` +
    `step time ${pct(d.time)} less (goal ≥ ${pct(d.goals.time)}: ${d.met.time ? 'met' : 'NOT met'})`;
}

/** `--selector` value → selector names (`all` = every registered one). */
export function parseSelectorList(value: string, known: string[]): string[] {
  const names = value === 'all' ? known : value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length || names.length === 0) throw new InvalidArgumentError(`unknown selector(s) ${unknown.join(', ') || "''"}; known: ${known.join(', ')}, or all`);
  return [...new Set(names)];
}

export function register(program: Command): void {
  const bench = program
    .command('bench')
    .description('performance measurements (more benchmarks run as npm scripts, see --help)')
    .addHelpText('after', helpFooter(
      ['stella bench step --compare', 'stella bench step --selector all --batch 4 --steps 2 --warmup 1',
        'npm run bench:ingest -- --clips 4 --runs 1            # add --write to update docs/benchmarks.md',
        'npm run bench:pipeline -- --rounds 1 --clips 8        # add --write to update docs/benchmarks.md',
        'npm run bench:memory-base -- --runs 3 --batch 1,2     # STELLA vs DER++ peak at base, shape-only kernels (~25 min, ~11 GiB RSS)',
        'npm run bench:quality                                 # all selectors × 3 seeds (hours; docs/benchmarks.md)'],
      '0 measured, 1 the benchmark failed, 2 usage error',
    ));
  bench
    .command('step')
    .description('time model training steps per selector (median over --steps)')
    .addOption(new Option('--config <name>', 'model config').choices(['tiny', 'base']).default('tiny'))
    .option('--selector <names>', 'full (bare Mode-C step), a strategy or plugin selector, a comma list, or all', 'full')
    .option('--steps <n>', 'timed steps', positiveInt, 10)
    .option('--batch <n>', 'current rows per step', positiveInt, 8)
    .option('--warmup <n>', 'untimed steps first (the replay buffer fills)', nonNegativeInt, 2)
    .option('--naive', 'plain tfjs matmuls (the baseline)')
    .option('--compare', 'time fast and naive side by side and print the speedup')
    .option('--shape-only', 'products, elementwise, softmax, transpose, reductions and copies allocate zero-filled outputs of the right shape without computing (memory only: the tensor-byte peak is exact, times and values are not; see docs/benchmarks.md "Memory at base")')
    .option('--json', 'print { backend, threads, results: [{ selector, medianMs, samplesPerSecond, gflops, rows, replayed, peakTensorBytes, bufferBytes, peakRssBytes, … }], speedup, reduction } as JSON')
    .addHelpText('after', helpFooter(
      [
        'stella bench step --config tiny --selector full --steps 10 --compare',
        'stella bench step --selector all --batch 4 --steps 2 --warmup 1   # every selector once (raise --steps for a real median)',
        'stella bench step --selector stella,der++ --batch 4 --steps 3 --json',
        'STELLA_BACKEND=cpu stella bench step --selector der++ --batch 2 --steps 1 --warmup 1 --shape-only   # peak tensors only (add --config base for ViT-B)',
      ],
      '0 measured, 1 the benchmark failed, 2 usage error',
      ['Prints one row per selector (and variant); no progress display (the steps are timed, so nothing else should run).'],
    ))
    .action(async (raw: unknown) => {
      const o = optionsSchema.parse(raw);
      const backend = await initBackend();
      const needsPlugins = o.selector === 'all' || o.selector.split(',').some((s) => !stepSelectorNames().includes(s.trim()));
      if (needsPlugins) await registerPluginStepSelectors();
      let names: string[];
      try {
        names = parseSelectorList(o.selector, stepSelectorNames());
      } catch (e) {
        process.stderr.write(`stella bench step: --selector: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const config = modelConfig(o.config);
      const variant = (selector: string, naive: boolean): BenchOptions => ({ config, selector, steps: o.steps, batch: o.batch, naive, warmup: o.warmup });
      const variants = names.flatMap((s) => (o.compare ? [variant(s, false), variant(s, true)] : [variant(s, o.naive)]));
      // Shape-only kernels for the whole measurement (warm-up included: only shapes matter), real ones after.
      const restoreKernels = o.shapeOnly ? installShapeOnlyKernels() : undefined;
      let results: BenchResult[];
      try {
        results = variants.length === 1 ? [benchStep(variants[0])] : benchSideBySide(variants, o.steps);
      } finally {
        restoreKernels?.();
      }
      const speedup = o.compare && names.length === 1 ? results[1].medianMs / results[0].medianMs : undefined;
      const reduction = reductions(results);
      if (o.json) process.stdout.write(JSON.stringify({ backend: backend.name, threads: backend.threads?.count, shapeOnly: o.shapeOnly, results, speedup, reduction }, null, 2) + '\n');
      else {
        process.stdout.write(`${describeBackend(backend)}\nconfig=${config.name} batch=${o.batch} steps=${o.steps} warmup=${o.warmup}${o.shapeOnly ? ' shape-only (peak tensors exact; times, GFLOP/s and values are not)' : ''}\n`);
        process.stdout.write(resultTable(results) + '\n');
        if (speedup) process.stdout.write(`speedup (naive median / fast median): ${speedup.toFixed(2)}x\n`);
        if (reduction) process.stdout.write(reductionLine(reduction) + '\n');
      }
    });
}
