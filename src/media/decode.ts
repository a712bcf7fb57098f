/**
 * decode: one media file → model-ready video frames and normalised fbank (spec §1.2–§1.4).
 *
 * Inputs: a path; `DecodeOptions` { config (numFrames T, imageSize S, audioFrames, melBins),
 * mode 'eval' | 'train', rng (required for train), audioSeconds (default 10) }; an AbortSignal.
 * Output: `DecodedClip` { path, video Float32Array [T,3,S,S] ImageNet-normalised, fbank Float32Array
 * [audioFrames, melBins] normalised, info }.
 *
 * Duration and streams come from the MP4/MOV header read in-process (mp4-header.ts), or for any other
 * container or any doubt from one `ffmpeg -i` probe (probe.ts); then ONE ffmpeg process opens the file twice
 * (input 0 seeked to the video window, input 1 from t = 0 for the audio) and streams raw RGB frames
 * to stdout and 16 kHz float PCM (native channel count) to fd 3. No temp files. Both pipes are
 * consumed as they arrive (decode-sinks.ts): frames are normalised and fbank rows computed while
 * ffmpeg still runs. Aborting the signal SIGKILLs the child and rejects with an AbortError.
 *
 * Frame timing (generalises spec §1.2 to any duration D; window W = T seconds, one frame per second):
 *   - D ≥ W, eval: window start s = D/2 − W/2 (10 s clip → 3 s, frames at 3, 4, 5, 6 s = the spec's
 *     'middle' frames 24, 32, 40, 48 at its nominal 8 fps).
 *   - D ≥ W, train: s drawn uniformly from {0, 1/8, 2/8, …} below D − W (spec 'random'; one rng.int).
 *   - D < W (short clip): frames spread evenly over the real length, t_i = i·D/T (as the offline
 *     extractor spreads its 80 frames over a short source).
 *   Frame 0 is the first frame at or after t_0; frame i the frame shown i·(t_1 − t_0) s after it
 *   (ffmpeg seek + fps filter, round=up); a time past the last frame repeats the last one.
 *   No frame at all → 'too-short'.
 * Spatial: shorter side → 256 (bilinear, longer side ⌊·⌋ as torchvision), centre crop 256, then
 *   eval: resize to S×S (bilinear); train: GroupMultiScaleCrop of spec §1.3 — size pair from the 7
 *   pairs of {256,224,192} with |i−j| ≤ 1 (rng.int(7)), offset from the 13 (rng.int(13)) — same box
 *   for every frame, resized to S×S. All resizing runs inside ffmpeg (swscale bilinear).
 * Audio (spec §1.2, §1.4): resampled to 16 kHz by ffmpeg, mono = mean over channels here; refused as
 *   'silent' when mean|x| over the decoded span (all channels, first audioSeconds) is exactly 0; keep
 *   the first audioSeconds, Kaldi fbank, pad/cut to audioFrames, normalise. The waveform mean
 *   (spec step 5) is not subtracted first: the fbank's per-frame mean removal cancels it exactly, so
 *   rows can be computed before the last sample arrives (float32 rounding aside, ≤ 2e-4 normalised).
 *   Train mode then adds U[0,1)·s noise with s ~ U[0,1)/10 and rolls time by k ∈ [−F, F−1] (spec §1.4
 *   step 5; rng draws: s, then F·mel uniforms, then k).
 * Errors: `MediaError {path, stage: 'decode', kind}` — missing, empty, not-media, corrupt (truncated),
 *   no-audio, no-video, silent, too-short. Files the header reader doubts go through the probe, which
 *   classifies them; a failing decode is classified from its own stderr.
 * Ref: spec §1.2, §1.3, §1.4; golden G5 for the fbank.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { modelConfigSchema, type ModelConfig } from '../core/config.ts';
import type { Rng } from '../core/rng.ts';
import { AUDIO_SAMPLE_RATE, AudioSink, FrameSink } from './decode-sinks.ts';
import { defaultFbank } from './fbank.ts';
import { resolveFfmpeg } from './ffmpeg.ts';
import { decodeEvalClips, decodeFromCache } from './decoded-cache.ts';
import { abortError, isAbortError, MediaError } from './media-error.ts';
import { classifyOpenFailure, mediaInfo, type MediaInfo } from './probe.ts';

export { AUDIO_SAMPLE_RATE, IMAGENET_MEAN, IMAGENET_STD } from './decode-sinks.ts';
/** Seconds of audio kept from t = 0 unless a request says otherwise (spec audio_duration). */
export const AUDIO_SECONDS = 10;
/** Side of the offline-extracted frames (spec §1.1) that crops are drawn in. */
export const FRAME_BASE = 256;
const STAGE = 'decode';

