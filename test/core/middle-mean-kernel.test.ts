/** The mean over the middle axes (src/core/middle-mean-kernel.ts): tfjs' own mean bit for bit, one kernel call, on wasm; tf.mean on cpu. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { meanOverMiddle } from '../../src/core/middle-mean-kernel.ts';
import { Rng } from '../../src/core/rng.ts';

const rng = Rng.fromSeed('middle-mean');
const rand = (shape: [number, number, number, number]) => tf.tensor4d(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

for (const backend of ['wasm', 'cpu']) {
  test.serial(`${backend}: mean over axes 1 and 2 equals tf.mean bit for bit`, async (t) => {
    await initBackend(backend);
    t.is(tf.getBackend(), backend);
    for (const shape of [[4, 12, 64, 128], [2, 3, 5, 7], [1, 1, 1, 1], [3, 12, 128, 64]] as [number, number, number, number][]) {
      const x = rand(shape);
      const calls: string[] = [];
      const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
      const original = engine.runKernel;
      engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) { calls.push(name); return original.call(this, name, ...rest); };
      let mine: tf.Tensor;
      try {
        mine = meanOverMiddle(x);
      } finally {
        delete (engine as { runKernel?: unknown }).runKernel;
      }
      t.is(calls.length, 1, `one kernel call: ${calls.join(', ')}`);
      const want = tf.mean(x, [1, 2]);
      t.deepEqual(mine.shape, [shape[0], shape[3]]);
      t.deepEqual(mine.dataSync(), want.dataSync(), `[${shape}]`);
      tf.dispose([x, mine, want]);
    }
  });
}
