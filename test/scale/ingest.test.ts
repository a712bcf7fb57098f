import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { generateCorpus } from '../../src/media/corpus.ts';
import { openIngestCache } from '../../src/media/ingest-cache.ts';
import { runIngest } from '../../src/media/ingest.ts';
import { REPO_ROOT } from '../helpers.ts';
import { badClips, tempDir } from '../media/fixtures.ts';
import { hasRedisServer, NO_REDIS_SERVER, RedisServer } from './redis-server.ts';

const byPath = <T extends { path: string }>(xs: T[]) => [...xs].sort((a, b) => a.path.localeCompare(b.path));

async function cacheContents(dir: string) {
  const cache = await openIngestCache(dir);
  const out: Record<string, unknown> = {};
  for (const p of [...cache.paths()].sort()) {
    const c = await cache.get(p);
    out[p] = { label: c.label, task: c.task, split: c.split, info: c.info, video: Buffer.from(c.videoPatches.buffer, c.videoPatches.byteOffset, c.videoPatches.byteLength).toString('base64'), audio: Buffer.from(c.audioPatches.buffer, c.audioPatches.byteOffset, c.audioPatches.byteLength).toString('base64') };
  }
  await cache.close();
  return out;
}

test('distributed ingest (2 workers) gives the same cache, patches bit for bit, and the same per-clip errors as local ingest; a re-run reuses the cache', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(5 * 60_000);
  const dir = await tempDir('dist-ingest');
  const corpus = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 2, test: 1, seed: 5 });
  const bad = await badClips(dir);
  const generated = JSON.parse(await readFile(corpus.manifestPath, 'utf8'));
  const abs = (p: string) => path.resolve(path.dirname(corpus.manifestPath), p);
  const good = [...generated.tasks[0].train, ...generated.tasks[0].test].map((c: { path: string; label: string }) => ({ path: abs(c.path), label: c.label }));
  const manifest = {
    seed: 1,
    tasks: [{ name: 'mixed', train: [...good, ...Object.entries(bad).map(([kind, p]) => ({ path: p, label: kind })), { path: path.join(dir, 'missing.mp4'), label: 'missing' }], test: [] }],
  };
  const manifestPath = path.join(dir, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest));

  const local = await runIngest({ manifest: manifestPath, out: path.join(dir, 'local'), allowOutside: true });
  t.true(local.errors.length >= Object.keys(bad).length);

  const server = await RedisServer.start();
  const workers: ChildProcess[] = [0, 1].map(() => spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'worker', '--redis', server.url], { stdio: 'ignore' }));
  const redis = new Redis({ host: '127.0.0.1', port: server.port });
  try {
    const remoteOut = path.join(dir, 'remote');
    const ingest = () => promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'ingest', manifestPath, '--out', remoteOut, '--allow-outside', '--json', '--redis', server.url, '--concurrency', '4'], { cwd: REPO_ROOT });
    const first = JSON.parse((await ingest()).stdout);
    t.is(first.processed, local.processed.length);
    t.is(first.cached, 0);
    const report = JSON.parse(await readFile(path.join(remoteOut, 'ingest-report.json'), 'utf8'));
    t.deepEqual(byPath(report.errors), byPath(local.errors).map((e) => ({ ...e })));
    t.deepEqual(byPath(report.processed), byPath(local.processed));
    t.deepEqual(await cacheContents(remoteOut), await cacheContents(path.join(dir, 'local')));
    // Idempotent: a re-run finds every good clip cached and reports the same errors.
    const again = JSON.parse((await ingest()).stdout);
    t.is(again.cached, local.processed.length);
    t.is(again.errors, local.errors.length);
    t.deepEqual(await redis.keys('stella:ingest:*'), []);
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
  }
});