export const decodeOptionsSchema = z.object({
  config: modelConfigSchema,
  mode: z.enum(['eval', 'train']),
  rng: z.any().optional(),
  /** Seconds of audio kept from t = 0 (spec audio_duration). */
  audioSeconds: z.number().positive().default(AUDIO_SECONDS),
  /** Train mode: decode once into this cache (true: the default folder) and augment from it (decoded-cache.ts). */
  cache: z.union([z.boolean(), z.string()]).optional(),
});
export interface DecodeOptions {
  config: ModelConfig;
  mode: 'eval' | 'train';
  rng?: Rng;
  audioSeconds?: number;
  /**
   * `true` (the default folder, decodedCacheDir()) or a folder. Train mode: decode once, draw the
   * augmentation per call (decodeFromCache); eval mode: the decoded clip itself is stored, bit for bit
   * (decodeEvalClips).
   */
  cache?: boolean | string;
}

export interface DecodedClip {
  path: string;
  /** [T, 3, S, S], (x/255 − mean)/std per channel. */
  video: Float32Array;
  /** [audioFrames, melBins], (logmel + 5.081)/4.4849. */
  fbank: Float32Array;
  info: MediaInfo;
}

export interface CropBox { x: number; y: number; w: number; h: number }

/** GroupMultiScaleCrop (spec §1.3) in the 256×256 frame: 7 size pairs × 13 offsets, two rng draws. */
export function drawMultiScaleCrop(rng: Rng, base = FRAME_BASE): CropBox {
  const sizes = [1, 0.875, 0.75].map((s) => Math.floor(base * s));
  const pairs: [number, number][] = [];
  for (let i = 0; i < sizes.length; i++)
    for (let j = 0; j < sizes.length; j++) if (Math.abs(i - j) <= 1) pairs.push([sizes[j], sizes[i]]);
  const [w, h] = pairs[rng.int(pairs.length)];
  const ws = Math.floor((base - w) / 4), hs = Math.floor((base - h) / 4);
  const offsets: [number, number][] = [
    [0, 0], [4 * ws, 0], [0, 4 * hs], [4 * ws, 4 * hs], [2 * ws, 2 * hs],
    [0, 2 * hs], [4 * ws, 2 * hs], [2 * ws, 4 * hs], [2 * ws, 0],
    [ws, hs], [3 * ws, hs], [ws, 3 * hs], [3 * ws, 3 * hs],
  ];
  const [x, y] = offsets[rng.int(offsets.length)];
  return { x, y, w, h };
}

/**
 * The clip length the timing rule uses and, for a clip at least one window long, how many train
 * window starts {0, 1/8, 2/8, …} lie below D − W (0 for a short clip: its frames are fixed).
 */
export function trainWindows(durationSec: number, numFrames: number): { D: number; starts: number } {
  const window = numFrames; // one frame per second
  const D = Number.isFinite(durationSec) && durationSec > 0 ? durationSec : window;
  return { D, starts: D < window ? 0 : Math.max(1, Math.ceil((D - window) * 8)) };
}

/** Frame times in seconds (see the header for the rule). */
export function frameTimes(durationSec: number, numFrames: number, mode: 'eval' | 'train', rng?: Rng): number[] {
  const window = numFrames;
  const { D, starts } = trainWindows(durationSec, numFrames);
  if (D < window) return Array.from({ length: numFrames }, (_, i) => (i * D) / numFrames);
  let start = D / 2 - window / 2;
  if (mode === 'train') start = rng!.int(starts) / 8;
  return Array.from({ length: numFrames }, (_, i) => start + (i * window) / numFrames);
}

/** Shorter side → 256 (longer side truncated, as torchvision Resize), then centre 256 crop. */
function baseGeometry(width: number, height: number) {
  const sw = width <= height ? FRAME_BASE : Math.floor((FRAME_BASE * width) / height);
  const sh = width <= height ? Math.floor((FRAME_BASE * height) / width) : FRAME_BASE;
  return { sw, sh, cx: Math.round((sw - FRAME_BASE) / 2), cy: Math.round((sh - FRAME_BASE) / 2) };
}

