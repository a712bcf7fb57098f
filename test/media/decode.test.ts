import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { decodeClip, drawMultiScaleCrop, frameTimes, IMAGENET_MEAN, IMAGENET_STD } from '../../src/media/decode.ts';
import { FBANK_NORM_MEAN, FBANK_NORM_STD } from '../../src/media/fbank.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { tokenizeClip } from '../../src/media/tokenize.ts';
import { badClips, ffmpeg, goodClip, tempDir } from './fixtures.ts';

const tiny = MODEL_CONFIGS.tiny;
const S = tiny.imageSize, T = tiny.numFrames;

const corpus = (async () => {
  const dir = await tempDir('decode-corpus');
  const { manifestPath } = await generateCorpus({ out: dir, tasks: 1, classes: 2, train: 1, test: 1, seed: 7 });
  return loadManifest(manifestPath);
})();

test('frame times: middle window for long clips, spread over short ones', (t) => {
  t.deepEqual(frameTimes(10, 4, 'eval'), [3, 4, 5, 6]);
  t.deepEqual(frameTimes(4, 4, 'eval'), [0, 1, 2, 3]);
  t.deepEqual(frameTimes(2, 4, 'eval'), [0, 0.5, 1, 1.5]);
  const rng = Rng.fromSeed(1);
  for (let i = 0; i < 50; i++) {
    const times = frameTimes(10, 4, 'train', rng);
    t.true(times[0] >= 0 && times[0] < 6 && Number.isInteger(times[0] * 8), `start ${times[0]}`);
    t.deepEqual(times.map((x) => x - times[0]), [0, 1, 2, 3]);
  }
});

test('GroupMultiScaleCrop draws only the 7 size pairs and 13 offsets of spec §1.3', (t) => {
  const rng = Rng.fromSeed('crop');
  const pairs = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const b = drawMultiScaleCrop(rng);
    pairs.add(`${b.w}x${b.h}`);
    t.true(b.x >= 0 && b.y >= 0 && b.x + b.w <= 256 && b.y + b.h <= 256);
    const ws = (256 - b.w) / 4, hs = (256 - b.h) / 4;
    t.true(Number.isInteger(b.x / Math.max(ws, 1)) || ws === 0);
    t.true(Number.isInteger(b.y / Math.max(hs, 1)) || hs === 0);
  }
  t.deepEqual([...pairs].sort(), ['192x192', '192x224', '224x192', '224x224', '224x256', '256x224', '256x256']);
});

test('eval decode of a corpus clip: shapes, normalisation ranges, object colour where the ground truth says', async (t) => {
  const m = await corpus;
  const clip = m.tasks[0].test[0];
  const d = await decodeClip(clip.path, { config: tiny, mode: 'eval' });
  t.is(d.video.length, T * 3 * S * S);
  t.is(d.fbank.length, tiny.audioFrames * tiny.melBins);
  for (let c = 0; c < 3; c++) {
    const lo = -IMAGENET_MEAN[c] / IMAGENET_STD[c], hi = (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
    for (let i = c * S * S; i < (c + 1) * S * S; i++) if (d.video[i] < lo - 1e-5 || d.video[i] > hi + 1e-5) return t.fail(`channel ${c} value ${d.video[i]}`);
  }
  const floor = (Math.log(1.1920929e-7) - FBANK_NORM_MEAN) / FBANK_NORM_STD;
  t.true(d.fbank.every((x) => Number.isFinite(x) && x >= floor - 1e-4));
  t.deepEqual([d.info.width, d.info.height, d.info.channels, d.info.hasAudio, d.info.hasVideo], [96, 96, 1, true, true]);
  // The sounding object's colour sits at the centre of its ground-truth box in every frame.
  const gt = JSON.parse(await readFile(clip.groundTruth!, 'utf8'));
  const background: number[] = [];
  for (const f of gt.frames) {
    const cx = Math.floor(f.decodedBox.x + f.decodedBox.w / 2), cy = Math.floor(f.decodedBox.y + f.decodedBox.h / 2);
    const rgb = [0, 1, 2].map((c) => (d.video[((f.index * 3 + c) * S + cy) * S + cx] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255);
    background.push(Math.max(...rgb));
    t.true(Math.max(...rgb) > 120, `frame ${f.index}: object centre looks like background ${rgb.map(Math.round)}`);
  }
  const tokens = tokenizeClip(d, tiny);
  t.is(tokens.videoPatches.length, 64 * 768);
  t.is(tokens.audioPatches.length, 128 * 256);
});

test('train decode is deterministic for a seed, differs across seeds, and needs an rng', async (t) => {
  const m = await corpus;
  const file = m.tasks[0].train[0].path;
  const a = await decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(11) });
  const b = await decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(11) });
  t.deepEqual(a.video, b.video);
  t.deepEqual(a.fbank, b.fbank);
  const differs = [];
  for (const seed of [12, 13, 14]) {
    const c = await decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(seed) });
    differs.push(c.fbank.some((x, i) => x !== a.fbank[i]));
  }
  t.true(differs.every(Boolean), 'noise + roll changes the spectrogram');
  await t.throwsAsync(() => decodeClip(file, { config: tiny, mode: 'train' }), { message: /needs options.rng/ });
});

test('odd sizes, 8-channel 48 kHz audio, spaces and non-ASCII names, very short and long clips decode', async (t) => {
  const dir = await tempDir('decode-odd');
  const odd = path.join(dir, 'odd clip – éß 97x61.mp4');
  await ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=97x61:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '1.5',
    '-filter_complex', '[1:a]pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0[a]', '-map', '0:v', '-map', '[a]',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', '-c:a', 'aac', odd);
  const d = await decodeClip(odd, { config: tiny, mode: 'eval' });
  t.deepEqual([d.info.width, d.info.height, d.info.sampleRate, d.info.channels], [97, 61, 48000, 8]);
  t.is(d.video.length, T * 3 * S * S);
  // 1.5 s of audio → 148 fbank frames, then padding rows of exactly 5.081 / 4.4849.
  const pad = -FBANK_NORM_MEAN / FBANK_NORM_STD;
  t.true(Math.abs(d.fbank[200 * 128 + 5] - pad) < 1e-6);
  t.true(Math.abs(d.fbank[10 * 128 + 20] - pad) > 0.1);

  const short = await goodClip(path.join(dir, 'short.mp4'), 0.3);
  const s = await decodeClip(short, { config: tiny, mode: 'eval' });
  t.true(s.info.durationSec < 0.5);
  t.is(s.video.length, T * 3 * S * S);

  const long = await goodClip(path.join(dir, 'long.mp4'), 40, '32x32');
  const l = await decodeClip(long, { config: tiny, mode: 'eval' });
  t.true(l.info.durationSec > 39);
  t.is(l.fbank.length, 256 * 128);
});

test('each bad input gives its own MediaError kind naming the file', async (t) => {
  const dir = await tempDir('decode-bad');
  const files = await badClips(dir);
  for (const [kind, file] of Object.entries(files)) {
    const e = await t.throwsAsync(() => decodeClip(file, { config: tiny, mode: 'eval' }), undefined, kind);
    t.is((e as any)?.name, 'MediaError', kind);
    t.is((e as any)?.kind, kind, `${file}: ${e?.message}`);
    t.is((e as any)?.stage, 'decode');
    t.true(e!.message.startsWith(file + ': '), e!.message);
  }
});
