/**
 * Stream facts of a media file from ffmpeg's own input dump (`ffmpeg -i FILE`, no ffprobe needed).
 *
 * Output: `{ durationSec, hasVideo, width, height, fps, hasAudio, sampleRate, channels }` of the
 * first video and first audio stream. `durationSec` is NaN when the container does not say.
 * Errors: `MediaError` (stage as given): missing / empty file, not media, truncated or corrupt.
 * Aborting `signal` kills the ffmpeg child.
 * `mediaInfo` is what a decode calls: the same facts read in-process from an MP4/MOV header
 * (mp4-header.ts, no child process) when that parses without doubt, else this probe.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolveFfmpeg } from './ffmpeg.ts';
import { abortError, MediaError } from './media-error.ts';
import { readMp4Header } from './mp4-header.ts';

export interface MediaInfo {
  durationSec: number;
  width: number;
  height: number;
  fps: number;
  sampleRate: number;
  channels: number;
  hasAudio: boolean;
  hasVideo: boolean;
}

const LAYOUT_CHANNELS: Record<string, number> = {
  mono: 1, stereo: 2, downmix: 2, '2.1': 3, '3.0': 3, '3.0(back)': 3, '4.0': 4, quad: 4, 'quad(side)': 4, '3.1': 4,
  '5.0': 5, '5.0(side)': 5, '4.1': 5, '5.1': 6, '5.1(side)': 6, '6.0': 6, '6.0(front)': 6, hexagonal: 6,
  '6.1': 7, '6.1(back)': 7, '6.1(front)': 7, '7.0': 7, '7.0(front)': 7, '7.1': 8, '7.1(wide)': 8,
  '7.1(wide-side)': 8, octagonal: 8, hexadecagonal: 16,
};

/** Channel count from ffmpeg's layout word ("stereo", "7.1", "6 channels"); 0 when unknown. */
export function channelsFromLayout(layout: string): number {
  const n = /^(\d+) channels/.exec(layout);
  if (n) return Number(n[1]);
  return LAYOUT_CHANNELS[layout] ?? 0;
}

/** Parses the `Input #0` dump. Exported for tests. */
export function parseInputDump(stderr: string): MediaInfo {
  const info: MediaInfo = { durationSec: NaN, width: 0, height: 0, fps: 0, sampleRate: 0, channels: 0, hasAudio: false, hasVideo: false };
  const d = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  if (d) info.durationSec = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
  for (const line of stderr.split('\n')) {
    const s = /Stream #0:\d+.*?: (Video|Audio): (.*)$/.exec(line);
    if (!s) continue;
    if (s[1] === 'Video' && !info.hasVideo) {
      // Cover art is a video stream with one picture; it is not a usable video track.
      if (/\(attached pic\)/.test(line)) continue;
      const size = /, (\d+)x(\d+)/.exec(s[2]);
      if (!size) continue;
      info.hasVideo = true;
      info.width = Number(size[1]);
      info.height = Number(size[2]);
      const fps = /([\d.]+)(k?) fps/.exec(s[2]) ?? /([\d.]+)(k?) tbr/.exec(s[2]);
      if (fps) info.fps = Number(fps[1]) * (fps[2] ? 1000 : 1);
    } else if (s[1] === 'Audio' && !info.hasAudio) {
      info.hasAudio = true;
      const rate = /(\d+) Hz, ([^,]+)/.exec(s[2]);
      if (rate) {
        info.sampleRate = Number(rate[1]);
        info.channels = channelsFromLayout(rate[2].trim());
      }
    }
  }
  return info;
}

/** True when the first bytes carry a known container signature (so a failure means damage, not "not media"). */
export function looksLikeContainer(head: Buffer): boolean {
  const ascii = head.toString('latin1');
  return (
    /^....(ftyp|moov|mdat|free|wide|skip)/s.test(ascii) || // ISO BMFF / QuickTime
    head.subarray(0, 4).equals(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])) || // Matroska / WebM
    /^(RIFF|OggS|FLV|fLaC|ID3)/.test(ascii) ||
    head[0] === 0x47 || // MPEG-TS sync byte
    head.subarray(0, 4).equals(Buffer.from([0x00, 0x00, 0x01, 0xba])) // MPEG-PS
  );
}

