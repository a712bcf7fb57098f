/** Test set loading and the continual evaluator on a tiny generated corpus with a fresh tiny model. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { ContinualEvaluator, finalize, type EvaluableModel } from '../../src/eval/evaluator.ts';
import { decodedCacheStats } from '../../src/media/decoded-cache.ts';
import { loadTestSet, readGroundTruth, type TestClip, type TestSet } from '../../src/eval/test-set.ts';
import { diagonalRanks, recallFromRanks } from '../../src/eval/retrieval.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { loadManifest, type Manifest } from '../../src/media/manifest.ts';
import { ModelService } from '../../src/model/model-service.ts';

const config = MODEL_CONFIGS.tiny;
const grid = tokenGrid(config);

// One corpus and one decoded test set for the whole file: 2 tasks × 2 classes × (1 train + 2 test).
const fixture = (async () => {
  await initBackend();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-evaluator-'));
  const { manifestPath } = await generateCorpus({ out: dir, tasks: 2, classes: 2, train: 1, test: 2, size: 'tiny' });
  const manifest = await loadManifest(manifestPath);
  const testSet = await loadTestSet(manifest, config);
  return { dir, manifest, testSet };
})();

let model: ModelService;
test.before(async () => {
  await fixture;
  model = new ModelService({ config, rng: Rng.fromSeed(7) });
});
test.after.always(async () => {
  model?.dispose();
  await rm((await fixture).dir, { recursive: true, force: true });
});

test('loadTestSet decodes every test clip once, in manifest order, with ground truth masks', async (t) => {
  const { manifest, testSet } = await fixture;
  t.deepEqual(testSet.errors, []);
  const expected = manifest.tasks.flatMap((task) => task.test.map((c) => [c.path, task.name]));
  t.deepEqual(testSet.clips.map((c) => [c.path, c.task]), expected);
  t.is(testSet.clips.length, 8);
  for (const clip of testSet.clips) {
    t.is(clip.videoPatches.length, grid.videoTokens * grid.videoPatchDim);
    t.is(clip.audioPatches.length, grid.audioTokens * grid.audioPatchDim);
    t.is(clip.taskIndex, clip.task === 'task0' ? 0 : 1);
    t.truthy(clip.groundTruth);
    const { video, audio } = clip.groundTruth!;
    t.is(video.length, grid.videoTokens);
    t.is(audio.length, grid.audioTokens);
    // The sounding object covers some patches but not the whole frame.
    const positives = video.reduce((s, x) => s + x, 0);
    t.true(positives > 0 && positives < grid.videoTokens, `${clip.path}: ${positives} positive video patches`);
    t.true(audio.some((x) => x === 1));
  }
  // Decoded media are kept for the first two clips of each task only.
  t.deepEqual(testSet.clips.map((c) => Boolean(c.frames && c.fbank)), [true, true, false, false, true, true, false, false]);
  t.is(testSet.clips[0].frames!.length, config.numFrames * 3 * config.imageSize * config.imageSize);
  t.is(testSet.clips[0].fbank!.length, config.audioFrames * config.melBins);
});

test('ground truth follows the token ids of the gt.json', async (t) => {
  const { manifest } = await fixture;
  const file = manifest.tasks[0].test[0].groundTruth!;
  const json = JSON.parse(await readFile(file, 'utf8'));
  const gt = await readGroundTruth(file, config);
  t.deepEqual([...gt.video.keys()].filter((i) => gt.video[i]), json.videoPatches);
  t.deepEqual([...gt.audio.keys()].filter((i) => gt.audio[i]), json.audioPatches);
});

test('a ground-truth grid that does not match the config is an error naming the file', async (t) => {
  const { manifest } = await fixture;
  const file = manifest.tasks[0].test[0].groundTruth!;
  const e = await t.throwsAsync(readGroundTruth(file, MODEL_CONFIGS.base));
  t.true(e!.message.includes(file), e!.message);
  t.regex(e!.message, /does not match the 'base' config/);
});

test('loadTestSet collects a missing clip and a bad ground truth as errors and keeps going', async (t) => {
  const { manifest, dir } = await fixture;
  const badGt = path.join(dir, 'bad.gt.json');
  await writeFile(badGt, JSON.stringify({ grid: { side: 14, timePatches: 64, freqPatches: 8 }, videoPatches: [], audioPatches: [] }));
  const good = manifest.tasks[0].test[0];
  const broken: Manifest = {
    ...manifest,
    tasks: [{ name: 'x', classes: [good.label], train: [], test: [{ ...good, path: path.join(dir, 'missing.mp4') }, { ...good, groundTruth: badGt }] }],
  };
  const { clips, errors } = await loadTestSet(broken, config, { keepMediaPerTask: 0 });
  t.is(clips.length, 1);
  t.is(clips[0].groundTruth, undefined);
  t.is(clips[0].frames, undefined);
  t.deepEqual(errors.map((e) => [e.path, e.stage]), [[path.join(dir, 'missing.mp4'), 'decode'], [good.path, 'ground-truth']]);
  t.true(errors[1].message.includes(badGt), errors[1].message);
});

test('loadTestSet with the decoded cache: the same clips bit for bit, read back on the next load, errors as without it', async (t) => {
  const { manifest, dir, testSet } = await fixture;
  const cache = path.join(dir, 'test-set-cache');
  const bits = (a?: Float32Array, b?: Float32Array) => (a === undefined && b === undefined) || (!!a && !!b && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
  for (const round of ['decoded and stored', 'read back']) {
    const hits = decodedCacheStats.hits;
    const cached = await loadTestSet(manifest, config, { cache });
    t.deepEqual(cached.errors, []);
    t.deepEqual(cached.clips.map((c) => c.path), testSet.clips.map((c) => c.path));
    for (const [i, clip] of cached.clips.entries()) {
      const plain = testSet.clips[i];
      t.true(bits(clip.videoPatches, plain.videoPatches) && bits(clip.audioPatches, plain.audioPatches) && bits(clip.frames, plain.frames) && bits(clip.fbank, plain.fbank), `${round}: ${clip.path}`);
      t.deepEqual(clip.groundTruth, plain.groundTruth);
    }
    t.is(decodedCacheStats.hits - hits, round === 'read back' ? 8 : 0, round);
  }
  const good = manifest.tasks[0].test[0];
  const broken: Manifest = { ...manifest, tasks: [{ name: 'x', classes: [good.label], train: [], test: [{ ...good, path: path.join(dir, 'missing.mp4') }, good] }] };
  const { clips, errors } = await loadTestSet(broken, config, { cache, keepMediaPerTask: 0 });
  t.deepEqual(clips.map((c) => c.path), [good.path]);
  t.deepEqual(errors.map((e) => [e.path, e.stage]), [[path.join(dir, 'missing.mp4'), 'decode']]);
  t.regex(errors[0].message, /missing\.mp4/);
  const controller = new AbortController();
  controller.abort();
  t.is((await t.throwsAsync(loadTestSet(manifest, config, { cache: path.join(dir, 'other-cache'), signal: controller.signal })))!.name, 'AbortError');
});

test('evaluate: retrieval over the whole gallery with per-task rows, localisation AUCs, no tensor left behind', async (t) => {
  const { testSet } = await fixture;
  const evaluator = new ContinualEvaluator({ config, testSet, batchSize: 3 });
  const before = tf.memory().numTensors;
  const result = evaluator.evaluate(model);
  t.is(tf.memory().numTensors, before);
  t.is(result.retrieval.n, 8);
  t.deepEqual(Object.keys(result.retrieval.perCategory).sort(), ['task0', 'task1']);
  // The values themselves are checked on known answers below; here: the real model's rows are consistent.
  const e = new ContinualEvaluator({ config, testSet, batchSize: 8 }).embeddings(model);
  const ranks = tf.tidy(() => diagonalRanks(tf.tensor2d(e.audio, [8, config.embedDim]), tf.tensor2d(e.video, [8, config.embedDim])));
  t.deepEqual(result.retrieval.all.a2v, recallFromRanks(ranks.greater));
  t.deepEqual(result.retrieval.perCategory.task1.a2v, recallFromRanks(ranks.greater.subarray(4)));
  const loc = result.localization!;
  t.truthy(loc);
  for (const s of [loc.video, loc.audio]) {
    t.is(s.perClip.length, 8);
    t.is(s.clips + s.skipped, 8);
    t.is(s.meanAuc, s.perClip.filter((a) => a !== null).reduce((sum, a) => sum + a!, 0) / s.clips);
  }
});

/**
 * Known answers. 12 clips (task0 = clips 0–5, task1 = clips 6–11), audio a_i = e_i, and video v_j the
 * unit vector whose first 12 coordinates are column j of a chosen similarity matrix S (padded to norm
 * 1 in coordinate 12): then Sim_a2v[i][j] = S[i][j] and Sim_v2a[j][i] = S[i][j]. S has 0.2 on the
 * diagonal, 0.3 where a wrong clip beats the right one, 0 elsewhere, so the rank of query i is the
 * number of 0.3s in row i (a2v) or column i (v2a).
 */
