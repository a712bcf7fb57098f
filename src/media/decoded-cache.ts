/**
 * Train-mode decoding from clips decoded once: the spec's own split of the work. The reference
 * extracts frames once offline (spec §1.1: 8 per second, shorter side 256, centre 256² crop) and
 * at every epoch draws a window (§1.2), crops and resizes (§1.3) and adds noise and a roll to the
 * fbank (§1.4 step 5). Here the first request for a clip runs ONE ffmpeg decode of everything any
 * train window can read, stores it, and every request (that one included) then draws its
 * augmentation from the stored clip; later epochs spawn no ffmpeg at all.
 *
 * Stored per clip (one file `DIR/<sha256 of the key>.bin`, a record as in ingest-cache.ts: 'STKN',
 * JSON header, data): the normalised fbank [audioFrames, melBins] before noise/roll (float32),
 * then the frames [n, 256, 256, 3] (rgb24) at `trainFrameGrid` times: the T fixed times of a clip
 * shorter than the window; T times 1 s apart for a clip with one window start (the corpus's 4 s
 * clips); else every 1/8 s from 0 to the last start + T − 1 s. About 0.9 MB per 4 s tiny clip,
 * 14 MB per 10 s clip.
 * Key: absolute path, size, mtime (ms), numFrames, audioFrames, melBins, audioSeconds, the format
 * version. Media that changed (size or mtime) get a new key and are decoded again; a file whose
 * header does not match its key, or that cannot be read, is decoded again and replaced. Writes go
 * to a temp file renamed into place, so processes and worker threads may share a folder. Once per
 * process and folder, after the first write, temp files an hour old (writes killed before their
 * rename) are removed, then the oldest files (by mtime; a hit touches its file) until the folder
 * holds at most 8 GiB. A write that fails (a full disk) warns once per folder and the clip is used
 * from memory: the cache is lost, not the clip.
 *
 * Same seed, same draws as decodeClip (window start, crop pair and offset, noise scale, noise,
 * roll, in that order), hence: the same window and crop box, and a bit-identical fbank. The
 * video differs in resampling only: here the 256² rgb24 frames are cropped and resized in JS with
 * PIL's antialiased bilinear (resize.ts), as the spec does; decodeClip lets ffmpeg's swscale do it
 * on the YUV frames. Measured on the corpus (test/media/decoded-cache.test.ts): mean |Δ| about
 * 1–2 levels of 255, max ≤ 40 levels at sharp edges. For a clip longer than the window with
 * several starts, a window's frames are the frames shown at the 1/8 s grid times (spec §1.1
 * extraction) where decodeClip seeks to the start and takes the first frame at or after it: a
 * source whose frames are not on the 1/8 s grid may give the neighbouring frame (≤ 1 source frame).
 * Eval mode (test clips) has its own records (`decodeEvalClips`): the decoded clip itself, video
 * [T, 3, S, S] and fbank as float32, bit for bit what decodeClip returns, since eval mode draws
 * nothing; key as above plus imageSize and the eval format. Misses are decoded WARM_BATCH files per
 * ffmpeg run. Same folder, same pruning.
 * Ref: spec §1.1–§1.4; docs/media.md "Decoded cache".
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot } from '../core/cache-dir.ts';
import type { ModelConfig } from '../core/config.ts';
import type { Rng } from '../core/rng.ts';
import { FrameSink } from './decode-sinks.ts';
import {
  addNoiseAndRoll, AUDIO_SECONDS, decodeFilesTogether, decodeFileWith, drawMultiScaleCrop, evalPlan, FRAME_BASE, frameTimes, trainWindows,
  type DecodedClip, type DecodePlan, type FrameConsumer,
} from './decode.ts';
import { decodeRecord, encodeRecord } from './ingest-cache.ts';
import { isAbortError } from './media-error.ts';
import type { MediaInfo } from './probe.ts';
import { cropResizeRgb } from './resize.ts';

export const DECODED_FORMAT = 'stella-decoded/1';
/** Eval-mode records: the decoded clip as decodeClip returns it. */
export const DECODED_EVAL_FORMAT = 'stella-decoded-eval/1';
/** Size the folder is pruned to (oldest first), once per process. */
export const DECODED_CACHE_MAX_BYTES = 8 * 2 ** 30;

/** The default folder: `<cacheRoot>/decoded`. */
export function decodedCacheDir(): string {
  return path.join(cacheRoot(), 'decoded');
}

/** Hits and misses in this thread (tests and benchmarks read them). */
export const decodedCacheStats = { hits: 0, misses: 0, writeFailures: 0 };