function fileHead(file: string): Buffer {
  const head = Buffer.alloc(16);
  try {
    const fd = openSync(file, 'r');
    try { readSync(fd, head, 0, 16, 0); } finally { closeSync(fd); }
  } catch { /* unreadable: classified from stderr alone */ }
  return head;
}

/** Why ffmpeg could not open or decode a file, from its stderr and the file's first bytes. */
export function classifyOpenFailure(file: string, stage: string, stderr: string): MediaError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.filter((l) => !/^(At least one output file|Conversion failed)/.test(l)).pop() ?? 'ffmpeg failed';
  if (/Cannot determine format of input stream \d+:\d+ after EOF/.test(stderr)) {
    return new MediaError(file, stage, 'too-short', `too short to yield a video frame (the video stream holds no decodable frame)`);
  }
  if (/Input #0/.test(stderr) || looksLikeContainer(fileHead(file))) {
    return new MediaError(file, stage, 'corrupt', `truncated or corrupt media (ffmpeg: ${last})`);
  }
  return new MediaError(file, stage, 'not-media', `not a media file ffmpeg can read (ffmpeg: ${last})`);
}

/** Fails with a clear MediaError for a missing, non-regular or empty file. */
export async function assertReadableFile(file: string, stage: string): Promise<void> {
  let st;
  try {
    st = await stat(file);
  } catch {
    throw new MediaError(file, stage, 'missing', 'file not found');
  }
  checkStat(file, stage, st);
}

function checkStat(file: string, stage: string, st: { isFile(): boolean; size: number }): void {
  if (!st.isFile()) throw new MediaError(file, stage, 'missing', 'not a regular file');
  if (st.size === 0) throw new MediaError(file, stage, 'empty', 'file is empty (0 bytes)');
}

/** `assertReadableFile` without a thread-pool round trip (the decode path; a stat is microseconds). */
function assertReadableFileSync(file: string, stage: string): void {
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new MediaError(file, stage, 'missing', 'file not found');
  }
  checkStat(file, stage, st);
}

export async function probeMedia(file: string, stage = 'decode', signal?: AbortSignal): Promise<MediaInfo> {
  await assertReadableFile(file, stage);
  const ffmpeg = await resolveFfmpeg();
  if (signal?.aborted) throw abortError(signal);
  const stderr = await new Promise<string>((resolve, reject) => {
    const child = spawn(ffmpeg.path, ['-hide_banner', '-nostdin', '-i', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    const chunks: Buffer[] = [];
    const onAbort = () => {
      child.kill('SIGKILL');
      child.stderr.destroy();
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', (e) => reject(new MediaError(file, stage, 'ffmpeg', `cannot start ffmpeg (${ffmpeg.path}): ${e.message}`)));
    child.on('close', () => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(abortError(signal));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
  if (!/Input #0/.test(stderr)) throw classifyOpenFailure(file, stage, stderr);
  return parseInputDump(stderr);
}

/** Where `mediaInfo` got its facts: the container header read in-process, or `ffmpeg -i`. */
export type MediaInfoSource = 'header' | 'probe';

/**
 * Stream facts for a decode: from the MP4/MOV header when it parses without doubt (no child
 * process), else from `probeMedia`, which also classifies files ffmpeg cannot open.
 */
export async function mediaInfo(file: string, stage = 'decode', signal?: AbortSignal): Promise<{ info: MediaInfo; source: MediaInfoSource }> {
  assertReadableFileSync(file, stage);
  if (signal?.aborted) throw abortError(signal);
  const header = readMp4Header(file);
  if (header.ok) return { info: header.info, source: 'header' };
  return { info: await probeMedia(file, stage, signal), source: 'probe' };
}
