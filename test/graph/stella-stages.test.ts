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
import { ContinualEvaluator } from '../../src/eval/evaluator.ts';
import { loadTestSet } from '../../src/eval/test-set.ts';
import { loadManifest } from '../../src/media/manifest.ts';
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
  return readFile(path.join(dir, 'checkpoints', latest, 'weights.safetensors'));
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

test('score-only.yaml: 2 clips → frames and spectrogram PNGs showing each clip with its own importance and top-K', async (t) => {
  await initBackend();
  const dir = await tmp();
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 0, test: 1, size: 'tiny', durationSec: 2 });
  const config = modelConfig('tiny');
  const model = new ModelService({ config, rng: Rng.fromSeed('score-only') });
  t.teardown(() => model.dispose());
  const weights = path.join(dir, 'model.safetensors');
  await writeFile(weights, serializeSafetensors(model.weights(), { config: JSON.stringify(config) }));
  const loaded = await loadGraph(path.join(REPO_ROOT, 'graphs/score-only.yaml'), {
    env: { ...process.env, STELLA_CLIPS: manifestPath, STELLA_WEIGHTS: weights, STELLA_OUT: dir },
    overrides: ['nodes.batch.options.size=4'],
  });
  const run = await runGraph(loaded);
  t.deepEqual(run.errors, []);
  const files = (await readdir(path.join(dir, 'heatmaps'))).sort();
  t.is(files.length, 4, files.join(', '));
  // The expected pictures from another path: the evaluator's eval-mode decode of each test clip and
  // the importance and first-step selection of the same weights (spec §5.2 (1)–(4)).
  const testSet = await loadTestSet(await loadManifest(manifestPath), config);
  t.deepEqual(testSet.errors, []);
  const scores = new ContinualEvaluator({ config, testSet }).importanceFor(model);
  const pixels = (png: Buffer) => PNG.sync.read(png);
  const differing = (a: PNG, b: PNG) => { let n = 0; for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i] - b.data[i]) > 1) n++; return n; };
  const written: PNG[] = [];
  testSet.clips.forEach((clip, i) => t.is(scores[i].path, clip.path));
  for (const [i, clip] of testSet.clips.entries()) {
    const expected = renderClipPictures({
      path: clip.path, frames: clip.frames!, frameShape: [config.numFrames, config.imageSize, config.imageSize],
      fbank: clip.fbank!, fbankShape: [config.audioFrames, config.melBins], patch: config.patchSize,
      videoImportance: scores[i].importanceV, audioImportance: scores[i].importanceA, videoSelected: scores[i].selectedV, audioSelected: scores[i].selectedA,
    });
    const base = path.basename(clip.path, path.extname(clip.path));
    for (const [suffix, png] of [['frames', expected.framesPng], ['spectrogram', expected.spectrogramPng]] as const) {
      const actual = pixels(await readFile(path.join(dir, 'heatmaps', `${base}.${suffix}.png`)));
      const want = pixels(png);
      t.deepEqual([actual.width, actual.height], [want.width, want.height], `${base}.${suffix}`);
      t.is(differing(actual, want), 0, `${base}.${suffix}.png: bytes differing from the expected picture`);
      written.push(actual);
    }
  }
  // Each clip's picture is its own: the two frames pictures differ in many pixels.
  t.true(differing(written[0], written[2]) > written[0].data.length / 20);
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
