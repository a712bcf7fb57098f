/**
 * A finished run's files (results.json, report.html, steps.json, pictures/*) carried through Redis
 * from the worker that made them to the sweep that asked for them: one hash, field = relative path.
 * results.json is written last and atomically, since its presence marks the run as done.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { writeFileAtomic } from '../core/atomic-write.ts';

const FILES = ['results.json', 'report.html', 'steps.json'];

export async function uploadRunFiles(redis: Redis, key: string, dir: string): Promise<void> {
  const fields: (string | Buffer)[] = [];
  for (const f of FILES) if (existsSync(path.join(dir, f))) fields.push(f, await readFile(path.join(dir, f)));
  const pictures = path.join(dir, 'pictures');
  if (existsSync(pictures)) for (const f of await readdir(pictures)) fields.push(`pictures/${f}`, await readFile(path.join(pictures, f)));
  if (!fields.includes('results.json')) throw new Error(`${dir}: the run wrote no results.json`);
  await redis.multi().del(key).hset(key, ...(fields as [string, Buffer])).exec();
}

/** Writes the files stored under `key` into `dir`; false when there are none. */
export async function downloadRunFiles(redis: Redis, key: string, dir: string): Promise<boolean> {
  const hash = await redis.hgetallBuffer(key);
  if (!hash['results.json']) return false;
  for (const [field, data] of Object.entries(hash)) {
    if (field === 'results.json') continue;
    if (!/^(pictures\/)?[\w.+-]+$/.test(field)) throw new Error(`${key}: unexpected file name '${field}'`);
    await mkdir(path.dirname(path.join(dir, field)), { recursive: true });
    await writeFile(path.join(dir, field), data);
  }
  await writeFileAtomic(path.join(dir, 'results.json'), hash['results.json']);
  return true;
}
