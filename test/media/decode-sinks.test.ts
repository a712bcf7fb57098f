import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { decodeClip } from '../../src/media/decode.ts';
import { AudioSink, FrameSink, IMAGENET_MEAN, IMAGENET_STD } from '../../src/media/decode-sinks.ts';
import { centreWaveform, FBANK_NORM_MEAN, FBANK_NORM_STD, spectrogramInput } from '../../src/media/fbank.ts';
import { resolveFfmpeg } from '../../src/media/ffmpeg.ts';
import { goodClip, tempDir } from './fixtures.ts';

/** Feeds `bytes` in random-sized pieces (1 byte up to 9000), so floats and frames straddle chunks. */
function pieces(bytes: Uint8Array, seed: string): Uint8Array[] {
  const rng = Rng.fromSeed(seed), out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = 1 + rng.int(9000);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('frame sink: any chunking gives the same normalised [T,3,S,S]; missing frames repeat the last; extra ones are dropped', (t) => {
  const S = 8, T = 4, frameBytes = S * S * 3;
  const rgb = new Uint8Array(3 * frameBytes).map((_, i) => (i * 37 + 11) % 256); // 3 frames for T = 4
  const whole = new FrameSink(T, S);
  whole.push(rgb);
  const chunked = new FrameSink(T, S);
  for (const p of pieces(rgb, 'frames')) chunked.push(p);
  const a = whole.finish(), b = chunked.finish();
  t.deepEqual(b, a);
  t.is(chunked.frames, 3);
  // Pixel (t=1, y=2, x=5), channel 2.
  const src = rgb[frameBytes + (2 * S + 5) * 3 + 2];
  t.true(Math.abs(a[((1 * 3 + 2) * S + 2) * S + 5] - (src / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]) < 1e-6);
  t.deepEqual(a.subarray(3 * 3 * S * S), a.subarray(2 * 3 * S * S, 3 * 3 * S * S), 'frame 3 repeats frame 2');
  const extra = new FrameSink(2, S);
  extra.push(rgb);
  t.is(extra.frames, 3);
  t.deepEqual(extra.finish(), a.subarray(0, 2 * 3 * S * S));
});

test('audio sink: chunking-invariant, mixdown is the channel mean, rows match the centred fbank within 1e-3, padding rows are log-zero', (t) => {
  const channels = 3, n = 16000 * 2 + 123, frames = 256, mel = 128;
  const rng = Rng.fromSeed('pcm');
  const pcm = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) {
    const s = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16000) + 0.01 * (rng.uniform() - 0.5) + 0.02; // DC offset on purpose
    for (let c = 0; c < channels; c++) pcm[i * channels + c] = s * (c + 1) / 2;
  }
  const bytes = new Uint8Array(pcm.buffer);
  const whole = new AudioSink(channels, frames, mel, 1); // deliberately too small: must grow
  whole.push(bytes);
  const chunked = new AudioSink(channels, frames, mel, 10);
  for (const p of pieces(bytes, 'pcm')) chunked.push(p);
  t.is(chunked.samples, n * channels);
  t.is(chunked.monoSamples, n);
  let abs = 0;
  for (const x of pcm) abs += Math.abs(x);
  t.true(Math.abs(chunked.absSum - abs) < 1e-6 * abs);
  const a = whole.finish(), b = chunked.finish();
  t.deepEqual(b, a);
  const mono = new Float32Array(n);
  for (let i = 0; i < n; i++) mono[i] = (pcm[i * 3] + pcm[i * 3 + 1] + pcm[i * 3 + 2]) / 3;
  const reference = spectrogramInput(centreWaveform(mono), frames, mel);
  let worst = 0;
  for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(reference[i] - a[i]));
  t.true(worst < 1e-3, `max |sink − centred fbank| = ${worst}`);
  const short = new AudioSink(1, frames, mel, 1);
  short.push(new Uint8Array(new Float32Array(400 + 160 * 9).fill(0.1).map((x, i) => x * Math.sin(i)).buffer));
  const s = short.finish();
  const pad = Math.fround((0 - FBANK_NORM_MEAN) / FBANK_NORM_STD);
  t.true(Math.abs(s[9 * mel + 3] - pad) > 0.1, 'row 9 holds audio');
  t.true(s.subarray(10 * mel).every((x) => x === pad), 'rows 10.. are padding');
});

test('decodeClip fbank equals the centred-waveform fbank of the same PCM within 1e-3', async (t) => {
  const file = await goodClip(path.join(await tempDir('sinks'), 'clip.mp4'), 3);
  const { path: bin } = await resolveFfmpeg();
  const { stdout } = await promisify(execFile)(bin, ['-v', 'error', '-i', file, '-t', '10', '-ar', '16000', '-f', 'f32le', '-'], { encoding: 'buffer', maxBuffer: 1 << 26 });
  const wave = new Float32Array(stdout.buffer.slice(stdout.byteOffset, stdout.byteOffset + stdout.length));
  const cfg = MODEL_CONFIGS.tiny;
  const reference = spectrogramInput(centreWaveform(wave), cfg.audioFrames, cfg.melBins);
  const d = await decodeClip(file, { config: cfg, mode: 'eval' });
  let worst = 0;
  for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(reference[i] - d.fbank[i]));
  t.true(worst < 1e-3, `max diff ${worst}`);
});