/** Every frame time a train window of this clip can read (see the header). */
export function trainFrameGrid(durationSec: number, numFrames: number): number[] {
  const { D, starts } = trainWindows(durationSec, numFrames);
  if (starts === 0) return frameTimes(D, numFrames, 'eval'); // a short clip: fixed times, no draw
  if (starts === 1) return Array.from({ length: numFrames }, (_, i) => i); // the one window, start 0
  return Array.from({ length: starts + 8 * (numFrames - 1) }, (_, j) => j / 8);
}

interface StoredClip {
  info: MediaInfo;
  times: number[];
  /** [audioFrames, melBins], normalised, before noise and roll. */
  fbank: Float32Array;
  /** Frame `index` of `times`, [256, 256, 3] rgb24 (read from disk on a hit: only the frames a window needs). */
  frame(index: number): Promise<Uint8Array>;
  /** Releases the file (a hit keeps it open until the frames are read). */
  close(): Promise<void>;
}

// A function, not a constant: decode.ts imports this module, so its constants are not there yet at load.
const frameBytes = () => FRAME_BASE * FRAME_BASE * 3;

/** A freshly decoded clip, held in memory. */
function inMemory(info: MediaInfo, times: number[], fbank: Float32Array, frames: Uint8Array): StoredClip {
  return { info, times, fbank, frame: async (i) => frames.subarray(i * frameBytes(), (i + 1) * frameBytes()), close: async () => {} };
}

/** Keeps whole rgb24 frames as they arrive; frames missing at the end repeat the last (as FrameSink). */
class RawFrames implements FrameConsumer {
  frames = 0;
  private filled = 0;
  readonly bytes: Uint8Array;
  private readonly frameBytes: number;
  constructor(private readonly n: number, side: number) {
    this.frameBytes = side * side * 3;
    this.bytes = new Uint8Array(n * this.frameBytes);
  }
  push(chunk: Uint8Array): void {
    const room = Math.max(0, this.bytes.length - this.filled);
    this.bytes.set(chunk.subarray(0, room), this.filled);
    this.filled += Math.min(room, chunk.length);
    this.frames = Math.floor(this.filled / this.frameBytes);
  }
  finish(): Uint8Array {
    const have = this.frames, size = this.frameBytes;
    for (let t = have; t < this.n && have > 0; t++) this.bytes.copyWithin(t * size, (have - 1) * size, have * size);
    return this.bytes;
  }
}

/** The stored form of a clip: frames at trainFrameGrid times, 256² rgb24, and the fbank before augmentation. */
function gridPlan(config: ModelConfig, audioSeconds: number, niceness: number): DecodePlan<Decoded> {
  return {
    plan: (_file, info) => {
      const times = trainFrameGrid(info.durationSec, config.numFrames);
      return { request: { times, size: FRAME_BASE, crop: undefined, config, audioSeconds, niceness }, frames: new RawFrames(times.length, FRAME_BASE) };
    },
    finish: (job, out) => ({
      info: { ...job.info, channels: job.info.channels || out.channels }, times: job.request.times, frames: (job.frames as RawFrames).finish(), fbank: out.fbank,
    }),
  };
}
interface Decoded { info: MediaInfo; times: number[]; frames: Uint8Array; fbank: Float32Array }

const decodeOnce = (file: string, config: ModelConfig, audioSeconds: number, signal?: AbortSignal, niceness = 0) =>
  decodeFileWith(file, gridPlan(config, audioSeconds, niceness), signal);

/** decodeOnce for several files in one ffmpeg run where it can (decodeFilesTogether). */
const decodeTogether = (files: string[], config: ModelConfig, audioSeconds: number, signal: AbortSignal | undefined, niceness: number) =>
  decodeFilesTogether(files, gridPlan(config, audioSeconds, niceness), signal);

const inFlight = new Map<string, Promise<Decoded>>();
const pruned = new Set<string>();

