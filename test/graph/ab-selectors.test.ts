/** graphs/ab-selectors.yaml end to end: one decode/tokenize branch (on a worker) feeding two trainers. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { ContainerModule } from 'inversify';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { loadGraph } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { Evaluator, SelectorContribution, Trainer, type PatchSelector, type SelectionInput, type Selector, type TrainContext } from '../../src/method/roles.ts';
import type { Batch } from '../../src/method/items.ts';
import { CenterBiasSelector } from '../../plugins/example-selector.ts';
import { REPO_ROOT } from '../helpers.ts';
import { FakeEvaluator, FakeTrainer, grid, TINY } from './fakes.ts';

test.before(async () => { await initBackend(); });

/** A second selector for arm A: the first K patches. */
const firstK: Selector = {
  name: 'first-k',
  select: (input) => tf.tidy(() => ({
    video: tf.tile(tf.range(0, input.keep.video, 1, 'int32').expandDims(0), [input.importance.video.shape[0], 1]) as tf.Tensor2D,
    audio: tf.tile(tf.range(0, input.keep.audio, 1, 'int32').expandDims(0), [input.importance.audio.shape[0], 1]) as tf.Tensor2D,
  })),
};
const firstKModule = new ContainerModule(({ bind }) => {
  bind<SelectorContribution>(SelectorContribution).toConstantValue({ name: 'first-k', create: () => firstK });
});

/** Selection input of a batch of `rows` on the tiny grid, keeping 5 video and 3 audio patches. */
function selectionInput(rows: number): SelectionInput {
  return {
    importance: { video: tf.ones([rows, grid.videoTokens]) as tf.Tensor2D, audio: tf.ones([rows, grid.audioTokens]) as tf.Tensor2D },
    keep: { video: 5, audio: 3 },
    grid: { frames: TINY.numFrames, side: grid.side, timePatches: grid.timePatches, freqPatches: grid.freqPatches },
  };
}

/** A fake trainer that, like the real one, asks the node's selector which patches to keep; it records them. */
class SelectingTrainer extends FakeTrainer {
  readonly kept: Array<{ selector: string; video: number[][]; audio: number[][] }> = [];
  override async step(batch: Batch, context: TrainContext) {
    const selector = context.selector as PatchSelector;
    const input = selectionInput(batch.clips.length);
    const out = selector.select(input, context.rng as never);
    this.kept.push({ selector: selector.name, video: out.video.arraySync() as number[][], audio: out.audio.arraySync() as number[][] });
    tf.dispose([input.importance.video, input.importance.audio, out.video, out.audio]);
    return super.step(batch, context);
  }
}

test.serial('both arms train on the same batches with their own selector; one results.json each', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'graph-ab-'));
  try {
    const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 3, test: 0, seed: 9, durationSec: 2 });
    const trainer = new SelectingTrainer(5);
    const graph = await loadGraph(path.join(REPO_ROOT, 'graphs/ab-selectors.yaml'), {
      env: { STELLA_MANIFEST: manifestPath, STELLA_EVAL_MANIFEST: manifestPath, STELLA_OUT: path.join(dir, 'out'), STELLA_SELECTOR: 'first-k', STELLA_SELECTOR_B: 'center-bias', STELLA_EPOCHS: '1' },
      overrides: ['nodes.batch.options.size=2'],
      container: { values: [[Trainer, trainer], [Evaluator, new FakeEvaluator()]], modules: [firstKModule] },
    });
    const before = tf.memory().numTensors;
    const result = await runGraph(graph, { signals: null });
    t.deepEqual(result.errors, []);
    const a = JSON.parse(await readFile(path.join(dir, 'out/train-a/steps.json'), 'utf8'));
    const b = JSON.parse(await readFile(path.join(dir, 'out/train-b/steps.json'), 'utf8'));
    t.is(a.label, 'A');
    t.is(b.label, 'B');
    t.is(a.steps.length, 3);
    t.is(b.steps.length, 3);
    const arm = (name: string) => trainer.seen.filter((s) => s.selector === name).map((s) => s.indices);
    t.deepEqual(arm('first-k'), arm('center-bias'), 'same batches, in the same order, for both arms');
    t.is(arm('first-k').length, 3);
    // Each arm's steps ran its own selector: first-k keeps patches 0..K−1, center-bias the central ones.
    const kept = (name: string) => trainer.kept.filter((k) => k.selector === name);
    t.is(kept('first-k').length, 3);
    t.is(kept('center-bias').length, 3);
    for (const k of kept('first-k')) t.deepEqual(k, { selector: 'first-k', video: [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]], audio: [[0, 1, 2], [0, 1, 2]] });
    const centre = tf.tidy(() => {
      const out = new CenterBiasSelector().select(selectionInput(2));
      return { video: out.video.arraySync() as number[][], audio: out.audio.arraySync() as number[][] };
    });
    t.notDeepEqual(centre.video[0], [0, 1, 2, 3, 4]);
    for (const k of kept('center-bias')) t.deepEqual(k, { selector: 'center-bias', ...centre });
    t.deepEqual(a.steps.map((s: { losses: { total: number } }) => s.losses.total), b.steps.map((s: { losses: { total: number } }) => s.losses.total));
    t.true(result.metrics.queues['batch→train-a'].maxDepth <= 2);
    t.is(tf.memory().numTensors, before, 'cloned batches of the second branch are disposed too');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
