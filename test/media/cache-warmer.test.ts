import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { concat, from, lastValueFrom, NEVER, toArray, type Observable } from 'rxjs';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { pullable } from '../../src/graph/bounded-queue.ts';
import { TaskWarmer } from '../../src/media/cache-warmer.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { decodeClip, sharedDecodeStats } from '../../src/media/decode.ts';
import { decodedCacheStats, storedClip, warmStoredClips } from '../../src/media/decoded-cache.ts';
import type { MediaError } from '../../src/media/media-error.ts';
import type { ClipRef, DecodedClip } from '../../src/media/items.ts';
import { manifestClips, loadManifest } from '../../src/media/manifest.ts';
import type { ManifestRow } from '../../src/media/roles.ts';
import { decode } from '../../src/media/stages/decode.ts';
import { badClips, goodClip, tempDir } from './fixtures.ts';

const tiny = MODEL_CONFIGS.tiny;
const rows: ManifestRow[] = [
  { path: 'a0', label: 'x', task: 'A', split: 'train' },
  { path: 'a1', label: 'x', task: 'A', split: 'test' },
  { path: 'b0', label: 'x', task: 'B', split: 'train' },
  { path: 'b1', label: 'x', task: 'B', split: 'test' },
  { path: 'b2', label: 'x', task: 'B', split: 'train' },
  { path: 'c0', label: 'x', task: 'C', split: 'train' },
];

function recordingWarmer(load: () => Promise<ManifestRow[]> = async () => rows) {
  const calls: { paths: string[]; signal: AbortSignal }[] = [];
  let loads = 0;
  const warmer = new TaskWarmer(() => (loads++, load()), async (paths, signal) => void calls.push({ paths, signal }));
  return { warmer, calls, loads: () => loads };
}

test('a request for task k warms tasks k and k + 1 of its split, in manifest order, once per task', async (t) => {
  const { warmer, calls, loads } = recordingWarmer();
  warmer.requested({ taskName: 'A', split: 'train' });
  warmer.requested({ taskName: 'A', split: 'train' });
  await warmer.idle();
  t.deepEqual(calls.map((c) => c.paths), [['a0', 'b0', 'b2']], 'this task and the next, train rows only, once');
  warmer.requested({ taskName: 'A', split: 'test' });
  warmer.requested({ taskName: 'B', split: 'train' });
  warmer.requested({ taskName: 'C', split: 'train' }); // the last task: only itself
  warmer.requested({ taskName: 'Z', split: 'train' }); // not in the manifest: nothing
  await warmer.idle();
  t.deepEqual(calls.map((c) => c.paths), [['a0', 'b0', 'b2'], ['a1', 'b1'], ['b0', 'b2', 'c0'], ['c0']]);
  t.is(loads(), 1, 'the manifest is read once');
});

test('stop aborts the warm in progress and nothing starts after it; a manifest that fails to load warms nothing', async (t) => {
  const { warmer, calls } = recordingWarmer();
  warmer.requested({ taskName: 'A', split: 'train' });
  await warmer.idle();
  warmer.stop();
  t.true(calls[0].signal.aborted);
  warmer.requested({ taskName: 'B', split: 'train' });
  await warmer.idle();
  t.is(calls.length, 1);
  const failing = recordingWarmer(async () => { throw new Error('no such manifest'); });
  failing.warmer.requested({ taskName: 'A', split: 'train' });
  await t.notThrowsAsync(failing.warmer.idle());
  t.is(failing.calls.length, 0);
});

/** Two tasks of two train clips each, as the source emits them (epoch 1). */
async function twoTasks() {
  const dir = await tempDir('cache-warmer-corpus');
  const { manifestPath } = await generateCorpus({ out: dir, tasks: 2, classes: 2, train: 1, test: 0, seed: 9 });
  const manifest = await loadManifest(manifestPath);
  const clips: ClipRef[] = manifestClips(manifest).map((c, index) => ({
    kind: 'clip', path: c.path, label: c.label, task: c.task === manifest.tasks[0].name ? 0 : 1,
    taskName: c.task, split: c.split, index, epoch: 1,
  }));
  return { manifestPath, clips, first: clips.filter((c) => c.task === 0), second: clips.filter((c) => c.task === 1) };
}

