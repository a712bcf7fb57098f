/** Runs the examples of docs/graph.md (docs/examples/graph-usage.ts) and checks the doc quotes them verbatim. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { codeUsage, rxjsUsage, yamlUsage } from '../../docs/examples/graph-usage.ts';
import { REPO_ROOT } from '../helpers.ts';
import { FakeTrainer } from './fakes.ts';

let dir = '';
let manifest = '';
test.before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'graph-docs-'));
  manifest = (await generateCorpus({ out: dir, tasks: 2, classes: 2, train: 2, test: 0, seed: 5, durationSec: 2 })).manifestPath;
});
test.after.always(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

test.serial('the three usages give the same batches and no leaked tensors', async (t) => {
  const before = tf.memory().numTensors;
  process.env.EXAMPLE_MANIFEST = manifest;
  const viaYaml = new FakeTrainer();
  const result = await yamlUsage(path.join(REPO_ROOT, 'docs/examples/tiny-pretrain.yaml'), viaYaml);
  t.false(result.stopped);
  t.is(result.steps.length, 4, '2 tasks × 4 clips, batches of 2 (--set)');
  const viaCode = new FakeTrainer();
  await codeUsage(manifest, viaCode);
  const viaRx = new FakeTrainer();
  const steps = await rxjsUsage(manifest, viaRx);
  t.is(steps.length, 4);
  t.deepEqual(viaCode.seen, viaYaml.seen);
  t.deepEqual(viaRx.seen, viaYaml.seen);
  t.deepEqual(viaYaml.seen.map((s) => s.task), [0, 0, 1, 1]);
  t.is(tf.memory().numTensors, before);
});

test('docs/graph.md quotes each example verbatim', async (t) => {
  const code = await readFile(path.join(REPO_ROOT, 'docs/examples/graph-usage.ts'), 'utf8');
  const doc = await readFile(path.join(REPO_ROOT, 'docs/graph.md'), 'utf8');
  for (const name of ['yaml', 'code', 'rxjs']) {
    const body = new RegExp(`// Begin-example ${name}\\n([\\s\\S]*?)\\n\\s*// End-example`).exec(code)![1];
    const dedented = body.split('\n').map((l) => l.replace(/^  /, '')).join('\n');
    t.true(doc.includes(dedented), `docs/graph.md is missing the '${name}' example as in the code`);
  }
});
