import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { Decoder, ManifestLoader, Tokenizer } from '../../src/media/roles.ts';
import { Evaluator, Trainer } from '../../src/method/roles.ts';
import { FakeDecoder, FakeEvaluator, FakeTrainer, fakeManifest, manifestRows, patchTokenizer } from './fakes.ts';

test.before(async () => { await initBackend(); });

const PIPELINE = `
name: smoke
nodes:
  source: { stage: source, options: { manifest: m.json } }
  decode: { stage: decode, options: { concurrency: 2 } }
  tokenize: { stage: tokenize }
  batch: { stage: batch, options: { size: 2, dropLast: false } }
  train: { stage: train }
  evaluate: { stage: evaluate }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: batch }
  - { from: batch, to: train }
  - { from: train, to: evaluate }
`;

function fakes(rows = manifestRows({ a: 5, b: 3 })) {
  const decoder = new FakeDecoder();
  const trainer = new FakeTrainer();
  const evaluator = new FakeEvaluator();
  const values: Array<[symbol, unknown]> = [
    [ManifestLoader, fakeManifest(rows)], [Decoder, decoder], [Tokenizer, patchTokenizer], [Trainer, trainer], [Evaluator, evaluator],
  ];
  return { decoder, trainer, evaluator, values };
}

test('runs source → decode → tokenize → batch → train → evaluate in order, one eval per task', async (t) => {
  const f = fakes();
  const tensorsBefore = tf.memory().numTensors;
  const graph = await loadGraphText(PIPELINE, 'smoke.yaml', { container: { values: f.values, autoloadPlugins: false } });
  const result = await runGraph(graph, { signals: null });
  t.deepEqual(f.trainer.seen.map((s) => [s.task, s.indices]), [[0, [0, 1]], [0, [2, 3]], [0, [4]], [1, [0, 1]], [1, [2]]]);
  t.deepEqual(f.evaluator.calls, [{ task: 0, step: 3 }, { task: 1, step: 5 }]);
  t.deepEqual(result.steps.map((s) => s.step), [1, 2, 3, 4, 5], 'steps pass through evaluate into the sink');
  t.deepEqual(result.evals.map((e) => e.metrics.r1), [0.5, 0.6]);
  t.is(result.metrics.stages.decode.emitted, 8 + 2);
  t.is(result.errors.length, 0);
  t.false(result.stopped);
  t.is(tf.memory().numTensors, tensorsBefore, 'every Batch is disposed');
});
