import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Rng } from '../../src/core/rng.ts';
import { parseResults } from '../../src/eval/results.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { runCommand } from '../../src/cli/run.ts';
import { RunParamError } from '../../src/cli/run-params.ts';
import { REPO_ROOT } from '../helpers.ts';
import { restoreRun } from '../../src/method/run-checkpointer.ts';
import { parseSafetensors } from '../../src/core/safetensors.ts';

// A small continual run: 2 tasks × 2 classes, 2 train + 1 test clip per class, batch 2 → 4 steps.
const SMALL = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'train.memory=4', 'checkpoint.every=1', 'report.clips=1'];
const quiet = { quiet: true, log: () => {}, signals: null } as const;
const tmp = () => mkdtemp(path.join(os.tmpdir(), 'stella-run-'));

/** What must match between two runs of the same seed (timing, memory and stream counters naturally differ). */
function comparable(r: ReturnType<typeof parseResults>) {
  const { timing: _t, memory: _m, metrics: _s, ...rest } = r;
  return rest;
}

async function newestWeights(dir: string): Promise<Buffer> {
  const latest = (await readFile(path.join(dir, 'checkpoints', 'latest'), 'utf8')).trim();
  return readFile(path.join(dir, 'checkpoints', latest, 'weights.safetensors'));
}

/** What `stella run` would get as --resume from `command` (parsed by the real CLI, the run itself not started). */
async function runResumeOption(command: string): Promise<string | undefined> {
  const [tool, ...args] = command.split(' '); // the test's temp folders hold no spaces
  if (tool !== 'stella') throw new Error(`not a stella command: '${command}'`);
  const program = buildProgram();
  let resume: string | undefined;
  program.commands.find((c) => c.name() === 'run')!.action((_graph: unknown, opts: { resume?: string }) => { resume = opts.resume; });
  await program.parseAsync(args, { from: 'user' });
  return resume;
}

const reference = (async () => {
  const out = await tmp();
  return { out, outcome: await runCommand({ sets: SMALL, out, ...quiet }) };
})();

