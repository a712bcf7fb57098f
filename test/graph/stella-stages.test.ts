import test from 'ava';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { runCommand } from '../../src/cli/run.ts';
import { initBackend } from '../../src/core/backend.ts';
import { modelConfig } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { serializeSafetensors } from '../../src/core/safetensors.ts';
import { parseResults } from '../../src/eval/results.ts';
import { renderClipPictures } from '../../src/eval/pictures.ts';
import { loadGraph } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { patchifyAudio, patchifyVideo, unpatchifyAudio, unpatchifyVideo } from '../../src/media/patchify.ts';
import { ModelService } from '../../src/model/model-service.ts';
import { REPO_ROOT } from '../helpers.ts';

// 2 tasks × 2 classes × 2 train clips, batch 2 → 4 steps; from step 2 on the STELLA step replays and prunes.
const SMALL = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'train.memory=4', 'report.clips=1'];
const quiet = { quiet: true, log: () => {}, signals: null } as const;
const tmp = () => mkdtemp(path.join(os.tmpdir(), 'stella-stages-'));
const FUSED = path.join(REPO_ROOT, 'test/graph/fixtures/continual-pretrain-fused.yaml');

async function finalWeights(dir: string): Promise<Buffer> {
  const latest = (await readFile(path.join(dir, 'checkpoints', 'latest'), 'utf8')).trim();
  return readFile(path.join(dir, 'checkpoints', latest, 'weights.safetensors.bin'));
}
async function results(dir: string) {
  const { timing: _t, memory: _m, ...rest } = parseResults(JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8')));
  return rest;
}
async function stageCounts(dir: string): Promise<Record<string, { received: number; emitted: number; errors: number }>> {
  return (JSON.parse(await readFile(path.join(dir, 'steps.json'), 'utf8')) as { metrics: { stages: Record<string, { received: number; emitted: number; errors: number }> } }).metrics.stages;
}

test.serial('score → replay-assess → sample → train gives the fused STELLA step\'s results and weights, bit for bit', async (t) => {
  const staged = await tmp(), fused = await tmp();
  await runCommand({ sets: SMALL, out: staged, ...quiet });
  await runCommand({ graph: FUSED, sets: SMALL, out: fused, ...quiet });
  const stages = await stageCounts(staged);
  // 4 batches + 2 task ends through each of the three stages, none failed.
  for (const node of ['score', 'assess', 'sample']) t.like(stages[node], { received: 6, emitted: 6, errors: 0 }, node);
  t.false('score' in (await stageCounts(fused)));
  const a = await results(staged), b = await results(fused);
  t.deepEqual(a.errors, []);
  t.deepEqual(a.retrieval, b.retrieval);
  t.deepEqual(a.summary, b.summary);
  t.deepEqual(a.localization, b.localization);
  t.true((await finalWeights(staged)).equals(await finalWeights(fused)));
});

test.serial('strategies without phases (der++) pass through score/assess/sample and train their own step', async (t) => {
  const out = await tmp();
  const outcome = await runCommand({ sets: [...SMALL, 'selector=der++'], out, ...quiet });
  const r = outcome.results.train;
  t.is(r.selector, 'der++');
  t.deepEqual(r.errors, []);
  t.is(r.retrieval.a2v.R1.length, 2);
  const stages = await stageCounts(out);
  for (const node of ['score', 'assess', 'sample', 'train']) t.like(stages[node], { received: 6, emitted: 6, errors: 0 }, node);
});

test('unpatchify inverts patchify (write-heatmaps puts the tokens back in place)', (t) => {
  const rng = Rng.fromSeed('unpatchify');
  const frames = Float32Array.from({ length: 2 * 3 * 32 * 48 }, () => rng.normal());
  t.deepEqual(unpatchifyVideo(patchifyVideo(frames, 2, 32, 48), 2, 32, 48, 16), frames);
  const fbank = Float32Array.from({ length: 64 * 32 }, () => rng.normal());
  t.deepEqual(unpatchifyAudio(patchifyAudio(fbank, 64, 32), 64, 32, 16), fbank);
  t.throws(() => unpatchifyAudio(new Float32Array(10), 64, 32, 16), { message: /10 values, expected 64·32/ });
});

test('score-only.yaml: 2 clips → one frames and one spectrogram PNG each, of the picture sizes', async (t) => {
  await initBackend();
  const dir = await tmp();
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 0, test: 1, size: 'tiny', durationSec: 2 });
  const config = modelConfig('tiny');
  const model = new ModelService({ config, rng: Rng.fromSeed('score-only') });
  const weights = path.join(dir, 'model.safetensors');
  await writeFile(weights, serializeSafetensors(model.weights(), { config: JSON.stringify(config) }));
  model.dispose();
  const loaded = await loadGraph(path.join(REPO_ROOT, 'graphs/score-only.yaml'), {
    env: { ...process.env, STELLA_CLIPS: manifestPath, STELLA_WEIGHTS: weights, STELLA_OUT: dir },
    overrides: ['nodes.batch.options.size=4'],
  });
  const run = await runGraph(loaded);
  t.deepEqual(run.errors, []);
  const files = (await readdir(path.join(dir, 'heatmaps'))).sort();
  t.is(files.length, 4, files.join(', '));
  // The expected sizes: the same pictures of any clip of this config, with an overlay panel.
  const blank = renderClipPictures({
    path: 'x', frames: new Float32Array(config.numFrames * 3 * config.imageSize ** 2), frameShape: [config.numFrames, config.imageSize, config.imageSize],
    fbank: new Float32Array(config.audioFrames * config.melBins), fbankShape: [config.audioFrames, config.melBins], patch: config.patchSize,
    videoImportance: new Float32Array(64).fill(1), audioImportance: new Float32Array(128).fill(1), videoSelected: Int32Array.of(0), audioSelected: Int32Array.of(0),
  });
  const size = (png: Buffer) => { const p = PNG.sync.read(png); return [p.width, p.height]; };
  for (const f of files) {
    const kind = f.endsWith('.frames.png') ? 'framesPng' : f.endsWith('.spectrogram.png') ? 'spectrogramPng' : undefined;
    t.truthy(kind, f);
    t.deepEqual(size(await readFile(path.join(dir, 'heatmaps', f))), size(blank[kind!]), f);
  }
});

test('score-only.yaml refuses weights of another config, naming the file', async (t) => {
  await initBackend();
  const dir = await tmp();
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 0, test: 1, size: 'tiny', durationSec: 2 });
  const weights = path.join(dir, 'bad.safetensors');
  await writeFile(weights, serializeSafetensors(new Map(), { config: JSON.stringify({ name: 'base' }) }));
  const loaded = await loadGraph(path.join(REPO_ROOT, 'graphs/score-only.yaml'), { env: { ...process.env, STELLA_CLIPS: manifestPath, STELLA_WEIGHTS: weights, STELLA_OUT: dir } });
  const run = await runGraph(loaded);
  t.true(run.errors.length > 0);
  t.regex(run.errors[0].message, /bad\.safetensors holds a 'base' model but the graph's config is 'tiny'/);
});