const fmt = (x: number) => x.toFixed(6);

/**
 * Where clip `index` of one ffmpeg run writes: clip 0 as a single decode does (frames to stdout, PCM
 * to fd 3), clip i > 0 to fds 2 + 2i and 3 + 2i.
 */
function outputFds(index: number) {
  return { video: index === 0 ? 1 : 2 + 2 * index, audio: 3 + 2 * index };
}

const GLOBAL_ARGS = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'];

/** Clip `index`'s inputs (2·index: video, 2·index + 1: audio) and outputs in one ffmpeg run. */
function clipArgs(file: string, info: MediaInfo, times: number[], S: number, crop: CropBox | undefined, audioSeconds: number, index: number) {
  // Seek to the first wanted time and restart timestamps at the first frame there; fps (round=up)
  // then emits, for every multiple of `step`, the last frame at or before it (the frame shown at
  // that time, duplicated when the source is sparser); -frames:v stops after T.
  const seek = Math.max(0, times[0]);
  const step = times.length > 1 ? times[1] - times[0] : 1;
  const span = step * times.length + 0.5;
  const { sw, sh, cx, cy } = baseGeometry(info.width, info.height);
  const filters = [
    "setpts=PTS-STARTPTS",
    `fps=fps=${fmt(1 / step)}:round=up`,
    `scale=${sw}:${sh}:flags=bilinear`,
    `crop=${FRAME_BASE}:${FRAME_BASE}:${cx}:${cy}`,
    ...(crop ? [`crop=${crop.w}:${crop.h}:${crop.x}:${crop.y}`] : []),
    `scale=${S}:${S}:flags=bilinear`,
  ].join(',');
  const channels = info.channels > 0 ? info.channels : 1;
  const fds = outputFds(index);
  const inputs = [
    // One decoder thread per input: a clip this short spends longer starting frame threads than
    // decoding, and ingest already runs decodes side by side (bit-identical output either way).
    '-threads', '1', '-ss', fmt(seek), '-t', fmt(span), '-i', file,
    '-threads', '1', '-t', fmt(audioSeconds), '-i', file,
  ];
  const outputs = [
    '-map', `${2 * index}:v:0`, '-vf', filters, '-vsync', '0', '-frames:v', String(times.length), '-f', 'rawvideo', '-pix_fmt', 'rgb24', `pipe:${fds.video}`,
    '-map', `${2 * index + 1}:a:0`, '-ac', String(channels), '-ar', String(AUDIO_SAMPLE_RATE), '-f', 'f32le', `pipe:${fds.audio}`,
  ];
  return { inputs, outputs, channels };
}

/** The ffmpeg argument list for one decode (exported for the benchmark's ffmpeg-only baseline). */
export function decodeArgs(file: string, info: MediaInfo, times: number[], S: number, crop: CropBox | undefined, audioSeconds: number) {
  const { inputs, outputs, channels } = clipArgs(file, info, times, S, crop, audioSeconds, 0);
  return { args: [...GLOBAL_ARGS, ...inputs, ...outputs], channels };
}

interface RawDecode { stderr: string; code: number | null }

/** Where a decode's rgb24 frames go as they arrive (FrameSink normalises; the decoded cache keeps bytes). */
export interface FrameConsumer {
  push(chunk: Uint8Array): void;
  /** Whole frames received so far. */
  readonly frames: number;
}

/** One clip's consumers in an ffmpeg run. */
interface ClipSinks { frames: FrameConsumer; audio: AudioSink }

/**
 * Runs one ffmpeg process, feeding clip i's frames and PCM (outputFds(i)) to `sinks[i]` as the
 * bytes arrive. `label` names the file(s) in errors.
 */
