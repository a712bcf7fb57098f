import test from 'ava';
import { mkdtemp, readFile, writeFile, rm, readdir, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Checkpointer, loadLatest, NoValidCheckpointError, checkpointName, readCheckpoint, type CheckpointInput } from '../../src/core/checkpoint.ts';
import { Rng } from '../../src/core/rng.ts';

async function tempDir(t: { teardown: (f: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'stella-ckpt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function input(step: number): CheckpointInput {
  const rng = Rng.fromSeed(step).fork('masking');
  rng.uniform();
  return {
    step,
    blobs: {
      model: Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + step) & 255),
      optimizer: new Uint8Array([step, 1, 2, 3]),
      replay: [new Uint8Array([9, 9]), new Uint8Array([step])],
    },
    state: { position: { taskIndex: step % 3, task: `task${step % 3}`, step }, rng: { masking: rng.state() }, config: { model: 'tiny', lr: 1e-4 } },
  };
}

function collectWarnings() {
  const warnings: string[] = [];
  return { warnings, onWarning: (m: string) => warnings.push(m) };
}

test('round trip: blobs, state and RNG come back exactly', async (t) => {
  const dir = await tempDir(t);
  const ck = new Checkpointer({ dir, onWarning: () => t.fail('no warning expected') });
  const saved = await ck.save(input(123));
  t.is(saved.name, 'ckpt-000123');
  t.is((await readFile(join(dir, 'latest'), 'utf8')).trim(), 'ckpt-000123');
  const loaded = await ck.loadLatest();
  t.is(loaded.step, 123);
  t.deepEqual(loaded.blobs.model, input(123).blobs.model);
  t.deepEqual(loaded.blobs.replay, new Uint8Array([9, 9, 123]));
  t.deepEqual(loaded.state, input(123).state);
  t.deepEqual(loaded.warnings, []);
  const restored = Rng.fromState(loaded.state.rng.masking);
  const original = Rng.fromSeed(123).fork('masking');
  original.uniform();
  t.is(restored.uniform(), original.uniform());
});

test('a step saved again while it is being read: the read starts over on the new copy instead of calling it damaged', async (t) => {
  const dir = await tempDir(t);
  const ck = new Checkpointer({ dir, onWarning: () => t.fail('no warning expected') });
  const first = await ck.save(input(2));
  const again = { ...input(2), blobs: { ...input(2).blobs, replay: new Uint8Array([1, 2, 3, 4, 5, 6, 7]) } };
  // The task-end save of step 2 lands between the reader's manifest and its blobs.
  const loaded = await readCheckpoint(first.path, { afterManifest: async () => { await ck.save(again); } });
  t.deepEqual(loaded.blobs.replay, again.blobs.replay);
  t.is(loaded.step, 2);
  // Damage that is not a swap is still reported.
  await writeFile(join(first.path, (await readCheckpoint(first.path)).manifest.blobs.replay.file), new Uint8Array([0]));
  await t.throwsAsync(readCheckpoint(first.path), { message: /blob 'replay' .* has 1 bytes, the manifest records 7/ });
});

test('keeps only the newest K checkpoints', async (t) => {
  const dir = await tempDir(t);
  const { warnings, onWarning } = collectWarnings();
  const ck = new Checkpointer({ dir, keep: 2, onWarning });
  for (const step of [1, 2, 3, 10]) await ck.save(input(step));
  t.deepEqual((await readdir(dir)).filter((e) => e.startsWith('ckpt-')).sort(), ['ckpt-000003', 'ckpt-000010']);
  t.is((await ck.loadLatest()).step, 10);
  t.deepEqual(warnings, []);
});

test('saving a step below an existing checkpoint warns that the newer one still wins', async (t) => {
  const dir = await tempDir(t);
  const { warnings, onWarning } = collectWarnings();
  const ck = new Checkpointer({ dir, onWarning });
  await ck.save(input(10));
  await ck.save(input(3));
  t.regex(warnings[0], /saving ckpt-000003 .* ckpt-000010 .*higher step/);
});

const corruptions: [string, (path: string) => Promise<void>, RegExp][] = [
  ['a truncated blob', (p) => truncate(join(p, 'model.bin'), 10), /ckpt-000002.*'model'.*10 bytes, the manifest records 1000/],
  [
    'a flipped byte',
    async (p) => {
      const data = await readFile(join(p, 'optimizer.bin'));
      data[2] ^= 0x01;
      await writeFile(join(p, 'optimizer.bin'), data);
    },
    /ckpt-000002.*'optimizer'.*SHA-256/,
  ],
  ['a deleted manifest', (p) => rm(join(p, 'manifest.json')), /ckpt-000002.*manifest\.json is missing/],
  ['a garbled manifest', (p) => writeFile(join(p, 'manifest.json'), '{"format": "stella-'), /ckpt-000002.*not valid JSON/],
  ['a missing blob file', (p) => rm(join(p, 'replay.bin')), /ckpt-000002.*'replay'.*missing/],
];
for (const [what, corrupt, warning] of corruptions) {
  test(`${what} in the newest checkpoint falls back to the previous one with a warning`, async (t) => {
    const dir = await tempDir(t);
    const ck = new Checkpointer({ dir });
    await ck.save(input(1));
    await ck.save(input(2));
    await corrupt(join(dir, checkpointName(2)));
    const { warnings, onWarning } = collectWarnings();
    const loaded = await loadLatest(dir, { onWarning });
    t.is(loaded.step, 1);
    t.deepEqual(loaded.blobs.model, input(1).blobs.model);
    t.regex(warnings[0], warning);
    t.deepEqual(loaded.warnings, warnings);
  });
}

