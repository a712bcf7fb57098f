/**
 * Products inside tfjs-wasm's heap (src/core/heap-products.ts): our SIMD product equals XNNPACK's
 * (tfjs' own 2-D product) bit for bit, per group, as a 2-D product and as a linear with its bias.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { heapSimdKernels, type WasmHeapModule } from '../../src/core/heap-simd.ts';
import { Rng } from '../../src/core/rng.ts';
import { slicedMatMul } from '../../src/core/sliced-matmul.ts';
import { linearKernel, product2d } from '../../src/core/view-kernels.ts';

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`heap-products tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('heap-products');
const rand = (shape: number[]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

test.serial('per-group products in our SIMD loop equal XNNPACK\'s 2-D product per group, bit for bit (row and column tails included)', (t) => {
  t.truthy(heapSimdKernels((tf.backend() as unknown as { wasm: WasmHeapModule }).wasm), 'the SIMD kernels load on this backend');
  for (const [g, m, k, n] of [[32, 25, 24, 25], [3, 7, 5, 9], [48, 64, 8, 128], [2, 1, 96, 96], [16, 192, 192, 24], [4, 13, 300, 6], [3, 300, 96, 96], [2, 6, 3, 17]]) {
    const a = rand([g, m, k]) as tf.Tensor3D, b = rand([g, k, n]) as tf.Tensor3D;
    const mine = slicedMatMul(a, b);
    const perGroup = tf.tidy(() => tf.stack(tf.unstack(a).map((ag, i) => tf.matMul(ag as tf.Tensor2D, tf.unstack(b)[i] as tf.Tensor2D))));
    t.deepEqual(mine.dataSync(), perGroup.dataSync(), `[${g}, ${m}, ${k}]·[${g}, ${k}, ${n}]`);
    tf.dispose([a, b, mine, perGroup]);
  }
});

test.serial('a 2-D product and a linear on the heap equal tf.matMul and tf.fused.matMul bit for bit', (t) => {
  for (const [m, k, n] of [[768, 384, 96], [5, 3, 7], [1, 96, 96], [200, 96, 288], [9, 64, 13]]) {
    const x = rand([m, k]) as tf.Tensor2D, w = rand([k, n]) as tf.Tensor2D, b = rand([n]);
    const products = [product2d(x, w), tf.matMul(x, w)];
    const linears = [linearKernel(x, w, b)!, tf.fused.matMul({ a: x, b: w, bias: b })];
    t.deepEqual(products[0].shape, [m, n]);
    t.deepEqual(products[0].dataSync(), products[1].dataSync(), `product [${m}, ${k}]·[${k}, ${n}]`);
    t.deepEqual(linears[0].dataSync(), linears[1].dataSync(), `linear [${m}, ${k}]·[${k}, ${n}] + b`);
    tf.dispose([x, w, b, ...products, ...linears]);
  }
});

test.serial('transposed operands: a left one read in place, a right one transposed inside the kernel; bit for bit the per-group product of the materialised transposes, on wasm and cpu', async (t) => {
  const [g, m, k, n] = [6, 13, 37, 10];
  const shapeOf = (rows: number, cols: number, transposed: boolean) => (transposed ? [g, cols, rows] : [g, rows, cols]);
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    try {
      for (const [ta, tb] of [[true, false], [false, true], [true, true]] as const) {
        const a = rand(shapeOf(m, k, ta)) as tf.Tensor3D, b = rand(shapeOf(k, n, tb)) as tf.Tensor3D;
        const mine = slicedMatMul(a, b, ta, tb);
        const perGroup = tf.tidy(() => {
          const left = ta ? tf.transpose(a, [0, 2, 1]) : a, right = tb ? tf.transpose(b, [0, 2, 1]) : b;
          return tf.stack(tf.unstack(left).map((ag, i) => tf.matMul(ag as tf.Tensor2D, tf.unstack(right)[i] as tf.Tensor2D)));
        });
        t.deepEqual(mine.dataSync(), perGroup.dataSync(), `${backend} (${ta}, ${tb})`);
        tf.dispose([a, b, mine, perGroup]);
      }
    } finally {
      await tf.setBackend('wasm');
    }
  }
});

test.serial('2-D products with transposed operands (one kernel call): bit for bit tf.matMul of the materialised transposes, on wasm and cpu', async (t) => {
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    try {
      for (const [m, k, n] of [[96, 200, 384], [13, 37, 10], [1, 5, 3]]) {
        for (const [ta, tb] of [[true, false], [false, true], [true, true]] as const) {
          const a = rand(ta ? [k, m] : [m, k]) as tf.Tensor2D, b = rand(tb ? [n, k] : [k, n]) as tf.Tensor2D;
          const before = tf.memory().numTensors;
          const mine = product2d(a, b, ta, tb);
          t.is(tf.memory().numTensors, before + 1, 'the transposes stay inside the kernel');
          const want = tf.tidy(() => tf.matMul(ta ? tf.transpose(a) : a, tb ? tf.transpose(b) : b));
          t.deepEqual(mine.dataSync(), want.dataSync(), `${backend} [${m}, ${k}]·[${k}, ${n}] (${ta}, ${tb})`);
          tf.dispose([a, b, mine, want]);
        }
      }
    } finally {
      await tf.setBackend('wasm');
    }
  }
});