function runDecode(ffmpegPath: string, args: string[], label: string, sinks: ClipSinks[], signal?: AbortSignal, niceness = 0): Promise<RawDecode> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const fdCount = 2 + 2 * sinks.length; // stdin, stdout, stderr, then the clips' fds up to 3 + 2(n − 1)
    const stdio = Array.from({ length: fdCount }, (_, fd) => (fd === 0 ? 'ignore' : 'pipe')) as ('ignore' | 'pipe')[];
    const child = spawn(ffmpegPath, args, { stdio });
    // A background decode yields the CPU to training; a child that already exited has nothing to yield.
    if (niceness && child.pid) try { os.setPriority(child.pid, niceness); } catch { /* gone already */ }
    // Explicit teardown: kill, drop the pipes (a wrapper's grandchild may hold them) and settle now.
    const onAbort = () => {
      child.kill('SIGKILL');
      for (const s of child.stdio) s?.destroy();
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const stderrChunks: Buffer[] = [];
    let failure: Error | undefined;
    const feed = (sink: FrameConsumer | AudioSink) => (c: Buffer) => {
      if (failure) return;
      try { sink.push(c); } catch (e) { failure = e as Error; }
    };
    child.stderr!.on('data', (c: Buffer) => stderrChunks.push(c));
    sinks.forEach((sink, i) => {
      const fds = outputFds(i);
      for (const [fd, consumer] of [[fds.video, sink.frames], [fds.audio, sink.audio]] as const) {
        const stream = child.stdio[fd] as Readable;
        stream.on('data', feed(consumer));
        stream.on('error', (e) => { failure ??= e; });
      }
    });
    child.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new MediaError(label, STAGE, 'ffmpeg', `cannot start ffmpeg (${ffmpegPath}): ${e.message}`));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return reject(abortError(signal));
      if (failure) return reject(new MediaError(label, STAGE, 'ffmpeg', `reading ffmpeg output failed: ${failure.message}`));
      resolve({ stderr: Buffer.concat(stderrChunks).toString('utf8'), code });
    });
  });
}

export async function decodeClip(file: string, options: DecodeOptions, signal?: AbortSignal): Promise<DecodedClip> {
  const { config, mode, audioSeconds = AUDIO_SECONDS } = options;
  const rng = options.rng;
  if (mode === 'train' && !rng) throw new TypeError('decodeClip: mode "train" needs options.rng');
  if (mode === 'train' && options.cache) return decodeFromCache(file, { ...options, rng: rng!, cache: options.cache }, signal);
  if (mode === 'eval' && options.cache) {
    const [clip] = await decodeEvalClips([file], { config, audioSeconds, cache: options.cache }, signal);
    if (clip instanceof Error) throw clip;
    return clip;
  }
  return decodeFileWith(file, clipPlan(config, mode, rng, audioSeconds), signal);
}

/** decodeClip's eval mode as a plan (it draws nothing, so several files may share an ffmpeg run). */
export const evalPlan = (config: ModelConfig, audioSeconds = AUDIO_SECONDS): DecodePlan<DecodedClip> => clipPlan(config, 'eval', undefined, audioSeconds);

/**
 * decodeClip's decode (no cache): frame times, then in train mode the crop, then after the decode
 * the audio noise and roll; draw order fixed (window start, crop, noise/roll). Eval mode draws nothing.
 */
function clipPlan(config: ModelConfig, mode: 'eval' | 'train', rng: Rng | undefined, audioSeconds: number): DecodePlan<DecodedClip> {
  return {
    plan: (_file, info) => ({
      request: {
        times: frameTimes(info.durationSec, config.numFrames, mode, rng),
        size: config.imageSize,
        crop: mode === 'train' ? drawMultiScaleCrop(rng!) : undefined,
        config,
        audioSeconds,
      },
      frames: new FrameSink(config.numFrames, config.imageSize),
    }),
    finish: (job, out) => {
      const video = (job.frames as FrameSink).finish();
      if (mode === 'train') addNoiseAndRoll(out.fbank, config.audioFrames, config.melBins, rng!);
      return { path: job.file, video, fbank: out.fbank, info: { ...job.info, channels: job.info.channels || out.channels } };
    },
  };
}

/** Stream facts of a file that has both streams (else the MediaError naming the missing one). */
export async function streamInfo(file: string, signal?: AbortSignal): Promise<MediaInfo> {
  const { info } = await mediaInfo(file, STAGE, signal);
  if (!info.hasVideo) throw new MediaError(file, STAGE, 'no-video', 'no video stream');
  if (!info.hasAudio) throw new MediaError(file, STAGE, 'no-audio', 'no audio stream');
  return info;
}

export interface StreamRequest {
  /** Frame times (evenly spaced), seconds. */
  times: number[];
  /** Output frame side. */
  size: number;
  crop: CropBox | undefined;
  config: ModelConfig;
  audioSeconds: number;
  /** ffmpeg's nice value (0: as this process; the cache warmer decodes at 10). */
  niceness?: number;
}

/** A file to decode in a shared ffmpeg run (decodeStreamsTogether). */
export interface StreamJob {
  file: string;
  info: MediaInfo;
  request: StreamRequest;
  frames: FrameConsumer;
}

