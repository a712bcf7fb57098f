// Own file: it points STELLA_FFMPEG at a slow wrapper for this process only.
import test from 'ava';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { decodeClip } from '../../src/media/decode.ts';
import { resetFfmpegCache, resolveFfmpeg } from '../../src/media/ffmpeg.ts';
import { childFfmpegs, goodClip, tempDir } from './fixtures.ts';

test.serial('aborting a decode kills its running ffmpeg child and rejects with AbortError', async (t) => {
  const dir = await tempDir('abort');
  const clip = await goodClip(path.join(dir, 'clip.mp4'), 1);
  const real = (await resolveFfmpeg()).path;
  // The wrapper is named ffmpeg and holds the decode (the call with pipe:3) for 3 s before exec.
  const wrapper = path.join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\ncase "$*" in *pipe:3*) sleep 3;; esac\nexec "${real}" "$@"\n`);
  await chmod(wrapper, 0o755);
  process.env.STELLA_FFMPEG = wrapper;
  resetFfmpegCache();
  try {
    t.is((await resolveFfmpeg()).source, 'env');
    const ac = new AbortController();
    const started = Date.now();
    const p = decodeClip(clip, { config: MODEL_CONFIGS.tiny, mode: 'eval' }, ac.signal);
    // Wait for the (held) decode child to appear; MP4 stream facts come from the header, no probe child.
    await new Promise((r) => setTimeout(r, 600));
    t.true((await childFfmpegs()).length > 0, 'the decode child is running');
    ac.abort();
    await t.throwsAsync(p, { name: 'AbortError' });
    t.true(Date.now() - started < 2500, 'rejected without waiting for the child');
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(await childFfmpegs(), []);
  } finally {
    delete process.env.STELLA_FFMPEG;
    resetFfmpegCache();
  }
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
