/**
 * `stella run` with and without the decoded cache: how much of a multi-epoch run is training.
 *
 * Runs the default graph (graphs/continual-pretrain.yaml, tiny, STELLA) over a generated corpus,
 * interleaved per round: decode every epoch (`nodes.decode.options.cache=false`, and the test clips
 * at the first evaluation, `nodes.evaluate.options.cache=false`), the decoded
 * cache cold (a fresh folder: each clip is decoded once, epochs 2–4 read the cache; the graph's
 * `warm` decodes a task's and the next task's clips in the background), cold without that warming
 * (`nodes.decode.options.warm=false`), and warm (a folder a previous run filled). Per run: the run's wall time (results.json `timing.wallSeconds`: backend
 * start, graph, evaluations, reports) and its training steps alone (the per-item latency sums of the
 * four step nodes score, assess, sample, train, from steps.json's metrics, less the train node's
 * waits for the previous task's evaluation, which its latency holds); the figure is their
 * ratio. Background decoding slows the steps it runs beside, which flatters that ratio, so the table
 * also divides each wall time by the median steps of the warm-cache runs (steps with no decoding). Periodic checkpoints are off (`checkpoint.every=0`; the task-end one stays). Medians over the rounds; with --write, rewrites the "Run: decode vs
 * training" section of docs/benchmarks.md.
 *
 *   npx tsx bench/run-decode.ts [--rounds 3] [--epochs 4] [--tasks 3] [--classes 5] [--train 8] [--test 1]
 *                               [--variants every,cold,unwarmed,warm] [--write]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../src/cli/run.ts';
import { median } from '../src/model/step-bench.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = flag('rounds', 3);
const epochs = flag('epochs', 4);
const data = { tasks: flag('tasks', 3), classes: flag('classes', 5), train: flag('train', 8), test: flag('test', 1) };
// Tables go to docs/benchmarks.md only when asked (--write): a plain run must not touch tracked docs.
const write = args.includes('--write');
// Extra --set keys for every run (e.g. nodes.decode.device=process:0).
const extraSets = args.flatMap((a, i) => (a === '--set' ? [args[i + 1]] : []));
const variantNames: Record<string, Variant> = { every: 'every epoch', unwarmed: 'cache, cold, no warming', cold: 'cache, cold', warm: 'cache, warm' };
const variantArg = args.indexOf('--variants');
const variants: Variant[] = (variantArg >= 0 ? args[variantArg + 1] : 'every,unwarmed,cold,warm').split(',').map((v) => {
  if (!variantNames[v]) throw new Error(`--variants: unknown '${v}'; choose from ${Object.keys(variantNames).join(', ')}`);
  return variantNames[v];
});

type Variant = 'every epoch' | 'cache, cold, no warming' | 'cache, cold' | 'cache, warm';
/** The nodes of graphs/continual-pretrain.yaml that make up one training step. */
const STEP_NODES = ['score', 'assess', 'sample', 'train'];
interface Run { wall: number; steps: number; stepSum: number }

async function once(variant: Variant, warmDir: string, scratch: string, runEpochs = epochs): Promise<Run> {
  const cache = variant === 'every epoch' ? 'false' : variant === 'cache, warm' ? warmDir : await mkdtemp(path.join(scratch, 'cold-'));
  const cold = variant === 'cache, cold' || variant === 'cache, cold, no warming';
  const out = await mkdtemp(path.join(scratch, 'run-'));
  const sets = [
    `data.tasks=${data.tasks}`, `data.classes=${data.classes}`, `data.train=${data.train}`, `data.test=${data.test}`,
    `train.epochs=${runEpochs}`, 'report.clips=0', 'checkpoint.every=0', `nodes.decode.options.cache=${cache}`, `nodes.evaluate.options.cache=${cache}`,
    ...(variant === 'cache, cold, no warming' ? ['nodes.decode.options.warm=false'] : []),
    ...extraSets,
  ];
  const outcome = await runCommand({ sets, out, quiet: true, signals: null, log: () => {} });
  const results = Object.values(outcome.results)[0];
  // The STELLA step runs as four nodes (score, assess, sample: spec §5.2 (1)–(8); train: (9)–(12)),
  // so a step's time is the sum of their per-item latencies (taken → emitted, one item at a time).
  const record = JSON.parse(await readFile(path.join(out, 'steps.json'), 'utf8')) as {
    steps: unknown[];
    metrics: { stages: Record<string, { latencyMs: { count: number; mean: number } }> };
  };
  // The train node's first step of a task waits for the previous task's evaluation (the first one also
  // decodes the test set): that wait is in the node's latency but is not training, so it comes off.
  const evaluationWaits = (record.steps as { timings?: { evaluationWaitMs?: number } }[]).reduce((sum, s) => sum + (s.timings?.evaluationWaitMs ?? 0), 0);
  const stepSum = (STEP_NODES.reduce((sum, node) => {
    const l = record.metrics.stages[node]?.latencyMs;
    return sum + (l ? l.count * l.mean : 0);
  }, 0) - evaluationWaits) / 1000;
  await rm(out, { recursive: true, force: true });
  if (cold) await rm(cache, { recursive: true, force: true });
  return { wall: results.timing.wallSeconds, steps: record.steps.length, stepSum };
}

