import test from 'ava';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { decode } from '../../src/media/stages/decode.ts';
import { pullable } from '../../src/graph/bounded-queue.ts';
import type { ClipRef, DecodedClip as DecodedItem, TaskEnd } from '../../src/media/items.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { decodeClip, IMAGENET_STD, sharedDecodeStats } from '../../src/media/decode.ts';
import { decodedCacheStats, decodeEvalClips, pruneDecodedCache, trainFrameGrid } from '../../src/media/decoded-cache.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { MediaError } from '../../src/media/media-error.ts';
import { cropResizeRgb } from '../../src/media/resize.ts';
import { goodClip, tempDir } from './fixtures.ts';

const tiny = MODEL_CONFIGS.tiny;

const corpus = (async () => {
  const dir = await tempDir('decoded-cache-corpus');
  const { manifestPath } = await generateCorpus({ out: dir, tasks: 1, classes: 2, train: 1, test: 0, seed: 5 });
  return (await loadManifest(manifestPath)).tasks[0].train.map((c) => c.path);
})();

/** Mean and max |a − b| in 8-bit levels (the normalised values times 255·std, averaged over channels). */
function levels(a: Float32Array, b: Float32Array) {
  const k = (255 * (IMAGENET_STD[0] + IMAGENET_STD[1] + IMAGENET_STD[2])) / 3;
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) * k;
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('frame grid: fixed times for a short clip, one window for a clip of the window length, 1/8 s steps otherwise', (t) => {
  t.deepEqual(trainFrameGrid(2, 4), [0, 0.5, 1, 1.5]);
  t.deepEqual(trainFrameGrid(4, 4), [0, 1, 2, 3]);
  t.deepEqual(trainFrameGrid(4.1, 4), [0, 1, 2, 3], 'one start (0) below D − W = 0.1 s');
  const ten = trainFrameGrid(10, 4);
  t.is(ten.length, 48 + 24, 'starts 0 … 5.875 s plus 3 s of frames after the last');
  t.is(ten[71], 71 / 8);
});

test('PIL-style crop + resize: identity, constant, and the triangle filter widened when shrinking', (t) => {
  const src = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => (i * 37) % 256);
  t.deepEqual(cropResizeRgb(src, 4, { x: 0, y: 0, w: 4, h: 4 }, 4), src, 'same size: a copy');
  t.true(cropResizeRgb(new Uint8Array(256 * 256 * 3).fill(77), 256, { x: 32, y: 0, w: 192, h: 224 }, 64).every((v) => v === 77));
  // One row 0,0,255,255 (grey) → 2 wide: centre 1, support 2, taps x = 0,1,2 weighted .75,.75,.25 → 255·.25/1.75.
  const row = new Uint8Array([0, 0, 255, 255].flatMap((v) => [v, v, v]));
  const out = cropResizeRgb(new Uint8Array([...row, ...row]), 4, { x: 0, y: 0, w: 4, h: 2 }, 2);
  t.deepEqual([...out.subarray(0, 6)], [36, 36, 36, 219, 219, 219]);
  // The box is cropped first: pixels outside it never contribute.
  const boxed = new Uint8Array(8 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 4; x < 8; x++) boxed.fill(200, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
  t.true(cropResizeRgb(boxed, 8, { x: 0, y: 0, w: 4, h: 2 }, 2).every((v) => v === 0));
});

