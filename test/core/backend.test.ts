import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendUnavailableError } from '../../src/core/backend.ts';

test('automatic resolution falls back to an available backend and reports it', async (t) => {
  const info = await initBackend('');
  t.true(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.name));
  t.is(tf.getBackend(), info.tfjsBackend);
});

test('a missing requested backend gives a clear error', async (t) => {
  await t.throwsAsync(() => initBackend('tensorflow-gpu'), {
    instanceOf: BackendUnavailableError,
    message: /tensorflow-gpu.*@tensorflow\/tfjs-node-gpu/s,
  });
  await t.throwsAsync(() => initBackend('quantum'), { message: /unknown backend name/ });
});