async function main() {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'stella-bench-run-'));
  const warmDir = path.join(scratch, 'warm');
  try {
    await once('cache, warm', warmDir, scratch, 1); // generates the corpus and fills the warm cache (not timed)
    const runs = Object.fromEntries(variants.map((v) => [v, [] as Run[]])) as Record<Variant, Run[]>;
    const loadBefore = os.loadavg()[0];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...variants].reverse() : variants;
      for (const v of order) {
        const run = await once(v, warmDir, scratch);
        runs[v].push(run);
        process.stdout.write(`round ${r + 1} ${v}: wall ${run.wall.toFixed(1)} s, ${run.steps} steps ${run.stepSum.toFixed(1)} s, other ${(run.wall - run.stepSum).toFixed(1)} s, ratio ${(run.wall / run.stepSum).toFixed(2)}\n`);
      }
    }
    const loadAfter = os.loadavg()[0];
    const clips = data.tasks * data.classes * data.train;
    const date = new Date().toISOString().slice(0, 10);
    // Steps with no decoding beside them: the warm-cache runs' (when measured).
    const quietSteps = runs['cache, warm']?.length ? median(runs['cache, warm'].map((x) => x.stepSum)) : undefined;
    const row = (v: Variant) => {
      const rs = runs[v];
      const ratio = median(rs.map((x) => x.wall / x.stepSum));
      const quiet = quietSteps ? `${(median(rs.map((x) => x.wall)) / quietSteps).toFixed(2)}×` : '–';
      return `| ${v} | ${median(rs.map((x) => x.wall)).toFixed(1)} s | ${median(rs.map((x) => x.stepSum)).toFixed(1)} s | ${median(rs.map((x) => x.wall - x.stepSum)).toFixed(1)} s | **${ratio.toFixed(2)}×** | ${rs.map((x) => (x.wall / x.stepSum).toFixed(2)).join(', ')} | ${quiet} |`;
    };
    const lines = [
      `Measured ${date} on ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, shared: 1-minute load ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after), Node ${process.version}. \`stella run\` (graphs/continual-pretrain.yaml, tiny, STELLA, batch 4) over a generated corpus of ${clips} training clips (${data.tasks} tasks × ${data.classes} classes × ${data.train}, 4 s) and ${data.tasks * data.classes * data.test} test clips, ${epochs} epochs; ${rounds} rounds, variants interleaved (order reversed every other round), medians.`,
      '',
      '| decode | run wall | training steps alone (score + assess + sample + train) | the rest (wall − steps) | wall ÷ steps | per round | wall ÷ warm-cache steps |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...variants.map(row),
      '',
      `"cold" is a run's first use of the cache (each clip is decoded once, epochs 2–${epochs} read it), the case of a new corpus: with the graph's warming (a task's and the next task's clips decoded in the background, eight per ffmpeg run) and without it; "warm" a rerun on the same media. The last column divides the median wall by the warm-cache runs' median steps, which ran with no decoding beside them: background decoding slows the steps it shares the cores with, and the in-run ratio does not show that. The wall time also holds what is not training by design: backend start, the test set's decode, one retrieval evaluation per task, results and report. Goal ≤ 1.15×. Reproduce: \`npx tsx bench/run-decode.ts\`.`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (write) {
      const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/benchmarks.md');
      const begin = '<!-- run-decode:begin -->', end = '<!-- run-decode:end -->';
      const section = `## Run: decode vs training\n\n${begin}\n${lines.join('\n')}\n${end}\n`;
      let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
      const re = /## Run: decode vs training\n\n<!-- run-decode:begin -->[\s\S]*?<!-- run-decode:end -->\n/;
      doc = re.test(doc) ? doc.replace(re, section) : doc.trimEnd() + '\n\n' + section;
      writeFileSync(file, doc);
      process.stdout.write(`wrote ${file}\n`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench run-decode: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});
