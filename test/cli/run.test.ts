import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { Rng } from '../../src/core/rng.ts';
import { parseResults } from '../../src/eval/results.ts';
import { runCommand } from '../../src/cli/run.ts';
import { RunParamError } from '../../src/cli/run-params.ts';
import { REPO_ROOT } from '../helpers.ts';

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
  return readFile(path.join(dir, 'checkpoints', latest, 'weights.safetensors.bin'));
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
  for (const row of results.retrieval.v2a.R10) for (const x of row) t.true(x >= 0 && x <= 100);
  // Gallery of 4 clips: R@5 and R@10 are always 100.
  t.is(results.summary.a2v.R10.A, 100);
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

test('a run killed with SIGKILL at a random step resumes to the same results and the same weights, bit for bit', async (t) => {
  const { out: straight } = await reference;
  const out = await tmp();
  const killAt = 1 + Rng.fromSeed(Date.now()).int(3); // a checkpoint after step 1, 2 or 3 of 4
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'run', '--quiet', '--out', out, ...SMALL.flatMap((s) => ['--set', s])], { stdio: 'ignore' });
  const killed = await new Promise<boolean>((resolve) => {
    const timer = setInterval(() => {
      if (existsSync(path.join(out, 'checkpoints', `ckpt-${String(killAt).padStart(6, '0')}`))) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve(true);
      }
    }, 20);
    child.on('exit', () => { clearInterval(timer); resolve(false); });
  });
  t.log(`killed after checkpoint ${killAt}: ${killed}`);
  t.false(existsSync(path.join(out, 'results.json')) && killed);
  await runCommand({ resume: out, ...quiet });
  const a = parseResults(JSON.parse(await readFile(path.join(straight, 'results.json'), 'utf8')));
  const b = parseResults(JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')));
  t.deepEqual(comparable(b), { ...comparable(a), config: b.config });
  t.deepEqual(b.config, a.config);
  t.true((await newestWeights(out)).equals(await newestWeights(straight)));
});

test('SIGINT stops after the current step, checkpoints, and --resume finishes the same run', async (t) => {
  const { out: straight } = await reference;
  const out = await tmp();
  const signals = new EventEmitter();
  const log: string[] = [];
  const stopping = runCommand({ sets: SMALL, out, quiet: true, log: (l) => log.push(l), signals: signals as never });
  const timer = setInterval(() => {
    if (existsSync(path.join(out, 'checkpoints', 'ckpt-000001'))) { clearInterval(timer); signals.emit('SIGINT'); }
  }, 20);
  const first = await stopping;
  clearInterval(timer);
  t.true(first.stopped);
  t.regex(first.message!, /Resume with: stella run --resume /);
  t.false(existsSync(path.join(out, 'results.json')));
  const second = await runCommand({ resume: out, ...quiet });
  t.false(second.stopped);
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