test.serial('same seed: the cached path draws the same window and crop and gives a bit-identical fbank; video within resampling error', async (t) => {
  const cache = await tempDir('decoded-cache');
  const clips = await corpus;
  const before = { ...decodedCacheStats };
  for (const file of clips) {
    for (const seed of [1, 2, 3]) {
      const direct = Rng.fromSeed(seed), cached = Rng.fromSeed(seed);
      const a = await decodeClip(file, { config: tiny, mode: 'train', rng: direct });
      const b = await decodeClip(file, { config: tiny, mode: 'train', rng: cached, cache });
      t.true(sameBits(a.fbank, b.fbank), `${path.basename(file)} seed ${seed}: fbank bits`);
      t.is(direct.uniform(), cached.uniform(), 'both consumed exactly the same draws');
      t.is(b.video.length, a.video.length);
      const d = levels(a.video, b.video);
      t.log(`${path.basename(file)} seed ${seed}: video |Δ| mean ${d.mean.toFixed(2)} max ${d.max.toFixed(1)} levels`);
      t.true(d.mean < 3, `mean ${d.mean}`);
      t.true(d.max < 64, `max ${d.max}`);
      t.deepEqual(b.info.durationSec, a.info.durationSec);
    }
  }
  t.is(decodedCacheStats.misses - before.misses, clips.length, 'each clip decoded once');
  t.is(decodedCacheStats.hits - before.hits, clips.length * 2, 'the other seeds read the cache');
  // A hit gives exactly what the miss gave for the same seed.
  const again = await decodeClip(clips[0], { config: tiny, mode: 'train', rng: Rng.fromSeed(1), cache });
  const first = await decodeClip(clips[0], { config: tiny, mode: 'train', rng: Rng.fromSeed(1), cache });
  t.true(sameBits(again.video, first.video) && sameBits(again.fbank, first.fbank));
  // One file per clip, about 0.9 MB at tiny (4 frames of 256² rgb + the fbank).
  const files = (await readdir(cache)).filter((f) => f.endsWith('.bin'));
  t.is(files.length, clips.length);
  t.is((await stat(path.join(cache, files[0]))).size > 4 * 256 * 256 * 3 + 256 * 128 * 4, true);
});

test('a clip longer than the window: any start reads the stored 1/8 s grid; the same seed gives the same window as decodeClip', async (t) => {
  const dir = await tempDir('decoded-cache-long');
  const file = await goodClip(path.join(dir, 'long.mp4'), 6, '96x72');
  const cache = path.join(dir, 'cache');
  for (const seed of [1, 2, 3, 4]) {
    const a = await decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(seed) });
    const b = await decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(seed), cache });
    t.true(sameBits(a.fbank, b.fbank));
    // testsrc's frames (10 fps) are not all on the 1/8 s grid; its picture changes little in 0.1 s.
    t.true(levels(a.video, b.video).mean < 4, `seed ${seed}: ${levels(a.video, b.video).mean}`);
  }
});

test.serial('changed media are decoded again; a damaged cache file is replaced; bad media stay MediaErrors', async (t) => {
  const dir = await tempDir('decoded-cache-change');
  const file = await goodClip(path.join(dir, 'a.mp4'), 4, '64x64');
  const cache = path.join(dir, 'cache');
  const request = () => decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(9), cache });
  const misses = () => decodedCacheStats.misses;
  let m = misses();
  await request();
  await request();
  t.is(misses() - m, 1);
  // Same size, new mtime: a new key.
  const later = new Date(Date.now() + 5000);
  await utimes(file, later, later);
  m = misses();
  await request();
  t.is(misses() - m, 1, 'touched media are decoded again');
  // Other content: decoded again, and the result follows the new media.
  const before = await request();
  await goodClip(file, 4, '80x80');
  m = misses();
  const after = await request();
  t.is(misses() - m, 1);
  t.is(after.info.width, 80);
  t.not(before.info.width, after.info.width);
  // A damaged file under the right name is not trusted.
  for (const f of (await readdir(cache)).filter((n) => n.endsWith('.bin'))) await writeFile(path.join(cache, f), (await readFile(path.join(cache, f))).subarray(0, 1000));
  m = misses();
  const repaired = await request();
  t.is(misses() - m, 1);
  t.true(sameBits(repaired.fbank, after.fbank));
  // Bad media: the same MediaError kinds as decodeClip, nothing cached.
  const missing = await t.throwsAsync(() => decodeClip(path.join(dir, 'nope.mp4'), { config: tiny, mode: 'train', rng: Rng.fromSeed(1), cache }));
  t.true(missing instanceof MediaError && missing.kind === 'missing', String(missing));
  await writeFile(path.join(dir, 'text.mp4'), 'not a video');
  const notMedia = await t.throwsAsync(() => decodeClip(path.join(dir, 'text.mp4'), { config: tiny, mode: 'train', rng: Rng.fromSeed(1), cache }));
  t.true(notMedia instanceof MediaError, String(notMedia));
});

