import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadManifest, manifestClips } from '../../src/media/manifest.ts';
import { tempDir } from './fixtures.ts';

async function write(dir: string, name: string, body: unknown) {
  const file = path.join(dir, name);
  await writeFile(file, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  return file;
}

test('format (a): paths resolve against the manifest folder; classes default to labels seen', async (t) => {
  const dir = await tempDir('manifest-a');
  const file = await write(dir, 'm.json', {
    seed: 5,
    tasks: [
      { name: 'a', classes: ['dog', 'cat'], train: [{ path: 'clips/1.mp4', label: 'dog' }], test: [{ path: 'clips/2.mp4', label: 'cat', groundTruth: 'gt/2.json' }] },
      { name: 'b', train: [{ path: 'x.mp4', label: 'zebra' }, { path: 'y.mp4', label: 'ant' }] },
    ],
  });
  const m = await loadManifest(file);
  t.is(m.seed, 5);
  t.is(m.tasks[0].train[0].path, path.join(dir, 'clips/1.mp4'));
  t.is(m.tasks[0].test[0].groundTruth, path.join(dir, 'gt/2.json'));
  t.deepEqual(m.tasks[1].classes, ['ant', 'zebra']);
  t.deepEqual(m.tasks[1].test, []);
  t.is(manifestClips(m).length, 4);
});

test('format (a) errors name the file and the JSON path of the bad field', async (t) => {
  const dir = await tempDir('manifest-errors');
  const bad = await write(dir, 'bad.json', '{\n  "tasks": [\n    {"name": "a",, }\n  ]\n}');
  await t.throwsAsync(loadManifest(bad), { message: new RegExp(`^${bad.replace(/[.]/g, '\\.')}: bad JSON at line 3, column \\d+`) });
  const missing = await write(dir, 'missing.json', { tasks: [{ name: 'a', train: [{ path: 'x.mp4' }] }] });
  await t.throwsAsync(loadManifest(missing), { message: /missing\.json: invalid manifest: tasks\[0\]\.train\[0\]\.label: / });
  const wrongType = await write(dir, 'type.json', { seed: 'one', tasks: [{ name: 'a', train: [] }] });
  await t.throwsAsync(loadManifest(wrongType), { message: /type\.json: invalid manifest: seed: / });
  const noTasks = await write(dir, 'empty.json', { tasks: [] });
  await t.throwsAsync(loadManifest(noTasks), { message: /empty\.json: invalid manifest: tasks: / });
  const badLabel = await write(dir, 'label.json', { tasks: [{ name: 'a', classes: ['dog'], test: [{ path: 'x.mp4', label: 'cat' }] }] });
  await t.throwsAsync(loadManifest(badLabel), { message: /label\.json: tasks\[0\]\.test\[0\]\.label: 'cat' is not one of the task's classes/ });
  await t.throwsAsync(loadManifest(path.join(dir, 'nope.json')), { message: /nope\.json: manifest not found/ });
});

test('paths outside the manifest folder are refused unless allowOutside', async (t) => {
  const dir = await tempDir('manifest-outside');
  const file = await write(dir, 'm.json', { tasks: [{ name: 'a', train: [{ path: '../elsewhere/x.mp4', label: 'dog' }] }] });
  await t.throwsAsync(loadManifest(file), { message: /m\.json: tasks\[0\]\.train\[0\]\.path: path '\.\.\/elsewhere\/x\.mp4' resolves outside the manifest folder/ });
  const abs = await write(dir, 'abs.json', { tasks: [{ name: 'a', train: [{ path: '/etc/x.mp4', label: 'dog' }] }] });
  await t.throwsAsync(loadManifest(abs), { message: /outside the manifest folder/ });
  const m = await loadManifest(file, { allowOutside: true });
  t.is(m.tasks[0].train[0].path, path.resolve(dir, '../elsewhere/x.mp4'));
});

test('format (b): CAV-MAE datafile becomes one task with a deterministic seeded split', async (t) => {
  const dir = await tempDir('manifest-b');
  const data = Array.from({ length: 200 }, (_, i) => ({
    video_id: `vid${i}`,
    video_path: i % 2 ? `frames/vid${i}` : `clips/vid${i}.mkv`,
    wav: `audio/vid${i}.wav`,
    labels: i % 3 ? 'dog barking,animal' : 'car',
  }));
  const file = await write(dir, 'vggsound_train.json', { data });
  const m = await loadManifest(file);
  t.is(m.tasks.length, 1);
  const task = m.tasks[0];
  t.is(task.name, 'vggsound_train');
  t.deepEqual(task.classes, ['car', 'dog barking']);
  t.is(task.train.length + task.test.length, 200);
  t.true(task.test.length > 20 && task.test.length < 60, `${task.test.length} test clips for fraction 0.2`);
  const all = [...task.train, ...task.test];
  t.true(all.some((c) => c.path === path.join(dir, 'frames/vid1/vid1.mp4')));
  t.true(all.some((c) => c.path === path.join(dir, 'clips/vid0.mkv')));
  // Same seed → same split; another seed → another split; adding clips keeps existing assignments.
  t.deepEqual(await loadManifest(file), m);
  const other = await loadManifest(file, { seed: 1 });
  t.notDeepEqual(other.tasks[0].test.map((c) => c.path), task.test.map((c) => c.path));
  const bigger = await write(dir, 'more.json', { data: [...data, { video_id: 'new', video_path: 'clips/new.mp4', labels: 'car' }] });
  const testBefore = new Set(task.test.map((c) => path.basename(c.path)));
  const testAfter = (await loadManifest(bigger)).tasks[0].test.map((c) => path.basename(c.path)).filter((b) => b !== 'new.mp4');
  t.deepEqual(new Set(testAfter), testBefore);
  const broken = await write(dir, 'broken.json', { data: [{ video_id: 'a', video_path: 'a.mp4', labels: 3 }] });
  await t.throwsAsync(loadManifest(broken), { message: /broken\.json: invalid manifest: data\[0\]\.labels: / });
});

test('format (c): a folder of label subfolders', async (t) => {
  const dir = await tempDir('manifest-c');
  for (const label of ['birds', 'cars']) {
    await mkdir(path.join(dir, label, 'nested'), { recursive: true });
    for (let i = 0; i < 10; i++) await writeFile(path.join(dir, label, i % 2 ? 'nested' : '', `${i}.mp4`), 'x');
    await writeFile(path.join(dir, label, 'notes.txt'), 'not media');
  }
  const m = await loadManifest(dir);
  t.deepEqual(m.tasks[0].classes, ['birds', 'cars']);
  const clips = [...m.tasks[0].train, ...m.tasks[0].test];
  t.is(clips.length, 20);
  t.true(clips.every((c) => c.path.endsWith('.mp4') && path.isAbsolute(c.path)));
  t.true(clips.filter((c) => c.label === 'cars').every((c) => c.path.includes(`${path.sep}cars${path.sep}`)));
  t.deepEqual(await loadManifest(dir), m);
  const empty = await tempDir('manifest-c-empty');
  await t.throwsAsync(loadManifest(empty), { message: /no label subfolders with media files/ });
});
