import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CONFIGS, tokenGrid } from '../../src/core/config.ts';
import { classSpecs, generateCorpus, pretrainClassSpecs } from '../../src/media/corpus.ts';
import { decodeClip, IMAGENET_MEAN, IMAGENET_STD } from '../../src/media/decode.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { tokenizeClip } from '../../src/media/tokenize.ts';
import { tempDir } from './fixtures.ts';

const small = { tasks: 2, classes: 2, train: 1, test: 1 };
const runs = (async () => {
  const a = await generateCorpus({ out: await tempDir('corpus-a'), seed: 2021, ...small });
  const b = await generateCorpus({ out: await tempDir('corpus-b'), seed: 2021, ...small });
  const c = await generateCorpus({ out: await tempDir('corpus-c'), seed: 99, ...small });
  return { a, b, c };
})();

const read = (f: string) => readFile(f);
const specs = new Map(classSpecs(small.tasks, small.classes).flat().map((c) => [c.name, c]));

test('same seed → identical manifest, ground truth and MP4 bytes; another seed differs', async (t) => {
  const { a, b, c } = await runs;
  t.deepEqual(await read(a.manifestPath), await read(b.manifestPath));
  const m = await loadManifest(a.manifestPath);
  const rels = m.tasks.flatMap((task) => [...task.train, ...task.test]).map((e) => path.relative(a.dir, e.path));
  t.is(rels.length, 8);
  for (const rel of rels) t.true((await read(path.join(a.dir, rel))).equals(await read(path.join(b.dir, rel))), rel);
  for (const e of m.tasks.flatMap((task) => task.test)) {
    const rel = path.relative(a.dir, e.groundTruth!);
    t.deepEqual(await read(e.groundTruth!), await read(path.join(b.dir, rel)));
  }
  const rel = rels[0];
  t.false((await read(path.join(a.dir, rel))).equals(await read(path.join(c.dir, rel))));
});

test('tasks have disjoint classes and every test clip has ground truth', async (t) => {
  const { a } = await runs;
  const m = await loadManifest(a.manifestPath);
  t.is(m.seed, 2021);
  const classes = m.tasks.flatMap((task) => task.classes);
  t.is(new Set(classes).size, classes.length);
  t.true(m.tasks.every((task) => task.test.every((e) => e.groundTruth)));
  t.true(m.tasks.every((task) => task.train.every((e) => !e.groundTruth)));
});

test('ground truth marks the patches where the sounding object and its sound actually are', async (t) => {
  const { a } = await runs;
  const cfg = MODEL_CONFIGS.tiny, grid = tokenGrid(cfg), S = cfg.imageSize, P = cfg.patchSize;
  const m = await loadManifest(a.manifestPath);
  for (const entry of m.tasks.flatMap((task) => task.test)) {
    const gt = JSON.parse(await readFile(entry.groundTruth!, 'utf8'));
    t.is(gt.label, entry.label);
    t.is(gt.frames.length, cfg.numFrames);
    const d = await decodeClip(entry.path, { config: cfg, mode: 'eval' });
    const { audioPatches } = tokenizeClip(d, cfg);
    for (const f of gt.frames) {
      t.true(f.videoPatches.length >= 1 && f.videoPatches.length <= 9);
      for (const id of f.videoPatches) t.is(Math.floor(id / (grid.side * grid.side)), f.index);
      // The pixel at the box centre shows the class colour (at rest or pulsed) and lies in a marked patch.
      const cx = Math.floor(f.decodedBox.x + f.decodedBox.w / 2), cy = Math.floor(f.decodedBox.y + f.decodedBox.h / 2);
      t.true(f.videoPatches.includes(f.index * grid.side ** 2 + Math.floor(cy / P) * grid.side + Math.floor(cx / P)));
      const rgb = [0, 1, 2].map((ch) => (d.video[((f.index * 3 + ch) * S + cy) * S + cx] * IMAGENET_STD[ch] + IMAGENET_MEAN[ch]) * 255);
      const spec = specs.get(entry.label)!;
      const pulsed = spec.rgb.map((c) => c + (255 - c) * 0.6);
      const dist = (ref: number[]) => Math.max(...ref.map((c, k) => Math.abs(c - rgb[k])));
      t.true(Math.min(dist(spec.rgb), dist(pulsed)) < 40, `${entry.label} frame ${f.index}: centre ${rgb.map(Math.round)} vs ${spec.rgb}`);
    }
    // Audio: the marked patches carry more energy than the same frequency rows at other times.
    t.true(gt.audioPatches.length > 0);
    const mean = (ids: number[]) => ids.reduce((s, id) => s + audioPatches.subarray(id * 256, (id + 1) * 256).reduce((x, y) => x + y, 0) / 256, 0) / ids.length;
    const marked = new Set<number>(gt.audioPatches);
    const rows = new Set(gt.audioPatches.map((id: number) => id % grid.freqPatches));
    const quiet = Array.from({ length: grid.audioTokens }, (_, i) => i).filter((i) => rows.has(i % grid.freqPatches) && !marked.has(i));
    t.true(quiet.length > 0);
    t.true(mean(gt.audioPatches) > mean(quiet) + 0.15, `${entry.label}: sound patches ${mean(gt.audioPatches)} vs same band elsewhere ${mean(quiet)}`);
  }
});

