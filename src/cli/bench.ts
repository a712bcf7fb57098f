/**
 * `stella bench step`: times training steps of the model.
 *
 *   stella bench step --config tiny --selector full --steps 10 [--batch 8] [--naive] [--compare] [--json]
 *
 * Prints the median step time, samples/s, achieved GFLOP/s (analytic forward+backward FLOPs),
 * peak tensor bytes (tf.memory at the end of the forward) and peak RSS. `--naive` times the plain
 * tfjs model; `--compare` times fast and naive side by side (interleaved) and prints the speedup.
 * Ref: src/model/step-bench.ts; docs/benchmarks.md "Model step".
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { z } from 'zod';
import { describeBackend, initBackend } from '../core/backend.ts';
import { modelConfig } from '../core/config.ts';
import { helpFooter } from './help.ts';
import { benchStep, prepareBench, summarize, type BenchOptions, type BenchResult } from '../model/step-bench.ts';

const optionsSchema = z.object({
  config: z.string().default('tiny'),
  selector: z.string().default('full'),
  steps: z.coerce.number().int().positive().default(10),
  batch: z.coerce.number().int().positive().default(8),
  naive: z.boolean().default(false),
  compare: z.boolean().default(false),
  json: z.boolean().default(false),
});

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
};

function line(r: BenchResult): string {
  return `${r.naive ? 'naive' : 'fast '} config=${r.config} selector=${r.selector} batch=${r.batch} steps=${r.steps}: ` +
    `median ${r.medianMs.toFixed(1)} ms/step, ${r.samplesPerSecond.toFixed(2)} samples/s, ${r.gflops.toFixed(2)} GFLOP/s, ` +
    `peak tensors ${(r.peakTensorBytes / 2 ** 20).toFixed(1)} MiB, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`;
}

export function register(program: Command): void {
  const bench = program
    .command('bench')
    .description('performance measurements (more benchmarks run as npm scripts, see --help)')
    .addHelpText('after', helpFooter(
      ['stella bench step --compare', 'npm run bench:ingest', 'npm run bench:pipeline'],
      '0 measured, 1 the benchmark failed, 2 usage error',
    ));
  bench
    .command('step')
    .description('time model training steps (median over --steps)')
    .addOption(new Option('--config <name>', 'model config').choices(['tiny', 'base']).default('tiny'))
    .option('--selector <name>', 'step selector (full = Mode-C finetune step)', 'full')
    .option('--steps <n>', 'timed steps', positiveInt, 10)
    .option('--batch <n>', 'batch size', positiveInt, 8)
    .option('--naive', 'plain tfjs matmuls (the baseline)')
    .option('--compare', 'time fast and naive side by side and print the speedup')
    .option('--json', 'print { backend, results: [{ medianMs, samplesPerSecond, gflops, peakTensorBytes, peakRssBytes, … }], speedup } as JSON')
    .addHelpText('after', helpFooter(
      ['stella bench step --config tiny --selector full --steps 10 --compare', 'stella bench step --batch 4 --steps 5 --json'],
      '0 measured, 1 the benchmark failed, 2 usage error',
      ['Prints one line per variant; no progress display (the steps are timed, so nothing else should run).'],
    ))
    .action(async (raw: unknown) => {
      const o = optionsSchema.parse(raw);
      const backend = await initBackend();
      const base: BenchOptions = { config: modelConfig(o.config), selector: o.selector, steps: o.steps, batch: o.batch, naive: o.naive };
      let results: BenchResult[];
      if (o.compare) {
        const fast = prepareBench({ ...base, naive: false });
        const naive = prepareBench({ ...base, naive: true });
        const tf: number[] = [], tn: number[] = [];
        // Interleave so both variants see the same machine load.
        for (let i = 0; i < o.steps; i++) { tf.push(...fast.run(1)); tn.push(...naive.run(1)); }
        results = [summarize({ ...base, naive: false }, tf, fast.flopsPerStep, fast.peakTensorBytes()), summarize({ ...base, naive: true }, tn, naive.flopsPerStep, naive.peakTensorBytes())];
        fast.dispose(); naive.dispose();
      } else {
        results = [benchStep(base)];
      }
      const speedup = results.length === 2 ? results[1].medianMs / results[0].medianMs : undefined;
      if (o.json) process.stdout.write(JSON.stringify({ backend: backend.name, results, speedup }, null, 2) + '\n');
      else {
        process.stdout.write(describeBackend(backend) + '\n');
        for (const r of results) process.stdout.write(line(r) + '\n');
        if (speedup) process.stdout.write(`speedup (naive median / fast median): ${speedup.toFixed(2)}x\n`);
      }
    });
}
