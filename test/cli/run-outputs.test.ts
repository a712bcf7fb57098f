/**
 * What `stella run` leaves for a reader (issue: a new user's first runs): the final model at the top
 * of the run folder, `--resume` and `--checkpoint` taking the run folder or its checkpoints/ folder,
 * A/B tables labelled by arm with each arm's own timing, and a graph without `evaluate` refused
 * before any work.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { loadLatest } from '../../src/core/checkpoint.ts';
import { parseSafetensors, readSafetensors } from '../../src/core/safetensors.ts';
import { parseResults } from '../../src/eval/results.ts';
import { FINAL_WEIGHTS, runCommand } from '../../src/cli/run.ts';
import { RunParamError } from '../../src/cli/run-params.ts';
import { inspectClip } from '../../src/cli/inspect.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { CORPUS_VERSION } from '../../src/media/corpus.ts';
import { median } from '../../src/model/step-bench.ts';
import { REPO_ROOT } from '../helpers.ts';

const SMALL = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'train.memory=4', 'checkpoint.every=1', 'report.clips=0'];
const tmp = () => mkdtemp(path.join(os.tmpdir(), 'stella-run-out-'));

test.serial('A/B tables carry the arm, each arm reports its own step timing and writes its own final weights', async (t) => {
  const out = await tmp();
  const lines: string[] = [];
  await runCommand({ graph: path.join(REPO_ROOT, 'graphs/ab-selectors.yaml'), sets: [...SMALL, 'selectorB=finetune'], out, log: (l) => lines.push(l), signals: null });
  const headers = lines.flatMap((l) => l.split('\n')).filter((l) => /after task \d\/2/.test(l));
  t.is(headers.length, 4);
  t.is(headers.filter((h) => h.startsWith('[train-a: stella] ')).length, 2, headers.join('\n'));
  t.is(headers.filter((h) => h.startsWith('[train-b: finetune] ')).length, 2, headers.join('\n'));
  for (const arm of ['train-a', 'train-b']) {
    const results = parseResults(JSON.parse(await readFile(path.join(out, arm, 'results.json'), 'utf8')));
    const steps = JSON.parse(await readFile(path.join(out, arm, 'steps.json'), 'utf8')).steps as { node?: string; timings?: { stepMs: number } }[];
    t.true(steps.length > 0 && steps.every((s) => s.node === arm), `${arm}/steps.json holds only ${arm}'s steps`);
    t.is(results.timing.stepMsMedian, median(steps.map((s) => s.timings!.stepMs)), `${arm}'s median is of its own steps`);
    t.deepEqual(results.chance && [results.chance.gallery, results.chance.R1], [4, 25]);
    t.true(readSafetensors(path.join(out, arm, FINAL_WEIGHTS)).tensors.size > 0);
  }
  t.notDeepEqual(await readFile(path.join(out, 'train-a', FINAL_WEIGHTS)), await readFile(path.join(out, 'train-b', FINAL_WEIGHTS)));
});

test.serial('a stopped run resumes from DIR/checkpoints; the final model lands at DIR/weights.safetensors and inspect reads both forms', async (t) => {
  const out = await tmp();
  const signals = new EventEmitter();
  const stopping = runCommand({ sets: SMALL, out, quiet: true, log: () => {}, signals: signals as never });
  const timer = setInterval(() => { if (existsSync(path.join(out, 'checkpoints', 'ckpt-000001'))) { clearInterval(timer); signals.emit('SIGINT'); } }, 20);
  const first = await stopping;
  clearInterval(timer);
  t.true(first.stopped);
  t.false(existsSync(path.join(out, FINAL_WEIGHTS)), 'no final model before the run is finished');
  const second = await runCommand({ resume: path.join(out, 'checkpoints'), quiet: true, log: () => {}, signals: null });
  t.is(second.outDir, out, 'the run folder, not checkpoints/, is where the run goes on');
  t.true(existsSync(path.join(out, 'results.json')));
  const newest = await loadLatest(out, { onWarning: () => {} });
  t.true(existsSync(path.join(newest.path, 'weights.safetensors')), 'the checkpoint file is named as in the README');
  // The final model is the last checkpoint's, tensor for tensor (the file's metadata says more).
  const final = readSafetensors(path.join(out, FINAL_WEIGHTS)).tensors;
  const checkpointed = parseSafetensors(newest.blobs['weights.safetensors']).tensors;
  t.deepEqual([...final.keys()].sort(), [...checkpointed.keys()].sort());
  for (const [name, tensor] of final) t.deepEqual(tensor.data, checkpointed.get(name)!.data, name);

  // The small run's generated corpus (made once under .cache/corpus by its parameters).
  const clip = (await loadManifest(path.join(REPO_ROOT, `.cache/corpus/tiny-seed2021-2x2-2+1-v${CORPUS_VERSION}/manifest.json`))).tasks[0].test[0].path;
  const viaRun = await inspectClip({ clip, checkpoint: out, out: path.join(out, 'inspect-run') });
  const viaWeights = await inspectClip({ clip, weights: path.join(out, FINAL_WEIGHTS), out: path.join(out, 'inspect-weights') });
  t.is(viaWeights.config, 'tiny', 'the final weights name their config');
  t.deepEqual(viaRun.selectedVideo, viaWeights.selectedVideo);
});

test('a graph without an evaluate node is refused before any work, pointing to graph run', async (t) => {
  const out = path.join(await tmp(), 'never');
  const lines: string[] = [];
  await t.throwsAsync(() => runCommand({ graph: path.join(REPO_ROOT, 'graphs/score-only.yaml'), out, log: (l) => lines.push(l), signals: null }), {
    instanceOf: RunParamError,
    message: /score-only\.yaml has no 'evaluate' node.*stella graph run .*score-only\.yaml/s,
  });
  t.deepEqual(lines, [], 'no backend, corpus or stage output before the refusal');
  t.false(existsSync(out));
});