test('stella run writes results.json (T×T matrices, A/F, localisation), a report and checkpoints', async (t) => {
  const { out, outcome } = await reference;
  const results = parseResults(JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')));
  t.deepEqual(results.tasks, ['task0', 'task1']);
  t.is(results.selector, 'stella');
  t.is(results.retrieval.a2v.R1.length, 2);
  // Row t of each T×T matrix is the evaluation after task t, column j its row for task j's queries.
  for (const d of ['a2v', 'v2a'] as const) {
    for (const k of ['R1', 'R5', 'R10'] as const) {
      t.deepEqual(results.retrieval[d][k], outcome.evaluations.map((e) => results.tasks.map((task) => e.evaluation.retrieval.perCategory[task][d][k])), `${d}.${k}`);
    }
  }
  t.true(results.localization.video!.clips > 0);
  t.true(results.memory.bufferBytes > 0 && results.memory.peakTensorBytes > 0);
  t.true(results.timing.stepMsMedian > 0);
  t.deepEqual(results.errors, []);
  const stages = (results.metrics as { stages: Record<string, { emitted: number; errors: number }> }).stages;
  t.is(stages.train.emitted, 4 + 2); // 4 steps and the 2 task ends it passes on
  t.is(stages.decode.errors, 0);
  t.true(existsSync(path.join(out, 'report.html')));
  t.true((await readdir(path.join(out, 'pictures'))).some((f) => f.endsWith('.png')));
  t.deepEqual(outcome.results.train.tasks, results.tasks);
  // Each row is measured exactly after its task: 2 steps per task here, none of the next task's.
  const steps = JSON.parse(await readFile(path.join(out, 'steps.json'), 'utf8')).steps as { task: number }[];
  t.deepEqual(outcome.evaluations.map((e) => e.trainedSteps), [0, 1].map((task) => steps.filter((s) => s.task <= task).length));
});

/** The newest committed checkpoint's step in DIR/checkpoints (what a resume must start from). */
async function newestCheckpointStep(dir: string): Promise<number> {
  const steps = (await readdir(path.join(dir, 'checkpoints'))).map((f) => /^ckpt-(\d{6,})$/.exec(f)).filter((m) => m !== null).map((m) => Number(m[1]));
  return Math.max(...steps);
}

/**
 * The resumed run in `out` started at checkpoint step `from` (> 0) and did not train steps 1..from
 * again: its log names that checkpoint, and its steps.json marks those steps skipped, without losses,
 * while every later step has losses. (Final results alone cannot show this: a run that started over
 * from step 0 ends with the same numbers.)
 */
async function assertResumedFrom(t: ExecutionContext, out: string, log: string[], from: number, total: number): Promise<void> {
  t.true(from > 0 && from < total, `checkpoint step ${from} of ${total}`);
  t.true(log.some((l) => l.endsWith(`ckpt-${String(from).padStart(6, '0')} (step ${from})`) && l.startsWith('resuming from ')), log.join('\n'));
  const steps = JSON.parse(await readFile(path.join(out, 'steps.json'), 'utf8')).steps as { step: number; losses: Record<string, number>; timings?: Record<string, number> }[];
  t.deepEqual(steps.map((s) => s.step), Array.from({ length: total }, (_, i) => i + 1));
  const trained = steps.filter((s) => Object.keys(s.losses).length > 0).map((s) => s.step);
  const skipped = steps.filter((s) => s.timings?.skipped === 1).map((s) => s.step);
  t.deepEqual(skipped, Array.from({ length: from }, (_, i) => i + 1), 'steps up to the checkpoint are skipped');
  t.deepEqual(trained, Array.from({ length: total - from }, (_, i) => from + i + 1), 'only the steps after the checkpoint are trained');
}

test('a run killed with SIGKILL mid-run resumes from its checkpoint to the same results and the same weights, bit for bit', async (t) => {
  const { out: straight } = await reference;
  const out = await tmp();
  const killAt = 1 + Rng.fromSeed(Date.now()).int(3); // kill once checkpoint 1, 2 or 3 of 4 is on disk
  t.log(`kill after checkpoint ${killAt}`);
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'run', '--quiet', '--out', out, ...SMALL.flatMap((s) => ['--set', s])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const sawCheckpoint = await new Promise<boolean>((resolve) => {
    const timer = setInterval(() => {
      if (existsSync(path.join(out, 'checkpoints', `ckpt-${String(killAt).padStart(6, '0')}`))) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve(true);
      }
    }, 20);
    void exited.then(() => { clearInterval(timer); resolve(false); });
  });
  const { code, signal } = await exited;
  // The kill must land mid-run: the checkpoint appeared first, the child died of SIGKILL, nothing final was written.
  t.true(sawCheckpoint, `the run ended (exit code ${code}) before checkpoint ${killAt} appeared; its stderr:\n${stderr}`);
  t.is(signal, 'SIGKILL', 'the run finished before the kill landed');
  t.false(existsSync(path.join(out, 'results.json')));
  t.false(existsSync(path.join(out, 'steps.json')));
  if (!sawCheckpoint || signal !== 'SIGKILL') return;
  const from = await newestCheckpointStep(out);
  t.true(from >= killAt, `newest checkpoint ${from}`);
  const log: string[] = [];
  await runCommand({ resume: out, quiet: true, log: (l) => log.push(l), signals: null });
  await assertResumedFrom(t, out, log, from, 4);
  const a = parseResults(JSON.parse(await readFile(path.join(straight, 'results.json'), 'utf8')));
  const b = parseResults(JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')));
  t.deepEqual(comparable(b), { ...comparable(a), config: b.config });
  t.deepEqual(b.config, a.config);
  t.true((await newestWeights(out)).equals(await newestWeights(straight)));
});

test('SIGINT stops after the current step, checkpoints, and --resume finishes the same run from there', async (t) => {
  const { out: straight } = await reference;
  const out = await tmp();
  const signals = new EventEmitter();
  const stopping = runCommand({ sets: SMALL, out, ...quiet, signals: signals as never });
  const timer = setInterval(() => {
    if (existsSync(path.join(out, 'checkpoints', 'ckpt-000001'))) { clearInterval(timer); signals.emit('SIGINT'); }
  }, 20);
  const first = await stopping;
  clearInterval(timer);
  t.true(first.stopped);
  // The printed hint is a command the CLI takes: it parses to `run --resume <this run's folder>`.
  const hint = /^Resume with: (.+)$/m.exec(first.message!)?.[1] ?? '';
  const resume = await runResumeOption(hint);
  t.is(resume, out);
  t.false(existsSync(path.join(out, 'results.json')));
  const stoppedAt = Number(/stopped after step (\d+)/.exec(first.message!)?.[1]);
  t.is(await newestCheckpointStep(out), stoppedAt, 'the stop checkpoints the step it stopped after');
  const log: string[] = [];
  const second = await runCommand({ resume, quiet: true, log: (l) => log.push(l), signals: null });
  t.false(second.stopped);
  await assertResumedFrom(t, out, log, stoppedAt, 4);
  t.true((await newestWeights(out)).equals(await newestWeights(straight)));
});

test('bad --set keys and values are refused naming the key', async (t) => {
  await t.throwsAsync(() => runCommand({ sets: ['train.epoch=2'], ...quiet }), { instanceOf: RunParamError, message: /'train.epoch': unknown key; run keys are .*train.epochs/ });
  await t.throwsAsync(() => runCommand({ sets: ['train.epochs=two'], ...quiet }), { instanceOf: RunParamError, message: /'train.epochs'/ });
  const out = await tmp();
  await t.throwsAsync(() => runCommand({ sets: ['selector=nope', ...SMALL], out, ...quiet }), { message: /unknown selector 'nope'.*stella/s });
});

test('a NaN loss stops the run naming the loss, and the newest checkpoint is the last good one', async (t) => {
  const out = await tmp();
  // An absurd learning rate blows the weights up after the first update.
  const error = await t.throwsAsync(() => runCommand({ sets: [...SMALL, 'train.lr=1e30'], out, ...quiet }));
  t.regex(error!.message, /(loss|value) '\w+' is (NaN|-?Infinity).*step (\d+).*last checkpoint/s);
  const badStep = Number(/step (\d+)/.exec(error!.message)![1]);
  const latest = (await readFile(path.join(out, 'checkpoints', 'latest'), 'utf8')).trim();
  t.true(Number(latest.slice(5)) < badStep);
  t.false(existsSync(path.join(out, 'results.json')));
  // The newest checkpoint loads, is that step, and holds only finite weights and losses.
  const { restored } = await restoreRun(path.join(out, 'checkpoints'));
  t.is(restored.steps, Number(latest.slice(5)));
  t.is(path.basename(restored.from), latest);
  t.is(restored.losses.length, restored.steps);
  for (const loss of restored.losses) for (const [name, x] of Object.entries(loss.values)) t.true(Number.isFinite(x), `step ${loss.step} ${name} = ${x}`);
  const weights = parseSafetensors(restored.trainers.train.weights, latest).tensors;
  t.true(weights.size > 0);
  for (const [name, w] of weights) t.true(w.data.every(Number.isFinite), `${latest}: ${name} has non-finite values`);
});

test('the A/B graph trains two models on the same batches and writes one results.json per arm', async (t) => {
  const out = await tmp();
  const outcome = await runCommand({ graph: path.join(REPO_ROOT, 'graphs/ab-selectors.yaml'), sets: [...SMALL, 'selectorB=finetune'], out, ...quiet });
  t.deepEqual(Object.keys(outcome.results).sort(), ['train-a', 'train-b']);
  const a = parseResults(JSON.parse(await readFile(path.join(out, 'train-a', 'results.json'), 'utf8')));
  const b = parseResults(JSON.parse(await readFile(path.join(out, 'train-b', 'results.json'), 'utf8')));
  t.is(a.selector, 'stella');
  t.is(b.selector, 'finetune');
  t.true(a.memory.bufferBytes > 0);
  t.is(b.memory.bufferBytes, 0); // finetune keeps no replay buffer
  t.true(existsSync(path.join(out, 'train-b', 'report.html')));
});