const decodeAll = (clips: ClipRef[], options: Parameters<typeof decode>[0]) =>
  lastValueFrom((pullable(clips).pipe(decode(options, { config: tiny, rng: Rng.fromSeed(3) })) as Observable<DecodedClip>).pipe(toArray()));
/** Decodes `clips` and stays subscribed (a graph's stream stays open while later tasks train); returns the subscription. */
const decodeOpen = (clips: ClipRef[], options: Parameters<typeof decode>[0]) =>
  concat(from(clips), NEVER).pipe(decode(options, { config: tiny, rng: Rng.fromSeed(3) })).subscribe();

async function until(check: () => Promise<boolean>, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('decode with warm: task 2 is in the cache before it is requested, and its clips decode exactly as without warming', async (t) => {
  const { manifestPath, first, second } = await twoTasks();
  const warmed = await tempDir('cache-warmer-warm'), plain = await tempDir('cache-warmer-plain');
  const options = { mode: 'train' as const, cache: warmed, warm: manifestPath };
  // The operator's warmer lives as long as its subscription: task 1's stream stays open until task 2 is stored.
  const stored = async () => (await readdir(warmed)).filter((n) => n.endsWith('.bin')).length;
  const open = decodeOpen(first, options);
  await until(async () => (await stored()) === first.length + second.length);
  open.unsubscribe();
  const misses = decodedCacheStats.misses;
  const fromWarm = await decodeAll(second, { mode: 'train', cache: warmed });
  t.is(decodedCacheStats.misses, misses, 'every task-2 request read the cache the warmer filled');
  const fromDemand = await decodeAll(second, { mode: 'train', cache: plain });
  t.is(decodedCacheStats.misses - misses, second.length, 'the plain folder decoded on request');
  for (const [i, a] of fromWarm.entries()) {
    t.deepEqual(a.fbank, fromDemand[i].fbank, `${a.path}: fbank`);
    t.deepEqual(a.video, fromDemand[i].video, `${a.path}: video`);
  }
});

test.serial('with the cache off, warm does nothing', async (t) => {
  const { manifestPath, first } = await twoTasks();
  const misses = decodedCacheStats.misses;
  const out = await decodeAll(first, { mode: 'train', cache: false, warm: manifestPath });
  t.is(out.length, first.length);
  await new Promise((r) => setTimeout(r, 300));
  t.is(decodedCacheStats.misses, misses, 'nothing went through the cache');
});

/** Nice values of the ffmpeg processes whose parent is this process. */
const ffmpegChildren = () => {
  const out = execFileSync('ps', ['-o', 'ni=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').filter((l) => /ffmpeg/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0])) : [];
};

test.serial('the warmer\'s ffmpeg runs at nice 10; unsubscribing stops the warmer: its ffmpeg is killed and the next clips are not decoded', async (t) => {
  const dir = await tempDir('cache-warmer-stop-corpus');
  const { manifestPath } = await generateCorpus({ out: dir, tasks: 2, classes: 2, train: 6, test: 0, seed: 4 });
  const manifest = await loadManifest(manifestPath);
  const cache = await tempDir('cache-warmer-stop');
  const clip = manifest.tasks[0].train[0];
  const request: ClipRef = { kind: 'clip', path: clip.path, label: clip.label, task: 0, taskName: manifest.tasks[0].name, split: 'train', index: 0, epoch: 1 };
  const subscription = decodeOpen([request], { mode: 'train', cache, warm: manifestPath });
  await until(async () => ffmpegChildren().includes(10) && (await readdir(cache)).some((n) => n.endsWith('.bin')));
  subscription.unsubscribe();
  await until(async () => ffmpegChildren().length === 0, 5_000);
  const count = (await readdir(cache)).filter((n) => n.endsWith('.bin')).length;
  await new Promise((r) => setTimeout(r, 500));
  t.is((await readdir(cache)).filter((n) => n.endsWith('.bin')).length, count, 'nothing stored after the stop');
  const all = manifest.tasks[0].train.length + manifest.tasks[1].train.length;
  t.true(count < all, `stopped before the ${all} clips of tasks 1 and 2 were all stored (${count})`);
});

