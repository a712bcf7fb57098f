/** The fast path (custom kernels and written-out gradients) equals the plain tfjs model: losses, decoder tokens and every parameter gradient. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { createCavBackbone } from '../../src/model/cav-backbone.ts';

test.before(async () => { await initBackend(); });

test('Mode C and Mode D: fast and plain models agree on values and on all parameter gradients', (t) => {
  const c = MODEL_CONFIGS.tiny;
  const g = tokenGrid(c);
  const batch = 2;
  const data = Rng.fromSeed('fast-path-data');
  const video = tf.tensor3d(data.fillUniform(new Float32Array(batch * g.videoTokens * g.videoPatchDim)), [batch, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(data.fillUniform(new Float32Array(batch * g.audioTokens * g.audioPatchDim)), [batch, g.audioTokens, g.audioPatchDim]);
  const noise = { audio: data.fillUniform(new Float32Array(batch * g.audioTokens)), video: data.fillUniform(new Float32Array(batch * g.videoTokens)) };
  // Mode D: keep 3/4 of each modality, reversed order (a non-identity selection).
  const ka = (g.audioTokens * 3) / 4, kv = (g.videoTokens * 3) / 4;
  const rev = (l: number) => Int32Array.from({ length: batch * l }, (_, i) => l - 1 - (i % l));
  const vaIds = tf.tensor2d(rev(g.audioTokens), [batch, g.audioTokens], 'int32'), avIds = tf.tensor2d(rev(g.videoTokens), [batch, g.videoTokens], 'int32');
  const audioSel = tf.slice(audio, [0, 0, 0], [batch, ka, -1]) as tf.Tensor3D, videoSel = tf.slice(video, [0, 0, 0], [batch, kv, -1]) as tf.Tensor3D;
  const noiseSel = { audio: data.fillUniform(new Float32Array(batch * ka)), video: data.fillUniform(new Float32Array(batch * kv)) };

  const fast = createCavBackbone(c, { rng: Rng.fromSeed(7), fastMatmul: true });
  const plain = createCavBackbone(c, { rng: Rng.fromSeed(7), fastMatmul: false });
  interface RunOutput { loss: number; decoder: Float32Array; grads: Map<string, Float32Array> }
  const run = (model: typeof fast, mode: 'C' | 'D'): RunOutput => tf.tidy(() => {
    let decoder: Float32Array = new Float32Array();
    const loss = () => {
      const f = mode === 'C' ? model.maeRandomDetailed(video, audio, noise) : model.maeSelectedDetailed(videoSel, audioSel, avIds, vaIds, noiseSel);
      decoder = f.decoderA.dataSync() as Float32Array;
      return tf.addN([f.maeAudioLoss, f.maeVideoLoss, f.contrastiveLoss]) as tf.Scalar;
    };
    const names = [...model.variables.keys()];
    const { value, grads } = tf.variableGrads(loss, names.map((n) => model.variables.get(n)!));
    return { loss: value.dataSync()[0], decoder, grads: new Map(names.map((n) => [n, grads[model.variables.get(n)!.name].dataSync() as Float32Array])) } as unknown as tf.TensorContainer;
  }) as unknown as RunOutput;
  for (const mode of ['C', 'D'] as const) {
    const a = run(fast, mode), b = run(plain, mode);
    t.true(Math.abs(a.loss - b.loss) <= 1e-4 * Math.abs(b.loss), `Mode ${mode} loss ${a.loss} vs ${b.loss}`);
    let worstDecoder = 0;
    a.decoder.forEach((x, i) => { worstDecoder = Math.max(worstDecoder, Math.abs(x - b.decoder[i]) / (1e-4 + 1e-4 * Math.abs(b.decoder[i]))); });
    t.true(worstDecoder <= 1, `Mode ${mode} decoder tokens off by ${worstDecoder}× the tolerance`);
    let worst = 0, worstName = '';
    for (const [name, ga] of a.grads) {
      const gb = b.grads.get(name)!;
      const scale = Math.max(...Array.from(gb, Math.abs), 1e-6);
      const err = Math.max(...Array.from(ga, (x, i) => Math.abs(x - gb[i]))) / scale;
      if (err > worst) { worst = err; worstName = name; }
    }
    t.true(worst < 1e-3, `Mode ${mode}: gradient of ${worstName} differs by ${worst} of its largest entry`);
    t.true(a.grads.size > 50, 'every parameter has a gradient');
  }
  fast.dispose(); plain.dispose();
  tf.dispose([video, audio, vaIds, avIds, audioSel, videoSel]);
});
