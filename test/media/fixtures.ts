/** Tiny media files for the media tests, generated with the bundled ffmpeg (lavfi sources). */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { resolveFfmpeg } from '../../src/media/ffmpeg.ts';

const run = promisify(execFile);

export async function ffmpeg(...args: string[]): Promise<void> {
  const { path: bin } = await resolveFfmpeg();
  await run(bin, ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

export const tempDir = (prefix: string) => mkdtemp(path.join(os.tmpdir(), `stella-${prefix}-`));

const video = (size: string, rate = 10) => ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${rate}`];
const tone = (rate = 16000, f = 440) => ['-f', 'lavfi', '-i', `sine=frequency=${f}:sample_rate=${rate}`];
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-threads', '1'];

/** A good clip: `size` video with a tone, `seconds` long. */
export async function goodClip(file: string, seconds = 1, size = '48x32'): Promise<string> {
  await ffmpeg(...video(size), ...tone(), '-t', String(seconds), ...x264, '-pix_fmt', 'yuv444p', '-c:a', 'aac', file);
  return file;
}

/** One file per bad-input kind, keyed by the MediaError kind it must produce. */
export async function badClips(dir: string): Promise<Record<string, string>> {
  const p = (name: string) => path.join(dir, name);
  await writeFile(p('empty.mp4'), '');
  await writeFile(p('text.mp4'), 'this is not a video\n');
  await goodClip(p('whole.mp4'), 2);
  const whole = await readFile(p('whole.mp4'));
  await writeFile(p('truncated.mp4'), whole.subarray(0, Math.floor(whole.length / 2))); // moov at the end is lost
  await ffmpeg(...video('32x32'), '-t', '1', ...x264, p('no audio.mp4'));
  await ffmpeg(...tone(), '-t', '1', '-c:a', 'aac', p('no-video.m4a'));
  await ffmpeg(...video('32x32'), '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '1', ...x264, '-c:a', 'pcm_s16le', p('silent.mkv'));
  // Video timestamps start after the cut, so the video track holds no frame.
  await ffmpeg('-itsoffset', '5', ...video('32x32'), ...tone(), '-t', '1', ...x264, '-c:a', 'pcm_s16le', p('no-frames.mkv'));
  return {
    missing: p('does-not-exist.mp4'),
    empty: p('empty.mp4'),
    'not-media': p('text.mp4'),
    corrupt: p('truncated.mp4'),
    'no-audio': p('no audio.mp4'),
    'no-video': p('no-video.m4a'),
    silent: p('silent.mkv'),
    'too-short': p('no-frames.mkv'),
  };
}

/** ffmpeg processes whose parent is this process (Linux /proc). */
export async function childFfmpegs(): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
      if (m && m[1].includes('ffmpeg') && Number(m[2]) === process.pid) out.push(Number(e));
    } catch { /* process ended */ }
  }
  return out;
}
