/**
 * The linear's weight and bias gradients as one kernel call (src/core/weight-grads-kernel.ts): on
 * wasm our SIMD loop, on cpu the backend's own kernels; on both bit for bit the composition the
 * fast path ran before (transpose, product, row sum), for both of its orientations (in < out and
 * in ≥ out) and for sizes off every tile.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { weightGradsKernel } from '../../src/core/weight-grads-kernel.ts';

const rng = Rng.fromSeed('weight-grads');
const rand = (shape: [number, number]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape) as tf.Tensor2D;

/** The composed gradients: dW = xᵀ·g (or (gᵀ·x)ᵀ when in < out) and dβ = Σ_rows g, as tfjs ops. */
function composed(g: tf.Tensor2D, x: tf.Tensor2D): [tf.Tensor, tf.Tensor] {
  const [rows, inDim] = x.shape, outDim = g.shape[1];
  return tf.tidy(() => inDim < outDim
    ? [tf.transpose(tf.matMul(tf.transpose(g), x)), tf.sum(tf.transpose(g), -1)]
    : [tf.matMul(tf.transpose(x), g), tf.reshape(tf.matMul(tf.ones([1, rows]), g), [outDim])]);
}

const SHAPES: [number, number, number][] = [[768, 96, 384], [200, 384, 96], [296, 96, 96], [7, 5, 13], [9, 13, 6], [1, 3, 2], [64, 4, 8], [33, 17, 29]];

for (const backend of ['wasm', 'cpu']) {
  test.serial(`${backend}: dW and dβ equal the composed gradients bit for bit, one kernel call, nothing left behind`, async (t) => {
    await initBackend(backend);
    t.is(tf.getBackend(), backend);
    for (const [rows, inDim, outDim] of SHAPES) {
      const g = rand([rows, outDim]), x = rand([rows, inDim]);
      const before = tf.memory().numTensors;
      const fused = weightGradsKernel(g, x)!;
      t.is(tf.memory().numTensors, before + 2, 'the two gradients and nothing else');
      t.deepEqual(fused[0].shape, [inDim, outDim]);
      t.deepEqual(fused[1].shape, [outDim]);
      const expected = composed(g, x);
      t.deepEqual(fused[0].dataSync(), expected[0].dataSync(), `dW for x [${rows}, ${inDim}], g [${rows}, ${outDim}]`);
      t.deepEqual(fused[1].dataSync(), expected[1].dataSync(), `dβ for g [${rows}, ${outDim}]`);
      tf.dispose([g, x, ...fused, ...expected]);
    }
    t.throws(() => weightGradsKernel(rand([4, 3]), rand([5, 2])), { message: /g has 4 rows and x 5/ });
  });
}