const KNOWN_N = 12;
/** beats[i] = the clips j with S[i][j] = 0.3. */
type Beats = Record<number, number[]>;
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => a + k);
// After task 0: task1's queries 6, 7, 8 have ranks 4, 10, 6.
const AFTER_TASK0: Beats = { 6: range(7, 10), 7: [...range(0, 6), ...range(8, 10)], 8: [9, 10, 11, 0, 1, 2] };
// After task 1: clip 8 is learned (rank 0); task0's queries 0, 1, 2 are forgotten to ranks 10, 5, 1.
const AFTER_TASK1: Beats = { 0: range(1, 10), 1: range(2, 6), 2: [3], 6: AFTER_TASK0[6], 7: AFTER_TASK0[7] };

function knownEmbeddings(beats: Beats): { audio: number[][]; video: number[][] } {
  const D = config.embedDim;
  const S: number[][] = Array.from({ length: KNOWN_N }, (_, i) => Array.from({ length: KNOWN_N }, (_, j) => (i === j ? 0.2 : beats[i]?.includes(j) ? 0.3 : 0)));
  const audio = S.map((_, i) => Array.from({ length: D }, (_, k) => (k === i ? 1 : 0)));
  const video = S.map((_, j) => {
    const column = S.map((row) => row[j]);
    const pad = Math.sqrt(1 - column.reduce((s, x) => s + x * x, 0));
    return Array.from({ length: D }, (_, k) => (k < KNOWN_N ? column[k] : k === KNOWN_N ? pad : 0));
  });
  return { audio, video };
}

