import test from 'ava';
import { Rng } from '../../src/core/rng.ts';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { matchingEmbeddings, matchingPairs, checkMatchingPairs } from '../../src/method/avm-matching.ts';

test('labels: ⌊N/2⌋ positives, negatives deranged among themselves, seeded and reproducible', (t) => {
  const rng = Rng.fromSeed('vam');
  for (let trial = 0; trial < 500; trial++) {
    const N = 3 + (trial % 14);
    const p = matchingPairs(N, rng);
    t.deepEqual(checkMatchingPairs(p.labels, p.videoIndex), []);
    t.is(p.labels.reduce((a, b) => a + b, 0), Math.floor(N / 2));
  }
  t.deepEqual(matchingPairs(12, Rng.fromSeed(4)), matchingPairs(12, Rng.fromSeed(4)));
});

test('N ≤ 2 is all positive (no derangement loop)', (t) => {
  for (const N of [1, 2]) {
    const p = matchingPairs(N, Rng.fromSeed(1));
    t.deepEqual(Array.from(p.labels), new Array(N).fill(1));
    t.deepEqual(Array.from(p.videoIndex), Array.from({ length: N }, (_, i) => i));
  }
  t.throws(() => matchingPairs(0, Rng.fromSeed(1)), { message: /positive integer, got 0/ });
});

test('the pairing checker catches a negative that keeps its own video', (t) => {
  t.true(checkMatchingPairs([1, 0, 0, 1], [0, 1, 2, 3]).some((m) => /negative row 1/.test(m)));
  t.true(checkMatchingPairs([1, 1, 0, 0], [0, 1, 3, 2]).length === 0);
});

test('Mode B of the re-paired rows alone, the rest taken from the true pairs: bit for bit the whole batch run again, on wasm and cpu, plain and fast path', async (t) => {
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend(backend);
    t.is(tf.getBackend(), backend);
    for (const fastMatmul of [true, false]) {
      const model = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(`matching-${backend}`), fastMatmul });
      const g = tokenGrid(MODEL_CONFIGS.tiny), data = Rng.fromSeed('matching-data'), N = 5;
      const video = tf.tensor3d(data.fillUniform(new Float32Array(N * g.videoTokens * g.videoPatchDim)), [N, g.videoTokens, g.videoPatchDim]);
      const audio = tf.tensor3d(data.fillUniform(new Float32Array(N * g.audioTokens * g.audioPatchDim)), [N, g.audioTokens, g.audioPatchDim]);
      const pairs = matchingPairs(N, Rng.fromSeed(3));
      t.true(pairs.videoIndex.some((v, i) => v !== i) && pairs.videoIndex.some((v, i) => v === i), 'both kinds of row');
      const codes = model.backbone.intermediate(video, audio);
      const truePairs = model.backbone.jointFromCodes(codes);
      const before = tf.memory().numTensors;
      const whole = matchingEmbeddings(model.backbone, codes, pairs.videoIndex);
      const reused = matchingEmbeddings(model.backbone, codes, pairs.videoIndex, truePairs);
      t.is(tf.memory().numTensors, before + 4, 'only the four results are left');
      t.deepEqual(reused.embA.shape, [N, g.audioTokens, MODEL_CONFIGS.tiny.embedDim]);
      t.deepEqual(reused.embV.shape, [N, g.videoTokens, MODEL_CONFIGS.tiny.embedDim]);
      t.deepEqual(reused.embA.dataSync(), whole.embA.dataSync(), `${backend} fast=${fastMatmul}: audio`);
      t.deepEqual(reused.embV.dataSync(), whole.embV.dataSync(), `${backend} fast=${fastMatmul}: video`);
      // A positive row is its true pair's row; a re-paired one is not.
      const rowV = (e: tf.Tensor3D, i: number) => Array.from(e.slice(i, 1).dataSync());
      const positive = pairs.videoIndex.findIndex((v, i) => v === i), negative = pairs.videoIndex.findIndex((v, i) => v !== i);
      t.deepEqual(rowV(reused.embV, positive), rowV(truePairs.embV, positive));
      t.notDeepEqual(rowV(reused.embV, negative), rowV(truePairs.embV, negative));
      t.throws(() => matchingEmbeddings(model.backbone, codes, pairs.videoIndex.slice(1), truePairs), { message: /4 pairs for codes of 5 audio and 5 video rows/ });
      tf.dispose([video, audio, codes.interA, codes.interV, truePairs.embA, truePairs.embV, whole.embA, whole.embV, reused.embA, reused.embV]);
    }
  }
});
