/**
 * Child of bench/wasm-threads.ts: times 2-D products on the wasm backend with the thread count of
 * STELLA_WASM_THREADS and prints { threads, products: [{ shape, medianMs, gflops }] } as JSON.
 * Shapes: 1024³ and the tiny model's largest training product, [2048, 384]·[384, 96].
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/core/backend.ts';
import { Rng } from '../src/core/rng.ts';
import { median } from '../src/model/step-bench.ts';

const SHAPES: [number, number, number][] = [[1024, 1024, 1024], [2048, 384, 96]];
const REPEATS = 9;

const backend = await initBackend('wasm');
const rng = Rng.fromSeed('wasm-product');
const products = SHAPES.map(([m, k, n]) => {
  const a = tf.tensor2d(rng.fillUniform(new Float32Array(m * k)), [m, k]);
  const b = tf.tensor2d(rng.fillUniform(new Float32Array(k * n)), [k, n]);
  const times: number[] = [];
  for (let i = 0; i < REPEATS + 2; i++) {
    const start = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    if (i >= 2) times.push(performance.now() - start); // two warm-ups (operator packing)
    c.dispose();
  }
  a.dispose();
  b.dispose();
  const ms = median(times);
  return { shape: `[${m}, ${k}]·[${k}, ${n}]`, medianMs: ms, gflops: (2 * m * k * n) / ms / 1e6 };
});
process.stdout.write(JSON.stringify({ threads: backend.threads?.count, products }) + '\n');
