import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../../src/cli/run.ts';
import { initBackend } from '../../src/core/backend.ts';
import { modelConfig } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { loadGraph } from '../../src/graph/loader.ts';
import { stage as scoreStage } from '../../src/method/stages/score.ts';
import { exportModelWeights, importModelWeights, SyncSchedule } from '../../src/method/scorer-replica.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { REPO_ROOT } from '../helpers.ts';

// The fixtures of stella-stages.test.ts: 2 tasks × 2 classes × 2 train clips, batch 2 → 4 steps.
const SMALL = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'train.memory=4', 'report.clips=1'];
const quiet = { quiet: true, log: () => {}, signals: null } as const;
const GRAPH = path.join(REPO_ROOT, 'graphs/continual-pretrain.yaml');

interface StepsFile { steps: { step: number; task: number; losses: Record<string, number>; timings?: Record<string, number> }[]; metrics: { gauges: Record<string, number> } }

async function run(extra: string[]) {
  const out = await mkdtemp(path.join(os.tmpdir(), 'stella-score-sync-'));
  await runCommand({ sets: [...SMALL, ...extra], out, ...quiet });
  const latest = (await readFile(path.join(out, 'checkpoints', 'latest'), 'utf8')).trim();
  return {
    steps: JSON.parse(await readFile(path.join(out, 'steps.json'), 'utf8')) as StepsFile,
    weights: await readFile(path.join(out, 'checkpoints', latest, 'weights.safetensors')),
  };
}

let baseline: ReturnType<typeof run> | undefined;
const inStep = () => (baseline ??= run([]));
let everyTwo: ReturnType<typeof run> | undefined;
const stale2 = () => (everyTwo ??= run(['nodes.score.syncEvery=2']));

test('SyncSchedule: K = 2 copies before steps 1 and 3 of 4 (⌈4 / 2⌉); K = 0 before every step', (t) => {
  const two = new SyncSchedule(2);
  t.deepEqual([0, 1, 2, 3].map((done) => two.due(done)), [true, false, true, false]);
  t.is(two.syncs, 2);
  const zero = new SyncSchedule(0);
  t.deepEqual([0, 1, 2, 3].map((done) => zero.due(done)), [true, true, true, true]);
  t.throws(() => new SyncSchedule(-1), { message: /syncEvery must be an integer ≥ 0, got -1/ });
  t.throws(() => new SyncSchedule(1.5), { message: /got 1\.5/ });
});

test('replica weights round-trip exactly and a wrong set is refused by name', async (t) => {
  await initBackend();
  const config = modelConfig('tiny');
  const a = new ModelService({ config, rng: Rng.fromSeed('a') }), b = new ModelService({ config, rng: Rng.fromSeed('b') });
  try {
    const wa = exportModelWeights(a);
    t.notDeepEqual(exportModelWeights(b), wa);
    importModelWeights(b, wa);
    t.deepEqual(exportModelWeights(b), wa);
    const broken = new Map(wa);
    const first = [...broken.keys()][0];
    broken.set(first, new Float32Array(3));
    broken.set('backbone/nope', new Float32Array(1));
    const error = t.throws(() => importModelWeights(b, broken));
    t.regex(error!.message, new RegExp(`'${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' has 3 values`));
    t.regex(error!.message, /unknown 'backbone\/nope'/);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test.serial('syncEvery 1 scores with a replica synced every step: the same results and weights as the live model, bit for bit', async (t) => {
  const [live, replica] = await Promise.all([inStep(), run(['nodes.score.syncEvery=1'])]);
  t.is(replica.steps.metrics.gauges['score.weightSyncs'], 4);
  t.false('score.weightSyncs' in live.steps.metrics.gauges);
  t.deepEqual(replica.steps.steps.map((s) => s.losses), live.steps.steps.map((s) => s.losses));
  t.true(replica.weights.equals(live.weights));
});

test.serial('syncEvery 2: ⌈4 / 2⌉ = 2 copies; step 1 is scored with the same weights, later steps with stale ones', async (t) => {
  const [live, stale] = await Promise.all([inStep(), stale2()]);
  t.is(stale.steps.metrics.gauges['score.weightSyncs'], 2);
  t.is(stale.steps.steps.length, 4);
  t.deepEqual(stale.steps.steps[0].losses, live.steps.steps[0].losses);
  // Step 2 is scored with step 0's weights: the AVM matching term sees other embeddings.
  t.notDeepEqual(stale.steps.steps[1].losses, live.steps.steps[1].losses);
  t.false(stale.weights.equals(live.weights));
});

test.serial('device worker:1, syncEvery 0: the replica on a worker thread (synced every step) gives the in-thread results and weights, bit for bit', async (t) => {
  const [live, worker] = await Promise.all([inStep(), run(['nodes.score.device=worker:1'])]);
  t.is(worker.steps.metrics.gauges['score.weightSyncs'], 4);
  t.deepEqual(worker.steps.steps.map((s) => s.losses), live.steps.steps.map((s) => s.losses));
  t.true(worker.weights.equals(live.weights));
});

test.serial('device worker:1, syncEvery 2 equals the in-thread replica with syncEvery 2', async (t) => {
  const [here, worker] = await Promise.all([stale2(), run(['nodes.score.device=worker:1', 'nodes.score.syncEvery=2'])]);
  t.is(worker.steps.metrics.gauges['score.weightSyncs'], 2);
  t.deepEqual(worker.steps.steps.map((s) => s.losses), here.steps.steps.map((s) => s.losses));
  t.true(worker.weights.equals(here.weights));
});

test('the first step of a task reports how long it waited for the previous task\'s evaluation, and no other step does', async (t) => {
  const { steps } = await inStep();
  const waits = steps.steps.map((s) => s.timings?.evaluationWaitMs);
  const firstOfTask2 = steps.steps.findIndex((s) => s.task === 1);
  t.true(firstOfTask2 > 0, 'two tasks');
  t.true((waits[firstOfTask2] ?? 0) > 0, `waited ${waits[firstOfTask2]} ms (the first evaluation decodes the test set)`);
  t.deepEqual(waits.filter((_, i) => i !== firstOfTask2), waits.filter((_, i) => i !== firstOfTask2).map(() => undefined));
  t.true(steps.steps.every((s) => (s.timings?.stepMs ?? 0) > 0), 'every step has its own time');
});

test('a score node with checkpoint or weights cannot move to a worker (it has no trainer to copy)', (t) => {
  const deps = { node: 'score', get: () => ({}), placement: { device: 'worker:1', syncEvery: 0 } } as unknown as Parameters<typeof scoreStage.create>[0];
  const error = t.throws(() => scoreStage.create(deps, { trainer: '', checkpoint: 'runs/x/checkpoints', weights: '', strategy: 'stella' }));
  t.regex(error!.message, /node 'score': device 'worker:1' scores with a replica of a train node's model; with 'checkpoint' or 'weights' use device: cpu/);
});

for (const bad of ['-1', '1.5']) {
  test(`syncEvery ${bad} on the score node is refused, naming the key`, async (t) => {
    const error = await t.throwsAsync(loadGraph(GRAPH, { overrides: [`nodes.score.syncEvery=${bad}`] }));
    t.is(error!.name, 'GraphConfigError');
    t.regex(error!.message, /nodes\.score\.syncEvery/);
  });
}
