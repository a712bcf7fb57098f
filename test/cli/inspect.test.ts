/** `stella inspect`: pictures of one generated clip from saved weights or a checkpoint; clear errors. */
import test from 'ava';
import { Command } from 'commander';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { initBackend } from '../../src/core/backend.ts';
import { Checkpointer } from '../../src/core/checkpoint.ts';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { serializeSafetensors, writeSafetensors } from '../../src/core/safetensors.ts';
import { inspectClip, register, WEIGHTS_BLOB } from '../../src/cli/inspect.ts';
import { ContinualEvaluator } from '../../src/eval/evaluator.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { decodeClip } from '../../src/media/decode.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { tokenizeClip } from '../../src/media/tokenize.ts';
import { ModelService } from '../../src/model/model-service.ts';

const config = MODEL_CONFIGS.tiny;

const fixture = (async () => {
  await initBackend();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-inspect-'));
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 0, test: 1, size: 'tiny' });
  const clip = (await loadManifest(manifestPath)).tasks[0].test[0].path;
  const model = new ModelService({ config, rng: Rng.fromSeed(11) });
  const weights = path.join(dir, 'model.safetensors');
  model.saveWeights(weights);
  // The selection the saved model makes on the clip, computed directly.
  const decoded = await decodeClip(clip, { config, mode: 'eval' });
  const tokens = tokenizeClip(decoded, config);
  const [expected] = new ContinualEvaluator({ config, testSet: [{ path: clip, label: '', task: '', taskIndex: 0, ...tokens }] }).importanceFor(model);
  const checkpoints = path.join(dir, 'checkpoints');
  await new Checkpointer({ dir: checkpoints }).save({
    step: 3,
    blobs: { [WEIGHTS_BLOB]: serializeSafetensors(model.weights()) },
    state: { position: { taskIndex: 0, task: 'task0', step: 3 }, rng: {}, config: { model: 'tiny' } },
  });
  return { dir, clip, model, weights, checkpoints, expected };
})();

test.after.always(async () => {
  const { dir, model } = await fixture;
  model.dispose();
  await rm(dir, { recursive: true, force: true });
});

const pngSize = async (file: string) => {
  const png = PNG.sync.read(await readFile(file));
  return [png.width, png.height];
};

test('inspect with --weights writes the frames and spectrogram pictures of the saved model', async (t) => {
  const { dir, clip, weights, expected } = await fixture;
  const out = path.join(dir, 'out-weights');
  const r = await inspectClip({ clip, weights, out });
  const name = path.basename(clip, '.mp4');
  t.is(r.frames, path.join(out, `${name}.frames.png`));
  t.is(r.spectrogram, path.join(out, `${name}.spectrogram.png`));
  t.is(r.config, 'tiny');
  // Frames: 4 frames of 64 px enlarged ×3 with 6 px gaps; two panels (plain, annotated).
  t.deepEqual(await pngSize(r.frames), [4 * 192 + 3 * 6, 2 * 192 + 6]);
  // Spectrogram: 256 time × 128 mel frames enlarged ×2, two panels.
  t.deepEqual(await pngSize(r.spectrogram), [512, 2 * 256 + 6]);
  // The weights were really loaded: the selection is the saved model's, not a fresh initialisation's.
  t.deepEqual(r.selectedVideo, [...expected.selectedV]);
  t.deepEqual(r.selectedAudio, [...expected.selectedA]);
  t.is(r.selectedVideo.length, 32);
  t.is(r.selectedAudio.length, 64);
});

test('inspect with --checkpoint reads the weights blob and the config name from the checkpoint state', async (t) => {
  const { dir, clip, checkpoints, expected } = await fixture;
  const r = await inspectClip({ clip, checkpoint: checkpoints, out: path.join(dir, 'out-ckpt') });
  t.true(r.weights.endsWith(path.join('ckpt-000003', WEIGHTS_BLOB)));
  t.deepEqual(r.selectedVideo, [...expected.selectedV]);
  t.true((await stat(r.spectrogram)).size > 0);
});

test('the command prints the two paths and fails naming a missing clip', async (t) => {
  const { dir, clip, weights } = await fixture;
  const program = new Command('stella').exitOverride();
  register(program);
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => { lines.push(s); return true; }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'stella', 'inspect', clip, '--weights', weights, '--out', path.join(dir, 'out-cli')]);
  } finally {
    process.stdout.write = write;
  }
  t.deepEqual(lines.join('').trim().split('\n').map((l) => path.basename(l)), [`${path.basename(clip, '.mp4')}.frames.png`, `${path.basename(clip, '.mp4')}.spectrogram.png`]);
  const missing = path.join(dir, 'nope.mp4');
  const e = await t.throwsAsync(program.parseAsync(['node', 'stella', 'inspect', missing, '--weights', weights]));
  t.is(e!.message, `inspect: clip not found: ${missing}`);
});

test('clear errors: no valid checkpoint, wrong tensor shapes, both or neither weights source, config mismatch', async (t) => {
  const { dir, clip, weights, model } = await fixture;
  const empty = path.join(dir, 'no-checkpoints');
  await t.throwsAsync(inspectClip({ clip, checkpoint: empty }), { message: new RegExp(`no checkpoint in ${empty}`) });

  const tensors = model.weights();
  const [name] = tensors.keys();
  tensors.set(name, { shape: [1], dtype: 'float32', data: new Float32Array(1) });
  const bad = path.join(dir, 'bad.safetensors');
  writeSafetensors(bad, tensors, { config: JSON.stringify(config) });
  const e = await t.throwsAsync(inspectClip({ clip, weights: bad, out: path.join(dir, 'out-bad') }));
  t.true(e!.message.includes(`tensor '${name}' has shape [1]`), e!.message);
  t.true(e!.message.startsWith(bad), e!.message);

  await t.throwsAsync(inspectClip({ clip }), { message: /exactly one of --checkpoint DIR or --weights FILE/ });
  await t.throwsAsync(inspectClip({ clip, weights, checkpoint: dir }), { message: /exactly one of/ });
  await t.throwsAsync(inspectClip({ clip, weights, config: 'base' }), { message: /saved with the 'tiny' config but --config says 'base'/ });
  await t.throwsAsync(inspectClip({ clip, weights: path.join(dir, 'none.safetensors') }), { message: /weights file not found: .*none\.safetensors/ });
});