/** Opens a stored clip: header, key check and fbank now, frames on demand; undefined when absent or not valid. */
async function readStored(file: string, key: object, config: ModelConfig): Promise<StoredClip | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const headerBytes = prefix.readUInt32LE(4);
    if (headerBytes > size) throw new Error('header past the end');
    const head = Buffer.alloc(8 + headerBytes);
    await handle.read(head, 0, head.length, 0);
    const { header, dataOffset } = decodeRecord(head, file);
    const h = header as { key: object; info: MediaInfo; times: number[] };
    if (JSON.stringify(h.key) !== JSON.stringify(key)) throw new Error('key mismatch');
    const fbank = new Float32Array(config.audioFrames * config.melBins);
    if (size !== dataOffset + fbank.byteLength + h.times.length * frameBytes()) throw new Error('wrong size');
    await handle.read(new Uint8Array(fbank.buffer), 0, fbank.byteLength, dataOffset);
    const framesAt = dataOffset + fbank.byteLength;
    return {
      info: h.info, times: h.times, fbank,
      async frame(i) {
        const out = new Uint8Array(frameBytes());
        const { bytesRead } = await handle.read(out, 0, out.length, framesAt + i * out.length);
        if (bytesRead !== out.length) throw new Error(`${file}: decoded cache file is truncated at frame ${i}; delete it and rerun`);
        return out;
      },
      close: () => handle.close(),
    };
  } catch {
    await handle.close();
    return undefined; // not a valid record for this key: decoded again and replaced
  }
}

async function writeStoredOrWarn(dir: string, file: string, key: object, clip: Decoded): Promise<void> {
  await writeRecordOrWarn(dir, file, { format: DECODED_FORMAT, key, info: clip.info, times: clip.times }, [clip.fbank, clip.frames]);
}

/** Folders a record could not be written to (warned about once each). */
const unwritable = new Set<string>();

/**
 * Writes one record, or warns: a failed write (a full disk, a folder that cannot be made) costs the
 * cache, not the clip, which the caller then uses from memory. One warning per folder; a clip that
 * was not stored is decoded again when next asked for.
 */
async function writeRecordOrWarn(dir: string, file: string, header: object, payloads: ArrayBufferView[]): Promise<void> {
  try {
    await writeRecordFile(dir, file, header, payloads);
  } catch (error) {
    decodedCacheStats.writeFailures++;
    if (unwritable.has(dir)) return;
    unwritable.add(dir);
    process.emitWarning(`decoded cache ${dir}: cannot store a clip (${(error as Error).message}); clips are decoded without being stored, and decoded again when next asked for`, { code: 'STELLA_DECODED_CACHE' });
  }
}