test('a cache that cannot be written warns once and the clips still come, as decodeClip gives them', async (t) => {
  const files = await corpus;
  const dir = await tempDir('decoded-cache-unwritable');
  // A folder under a regular file cannot be made (ENOTDIR), whoever runs the test.
  await writeFile(path.join(dir, 'not-a-folder'), 'x');
  const cache = path.join(dir, 'not-a-folder', 'cache');
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => { if (w.code === 'STELLA_DECODED_CACHE') warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    const failures = decodedCacheStats.writeFailures;
    const evalClips = await decodeEvalClips([files[0], files[0]], { config: tiny, cache });
    for (const clip of evalClips) {
      if (clip instanceof Error) throw clip;
      const direct = await decodeClip(files[0], { config: tiny, mode: 'eval' });
      t.true(sameBits(clip.video, direct.video) && sameBits(clip.fbank, direct.fbank), 'eval clip bit for bit');
    }
    const train = await decodeClip(files[0], { config: tiny, mode: 'train', rng: Rng.fromSeed('w'), cache });
    const again = await decodeClip(files[0], { config: tiny, mode: 'train', rng: Rng.fromSeed('w'), cache });
    t.true(sameBits(train.video, again.video) && sameBits(train.fbank, again.fbank), 'train clips from memory, the same seed the same clip');
    t.is(decodedCacheStats.writeFailures - failures, 4, 'two eval records, and a train record at each request: a clip not stored is decoded again');
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    t.is(warnings.length, 1, 'one warning per folder');
    t.regex(warnings[0], /decoded cache .*not-a-folder.*cache: cannot store a clip \(.*ENOTDIR.*\); clips are decoded without being stored/);
  } finally {
    process.off('warning', onWarning);
  }
});