/** A model that embeds clip i (its id is in videoPatches[0]) to the rows of `knownEmbeddings(beats)`. */
function knownModel(beats: Beats): EvaluableModel {
  const { audio, video } = knownEmbeddings(beats);
  const ids = (v: tf.Tensor3D) => Array.from(tf.slice(v, [0, 0, 0], [v.shape[0], 1, 1]).dataSync());
  return {
    backbone: {
      embed: (v) => ({ a: tf.tensor2d(ids(v).map((i) => audio[i])), v: tf.tensor2d(ids(v).map((i) => video[i])) }),
      intermediate: () => { throw new Error('not used'); },
      jointFromCodes: () => { throw new Error('not used'); },
    },
  };
}

function knownClips(): TestClip[] {
  return range(0, KNOWN_N - 1).map((i) => {
    const videoPatches = new Float32Array(grid.videoTokens * grid.videoPatchDim);
    videoPatches[0] = i;
    const task = i < 6 ? 'task0' : 'task1';
    return { path: `/known/clip${i}.mp4`, label: `c${i}`, task, taskIndex: i < 6 ? 0 : 1, videoPatches, audioPatches: new Float32Array(grid.audioTokens * grid.audioPatchDim) };
  });
}

test('known answer: ranks, R@1/5/10 and MR of hand-built embeddings over a 12-clip gallery (R@10 < 100)', (t) => {
  const evaluator = new ContinualEvaluator({ config, testSet: knownClips(), batchSize: 5 });
  const model = knownModel(AFTER_TASK1);
  // Ranks are the counts of 0.3 in each row (a2v) and each column (v2a) of S.
  const e = evaluator.embeddings(model);
  const ranks = tf.tidy(() => {
    const [a, v] = [tf.tensor2d(e.audio, [KNOWN_N, config.embedDim]), tf.tensor2d(e.video, [KNOWN_N, config.embedDim])];
    return { a2v: diagonalRanks(a, v).greater, v2a: diagonalRanks(v, a).greater };
  });
  t.deepEqual([...ranks.a2v], [10, 5, 1, 0, 0, 0, 4, 10, 0, 0, 0, 0]);
  t.deepEqual([...ranks.v2a], [1, 2, 3, 4, 3, 3, 3, 2, 3, 3, 3, 0]);
  const before = tf.memory().numTensors;
  const r = evaluator.evaluate(model).retrieval;
  t.is(tf.memory().numTensors, before);
  t.is(r.n, 12);
  // a2v, all 12: rank 0 ×7 → R@1 7/12; rank < 5 ×9 → R@5 9/12; ranks 10, 10 miss the top 10 → R@10 10/12;
  // sorted ranks 0,0,0,0,0,0,0,1,4,5,10,10 → median 0, MR 1.
  t.deepEqual(r.all.a2v, { R1: 700 / 12, R5: 900 / 12, R10: 1000 / 12, MR: 1 });
  // task0 ranks 10,5,1,0,0,0 → R@1 3/6, R@5 4/6, R@10 5/6, median (0 + 1) / 2 → MR 1.5.
  t.deepEqual(r.perCategory.task0.a2v, { R1: 50, R5: 400 / 6, R10: 500 / 6, MR: 1.5 });
  // task1 ranks 4,10,0,0,0,0 → R@1 4/6, R@5 5/6, R@10 5/6, MR 1.
  t.deepEqual(r.perCategory.task1.a2v, { R1: 400 / 6, R5: 500 / 6, R10: 500 / 6, MR: 1 });
  // v2a: only clip 11 is first; all ranks < 5; sorted 0,1,2,2,3,3,3,3,3,3,3,4 → MR 4.
  t.deepEqual(r.all.v2a, { R1: 100 / 12, R5: 100, R10: 100, MR: 4 });
  t.deepEqual(r.perCategory.task0.v2a, { R1: 0, R5: 100, R10: 100, MR: 4 });
  t.deepEqual(r.perCategory.task1.v2a, { R1: 100 / 6, R5: 100, R10: 100, MR: 4 });
});