test.serial('a warm run decodes several files in one ffmpeg: each stored file is byte for byte the one decoded alone; bad files are left to their requests', async (t) => {
  const dir = await tempDir('cache-warmer-batch');
  const good = [
    await goodClip(path.join(dir, 'one-second.mp4'), 1),
    await goodClip(path.join(dir, 'four-seconds.mp4'), 4, '64x48'),
    await goodClip(path.join(dir, 'twelve-seconds.mp4'), 12, '40x56'),
  ];
  const bad = await badClips(dir);
  const together = await tempDir('cache-warmer-together'), alone = await tempDir('cache-warmer-alone');
  // A clip whose video data is damaged: ffmpeg reports decoding errors, which a shared run cannot pin on one file.
  const damaged = Buffer.from(await readFile(good[2]));
  for (let i = Math.floor(damaged.length * 0.3); i < damaged.length * 0.5; i += 7) damaged[i] ^= 0x5a;
  await writeFile(path.join(dir, 'damaged.mp4'), damaged);
  // All good: one run of three. Mixed: the bad files in the same batches as good ones.
  const runs = { ...sharedDecodeStats };
  t.deepEqual(await warmStoredClips(good, tiny, together), { stored: 3, failed: 0 });
  t.deepEqual([sharedDecodeStats.runs - runs.runs, sharedDecodeStats.redone - runs.redone], [1, 0], 'one shared run, not redone');
  for (const file of good) await (await storedClip(file, tiny, 10, alone)).close();
  const names = (await readdir(alone)).filter((n) => n.endsWith('.bin')).sort();
  t.deepEqual((await readdir(together)).filter((n) => n.endsWith('.bin')).sort(), names);
  for (const name of names) t.true((await readFile(path.join(together, name))).equals(await readFile(path.join(alone, name))), `${name}: same bytes`);

  const mixed = await tempDir('cache-warmer-mixed');
  const files = [good[0], bad.silent, bad['too-short'], good[1], bad.corrupt, bad.missing, bad['not-media'], good[2], bad['no-audio']];
  t.deepEqual(await warmStoredClips(files, tiny, mixed), { stored: 3, failed: 6 });
  t.deepEqual((await readdir(mixed)).filter((n) => n.endsWith('.bin')).sort(), names, 'only the good files are stored');
  for (const [kind, file] of Object.entries(bad)) {
    const error = await t.throwsAsync(decodeClip(file, { config: tiny, mode: 'train', rng: Rng.fromSeed(1), cache: mixed }));
    t.is((error as MediaError).kind, kind as MediaError['kind'], `${file}: its own request reports it`);
  }

  // The damaged clip makes its shared run print decoding errors: the run is redone file by file, with the same results.
  const redone = await tempDir('cache-warmer-redone'), redoneAlone = await tempDir('cache-warmer-redone-alone');
  const before = sharedDecodeStats.redone;
  const withDamaged = [good[0], path.join(dir, 'damaged.mp4'), good[1]];
  const counts = await warmStoredClips(withDamaged, tiny, redone);
  t.is(sharedDecodeStats.redone - before, 1, 'the shared run was redone file by file');
  for (const file of withDamaged) await storedClip(file, tiny, 10, redoneAlone).then((c) => c.close(), () => {});
  const alone2 = (await readdir(redoneAlone)).filter((n) => n.endsWith('.bin')).sort();
  t.is(counts.stored, alone2.length);
  t.deepEqual((await readdir(redone)).filter((n) => n.endsWith('.bin')).sort(), alone2);
  for (const name of alone2) t.true((await readFile(path.join(redone, name))).equals(await readFile(path.join(redoneAlone, name))), `${name}: same bytes`);
});