test('one attribute world: pitch follows hue, timbre and rhythm follow shape, for continual and pre-training classes alike', (t) => {
  const all = [...classSpecs(3, 5).flat(), ...pretrainClassSpecs(32)];
  for (const a of all)
    for (const b of all) {
      if (a.hue === b.hue) t.is(a.f0, b.f0, `${a.name} / ${b.name}`);
      if (a.shape === b.shape) t.deepEqual([a.harmonics, a.interval, a.eventSec], [b.harmonics, b.interval, b.eventSec]);
      if (a.hue !== b.hue) t.not(a.f0, b.f0);
    }
});

test('pre-training classes share no (shape, hue) with the continual classes and cover every shape and most hues', (t) => {
  const continual = new Set(classSpecs(3, 5).flat().map((c) => `${c.shape}/${c.hue}`));
  const pre = pretrainClassSpecs(32);
  const keys = pre.map((c) => `${c.shape}/${c.hue}`);
  t.is(new Set(keys).size, 32);
  t.is(new Set(pre.map((c) => c.name)).size, 32);
  t.deepEqual(keys.filter((k) => continual.has(k)), []);
  t.is(new Set(pre.map((c) => c.shape)).size, 5);
  t.true(new Set(pre.map((c) => c.hue)).size >= 20, `${new Set(pre.map((c) => c.hue)).size} hues`);
  t.throws(() => pretrainClassSpecs(106), { message: /at most 105 classes are free of the continual classes, asked for 106/ });
});

test('kind=pretrain writes one task of pre-training classes on textured backgrounds, with held-out ground truth', async (t) => {
  const dir = await tempDir('corpus-pre');
  const { manifestPath } = await generateCorpus({ out: dir, kind: 'pretrain', seed: 5, classes: 3, train: 1, test: 1 });
  const m = await loadManifest(manifestPath);
  t.deepEqual(m.tasks.map((task) => task.name), ['pretrain']);
  t.deepEqual(m.tasks[0].classes, pretrainClassSpecs(3).map((c) => c.name));
  t.is(m.tasks[0].train.length, 3);
  t.true(m.tasks[0].test.every((e) => e.groundTruth));
  // Textured: the background varies across the frame (a flat background has one shade plus codec noise).
  const d = await decodeClip(m.tasks[0].train[0].path, { config: MODEL_CONFIGS.tiny, mode: 'eval' });
  const S = MODEL_CONFIGS.tiny.imageSize, row = Array.from({ length: S }, (_, x) => d.video[x]); // frame 0, red channel, top row
  t.true(Math.max(...row) - Math.min(...row) > 0.1, `top row spans ${Math.min(...row)}..${Math.max(...row)}`);
  await t.throwsAsync(generateCorpus({ out: dir, kind: 'pretrain', tasks: 2, classes: 3 }), { message: /one task of 3 classes; 'tasks' must be 1, got 2/ });
});
