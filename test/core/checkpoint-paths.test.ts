/**
 * Checkpoint file names and paths: blobs with an extension keep their name on disk (the README's
 * `weights.safetensors`), older checkpoints with `weights.safetensors.bin` still load, and a run
 * folder or its `checkpoints/` folder name the same checkpoints.
 */
import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobFile, Checkpointer, loadLatest, NoValidCheckpointError, resolveCheckpointDir } from '../../src/core/checkpoint.ts';

const state = { position: { taskIndex: 0, task: 't', step: 1 }, rng: {}, config: {} };
const weights = new Uint8Array([1, 2, 3, 4]);

async function run(t: { teardown(f: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'stella-ckpt-paths-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const saved = await new Checkpointer({ dir: join(dir, 'checkpoints') }).save({ step: 1, blobs: { 'weights.safetensors': weights, optimizer: new Uint8Array([9]) }, state });
  return { dir, saved };
}

test('a blob with an extension is stored under its own name, others as NAME.bin', async (t) => {
  const { saved } = await run(t);
  t.deepEqual((await readdir(saved.path)).sort(), ['manifest.json', 'optimizer.bin', 'weights.safetensors']);
  t.deepEqual([blobFile('weights.safetensors'), blobFile('trainer-a.json'), blobFile('replay')], ['weights.safetensors', 'trainer-a.json', 'replay.bin']);
  await t.throwsAsync(() => new Checkpointer({ dir: join(saved.path, 'x') }).save({ step: 2, blobs: { 'manifest.json': weights }, state }), { message: /'manifest.json' would overwrite manifest.json/ });
});

test('a checkpoint written with weights.safetensors.bin (the older layout) still loads', async (t) => {
  const { dir, saved } = await run(t);
  await rename(join(saved.path, 'weights.safetensors'), join(saved.path, 'weights.safetensors.bin'));
  const manifest = JSON.parse(await readFile(join(saved.path, 'manifest.json'), 'utf8'));
  manifest.blobs['weights.safetensors'].file = 'weights.safetensors.bin';
  await writeFile(join(saved.path, 'manifest.json'), JSON.stringify(manifest));
  t.deepEqual((await loadLatest(join(dir, 'checkpoints'))).blobs['weights.safetensors'], weights);
});

test('the run folder and its checkpoints/ folder load the same checkpoint', async (t) => {
  const { dir } = await run(t);
  const viaRun = await loadLatest(dir, { onWarning: () => {} });
  const viaCheckpoints = await loadLatest(join(dir, 'checkpoints'), { onWarning: () => {} });
  t.is(viaRun.path, viaCheckpoints.path);
  t.is(await resolveCheckpointDir(dir), join(dir, 'checkpoints'));
  t.is(await resolveCheckpointDir(join(dir, 'checkpoints')), join(dir, 'checkpoints'));
});

test('a folder without checkpoints is refused with a hint at both forms', async (t) => {
  const { dir } = await run(t);
  const empty = join(dir, 'empty');
  await mkdir(empty);
  const error = await t.throwsAsync(() => loadLatest(empty, { onWarning: () => {} }), { instanceOf: NoValidCheckpointError });
  t.regex(error!.message, /no checkpoint in .*empty \(expected directories named ckpt-NNNNNN; give a run folder or its checkpoints\/ folder\)/);
});