/** Writes one record to a temp file renamed into place; the first write in a folder prunes it. */
async function writeRecordFile(dir: string, file: string, header: object, payloads: ArrayBufferView[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const record = encodeRecord(header, payloads);
  const temporary = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(temporary, Buffer.concat(record.buffers));
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
  if (!pruned.has(dir)) {
    pruned.add(dir);
    await pruneDecodedCache(dir, DECODED_CACHE_MAX_BYTES);
  }
}

/** Age after which a temp file in the folder is a killed write's leftover. */
const STALE_TEMP_MS = 3600_000;

/** Removes killed writes' temp files, then the oldest files (by mtime) until `dir` holds at most `maxBytes`. */
export async function pruneDecodedCache(dir: string, maxBytes: number): Promise<number> {
  const all = await readdir(dir).catch(() => [] as string[]);
  // A write whose process was killed before its rename leaves its temp file: drop those an hour old
  // (a write in progress takes well under a second).
  for (const n of all.filter((name) => /\.bin\.tmp-/.test(name))) {
    const s = await stat(path.join(dir, n)).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await rm(path.join(dir, n), { force: true });
  }
  const names = all.filter((n) => n.endsWith('.bin'));
  const files = (await Promise.all(names.map(async (n) => {
    const s = await stat(path.join(dir, n)).catch(() => undefined);
    return s && { file: path.join(dir, n), bytes: s.size, mtime: s.mtimeMs };
  }))).filter((f) => f !== undefined).sort((a, b) => a.mtime - b.mtime);
  let total = files.reduce((a, f) => a + f.bytes, 0), removed = 0;
  for (const f of files) {
    if (total <= maxBytes) break;
    await rm(f.file, { force: true });
    total -= f.bytes;
    removed++;
  }
  return removed;
}

/** The cache key of `file` (its path, size, mtime and the decode settings) and its file under `dir`; undefined when it cannot be stat'ed. */
async function cacheEntry(file: string, config: ModelConfig, audioSeconds: number, dir: string, mode: 'train' | 'eval' = 'train'): Promise<{ key: object; name: string } | undefined> {
  const absolute = path.resolve(file);
  const st = await stat(absolute).catch(() => undefined);
  if (!st) return undefined;
  const key = {
    format: mode === 'train' ? DECODED_FORMAT : DECODED_EVAL_FORMAT, path: absolute, size: st.size, mtimeMs: st.mtimeMs,
    numFrames: config.numFrames, audioFrames: config.audioFrames, melBins: config.melBins, audioSeconds,
    ...(mode === 'eval' ? { imageSize: config.imageSize } : {}),
  };
  return { key, name: path.join(dir, `${createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 40)}.bin`) };
}

/** Counts a hit on the record `name` and touches it: recently used, pruned last. */
function countHit(name: string): void {
  decodedCacheStats.hits++;
  const now = new Date();
  void utimes(name, now, now).catch(() => {});
}

/**
 * The stored clip for `file` under `dir`, decoding (once, also across concurrent callers) on a miss;
 * `niceness` is the ffmpeg child's nice value for a decode this call starts.
 */
export async function storedClip(file: string, config: ModelConfig, audioSeconds: number, dir: string, signal?: AbortSignal, niceness = 0): Promise<StoredClip> {
  const entry = await cacheEntry(file, config, audioSeconds, dir);
  if (!entry) await decodeOnce(file, config, audioSeconds, signal); // throws the classified MediaError (missing, …)
  if (!entry) throw new Error(`${file}: cannot stat`);
  const { key, name } = entry;
  const stored = await readStored(name, key, config);
  if (stored) {
    countHit(name);
    return stored;
  }
  let pending = inFlight.get(name);
  if (!pending) {
    decodedCacheStats.misses++;
    pending = decodeOnce(file, config, audioSeconds, signal, niceness).then(async (clip) => {
      await writeStoredOrWarn(dir, name, key, clip);
      return clip;
    });
    inFlight.set(name, pending);
    void pending.then(() => inFlight.delete(name), () => inFlight.delete(name));
  }
  try {
    const c = await pending;
    return inMemory(c.info, c.times, c.fbank, c.frames);
  } catch (error) {
    // Another caller's abort ended the shared decode: decode again for this one.
    if (isAbortError(error) && !signal?.aborted) return storedClip(file, config, audioSeconds, dir, signal, niceness);
    throw error;
  }
}

/** Nice value of the warmer's ffmpeg: it decodes ahead on the CPU training leaves idle. */
export const WARM_NICENESS = 10;
/** Files one warm ffmpeg run decodes together (one start-up for all of them). */
export const WARM_BATCH = 8;

/**
 * Decodes `files` into the cache ahead of their requests, in order, WARM_BATCH files per ffmpeg run
 * at WARM_NICENESS; a file already stored or being decoded costs one header read. A request for a
 * file of the run in flight joins it (and gets its outcome); a file that fails is skipped here, its
 * own request reports the error. Stops once `signal` aborts (the run in flight is killed).
 */
export async function warmStoredClips(files: readonly string[], config: ModelConfig, dir: string, signal?: AbortSignal, audioSeconds = AUDIO_SECONDS): Promise<{ stored: number; failed: number }> {
  const counts = { stored: 0, failed: 0 };
  for (let start = 0; start < files.length && !signal?.aborted; start += WARM_BATCH) {
    const todo: { file: string; key: object; name: string }[] = [];
    for (const file of files.slice(start, start + WARM_BATCH)) {
      const entry = await cacheEntry(file, config, audioSeconds, dir);
      if (!entry) { counts.failed++; continue; }
      const stored = inFlight.has(entry.name) ? undefined : await readStored(entry.name, entry.key, config);
      await stored?.close();
      if (stored || inFlight.has(entry.name)) { counts.stored++; continue; }
      todo.push({ file, ...entry });
    }
    decodedCacheStats.misses += todo.length;
    const decoded = decodeTogether(todo.map((t) => t.file), config, audioSeconds, signal, WARM_NICENESS);
    const pending = todo.map((t, i) => {
      const clip = decoded.then(async (all) => {
        const out = all[i];
        if (out instanceof Error) throw out;
        await writeStoredOrWarn(dir, t.name, t.key, out);
        return out;
      });
      inFlight.set(t.name, clip);
      void clip.then(() => inFlight.delete(t.name), () => inFlight.delete(t.name));
      return clip;
    });
    for (const clip of pending) {
      try {
        await clip;
        counts.stored++;
      } catch {
        if (!signal?.aborted) counts.failed++;
      }
    }
  }
  return counts;
}

/** Resolves a decode request's `cache` to its folder. */
export const cacheFolder = (cache: true | string) => (cache === true ? decodedCacheDir() : path.resolve(cache));

/** decodeClip's train mode, from the cache (see the header for what matches decodeClip). */
export async function decodeFromCache(
  file: string,
  options: { config: ModelConfig; rng: Rng; audioSeconds?: number; cache: true | string },
  signal?: AbortSignal,
): Promise<DecodedClip> {
  const { config, rng, audioSeconds = AUDIO_SECONDS } = options;
  const dir = cacheFolder(options.cache);
  const stored = await storedClip(file, config, audioSeconds, dir, signal);
  const T = config.numFrames, S = config.imageSize;
  // decodeClip's draws, in its order: window start, crop, then noise and roll.
  const times = frameTimes(stored.info.durationSec, T, 'train', rng);
  const crop = drawMultiScaleCrop(rng);
  const frames = new FrameSink(T, S);
  const resized = new Uint8Array(S * S * 3);
  try {
    for (const t of times) {
      const index = stored.times.findIndex((g) => Math.abs(g - t) < 1e-6);
      if (index < 0) throw new Error(`${file}: decoded cache has no frame at ${t} s (cache holds ${stored.times.length} frames); delete ${dir} and rerun`);
      frames.push(cropResizeRgb(await stored.frame(index), FRAME_BASE, crop, S, resized));
    }
  } finally {
    await stored.close();
  }
  const fbank = stored.fbank.slice();
  addNoiseAndRoll(fbank, config.audioFrames, config.melBins, rng);
  return { path: file, video: frames.finish(), fbank, info: stored.info };
}

/** An eval record's clip, or undefined when absent or not valid for `key` (then decoded again and replaced). */
async function readEvalStored(name: string, key: object, file: string, config: ModelConfig): Promise<DecodedClip | undefined> {
  const bytes = await readFile(name).catch(() => undefined);
  if (!bytes) return undefined;
  try {
    const { header, dataOffset } = decodeRecord(bytes, name);
    const h = header as { key: object; info: MediaInfo };
    if (JSON.stringify(h.key) !== JSON.stringify(key)) return undefined;
    const videoLength = config.numFrames * 3 * config.imageSize * config.imageSize;
    const fbankLength = config.audioFrames * config.melBins;
    if (bytes.length !== dataOffset + 4 * (videoLength + fbankLength)) return undefined;
    // Each array gets a buffer of its own (items are transferred between threads), copied once from the file's bytes.
    const video = new Float32Array(videoLength), fbank = new Float32Array(fbankLength);
    new Uint8Array(video.buffer).set(bytes.subarray(dataOffset, dataOffset + video.byteLength));
    new Uint8Array(fbank.buffer).set(bytes.subarray(dataOffset + video.byteLength));
    return { path: file, video, fbank, info: h.info };
  } catch {
    return undefined;
  }
}

/**
 * decodeClip's eval mode for `files` through the cache under `options.cache`: per file (in order)
 * its clip, bit for bit what decodeClip returns, or its error (a MediaError naming the file, as
 * decodeClip would throw). Stored clips are read; the rest are decoded WARM_BATCH per ffmpeg run
 * and stored.
 */
export async function decodeEvalClips(
  files: readonly string[],
  options: { config: ModelConfig; audioSeconds?: number; cache: true | string },
  signal?: AbortSignal,
): Promise<(DecodedClip | Error)[]> {
  const { config, audioSeconds = AUDIO_SECONDS } = options;
  const dir = cacheFolder(options.cache);
  const out: (DecodedClip | Error | undefined)[] = new Array(files.length);
  const missing: { index: number; key?: object; name?: string }[] = [];
  for (const [index, file] of files.entries()) {
    const entry = await cacheEntry(file, config, audioSeconds, dir, 'eval');
    const stored = entry && (await readEvalStored(entry.name, entry.key, file, config));
    if (stored) {
      countHit(entry.name);
      out[index] = stored;
    } else {
      missing.push({ index, ...entry });
    }
  }
  for (let start = 0; start < missing.length; start += WARM_BATCH) {
    const todo = missing.slice(start, start + WARM_BATCH);
    decodedCacheStats.misses += todo.length;
    // A file that cannot be stat'ed goes through too: its decode names the failure (missing, …).
    const decoded = await decodeFilesTogether(todo.map((t) => files[t.index]), evalPlan(config, audioSeconds), signal);
    for (const [i, t] of todo.entries()) {
      const clip = decoded[i];
      if (!(clip instanceof Error) && t.key && t.name) {
        await writeRecordOrWarn(dir, t.name, { format: DECODED_EVAL_FORMAT, key: t.key, info: clip.info }, [clip.video, clip.fbank]);
      }
      out[t.index] = clip;
    }
  }
  return out as (DecodedClip | Error)[];
}
