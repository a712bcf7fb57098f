import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { EventEmitter } from 'node:events';
import { initBackend } from '../../src/core/backend.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { Checkpointer, type StreamPosition } from '../../src/graph/roles.ts';
import { Decoder, ManifestLoader, Tokenizer } from '../../src/media/roles.ts';
import { Trainer } from '../../src/method/roles.ts';
import { stopMessage, type SignalSource } from '../../src/graph/stop.ts';
import { FakeDecoder, FakeTrainer, fakeManifest, manifestRows, patchTokenizer } from './fakes.ts';

test.before(async () => { await initBackend(); });

const GRAPH = `name: stop
nodes:
  source: { stage: source, options: { manifest: m.json } }
  decode: { stage: decode }
  tokenize: { stage: tokenize }
  batch: { stage: batch, options: { size: 2 } }
  train: { stage: train }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: batch }
  - { from: batch, to: train }
`;

async function setUp(withCheckpointer: boolean) {
  const trainer = new FakeTrainer(40);
  const saved: StreamPosition[] = [];
  const values: Array<[symbol, unknown]> = [
    [ManifestLoader, fakeManifest(manifestRows({ a: 40 }))], [Decoder, new FakeDecoder()], [Tokenizer, patchTokenizer], [Trainer, trainer],
  ];
  if (withCheckpointer) {
    values.push([Checkpointer, { save: async (p: StreamPosition) => { saved.push(p); return '/runs/x/ckpt-3'; }, resumeCommand: (c: string) => `my-tool continue ${c}` }]);
  }
  const graph = await loadGraphText(GRAPH, 'stop.yaml', { container: { values, autoloadPlugins: false } });
  return { trainer, saved, graph };
}

test.serial('SIGINT finishes the current step, asks the Checkpointer to write, and resolves with a resume hint', async (t) => {
  const { trainer, saved, graph } = await setUp(true);
  const signals = new EventEmitter();
  const tensorsBefore = tf.memory().numTensors;
  const run = runGraph(graph, { signals: signals as unknown as SignalSource });
  while (trainer.inStep === 0) await new Promise((r) => setTimeout(r, 2));
  signals.emit('SIGINT');
  const result = await run;
  t.true(result.stopped);
  t.is(trainer.inStep, 0, 'no step was cut short');
  t.true(trainer.completedSteps >= 1 && trainer.completedSteps < 20, `${trainer.completedSteps} steps`);
  t.is(result.position.step, trainer.completedSteps);
  t.deepEqual(saved, [{ step: trainer.completedSteps, task: 0, clipsSeen: 2 * trainer.completedSteps, reason: 'stop' }]);
  t.is(result.checkpoint, '/runs/x/ckpt-3');
  // The command is the Checkpointer's: the graph runner has no resume option of its own to offer.
  t.is(result.message, `stopped (SIGINT) after step ${trainer.completedSteps}; checkpoint written to /runs/x/ckpt-3. Resume with: my-tool continue /runs/x/ckpt-3`);
  t.is(tf.memory().numTensors, tensorsBefore, 'batches left in queues are disposed');
  t.is(signals.listenerCount('SIGINT'), 0, 'signal handlers removed');
});

test.serial('process SIGINT with a Checkpointer that saves nothing stops cleanly and says nothing was saved', async (t) => {
  const { trainer, graph } = await setUp(false);
  const run = runGraph(graph);
  while (trainer.inStep === 0) await new Promise((r) => setTimeout(r, 2));
  process.emit('SIGINT');
  const result = await run;
  t.true(result.stopped);
  t.is(trainer.inStep, 0);
  t.regex(result.message!, /^stopped \(SIGINT\) after step \d+; the Checkpointer saved nothing, so the run cannot be resumed\./);
  t.notRegex(result.message!, /Resume with/);
  t.is(process.listenerCount('SIGINT'), 0);
});

test('the stop message names the resume command only when the Checkpointer gives one', (t) => {
  t.is(stopMessage({ reason: 'SIGTERM', step: 7, checkpoint: '/c/7', resumeCommand: 'tool resume /c' }),
    'stopped (SIGTERM) after step 7; checkpoint written to /c/7. Resume with: tool resume /c');
  t.is(stopMessage({ reason: 'SIGTERM', step: 7, checkpoint: '/c/7' }),
    'stopped (SIGTERM) after step 7; checkpoint written to /c/7 (the Checkpointer names no command to resume from it).');
  t.regex(stopMessage({ reason: 'requested', step: 0 }), /^stopped \(requested\) after step 0; the Checkpointer saved nothing/);
});