const CORRUPT_STDERR = /partial file|Invalid NAL|error while decoding|corrupt/i;

function sinksFor(job: StreamJob): ClipSinks & { channels: number } {
  const { config, audioSeconds } = job.request;
  const channels = job.info.channels > 0 ? job.info.channels : 1;
  return { frames: job.frames, audio: new AudioSink(channels, config.audioFrames, config.melBins, audioSeconds, defaultFbank(config.melBins)), channels };
}

/** The checks of one clip's outputs that its own sinks decide (no frame, no samples, silence, under one fbank frame). */
function checkOutputs(job: StreamJob, audio: AudioSink): void {
  const { file, info, frames } = job;
  // A source that ends before the last wanted time yields fewer frames: the sink repeats the last one.
  if (frames.frames === 0) throw new MediaError(file, STAGE, 'too-short', `too short to yield a video frame (duration ${info.durationSec} s)`);
  if (audio.samples === 0) throw new MediaError(file, STAGE, 'too-short', 'the audio stream decodes to no samples');
  if (audio.absSum === 0) throw new MediaError(file, STAGE, 'silent', 'silent audio (mean |x| is exactly 0)');
}

function checkFbankLength(job: StreamJob, audio: AudioSink): void {
  if (defaultFbank(job.request.config.melBins).frameCount(audio.monoSamples) === 0) {
    throw new MediaError(job.file, STAGE, 'too-short', `audio too short for one 25 ms fbank frame (${audio.monoSamples} samples at 16 kHz)`);
  }
}

/**
 * One ffmpeg run: frames at `times` (scaled, cropped) into `frames`, and the normalised fbank
 * [audioFrames, melBins] before any augmentation; every check that classifies a bad file.
 */
export async function decodeStreams(file: string, info: MediaInfo, request: StreamRequest, frames: FrameConsumer, signal?: AbortSignal): Promise<{ fbank: Float32Array; channels: number }> {
  const job: StreamJob = { file, info, request, frames };
  const { path: ffmpegPath } = await resolveFfmpeg();
  const { args } = decodeArgs(file, info, request.times, request.size, request.crop, request.audioSeconds);
  const sinks = sinksFor(job);
  const raw = await runDecode(ffmpegPath, args, file, [sinks], signal, request.niceness);
  if (raw.code !== 0) {
    // The header said the streams exist; ffmpeg's own map error still names a missing one precisely.
    if (/Stream map '0:v:0' matches no streams/.test(raw.stderr)) throw new MediaError(file, STAGE, 'no-video', 'no video stream');
    if (/Stream map '1:a:0' matches no streams/.test(raw.stderr)) throw new MediaError(file, STAGE, 'no-audio', 'no audio stream');
    throw classifyOpenFailure(file, STAGE, raw.stderr);
  }
  const { audio, channels } = sinks;
  checkOutputs(job, audio);
  if (CORRUPT_STDERR.test(raw.stderr)) {
    const expected = Math.min(Number.isFinite(info.durationSec) ? info.durationSec : Infinity, request.audioSeconds);
    const got = audio.monoSamples / AUDIO_SAMPLE_RATE;
    if (got < expected - 0.25) throw new MediaError(file, STAGE, 'corrupt', `truncated or corrupt media: decoded ${got.toFixed(2)} s of ${expected.toFixed(2)} s of audio`);
  }
  checkFbankLength(job, audio);
  return { fbank: audio.finish(), channels };
}

/**
 * Several files in ONE ffmpeg run (inputs and outputs side by side), so that ffmpeg's start-up
 * (about 17 ms of CPU for the static build here, and a fork of this process) is paid once for all:
 * each file's outputs are exactly those of its own run. Returns, per job, its fbank or the
 * MediaError its own checks raise; undefined when the run as a whole failed or printed a decoding
 * error, which a shared stderr cannot pin on one file: decode each with decodeStreams then.
 */
