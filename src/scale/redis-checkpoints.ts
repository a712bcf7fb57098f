/**
 * A run's checkpoints kept in Redis, so any worker can resume a job (no shared filesystem).
 *
 * One hash per job: `step`, `name`, `manifest` (the checkpoint's manifest.json) and `file:<name>`
 * per blob file. `upload` replaces it atomically (one Lua script) and never with an older step, so
 * a late upload from a worker that lost its job cannot roll a newer checkpoint back. `download`
 * writes it back as an ordinary checkpoint folder (`ckpt-NNNNNN/` + `latest`) that `stella run
 * --resume` verifies blob by blob (sizes and SHA-256 from the manifest).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { readCheckpoint } from '../core/checkpoint.ts';

const REPLACE_IF_NOT_OLDER = `
local current = redis.call('HGET', KEYS[1], 'step')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'step', ARGV[1], unpack(ARGV, 2))
return 1`;

/** Copies the committed checkpoint folder `dir` into `key`; false when Redis holds a newer step. */
export async function uploadCheckpoint(redis: Redis, key: string, dir: string): Promise<boolean> {
  const ckpt = await readCheckpoint(dir);
  const fields: (string | Buffer)[] = ['name', path.basename(dir), 'manifest', JSON.stringify(ckpt.manifest)];
  for (const [blob, entry] of Object.entries(ckpt.manifest.blobs)) fields.push(`file:${entry.file}`, Buffer.from(ckpt.blobs[blob].buffer, ckpt.blobs[blob].byteOffset, ckpt.blobs[blob].byteLength));
  return (await redis.eval(REPLACE_IF_NOT_OLDER, 1, key, String(ckpt.step), ...fields)) === 1;
}

/** Writes the checkpoint stored under `key` into `checkpointsDir`; its step, or undefined when none. */
export async function downloadCheckpoint(redis: Redis, key: string, checkpointsDir: string): Promise<number | undefined> {
  const hash = await redis.hgetallBuffer(key);
  if (!hash.name || !hash.manifest) return undefined;
  const name = hash.name.toString();
  if (!/^ckpt-\d+$/.test(name)) throw new Error(`${key}: bad checkpoint name '${name}'`);
  const dir = path.join(checkpointsDir, name);
  await mkdir(dir, { recursive: true });
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('file:')) await writeFile(path.join(dir, path.basename(field.slice('file:'.length))), value);
  }
  await writeFile(path.join(dir, 'manifest.json'), hash.manifest);
  await writeFile(path.join(checkpointsDir, 'latest'), `${name}\n`);
  return Number(hash.step.toString());
}