test('known answer: finalize builds the T×T matrices and A, F, F_authors worked out by hand', (t) => {
  const evaluator = new ContinualEvaluator({ config, testSet: knownClips() });
  const out = finalize([evaluator.evaluate(knownModel(AFTER_TASK0)), evaluator.evaluate(knownModel(AFTER_TASK1))], ['task0', 'task1']);
  // After task 0: task0 ranks all 0 (100 everywhere); task1 ranks 4,10,6,0,0,0 → R@1 3/6, R@5 4/6, R@10 5/6.
  // After task 1: see the test above.
  t.deepEqual(out.retrieval.a2v.R1, [[100, 50], [50, 400 / 6]]);
  t.deepEqual(out.retrieval.a2v.R5, [[100, 400 / 6], [400 / 6, 500 / 6]]);
  t.deepEqual(out.retrieval.a2v.R10, [[100, 500 / 6], [500 / 6, 500 / 6]]);
  // v2a after task 0: column counts task0 2,2,2,1,1,1 and task1 1,1,2,3,3,1 → R@1 0, R@5 = R@10 = 100.
  t.deepEqual(out.retrieval.v2a.R1, [[0, 0], [0, 100 / 6]]);
  t.deepEqual(out.retrieval.v2a.R10, [[100, 100], [100, 100]]);
  const near = (actual: number, expected: number, what: string) => t.true(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, expected ${expected}`);
  // A = mean of the last row; F = M[0][0] − M[1][0]; F_authors adds M[0][1] − M[1][1] (task 1 before it was learned).
  const expected = {
    R1: { A: (50 + 200 / 3) / 2, F: 50, F_authors: 50 + (50 - 200 / 3) },
    R5: { A: 75, F: 100 / 3, F_authors: 100 / 3 - 50 / 3 },
    R10: { A: 250 / 3, F: 50 / 3, F_authors: 50 / 3 },
  };
  for (const k of ['R1', 'R5', 'R10'] as const) for (const f of ['A', 'F', 'F_authors'] as const) near(out.summary.a2v[k][f], expected[k][f], `a2v.${k}.${f}`);
  near(out.summary.a2v.avg.F, (50 + 100 / 3 + 50 / 3) / 3, 'a2v.avg.F');
  near(out.summary.v2a.R1.A, 100 / 12, 'v2a.R1.A');
  near(out.summary.v2a.R1.F, 0, 'v2a.R1.F');
  near(out.summary.v2a.R1.F_authors, -100 / 6, 'v2a.R1.F_authors');
  t.deepEqual(out.localization, {}); // no AVM: nothing to localise
});

test('embeddings do not depend on the batch size and are L2-normalised', async (t) => {
  const { testSet } = await fixture;
  const one = new ContinualEvaluator({ config, testSet, batchSize: 8 }).embeddings(model);
  const three = new ContinualEvaluator({ config, testSet, batchSize: 3 }).embeddings(model);
  t.is(one.audio.length, 8 * config.embedDim);
  let maxDiff = 0;
  for (let i = 0; i < one.audio.length; i++) maxDiff = Math.max(maxDiff, Math.abs(one.audio[i] - three.audio[i]), Math.abs(one.video[i] - three.video[i]));
  t.true(maxDiff < 1e-4, `max difference ${maxDiff}`);
  for (let r = 0; r < 8; r++) {
    const norm = Math.hypot(...one.video.subarray(r * config.embedDim, (r + 1) * config.embedDim));
    t.true(Math.abs(norm - 1) < 1e-4, `row ${r} norm ${norm}`);
  }
});

test('retrieval rows stay aligned with their clips across batches (R@1 = 100 for identical audio and video embeddings)', async (t) => {
  const { testSet } = await fixture;
  const D = config.embedDim;
  // Both modalities embed a clip to the same vector, taken from its video patches.
  const fingerprint = (video: tf.Tensor3D) => tf.slice(tf.mean(video, 1), [0, 0], [video.shape[0], D]) as tf.Tensor2D;
  const fake: EvaluableModel = {
    backbone: {
      embed: (video) => ({ a: fingerprint(video), v: fingerprint(video) }),
      intermediate: () => { throw new Error('not used'); },
      jointFromCodes: () => { throw new Error('not used'); },
    },
  };
  const result = new ContinualEvaluator({ config, testSet, batchSize: 3 }).evaluate(fake);
  t.is(result.localization, undefined);
  t.is(result.retrieval.all.a2v.R1, 100);
  t.is(result.retrieval.all.v2a.R1, 100);
  t.is(result.retrieval.perCategory.task1.a2v.MR, 1);
});

test('localisation scores the model importance against the ground truth: an AVM attending exactly to it gives AUC 1', async (t) => {
  const { testSet } = await fixture;
  const H = 2;
  let cursor = 0;
  // The fake AVM sees clips in evaluation order; its logits are high on each clip's ground-truth keys.
  const truth = testSet.clips.map((c) => c.groundTruth!);
  const fake: EvaluableModel = {
    backbone: {
      embed: model.backbone.embed.bind(model.backbone),
      intermediate: model.backbone.intermediate.bind(model.backbone),
      jointFromCodes: model.backbone.jointFromCodes.bind(model.backbone),
    },
    avm: {
      inferAttention: (embA) => {
        const B = embA.shape[0];
        const rows = truth.slice(cursor, cursor + B);
        cursor += B;
        const keysV = tf.tensor2d(rows.flatMap((r) => [...r.video]), [B, grid.videoTokens]).mul(5);
        const keysA = tf.tensor2d(rows.flatMap((r) => [...r.audio]), [B, grid.audioTokens]).mul(5);
        const sAV = keysV.reshape([B, 1, 1, grid.videoTokens]).tile([1, H, grid.audioTokens, 1]) as tf.Tensor4D;
        const sVA = keysA.reshape([B, 1, 1, grid.audioTokens]).tile([1, H, grid.videoTokens, 1]) as tf.Tensor4D;
        const q = (L: number) => tf.zeros([B, H, L, 4]) as tf.Tensor4D;
        return { sAV, sVA, qV: q(grid.videoTokens), kV: q(grid.videoTokens), qA: q(grid.audioTokens), kA: q(grid.audioTokens) };
      },
    },
  };
  const before = tf.memory().numTensors;
  const loc = new ContinualEvaluator({ config, testSet, batchSize: 3 }).evaluate(fake).localization!;
  t.is(tf.memory().numTensors, before);
  t.is(cursor, 8);
  t.is(loc.video.meanAuc, 1);
  t.is(loc.audio.meanAuc, 1);
});

test('importanceFor: rows sum to 1 and the selection is the top-K by importance', async (t) => {
  const { testSet } = await fixture;
  const evaluator = new ContinualEvaluator({ config, testSet });
  const before = tf.memory().numTensors;
  const scores = evaluator.importanceFor(model, testSet.clips.slice(0, 3));
  t.is(tf.memory().numTensors, before);
  t.deepEqual(scores.map((s) => s.path), testSet.clips.slice(0, 3).map((c) => c.path));
  for (const s of scores) {
    t.is(s.importanceV.length, grid.videoTokens);
    t.is(s.importanceA.length, grid.audioTokens);
    t.true(Math.abs(s.importanceV.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    t.true(Math.abs(s.importanceA.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    t.is(s.selectedV.length, Math.trunc(grid.videoTokens * 0.5));
    t.is(s.selectedA.length, Math.trunc(grid.audioTokens * 0.5));
    for (const [imp, sel] of [[s.importanceV, s.selectedV], [s.importanceA, s.selectedA]] as const) {
      t.is(new Set(sel).size, sel.length);
      const chosen = new Set(sel);
      const minKept = Math.min(...[...sel].map((i) => imp[i]));
      const maxDropped = Math.max(...[...imp.keys()].filter((i) => !chosen.has(i)).map((i) => imp[i]));
      t.true(minKept >= maxDropped, `kept ${minKept} < dropped ${maxDropped}`);
      for (let k = 1; k < sel.length; k++) t.true(imp[sel[k - 1]] >= imp[sel[k]]);
    }
  }
  t.throws(() => evaluator.importanceFor({ backbone: model.backbone }), { message: /no AVM/ });
});

test('finalize on a real model: matrix rows are the stages, localisation is the last stage\'s', async (t) => {
  const { testSet } = await fixture;
  const evaluator = new ContinualEvaluator({ config, testSet });
  const stages = [evaluator.evaluate(model), evaluator.evaluate(model)];
  const out = finalize(stages, ['task0', 'task1']);
  for (const d of ['a2v', 'v2a'] as const) {
    for (const k of ['R1', 'R5', 'R10'] as const) {
      t.is(out.retrieval[d][k].length, 2);
      t.deepEqual(out.retrieval[d][k][1], [stages[1].retrieval.perCategory.task0[d][k], stages[1].retrieval.perCategory.task1[d][k]]);
    }
  }
  t.is(out.localization.video!.meanAuc, stages[1].localization!.video.meanAuc);
  t.is(out.localization.video!.clips + out.localization.video!.skipped, 8);
  t.throws(() => finalize(stages, ['task0']), { message: /2 evaluation stages for 1 tasks/ });
});

test('bad inputs: an empty test set and patches of the wrong size are refused clearly', (t) => {
  const empty: TestSet = { clips: [], errors: [] };
  t.throws(() => new ContinualEvaluator({ config, testSet: empty }).evaluate(model), { message: /no clips/ });
  const clip = { path: '/x/clip.mp4', label: 'a', task: 'task0', taskIndex: 0, videoPatches: new Float32Array(10), audioPatches: new Float32Array(grid.audioTokens * grid.audioPatchDim) };
  t.throws(() => new ContinualEvaluator({ config, testSet: [clip] }), { message: /\/x\/clip\.mp4: videoPatches has 10 values, expected 49152/ });
  t.throws(() => new ContinualEvaluator({ config, testSet: [], batchSize: 0 }), { instanceOf: RangeError, message: /ContinualEvaluator: bad options: .*expected number to be >0.*batchSize/s });
});

test('evaluate runs the modality layers once for retrieval and localisation: the same numbers as the two passes apart', async (t) => {
  const { testSet } = await fixture;
  const b = model.backbone;
  // Without embedFromCodes the evaluator runs Mode E and Mode A as two passes (the path before).
  const apart = { backbone: { embed: b.embed.bind(b), intermediate: b.intermediate.bind(b), jointFromCodes: b.jointFromCodes.bind(b) }, avm: model.avm };
  for (const batchSize of [3, 8]) {
    const evaluator = new ContinualEvaluator({ config, testSet, batchSize });
    const before = tf.memory().numTensors;
    const together = evaluator.evaluate(model);
    t.is(tf.memory().numTensors, before);
    t.deepEqual(together, evaluator.evaluate(apart), `batch ${batchSize}`);
    t.truthy(together.localization);
  }
  // Mode E from the codes is Mode E, bit for bit.
  const bits = (x: tf.Tensor) => Buffer.from((x.dataSync() as Float32Array).buffer);
  tf.tidy(() => {
    const g = tokenGrid(config);
    const v = tf.randomNormal([2, g.videoTokens, g.videoPatchDim], 0, 1, 'float32', 1) as tf.Tensor3D;
    const a = tf.randomNormal([2, g.audioTokens, g.audioPatchDim], 0, 1, 'float32', 2) as tf.Tensor3D;
    const direct = b.embed(v, a), fromCodes = b.embedFromCodes!(b.intermediate(v, a));
    t.true(bits(direct.a).equals(bits(fromCodes.a)) && bits(direct.v).equals(bits(fromCodes.v)));
  });
});

test('loadTestSet stops with the AbortError when its signal is aborted, collecting nothing', async (t) => {
  const { manifest } = await fixture;
  const controller = new AbortController();
  controller.abort();
  const e = await t.throwsAsync(loadTestSet(manifest, config, { signal: controller.signal }));
  t.is(e!.name, 'AbortError');
});