export async function decodeStreamsTogether(jobs: StreamJob[], signal?: AbortSignal): Promise<({ fbank: Float32Array; channels: number } | MediaError)[] | undefined> {
  if (jobs.length === 0) return [];
  const { path: ffmpegPath } = await resolveFfmpeg();
  const parts = jobs.map((j, i) => clipArgs(j.file, j.info, j.request.times, j.request.size, j.request.crop, j.request.audioSeconds, i));
  const args = [...GLOBAL_ARGS, ...parts.flatMap((p) => p.inputs), ...parts.flatMap((p) => p.outputs)];
  const sinks = jobs.map(sinksFor);
  const raw = await runDecode(ffmpegPath, args, jobs.map((j) => j.file).join(', '), sinks, signal, jobs[0].request.niceness);
  if (raw.code !== 0 || CORRUPT_STDERR.test(raw.stderr)) return undefined;
  return jobs.map((job, i) => {
    try {
      checkOutputs(job, sinks[i].audio);
      checkFbankLength(job, sinks[i].audio);
      return { fbank: sinks[i].audio.finish(), channels: sinks[i].channels };
    } catch (error) {
      return error as MediaError;
    }
  });
}

/** How a file is decoded, from its stream facts: one file alone (decodeFileWith) or several in one run (decodeFilesTogether). */
export interface DecodePlan<T> {
  /** The file's request and frame consumer (fresh ones on every call). */
  plan(file: string, info: MediaInfo): { request: StreamRequest; frames: FrameConsumer };
  /** The result from its decoded outputs. */
  finish(job: StreamJob, out: { fbank: Float32Array; channels: number }): T;
}

/** One file with `how`, in a run of its own; throws the MediaError that classifies a bad file. */
export async function decodeFileWith<T>(file: string, how: DecodePlan<T>, signal?: AbortSignal): Promise<T> {
  const info = await streamInfo(file, signal);
  const job: StreamJob = { file, info, ...how.plan(file, info) };
  return how.finish(job, await decodeStreams(file, info, job.request, job.frames, signal));
}

/** Shared runs (more than one file) and how many were redone file by file, in this thread. */
export const sharedDecodeStats = { runs: 0, redone: 0 };

/**
 * Decodes `files` in one ffmpeg run where it can (decodeStreamsTogether): per file its result or
 * its error. A file whose stream facts cannot be read gets that error without a run; a run that
 * fails as a whole is redone file by file (decodeFileWith, so `how.plan` is called again and must
 * draw nothing), so each error is the file's own.
 */
export async function decodeFilesTogether<T>(files: readonly string[], how: DecodePlan<T>, signal?: AbortSignal): Promise<(T | Error)[]> {
  const results: (T | Error | undefined)[] = new Array(files.length);
  const jobs: (StreamJob & { index: number })[] = [];
  for (const [index, file] of files.entries()) {
    try {
      const info = await streamInfo(file, signal);
      jobs.push({ index, file, info, ...how.plan(file, info) });
    } catch (error) {
      if (isAbortError(error)) throw error;
      results[index] = error as Error;
    }
  }
  const together = jobs.length > 1 ? await decodeStreamsTogether(jobs, signal) : undefined;
  if (jobs.length > 1) {
    sharedDecodeStats.runs++;
    if (!together) sharedDecodeStats.redone++;
  }
  for (const [i, job] of jobs.entries()) {
    const out = together?.[i];
    if (out) results[job.index] = out instanceof Error ? out : how.finish(job, out);
    else {
      results[job.index] = await decodeFileWith(job.file, how, signal).catch((error: Error) => {
        if (isAbortError(error)) throw error;
        return error;
      });
    }
  }
  return results as (T | Error)[];
}

/** decodeClip in eval mode for several files, in one ffmpeg run where it can (decodeFilesTogether). */
export function decodeClipsTogether(files: readonly string[], options: { config: ModelConfig; audioSeconds?: number }, signal?: AbortSignal): Promise<(DecodedClip | Error)[]> {
  return decodeFilesTogether(files, clipPlan(options.config, 'eval', undefined, options.audioSeconds ?? AUDIO_SECONDS), signal);
}

/** Spec §1.4 step 5: X += U·s, then a circular roll along time by k ∈ [−F, F−1]. */
export function addNoiseAndRoll(x: Float32Array, frames: number, mel: number, rng: Rng): void {
  const s = rng.uniform() / 10;
  for (let i = 0; i < x.length; i++) x[i] += rng.uniform() * s;
  const k = rng.intInclusive(-frames, frames - 1);
  const shift = ((k % frames) + frames) % frames;
  if (shift === 0) return;
  const copy = x.slice();
  // X'[t] = X[(t − k) mod F]
  for (let t = 0; t < frames; t++) x.set(copy.subarray(((t - shift + frames) % frames) * mel, ((t - shift + frames) % frames + 1) * mel), t * mel);
}
