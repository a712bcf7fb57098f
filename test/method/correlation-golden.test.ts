import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { loadGolden } from '../../src/core/golden.ts';
import { verifyG2 } from '../../src/method/golden-checks.ts';
import { golden, GOLDEN_DIR } from '../helpers.ts';
import { createAvm } from '../../src/model/avm.ts';
import { Rng } from '../../src/core/rng.ts';

test.before(async () => { await initBackend(); });

test('G2: correlation, pinned pruning and selection, matching logits/loss through the real AVM, and penalty match (abs 1e-5 + rel 1e-4, masks exact)', async (t) => {
  // Building and disposing an AVM may itself leave tensors behind (a model-side matter); only count ours.
  const probeStart = tf.memory().numTensors;
  createAvm(96, 12, { rng: Rng.fromSeed(0) }).dispose();
  const avmResidue = tf.memory().numTensors - probeStart;
  const before = tf.memory().numTensors;
  const r = await verifyG2(loadGolden(golden('g2_replay.json')), GOLDEN_DIR);
  t.deepEqual(r.failures, []);
  t.true(r.ok);
  t.is(tf.memory().numTensors - before, avmResidue);
});
