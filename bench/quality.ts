/**
 * Quality benchmark: every strategy × several seeds through the whole continual run, and the table of
 * 𝒜 and ℱ (R@1/5/10 and their average, both retrieval directions, mean ± population std over seeds).
 *
 * A thin wrapper over `stella sweep` (src/sweep/sweep.ts) with the benchmark's defaults: all of
 * CONTINUAL_STRATEGY_NAMES (multitask included: the upper bound), the key comparisons first, seeds 2021–2023,
 * 2 runs at a time, out runs/quality. Writes `<out>/sweep.json` and `<out>/sweep.md` and prints the
 * tables. Finished runs are reused (`--fresh` reruns them), interrupted ones resume.
 *
 *   npm run bench:quality -- [--seeds 2021,2022,2023] [--selectors stella,der++,finetune]
 *                            [--set train.lr=1e-3]... [--jobs 2] [--out runs/quality] [--fresh] [--table-only]
 *                            [--redis redis://host:port]
 *
 * Ref: spec §9.2–9.3 (𝒜, ℱ), paper-results §3.1 and §3.3; docs/results.md.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTINUAL_STRATEGY_NAMES } from '../src/method/strategy-registry.ts';
import { sweep, type SweepOptions } from '../src/sweep/sweep.ts';

/** The comparisons that matter first, then the rest (an interrupted run still answers the key question). */
const PRIORITY = ['stella', 'der++', 'finetune', 'multitask'];

function parseArgs(argv: string[]): SweepOptions {
  const o: SweepOptions = {
    seeds: [2021, 2022, 2023], selectors: [...CONTINUAL_STRATEGY_NAMES], sets: [], jobs: 2, attempts: 1, out: path.join('runs', 'quality'),
    fresh: false, tableOnly: false, log: (l) => process.stdout.write(l + '\n'),
  };
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
    else if (a === '--redis') o.redis = value();
    else if (a === '--fresh') o.fresh = true;
    else if (a === '--table-only') o.tableOnly = true;
    else throw new Error(`bench:quality: unknown argument '${a}' (options: --seeds, --selectors, --set, --jobs, --out, --redis, --fresh, --table-only)`);
  }
  if (!Number.isInteger(o.jobs) || o.jobs < 1) throw new Error(`bench:quality: --jobs: expected a positive integer, got ${o.jobs}`);
  o.selectors = [...PRIORITY.filter((s) => o.selectors.includes(s)), ...o.selectors.filter((s) => !PRIORITY.includes(s))];
  return o;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const outcome = await sweep(o);
  process.stdout.write(`\n${outcome.table}\n`);
  if (outcome.runs.some((r) => r.error)) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exitCode = 1; });
}
