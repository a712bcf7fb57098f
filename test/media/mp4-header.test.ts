import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { decodeClip } from '../../src/media/decode.ts';
import { readMp4Header } from '../../src/media/mp4-header.ts';
import { mediaInfo, probeMedia } from '../../src/media/probe.ts';
import { ffmpeg, goodClip, tempDir } from './fixtures.ts';

const dir = tempDir('mp4-header');
const video = (size: string, rate = '10') => ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${rate}`];
const tone = (rate = 16000) => ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}`];
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-threads', '1'];

async function make(name: string, ...args: string[]): Promise<string> {
  const file = path.join(await dir, name);
  await ffmpeg(...args, file);
  return file;
}

test('header facts equal ffmpeg -i for MP4, MOV, M4V, moov first or last, 5.1/stereo/mono, odd rates and lengths', async (t) => {
  const files = await Promise.all([
    goodClip(path.join(await dir, 'moov-last 0.3 s.mp4'), 0.3),
    make('faststart.mp4', ...video('96x96'), ...tone(), '-t', '4.06', ...x264, '-c:a', 'aac', '-movflags', '+faststart'),
    make('ntsc 5.1.mov', ...video('64x48', '30000/1001'), ...tone(44100), '-t', '2.2',
      '-filter_complex', '[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]', '-map', '0:v', '-map', '[a]', ...x264, '-c:a', 'aac'),
    make('stereo.m4v', ...video('80x60', '25'), ...tone(22050), '-t', '3.33', '-ac', '2', ...x264, '-c:a', 'aac', '-f', 'mp4'),
    make('audio-longer.mp4', ...video('32x32'), '-t', '1', ...tone(8000), '-t', '3', ...x264, '-c:a', 'aac'),
    make('no-audio.mp4', ...video('32x32'), '-t', '1', ...x264),
    make('no-video.m4a', ...tone(), '-t', '1', '-c:a', 'aac'),
  ]);
  for (const file of files) {
    const header = readMp4Header(file);
    t.true(header.ok, `${file}: ${header.ok || header.reason}`);
    if (header.ok) t.deepEqual(header.info, await probeMedia(file), file);
  }
  const ntsc = readMp4Header(files[2]);
  t.like(ntsc.ok && ntsc.info, { width: 64, height: 48, fps: 29.97, channels: 6, sampleRate: 44100, hasAudio: true, hasVideo: true });
});

test('a 64-bit mdat size parses and a decode through it matches the 32-bit file', async (t) => {
  const file = await goodClip(path.join(await dir, 'size32.mp4'), 1);
  const bytes = await readFile(file);
  // ffmpeg leaves an 8-byte 'free' box before mdat; fold both headers into one 16-byte largesize header.
  const at = bytes.indexOf('free', 0, 'latin1') - 4;
  t.is(bytes.toString('latin1', at + 12, at + 16), 'mdat', 'an 8-byte free box right before mdat');
  const mdatSize = bytes.readUInt32BE(at + 8);
  bytes.writeUInt32BE(1, at);
  bytes.write('mdat', at + 4, 'latin1');
  bytes.writeBigUInt64BE(BigInt(mdatSize + 8), at + 8);
  const wide = path.join(await dir, 'size64.mp4');
  await writeFile(wide, bytes);
  const a = readMp4Header(file), b = readMp4Header(wide);
  t.true(a.ok && b.ok);
  t.deepEqual(b.ok && b.info, a.ok && a.info);
  const config = MODEL_CONFIGS.tiny;
  const [da, db] = await Promise.all([decodeClip(file, { config, mode: 'eval' }), decodeClip(wide, { config, mode: 'eval' })]);
  t.deepEqual(db.video, da.video);
  t.deepEqual(db.fbank, da.fbank);
});

test('doubtful files fall back to ffmpeg with the reason, and still decode or fail precisely', async (t) => {
  const d = await dir;
  const fragmented = await make('fragmented.mp4', ...video('48x32'), ...tone(), '-t', '1', ...x264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov');
  const mp3 = await make('mp3.mp4', ...video('32x32'), ...tone(), '-t', '1', ...x264, '-c:a', 'libmp3lame');
  const anamorphic = await make('anamorphic.mp4', ...video('48x32'), ...tone(), '-t', '1', '-vf', 'setsar=2', ...x264, '-c:a', 'aac');
  const whole = await readFile(await goodClip(path.join(d, 'whole.mp4'), 1));
  const truncated = path.join(d, 'truncated.mp4');
  await writeFile(truncated, whole.subarray(0, whole.length >> 1));
  const text = path.join(d, 'text.mp4');
  await writeFile(text, 'not a video at all\n');
  const cases: [string, RegExp][] = [
    [fragmented, /fragmented/], [mp3, /not AAC/], [anamorphic, /anamorphic/], [truncated, /runs past the end/], [text, /no ISO BMFF signature/],
  ];
  for (const [file, reason] of cases) {
    const r = readMp4Header(file);
    t.false(r.ok, file);
    if (!r.ok) t.regex(r.reason, reason);
  }
  for (const file of [fragmented, mp3, anamorphic]) {
    const { source, info } = await mediaInfo(file);
    t.is(source, 'probe');
    t.true(info.hasVideo && info.hasAudio);
    const clip = await decodeClip(file, { config: MODEL_CONFIGS.tiny, mode: 'eval' });
    t.true(clip.fbank.every(Number.isFinite));
  }
  await t.throwsAsync(decodeClip(truncated, { config: MODEL_CONFIGS.tiny, mode: 'eval' }), { instanceOf: Error, message: /truncated or corrupt/ });
  t.is((await mediaInfo(path.join(d, 'whole.mp4'))).source, 'header');
});
