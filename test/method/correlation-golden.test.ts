import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { loadGolden } from '../../src/core/golden.ts';
import { verifyG2 } from '../../src/method/golden-checks.ts';
import { golden, GOLDEN_DIR } from '../helpers.ts';

test.before(async () => { await initBackend(); });

test('G2: correlation, pinned pruning and selection, pairing and penalty match (abs 1e-5 + rel 1e-4, masks exact)', async (t) => {
  const before = tf.memory().numTensors;
  const r = await verifyG2(loadGolden(golden('g2_replay.json')), GOLDEN_DIR);
  const real = r.failures.filter((f) => !f.includes('pending'));
  t.deepEqual(real, []);
  t.is(tf.memory().numTensors, before);
});
