/** Backend limits: a training step that cannot fit the wasm heap is refused before anything is allocated. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { assertTrainingFitsBackend, BackendLimitError, WASM_HEAP_LIMIT_BYTES } from '../../src/core/backend-limits.ts';
import { modelConfig } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { StrategyTrainer } from '../../src/method/strategy-trainer.ts';
import { benchStep } from '../../src/model/step-bench.ts';

test.before(async () => { await initBackend('wasm'); });

test('base on wasm is refused with the heap limit and the backends to use instead', (t) => {
  const error = t.throws(() => assertTrainingFitsBackend(modelConfig('base'), 'wasm'), { instanceOf: BackendLimitError });
  t.regex(error!.message, /config 'base' \(768 wide, 12 blocks, decoder 512 × 8\) cannot train on the wasm backend/);
  t.regex(error!.message, /heap is limited to 4 GiB \(32-bit WebAssembly\)/);
  t.regex(error!.message, /STELLA_BACKEND=tensorflow\b.*STELLA_BACKEND=tensorflow-gpu.*STELLA_BACKEND=cpu.*config=tiny/);
  t.is(WASM_HEAP_LIMIT_BYTES, 4 * 2 ** 30 - 65536);
});

test('tiny on wasm, and base on the other backends, pass', (t) => {
  t.notThrows(() => assertTrainingFitsBackend(modelConfig('tiny'), 'wasm'));
  for (const backend of ['cpu', 'tensorflow']) t.notThrows(() => assertTrainingFitsBackend(modelConfig('base'), backend));
});

test('a base trainer and a base bench step fail on wasm before allocating any tensor', (t) => {
  const before = tf.memory().numTensors;
  t.throws(() => new StrategyTrainer(modelConfig('base'), Rng.fromSeed(1)), { instanceOf: BackendLimitError });
  t.throws(() => benchStep({ config: modelConfig('base'), selector: 'full', steps: 1, batch: 1, naive: false, warmup: 0 }), { instanceOf: BackendLimitError });
  t.is(tf.memory().numTensors, before);
});