test('no valid checkpoint gives a clear error listing each fault', async (t) => {
  const dir = await tempDir(t);
  await t.throwsAsync(() => loadLatest(dir, { onWarning: () => {} }), { instanceOf: NoValidCheckpointError, message: /no checkpoint in .*ckpt-NNNNNN/ });
  const ck = new Checkpointer({ dir });
  await ck.save(input(1));
  await rm(join(dir, 'ckpt-000001', 'manifest.json'));
  await t.throwsAsync(() => loadLatest(dir, { onWarning: () => {} }), { instanceOf: NoValidCheckpointError, message: /no valid checkpoint in .*ckpt-000001: manifest\.json is missing/ });
});

test('an error before the commit rename leaves the previous checkpoint and pointer intact', async (t) => {
  const dir = await tempDir(t);
  const ck = new Checkpointer({
    dir,
    beforeCommit: async (temp) => {
      if (temp.includes('ckpt-000002')) throw new Error('disk full');
    },
  });
  await ck.save(input(1));
  await t.throwsAsync(() => ck.save(input(2)), { message: 'disk full' });
  t.deepEqual((await readdir(dir)).sort(), ['ckpt-000001', 'latest']);
  t.is((await readFile(join(dir, 'latest'), 'utf8')).trim(), 'ckpt-000001');
  t.is((await ck.loadLatest()).step, 1);
  // The queue keeps working after a failed save.
  await ck.save(input(3));
  t.is((await ck.loadLatest()).step, 3);
});

test('a process killed between the temp write and the rename leaves the previous checkpoint usable', async (t) => {
  const dir = await tempDir(t);
  await new Checkpointer({ dir }).save(input(1));
  const moduleUrl = new URL('../../src/core/checkpoint.ts', import.meta.url).href;
  const script = `
    import { Checkpointer } from ${JSON.stringify(moduleUrl)};
    const ck = new Checkpointer({ dir: ${JSON.stringify(dir)}, beforeCommit: () => process.kill(process.pid, 'SIGKILL') });
    await ck.save({ step: 2, blobs: { model: new Uint8Array(5000) }, state: { position: { taskIndex: 0, task: 'a', step: 2 }, rng: {}, config: {} } });
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
  });
  t.is(child.signal, 'SIGKILL', child.stderr);
  const leftovers = (await readdir(dir)).filter((e) => e.startsWith('.tmp-ckpt-000002'));
  t.is(leftovers.length, 1, 'the killed save left its temp directory');
  const { warnings, onWarning } = collectWarnings();
  const loaded = await loadLatest(dir, { onWarning });
  t.is(loaded.step, 1);
  t.deepEqual(warnings, []);
  // The next save removes the leftover.
  await new Checkpointer({ dir }).save(input(3));
  t.deepEqual((await readdir(dir)).filter((e) => e.startsWith('.tmp')), []);
});

test('a complete checkpoint newer than the latest pointer is used, with a warning', async (t) => {
  const dir = await tempDir(t);
  const ck = new Checkpointer({ dir });
  await ck.save(input(1));
  await ck.save(input(2));
  await writeFile(join(dir, 'latest'), 'ckpt-000001\n');
  const { warnings, onWarning } = collectWarnings();
  t.is((await loadLatest(dir, { onWarning })).step, 2);
  t.regex(warnings[0], /ckpt-000002 .*newer than the 'latest' pointer \(ckpt-000001\)/);
});

test('bad input is refused with the field at fault', async (t) => {
  const dir = await tempDir(t);
  const ck = new Checkpointer({ dir });
  await t.throwsAsync(() => ck.save({ ...input(1), blobs: { '../evil': new Uint8Array(1) } }), { message: /blob name '\.\.\/evil'/ });
  const bad = { ...input(1), state: { rng: {}, config: {} } } as unknown as CheckpointInput;
  await t.throwsAsync(() => ck.save(bad), { message: /bad state:.*position/s });
  await t.throwsAsync(() => ck.save({ ...input(1), step: -1 }), { message: /non-negative integer/ });
  t.throws(() => new Checkpointer({ dir, keep: 0 }), { message: /keep/ });
  // Re-saving the same step replaces it.
  await ck.save(input(5));
  const again = input(5);
  again.blobs.optimizer = new Uint8Array([42]);
  await ck.save(again);
  t.deepEqual((await ck.loadLatest()).blobs.optimizer, new Uint8Array([42]));
});
