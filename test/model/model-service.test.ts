/** ModelService + Adam: exact PyTorch Adam arithmetic, decay groups, state round trip, no leaks over 50 steps. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { Adam, inDecayGroup } from '../../src/model/optimizer.ts';
import { ModelService } from '../../src/model/model-service.ts';

test.before(async () => { await initBackend(); });

test('Adam matches a hand-computed torch.optim.Adam update with coupled L2 on the decay group only', (t) => {
  const w = tf.variable(tf.tensor2d([[1, -2]], [1, 2]));
  const b = tf.variable(tf.tensor1d([0.5]));
  const adam = new Adam([{ key: 'w', variable: w, decay: true }, { key: 'b', variable: b, decay: false }], { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 });
  const reference = (theta: number[], grads: number[][], decay: number) => {
    const m = theta.map(() => 0), v = theta.map(() => 0);
    grads.forEach((g, i) => {
      const step = i + 1;
      theta.forEach((th, j) => {
        const gj = g[j] + decay * th;
        m[j] = 0.9 * m[j] + 0.1 * gj; v[j] = 0.99 * v[j] + 0.01 * gj * gj;
        theta[j] = th - (0.1 / (1 - 0.9 ** step)) * m[j] / (Math.sqrt(v[j]) / Math.sqrt(1 - 0.99 ** step) + 1e-8);
      });
    });
    return theta;
  };
  const gw = [[0.3, -0.1], [0.2, 0.4]], gb = [[1], [-2]];
  for (let i = 0; i < 2; i++) adam.apply(new Map<string, tf.Tensor>([['w', tf.tensor2d([gw[i]])], ['b', tf.tensor1d(gb[i])]]));
  const wantW = reference([1, -2], gw, 0.01), wantB = reference([0.5], gb, 0);
  const gotW = w.dataSync(), gotB = b.dataSync();
  wantW.forEach((x, i) => t.true(Math.abs(gotW[i] - x) < 1e-6, `w[${i}] ${gotW[i]} vs ${x}`));
  t.true(Math.abs(gotB[0] - wantB[0]) < 1e-6);
  const state = adam.getState();
  t.is(state.step, 2);
  t.is(state.moments.w.m.length, 2);
  const other = new Adam([{ key: 'w', variable: w, decay: true }]);
  t.throws(() => other.setState({ step: 1, moments: { w: { shape: [2], m: new Float32Array(2), v: new Float32Array(2) } } }), { message: /shape \[2\] but the parameter is \[1,2\]/ });
  adam.dispose(); other.dispose(); w.dispose(); b.dispose();
});

test('decay group: ≥2-D weights except positional, modality and mask tokens', (t) => {
  t.true(inDecayGroup('blocks_a.0.attn.qkv.weight', [288, 96]));
  t.true(inDecayGroup('patch_embed_v.proj.weight', [96, 3, 16, 16]));
  t.false(inDecayGroup('blocks_a.0.attn.qkv.bias', [288]));
  for (const n of ['pos_embed_v', 'inter_pos_embed_a', 'decoder_pos_embed_v', 'modality_a', 'decoder_modality_v', 'mask_token_a']) t.false(inDecayGroup(n, [1, 64, 96]));
});

test('50 Mode-C training steps (tiny, B=2) keep the tensor count flat after the first step and lower the loss', (t) => {
  const cfg = MODEL_CONFIGS.tiny;
  const g = tokenGrid(cfg);
  const service = new ModelService({ config: cfg, rng: Rng.fromSeed(5), adam: { lr: 1e-3 } });
  const data = Rng.fromSeed(6);
  const video = tf.tensor3d(data.fillUniform(new Float32Array(2 * g.videoTokens * g.videoPatchDim)), [2, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(data.fillUniform(new Float32Array(2 * g.audioTokens * g.audioPatchDim)), [2, g.audioTokens, g.audioPatchDim]);
  const noise = { audio: data.fillUniform(new Float32Array(2 * g.audioTokens)), video: data.fillUniform(new Float32Array(2 * g.videoTokens)) };
  const loss = () => {
    const f = service.backbone.maeRandom(video, audio, noise);
    return tf.addN([f.maeAudioLoss, f.maeVideoLoss, f.contrastiveLoss]) as tf.Scalar;
  };
  const first = service.trainStep(loss, 'backbone');
  const afterFirst = tf.memory().numTensors;
  let last = first;
  for (let i = 1; i < 50; i++) {
    last = service.trainStep(loss, 'backbone');
    t.is(tf.memory().numTensors, afterFirst, `step ${i + 1} leaked tensors`);
  }
  t.true(last < first, `loss ${first} → ${last}`);
  t.is(service.optimizer.stepCount, 50);
  t.is(service.heldTensorCount(), service.backbone.variables.size + service.avm.variables.size);
  t.is(service.optimizer.momentCount, service.backbone.variables.size);
  video.dispose(); audio.dispose(); service.dispose();
});

/** Two tiny clips with one matching and one mismatched label, and the constant embeddings STELLA's matching loss reads. */
function splitStepInputs(seed: number) {
  const g = tokenGrid(MODEL_CONFIGS.tiny);
  const data = Rng.fromSeed(seed);
  const video = tf.tensor3d(data.fillUniform(new Float32Array(2 * g.videoTokens * g.videoPatchDim)), [2, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(data.fillUniform(new Float32Array(2 * g.audioTokens * g.audioPatchDim)), [2, g.audioTokens, g.audioPatchDim]);
  const noise = { audio: data.fillUniform(new Float32Array(2 * g.audioTokens)), video: data.fillUniform(new Float32Array(2 * g.videoTokens)) };
  const labels = tf.tensor2d([[1], [0]]);
  // Computed off the tape, as the scoring pass computes them.
  const embeddings = (service: ModelService) => tf.tidy(() => {
    const e = service.backbone.jointFromCodes(service.backbone.intermediate(video, audio));
    return [e.embA, e.embV];
  });
  return { video, audio, noise, labels, embeddings };
}

test('trainStepSplit: the AVM part first, then the backbone: the same losses and weights as one pass on the sum, bit for bit, a lower peak and no leak', (t) => {
  const { video, audio, noise, labels, embeddings } = splitStepInputs(7);
  const run = (split: boolean) => {
    const service = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(8), adam: { lr: 1e-3 } });
    const [embA, embV] = embeddings(service);
    const avmLoss = () => tf.losses.sigmoidCrossEntropy(labels, service.avm.forward(embA, embV)) as tf.Scalar;
    const total = (avmValue: tf.Scalar) => {
      const f = service.backbone.maeRandom(video, audio, noise);
      return tf.addN([f.maeAudioLoss, f.maeVideoLoss, avmValue, f.contrastiveLoss]) as tf.Scalar;
    };
    const losses: number[] = [];
    let peak = 0, tensors = 0;
    for (let i = 0; i < 3; i++) {
      const before = tf.memory().numBytes;
      let high = before;
      const watch = (fn: () => tf.Scalar) => () => { const v = fn(); high = Math.max(high, tf.memory().numBytes); return v; };
      losses.push(split ? service.trainStepSplit({ lossFn: watch(avmLoss), vars: 'avm' }, (v) => watch(() => total(v))()) : service.trainStep(watch(() => total(avmLoss())), 'all'));
      peak = Math.max(peak, high - before);
      if (i === 1) tensors = tf.memory().numTensors;
    }
    t.is(tf.memory().numTensors, tensors, `${split ? 'split' : 'joint'}: the third step leaked tensors`);
    const weights = [...service.weights().values()].map((w) => Array.from(w.data));
    tf.dispose([embA, embV]);
    service.dispose();
    return { losses, weights, peak };
  };
  const joint = run(false), split = run(true);
  t.deepEqual(split.losses, joint.losses);
  t.true(split.weights.length > 0 && split.weights.every((w, i) => w.every((x, j) => Object.is(x, joint.weights[i][j]))), 'every weight bit for bit');
  t.true(split.peak < joint.peak, `tensor bytes alive after the forward: split ${split.peak}, joint ${joint.peak}`);
  tf.dispose([video, audio, labels]);
});

