/**
 * `stella sweep [GRAPH] --selectors a,b --seeds 1,2 [--set k=v]... --out DIR [--jobs N | --redis URL]`:
 * one `stella run` per selector × seed, then the mean ± std table (src/sweep/sweep.ts). Locally the
 * runs are child processes; with `--redis` they are BullMQ jobs done by `stella worker` processes on
 * any machine (docs/scale-out.md).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { RunParamError } from './run-params.ts';
import { collect, helpFooter, positiveInt } from './help.ts';
import { sweep, type SweepOptions } from '../sweep/sweep.ts';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const seedList = (v: string) => list(v).map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected non-negative integer seeds, got '${s}'`);
  return n;
});

export function register(program: Command): void {
  program
    .command('sweep [graph]')
    .description('one continual run per selector × seed (local processes or Redis workers), then the mean ± std table')
    .requiredOption('--selectors <a,b,…>', 'selectors to compare', list)
    .requiredOption('--seeds <s1,s2,…>', 'seeds per selector', seedList)
    .option('--set <key=value>', 'a run key or graph key for every run (not seed/selector); repeatable', collect, [])
    .option('--out <dir>', 'output folder', 'runs/sweep')
    .option('--jobs <n>', 'local runs at a time (without --redis)', positiveInt, 1)
    .option('--redis <url>', 'run each run as a BullMQ job on this Redis (redis://host:port) for `stella worker`s')
    .option('--attempts <n>', 'tries per run before it is recorded as failed', positiveInt, 2)
    .option('--fresh', 'rerun runs whose results.json already exists')
    .option('--table-only', 'run nothing; tabulate the runs finished so far')
    .addHelpText('after', helpFooter(
      [
        'stella sweep --selectors stella,random --seeds 1,2 --set data.tasks=2 --set data.classes=2 --set data.train=2 --set data.test=1 --set train.epochs=1 --out runs/sweep --jobs 2',
        'stella sweep --selectors stella,der++ --seeds 2021 --set data.tasks=2 --set data.classes=2 --set data.train=2 --set data.test=1 --set train.epochs=2 --out runs/ep2',
        'stella worker --redis redis://queue-host:6379 &   # on each machine, then:',
        'stella sweep --selectors stella,random --seeds 1,2 --redis redis://queue-host:6379 --out runs/sweep',
      ],
      '0 every run finished, 1 a run failed after its attempts (sweep.json names the error) or the sweep could not run, 2 usage error',
      [
        'Writes DIR/<selector>-seed<seed>/ (results.json, report.html, run.log), DIR/sweep.json and DIR/sweep.md.',
        'A finished run of the same configuration is reused; an interrupted one resumes from its checkpoint.',
        'Progress: runs done, running and queued with ETA, every 10 s and at each finished run.',
      ],
    ))
    .action(async (graph: string | undefined, opts: { selectors: string[]; seeds: number[]; set: string[]; out: string; jobs: number; redis?: string; attempts: number; fresh?: boolean; tableOnly?: boolean }) => {
      const options: SweepOptions = {
        graph, selectors: opts.selectors, seeds: opts.seeds, sets: opts.set, out: opts.out, jobs: opts.jobs, attempts: opts.attempts,
        fresh: !!opts.fresh, tableOnly: !!opts.tableOnly, redis: opts.redis, log: (l) => process.stdout.write(l + '\n'),
      };
      try {
        const outcome = await sweep(options);
        process.stdout.write(`\n${outcome.table}\n\nwrote ${outcome.file}\n`);
        process.exitCode = outcome.runs.some((r) => r.error) ? 1 : 0;
      } catch (e) {
        if (e instanceof RunParamError) throw new InvalidArgumentError(`sweep: ${e.message}`);
        throw e;
      }
    });
}
