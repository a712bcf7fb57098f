// Own file: it changes PATH and the ffmpeg overrides for this process only.
import test from 'ava';
import { chmod, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chooseFfmpeg, measureFfmpeg, resetFfmpegCache, resolveFfmpeg, type FfmpegCandidate } from '../../src/media/ffmpeg.ts';
import { tempDir } from './fixtures.ts';

const staticBuild = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
const candidate = (p: string, startupMs: number, missing: string[] = [], error?: string): FfmpegCandidate =>
  ({ path: p, source: 'path', version: 'x', startupMs, missing, ...(error ? { error } : {}) });

test('choice: the cheapest start-up among binaries with every codec, not the first found', (t) => {
  const slow = candidate('/usr/bin/ffmpeg', 80), fast = candidate('/static/ffmpeg', 3);
  t.is(chooseFfmpeg([slow, fast])!.chosen, fast);
  t.regex(chooseFfmpeg([slow, fast])!.reason, /cheapest start-up \(3 ms\).*\/usr\/bin\/ffmpeg starts in 80 ms/);
  // A faster binary without libx264 loses to a complete one.
  const partial = candidate('/tiny/ffmpeg', 1, ['encoder libx264']);
  t.is(chooseFfmpeg([partial, slow])!.chosen, slow);
  t.regex(chooseFfmpeg([partial, slow])!.reason, /\/tiny\/ffmpeg lacks encoder libx264/);
  // None complete: the cheapest that runs, saying what it lacks; one that does not run is never chosen.
  const broken = candidate('/broken/ffmpeg', Infinity, [], 'does not run');
  const choice = chooseFfmpeg([broken, candidate('/a', 9, ['decoder aac']), candidate('/b', 4, ['decoder h264'])])!;
  t.is(choice.chosen.path, '/b');
  t.regex(choice.reason, /no candidate has every codec.*lacks decoder h264/);
  t.is(chooseFfmpeg([broken]), undefined);
  // Equal cost: the earlier candidate stays.
  t.is(chooseFfmpeg([candidate('/first', 5), candidate('/second', 5)])!.chosen.path, '/first');
});

test('measuring a real binary: version, codecs and a start-up time', async (t) => {
  const m = await measureFfmpeg(staticBuild, '@ffmpeg-installer');
  t.deepEqual(m.missing, []);
  t.true(m.startupMs > 0 && Number.isFinite(m.startupMs));
  t.regex(m.version, /\S/);
  const missing = await measureFfmpeg('/nonexistent/ffmpeg', 'path');
  t.truthy(missing.error);
});

test.serial('a slow ffmpeg first on PATH loses to the static build; a fast one without the codecs too; overrides still win', async (t) => {
  const dir = await tempDir('ffmpeg-path');
  const saved = { PATH: process.env.PATH, STELLA_FFMPEG: process.env.STELLA_FFMPEG, FFMPEG_PATH: process.env.FFMPEG_PATH };
  delete process.env.STELLA_FFMPEG;
  delete process.env.FFMPEG_PATH;
  try {
    // A dynamically linked build stands in: the real binary behind a 500 ms start-up. The margin
    // is wide so load cannot flip the order: the static build would have to lose 500 ms in two
    // of its three timed runs (the median counts) to lose to it.
    await writeFile(path.join(dir, 'ffmpeg'), `#!/bin/sh\nsleep 0.5\nexec '${staticBuild}' "$@"\n`);
    await chmod(path.join(dir, 'ffmpeg'), 0o755);
    process.env.PATH = `${dir}${path.delimiter}${saved.PATH}`;
    resetFfmpegCache();
    const chosen = await resolveFfmpeg();
    t.is(chosen.source, '@ffmpeg-installer');
    t.is(chosen.candidates.length >= 2, true);
    const onPath = chosen.candidates.find((c) => c.path === path.join(dir, 'ffmpeg'))!;
    t.true(onPath.startupMs >= 500, `wrapper measured ${onPath.startupMs} ms`);
    t.regex(chosen.reason, new RegExp(`${path.join(dir, 'ffmpeg').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} starts in \\d+ ms`));

    // A fast binary that lists no h264 decoder.
    await writeFile(path.join(dir, 'ffmpeg'), '#!/bin/sh\necho "ffmpeg version fake"\necho " A....D aac   AAC"\n');
    await chmod(path.join(dir, 'ffmpeg'), 0o755);
    resetFfmpegCache();
    const again = await resolveFfmpeg();
    t.is(again.source, '@ffmpeg-installer');
    t.regex(again.reason, /lacks decoder h264/);

    // An explicit override is used as it is, even when slow.
    process.env.STELLA_FFMPEG = path.join(dir, 'ffmpeg');
    resetFfmpegCache();
    const forced = await resolveFfmpeg();
    t.is(forced.source, 'env');
    t.regex(forced.reason, /set by STELLA_FFMPEG/);
  } finally {
    process.env.PATH = saved.PATH;
    for (const k of ['STELLA_FFMPEG', 'FFMPEG_PATH'] as const) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
    resetFfmpegCache();
  }
});
