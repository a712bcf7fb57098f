// Own file: it points STELLA_FFMPEG at a slow wrapper for this process only.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { decodeClip } from '../../src/media/decode.ts';
import { resetFfmpegCache, resolveFfmpeg } from '../../src/media/ffmpeg.ts';
import { childFfmpegs, goodClip, tempDir } from './fixtures.ts';

/** Polls `check` until it holds (true) or `limitMs` passed (false): the limit only turns a hang into a failure. */
async function eventually(check: () => Promise<boolean>, limitMs = 20_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
    if (await check()) return true;
  }
  return false;
}

/** Whether `pid` has exited (gone, or a zombie waiting to be reaped). */
async function exited(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || /^\d+ \(.*\) Z /.test(stat);
}

test.serial('aborting a decode kills its running ffmpeg child and rejects with AbortError at once', async (t) => {
  const dir = await tempDir('abort');
  const clip = await goodClip(path.join(dir, 'clip.mp4'), 1);
  const real = (await resolveFfmpeg()).path;
  // The wrapper is named ffmpeg. On the decode (the call with pipe:3) it writes its pid and waits on
  // a grandchild that keeps stdout and fd 3 open until the test writes to `release`: the child never
  // finishes by itself, and its pipes stay open after it is killed.
  const held = path.join(dir, 'held');
  const release = path.join(dir, 'release');
  execFileSync('mkfifo', [release]);
  const wrapper = path.join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\ncase "$*" in *pipe:3*) echo $$ > "${held}.tmp"; mv "${held}.tmp" "${held}"; ( read x < "${release}" ) & wait; exit 1;; esac\nexec "${real}" "$@"\n`);
  await chmod(wrapper, 0o755);
  process.env.STELLA_FFMPEG = wrapper;
  resetFfmpegCache();
  try {
    t.is((await resolveFfmpeg()).source, 'env');
    const ac = new AbortController();
    const p = decodeClip(clip, { config: MODEL_CONFIGS.tiny, mode: 'eval' }, ac.signal);
    const outcome = p.then(() => 'resolved', (e: Error) => e);
    // MP4 stream facts come from the header, so the only child is the decode.
    t.true(await eventually(async () => (await readFile(held, 'utf8').catch(() => '')) !== ''), 'the decode child started');
    const pid = Number(await readFile(held, 'utf8'));
    t.deepEqual(await childFfmpegs(), [pid], 'the held decode child is running');
    ac.abort();
    // Settled within one turn of the event loop, while the grandchild still holds the pipes:
    // the rejection does not wait for the child's output to close.
    const settled = await Promise.race([outcome, new Promise((r) => setImmediate(() => r('pending')))]);
    t.is((settled as Error).name, 'AbortError', `the decode is ${settled instanceof Error ? settled.message : settled}`);
    t.true(await eventually(() => exited(pid)), 'the child was killed (it would wait forever otherwise)');
  } finally {
    // Let the grandchild go (O_NONBLOCK: opening fails at once if no reader is left).
    await open(release, constants.O_WRONLY | constants.O_NONBLOCK).then(async (f) => { await f.write('go\n'); await f.close(); }, () => undefined);
    delete process.env.STELLA_FFMPEG;
    resetFfmpegCache();
  }
  t.true(await eventually(async () => (await childFfmpegs()).length === 0), 'no ffmpeg child left');
});

test.serial('an env override that points at nothing is a clear error', async (t) => {
  process.env.FFMPEG_PATH = '/nonexistent/ffmpeg';
  resetFfmpegCache();
  try {
    await t.throwsAsync(resolveFfmpeg(), { message: /FFMPEG_PATH=\/nonexistent\/ffmpeg does not name an executable/ });
  } finally {
    delete process.env.FFMPEG_PATH;
    resetFfmpegCache();
  }
  const ok = await resolveFfmpeg();
  t.regex(ok.version, /\S/);
  t.true(['ffmpeg-static', 'path', '@ffmpeg-installer'].includes(ok.source));
});
