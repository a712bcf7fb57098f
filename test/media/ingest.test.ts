import test from 'ava';
import { execFile } from 'node:child_process';
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { decodeClip, sharedDecodeStats } from '../../src/media/decode.ts';
import { openIngestCache } from '../../src/media/ingest-cache.ts';
import { runIngest } from '../../src/media/ingest.ts';
import { tokenizeClip } from '../../src/media/tokenize.ts';
import { REPO_ROOT } from '../helpers.ts';
import { badClips, tempDir } from './fixtures.ts';

const corpus = (async () => {
  const dir = await tempDir('ingest-corpus');
  return generateCorpus({ out: dir, tasks: 1, classes: 2, train: 2, test: 1, seed: 3 });
})();

test.serial('ingest caches every clip, the reader returns the decoded patches, a second run skips them', async (t) => {
  const { manifestPath } = await corpus;
  const out = await tempDir('ingest-out');
  const runs = sharedDecodeStats.runs;
  const first = await runIngest({ manifest: manifestPath, out, config: 'tiny', concurrency: 2 });
  t.is(sharedDecodeStats.runs - runs, 1, 'the 6 clips were decoded in one shared ffmpeg run');
  t.is(first.errors.length, 0);
  t.is(first.processed.length, 6);
  t.true(first.processed.every((p) => !p.cached));
  const cache = await openIngestCache(out);
  t.is(cache.paths().length, 6);
  for (const one of first.processed) {
    // Each clip of the shared run equals its own decode, bit for bit.
    const fromCache = await cache.get(one.path);
    const direct = tokenizeClip(await decodeClip(one.path, { config: MODEL_CONFIGS.tiny, mode: 'eval' }), MODEL_CONFIGS.tiny);
    t.deepEqual(fromCache.videoPatches, direct.videoPatches);
    t.deepEqual(fromCache.audioPatches, direct.audioPatches);
    t.is(fromCache.label, one.label);
  }
  let n = 0;
  for await (const c of cache.clips()) { n++; t.is(c.videoPatches.length, 64 * 768); t.is(c.audioPatches.length, 128 * 256); }
  t.is(n, 6);
  await cache.close();
  await t.throwsAsync(cache.get('/nope.mp4').catch((e) => { throw e; }), { message: /not in the ingest cache/ });

  const second = await runIngest({ manifest: manifestPath, out, config: 'tiny' });
  t.is(second.processed.length, 6);
  t.true(second.processed.every((p) => p.cached));
  const report = JSON.parse(await readFile(path.join(out, 'ingest-report.json'), 'utf8'));
  t.is(report.processed.length, 6);
  t.deepEqual(report.errors, []);
});

test('a partially written shard is cut back and a damaged one is redone', async (t) => {
  const { manifestPath } = await corpus;
  const out = await tempDir('ingest-partial');
  await runIngest({ manifest: manifestPath, out });
  /** Every cached clip's path, label and patches, sorted by path (the index is in completion order). */
  const contents = async () => {
    const cache = await openIngestCache(out);
    const all: { path: string; label?: string; video: Buffer; audio: Buffer }[] = [];
    for (const p of cache.paths().sort()) {
      const c = await cache.get(p);
      all.push({ path: p, label: c.label, video: Buffer.from(c.videoPatches.buffer, c.videoPatches.byteOffset, c.videoPatches.byteLength), audio: Buffer.from(c.audioPatches.buffer, c.audioPatches.byteOffset, c.audioPatches.byteLength) });
    }
    await cache.close();
    return all;
  };
  const original = await contents();
  t.is(original.length, 6);
  const shard = path.join(out, 'shard-00000.bin');
  const size = (await stat(shard)).size;
  // An interrupted append: bytes past the indexed end.
  await appendFile(shard, Buffer.alloc(1000, 7));
  const resumed = await runIngest({ manifest: manifestPath, out });
  t.true(resumed.processed.every((p) => p.cached));
  t.is((await stat(shard)).size, size);
  t.deepEqual(await contents(), original, 'cutting the tail back keeps every clip intact');
  // A shard shorter than the index says: its clips are decoded again, to the same data.
  await writeFile(shard, (await readFile(shard)).subarray(0, 100));
  const redone = await runIngest({ manifest: manifestPath, out });
  t.is(redone.processed.filter((p) => !p.cached).length, 6);
  t.deepEqual(await contents(), original, 'the redone shard holds the same patches as the first ingest');
});

test('bad clips never stop a run: one clear error each, good clips processed, CLI exits 0', async (t) => {
  const dir = await tempDir('ingest-bad');
  const bad = await badClips(dir);
  const { manifestPath: good } = await corpus;
  const goodManifest = JSON.parse(await readFile(good, 'utf8'));
  const goodClip = path.join(path.dirname(good), goodManifest.tasks[0].train[0].path);
  const manifest = {
    seed: 1,
    tasks: [{ name: 'mixed', train: [{ path: goodClip, label: 'ok' }, ...Object.entries(bad).map(([kind, p]) => ({ path: p, label: kind }))], test: [] }],
  };
  const manifestPath = path.join(dir, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest));
  const out = path.join(dir, 'out');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), 'ingest', manifestPath, '--out', out, '--allow-outside', '--json'], { cwd: REPO_ROOT });
  const summary = JSON.parse(stdout);
  t.is(summary.processed, 1);
  t.is(summary.errors, Object.keys(bad).length);
  const report = JSON.parse(await readFile(path.join(out, 'ingest-report.json'), 'utf8'));
  t.deepEqual(report.processed.map((p: any) => p.path), [goodClip]);
  for (const [kind, p] of Object.entries(bad)) {
    const errs = report.errors.filter((e: any) => e.path === p);
    t.is(errs.length, 1, kind);
    t.is(errs[0].stage, 'decode');
    t.true(errs[0].message.startsWith(`${p}: `), errs[0].message);
  }
  // Nothing could run: an unreadable manifest exits non-zero with the file named.
  const failed = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), 'ingest', path.join(dir, 'nope.json'), '--out', out], { cwd: REPO_ROOT }).catch((e) => e);
  t.is(failed.code, 1);
  t.regex(failed.stderr, /nope\.json: manifest not found/);
});
