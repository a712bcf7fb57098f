/**
 * Child process of test/core/wasm-threads.test.ts: runs the wasm backend with the thread count of
 * STELLA_WASM_THREADS and prints, as JSON, digests of everything the comparison needs bit for bit:
 * the fast-path kernels (forward and gradients), three STELLA training steps (losses, then every
 * weight and Adam moment), and the golden cases. Ends without process.exit, so a pthread left
 * holding the event loop shows up as a process that never exits.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { modelConfig, tokenGrid } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { fastBatchMatMul, fastGatherRows, fastLinear2d, splitRows } from '../../src/core/fast-matmul.ts';
import { StrategyTrainer } from '../../src/method/strategy-trainer.ts';
import { verifyGoldenDir } from '../../src/cli/verify-golden.ts';
import { GOLDEN_DIR } from '../helpers.ts';

const digest = (arrays: Iterable<ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }>) => {
  const hash = createHash('sha256');
  for (const a of arrays) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return hash.digest('hex').slice(0, 16);
};

const backend = await initBackend('wasm');
const rng = Rng.fromSeed('wasm-threads-probe');
const rand = (shape: number[]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

// Products large enough that XNNPACK splits them across threads, with their gradients.
const kernels = tf.tidy(() => {
  const x = rand([512, 384]) as tf.Tensor2D, w = rand([384, 192]) as tf.Tensor2D, b = rand([192]);
  const [linear, ...linearGrads] = [fastLinear2d(x, w, b), ...tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(fastLinear2d(xx as tf.Tensor2D, ww as tf.Tensor2D, bb))))([x, w, b])];
  const q = rand([16, 128, 24]) as tf.Tensor3D, k = rand([16, 128, 24]) as tf.Tensor3D;
  const attention = fastBatchMatMul(q, k, true);
  const attentionGrads = tf.grads((qq: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.square(fastBatchMatMul(qq as tf.Tensor3D, kk as tf.Tensor3D, true))))([q, k]);
  const pieces = splitRows(x, 4);
  const gathered = fastGatherRows(x, tf.tensor1d([511, 0, 7, 7, 300], 'int32'));
  return {
    linear: digest([linear, ...linearGrads].map((t) => t.dataSync() as Float32Array)),
    attention: digest([attention, ...attentionGrads].map((t) => t.dataSync() as Float32Array)),
    rows: digest([...pieces, gathered].map((t) => t.dataSync() as Float32Array)),
  };
});

// STELLA training steps: Mode A scoring, selection, AVM, Mode D, fused Adam.
const config = modelConfig('tiny');
const trainer = new StrategyTrainer(config, Rng.fromSeed('wasm-threads-trainer'), { fastMatmul: true });
trainer.use('stella');
const g = tokenGrid(config), batch = 2, data = Rng.fromSeed('wasm-threads-data');
const losses: Record<string, number>[] = [];
for (let step = 0; step < 3; step++) {
  const video = tf.tensor3d(data.fillUniform(new Float32Array(batch * g.videoTokens * g.videoPatchDim)), [batch, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(data.fillUniform(new Float32Array(batch * g.audioTokens * g.audioPatchDim)), [batch, g.audioTokens, g.audioPatchDim]);
  losses.push(trainer.step({ video, audio }).losses);
  video.dispose();
  audio.dispose();
}
const weights = [...trainer.model.weights()].sort(([a], [b]) => a.localeCompare(b)).map(([, t]) => t.data);
const optimizer = JSON.stringify(trainer.model.optimizerState(), (_, v) => (ArrayBuffer.isView(v) ? digest([v as Float32Array]) : v));
trainer.dispose();

const golden = (await verifyGoldenDir(GOLDEN_DIR)).map(({ file, result }) => ({ file, ok: result.ok, maxError: result.maxError }));

process.stdout.write(JSON.stringify({ threads: backend.threads?.count, kernels, losses, weights: digest(weights), optimizer: createHash('sha256').update(optimizer).digest('hex').slice(0, 16), golden }) + '\n');