test('trainStepSplit applies a finite part before the rest runs, refuses a rest that reads the part, and moves nothing for a non-finite part', (t) => {
  const { video, audio, labels, embeddings } = splitStepInputs(9);
  const service = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(10), adam: { lr: 1e-3 } });
  const [embA, embV] = embeddings(service);
  const avmLoss = () => tf.losses.sigmoidCrossEntropy(labels, service.avm.forward(embA, embV)) as tf.Scalar;
  const avmWeights = () => [...service.weights()].filter(([name]) => name.startsWith('avmatching_module.')).map(([, w]) => Array.from(w.data));
  const avmBytes = [...service.avm.params.variables.values()].reduce((sum, v) => sum + v.size * 4, 0);

  // 1. The part's update is in, and its gradients gone, when the rest starts.
  const before = avmWeights(), bytesBefore = tf.memory().numBytes;
  let heldAtRest = 0, movedAtRest = false;
  service.trainStepSplit({ lossFn: avmLoss, vars: 'avm' }, (v) => {
    heldAtRest = tf.memory().numBytes - bytesBefore;
    movedAtRest = avmWeights().some((w, i) => w.some((x, j) => x !== before[i][j]));
    const f = service.backbone.maeRandom(video, audio);
    return tf.addN([f.maeAudioLoss, f.maeVideoLoss, v, f.contrastiveLoss]) as tf.Scalar;
  });
  t.true(movedAtRest, 'the AVM weights moved before the rest ran');
  t.true(heldAtRest < avmBytes, `at the rest's start ${heldAtRest} B more were held; the AVM's gradients alone are ${avmBytes} B`);

  // 2. A rest that reads one of the part's variables is refused, by name.
  const aVariable = [...service.avm.params.variables.values()][0];
  t.throws(() => service.trainStepSplit({ lossFn: avmLoss, vars: 'avm' }, (v) => tf.add(v, tf.sum(aVariable)) as tf.Scalar), {
    message: /the rest of a split step reads 'avm\/[^']+', which this step has already updated/,
  });

  // 3. A non-finite part waits: when the rest then fails (as STELLA's loss checks do), nothing moved.
  const still = avmWeights();
  t.throws(() => service.trainStepSplit({ lossFn: () => tf.mul(avmLoss(), NaN) as tf.Scalar, vars: 'avm' }, () => { throw new Error('non-finite loss'); }), { message: 'non-finite loss' });
  t.deepEqual(avmWeights(), still, 'no AVM weight moved');
  tf.dispose([video, audio, labels, embA, embV]);
  service.dispose();
});

test('weights save and load round-trip through safetensors in PyTorch layout', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stella-weights-'));
  const file = path.join(dir, 'w.safetensors');
  const a = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(1) });
  const b = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(2) });
  a.saveWeights(file);
  const w = a.weights();
  t.deepEqual(w.get('blocks_a.0.attn.qkv.weight')!.shape, [288, 96]);
  t.deepEqual(w.get('patch_embed_v.proj.weight')!.shape, [96, 3, 16, 16]);
  t.deepEqual(w.get('avmatching_module.matching_score.fc.weight')!.shape, [1, 192]);
  b.loadWeights(file);
  const wb = b.weights();
  for (const name of ['blocks_u.0.mlp.fc1.weight', 'patch_embed_a.proj.weight', 'avmatching_module.to_a_q.weight']) {
    t.deepEqual(Array.from(wb.get(name)!.data), Array.from(w.get(name)!.data), name);
  }
  a.dispose(); b.dispose();
  rmSync(dir, { recursive: true, force: true });
});
