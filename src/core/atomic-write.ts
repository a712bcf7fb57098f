/**
 * Durable and atomic file writes.
 *
 * `writeFileDurable` writes and fsyncs a file in place (use inside a private temp directory).
 * `writeFileAtomic` writes a sibling temp file, fsyncs it, renames it over the target and fsyncs the
 * directory, so a reader sees either the old content or the new one, never a torn file, even if the
 * process dies midway. `fsyncDirectory` makes renames/creations in a directory durable (a no-op
 * where the platform refuses to open directories, e.g. Windows).
 */
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes `chunks` to `path` (created or truncated) and fsyncs before closing. */
export async function writeFileDurable(path: string, data: Uint8Array | string | readonly Uint8Array[]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) await handle.writeFile(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw e;
  } finally {
    await handle?.close();
  }
}

/** A unique sibling name for a temporary file or directory next to `path`. */
export function tempSiblingName(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Replaces `path` atomically with `data` (temp file + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = tempSiblingName(path);
  try {
    await writeFileDurable(temp, data);
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await fsyncDirectory(dirname(path));
}