test('pruning removes killed writes\' stale temp files, then the oldest files first', async (t) => {
  const dir = await tempDir('decoded-cache-prune');
  for (const [i, name] of ['old', 'mid', 'new'].entries()) {
    const f = path.join(dir, `${name}.bin`);
    await writeFile(f, Buffer.alloc(1000));
    await utimes(f, new Date(1e12 + i * 1e6), new Date(1e12 + i * 1e6));
  }
  // Temp files of writes killed before their rename: one an hour old goes, a fresh one (a write in progress) stays.
  const stale = path.join(dir, 'x.bin.tmp-123-abc'), fresh = path.join(dir, 'y.bin.tmp-456-def');
  await writeFile(stale, Buffer.alloc(10));
  await writeFile(fresh, Buffer.alloc(10));
  await utimes(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
  t.is(await pruneDecodedCache(dir, 2000), 1);
  t.deepEqual((await readdir(dir)).sort(), ['mid.bin', 'new.bin', 'y.bin.tmp-456-def']);
});

test.serial('decode stage option cache: two epochs decode each clip once, with the per-clip draws of the uncached stage', async (t) => {
  const cache = await tempDir('decoded-cache-stage');
  const clips = await corpus;
  const refs: ClipRef[] = [1, 2].flatMap((epoch) => clips.map((p, index) => ({ kind: 'clip' as const, path: p, label: '', task: 0, taskName: 't', split: 'train', index, epoch })));
  const rng = Rng.fromSeed(4);
  const m = decodedCacheStats.misses;
  const run = async (options: { cache?: string }) => {
    const out = await lastValueFrom(pullable<ClipRef | TaskEnd>(refs).pipe(decode(options, { config: tiny, rng }), toArray()));
    return out as DecodedItem[];
  };
  const cached = await run({ cache });
  t.is(decodedCacheStats.misses - m, clips.length);
  const plain = await run({});
  t.is(cached.length, refs.length);
  for (const [i, item] of cached.entries()) t.true(sameBits(item.fbank, plain[i].fbank), `item ${i}`);
  t.false(sameBits(cached[0].fbank, cached[clips.length].fbank), 'epoch 2 draws new augmentation');
  t.throws(() => decode({ cache: '' }), undefined, 'an empty folder name is refused');
});

test.serial('eval mode through the cache: bit for bit decodeClip\'s clips, misses decoded together, hits read back, changes and damage redecoded, bad files their own errors', async (t) => {
  const dir = await tempDir('decoded-cache-eval');
  const cache = path.join(dir, 'cache');
  const files = [...(await corpus), await goodClip(path.join(dir, 'b.mp4'), 4, '64x48')];
  const direct = await Promise.all(files.map((f) => decodeClip(f, { config: tiny, mode: 'eval' })));
  const same = (a: { video: Float32Array; fbank: Float32Array }, b: { video: Float32Array; fbank: Float32Array }) => sameBits(a.video, b.video) && sameBits(a.fbank, b.fbank);

  const runs = sharedDecodeStats.runs, m = decodedCacheStats.misses, h = decodedCacheStats.hits;
  const first = await decodeEvalClips(files, { config: tiny, cache });
  t.is(decodedCacheStats.misses - m, files.length);
  t.is(sharedDecodeStats.runs - runs, 1, 'the misses shared one ffmpeg run');
  for (const [i, clip] of first.entries()) {
    if (clip instanceof Error) return t.fail(clip.message);
    t.true(same(clip, direct[i]), `${files[i]}: decoded in a shared run, bit for bit`);
    t.is(clip.path, files[i]);
  }
  const second = await decodeEvalClips(files, { config: tiny, cache });
  t.is(decodedCacheStats.hits - h, files.length, 'read back');
  for (const [i, clip] of second.entries()) t.true(!(clip instanceof Error) && same(clip, direct[i]) && clip.info.durationSec === direct[i].info.durationSec, `${files[i]}: stored bit for bit`);
  // decodeClip's eval mode takes the same path; its records are not train records.
  const one = await decodeClip(files[0], { config: tiny, mode: 'eval', cache });
  t.true(same(one, direct[0]));
  t.is((await readdir(cache)).filter((n) => n.endsWith('.bin')).length, files.length);

  // Changed media: decoded again, and the result follows the new media.
  await goodClip(files[2], 4, '80x80');
  let misses = decodedCacheStats.misses;
  const changed = (await decodeEvalClips([files[2]], { config: tiny, cache }))[0];
  t.is(decodedCacheStats.misses - misses, 1);
  t.true(!(changed instanceof Error) && changed.info.width === 80);
  // A damaged record under the right name is decoded again and replaced.
  for (const f of (await readdir(cache)).filter((n) => n.endsWith('.bin'))) await writeFile(path.join(cache, f), (await readFile(path.join(cache, f))).subarray(0, 500));
  misses = decodedCacheStats.misses;
  const repaired = await decodeEvalClips(files.slice(0, 2), { config: tiny, cache });
  t.is(decodedCacheStats.misses - misses, 2);
  for (const [i, clip] of repaired.entries()) t.true(!(clip instanceof Error) && same(clip, direct[i]));
  // Bad files: each gets its own MediaError naming it; the good ones around them still decode.
  await writeFile(path.join(dir, 'text.mp4'), 'not a video');
  const mixed = await decodeEvalClips([path.join(dir, 'nope.mp4'), files[0], path.join(dir, 'text.mp4')], { config: tiny, cache });
  t.true(mixed[0] instanceof MediaError && (mixed[0] as MediaError).kind === 'missing' && mixed[0].message.includes('nope.mp4'), String(mixed[0]));
  t.true(!(mixed[1] instanceof Error) && same(mixed[1], direct[0]));
  t.true(mixed[2] instanceof MediaError && mixed[2].message.includes('text.mp4'), String(mixed[2]));
  await t.throwsAsync(() => decodeClip(path.join(dir, 'nope.mp4'), { config: tiny, mode: 'eval', cache }), { instanceOf: MediaError });
  // The decode stage in eval mode takes the cache too.
  const refs: ClipRef[] = files.slice(0, 2).map((p, index) => ({ kind: 'clip' as const, path: p, label: '', task: 0, taskName: 't', split: 'test', index }));
  const hits = decodedCacheStats.hits;
  const out = await lastValueFrom(pullable<ClipRef | TaskEnd>(refs).pipe(decode({ mode: 'eval', cache }, { config: tiny }), toArray()));
  const staged = out as DecodedItem[];
  t.is(decodedCacheStats.hits - hits, 2);
  for (const [i, item] of staged.entries()) t.true(same(item, direct[i]), `stage, ${refs[i].path}`);
});
