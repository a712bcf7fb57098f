/**
 * Which ffmpeg binary the media stages spawn.
 *
 * Order (first that exists wins, the answer is cached for the process):
 *   1. `STELLA_FFMPEG`, then `FFMPEG_PATH` (an override that points at nothing is an error, never
 *      silently skipped, so a typo cannot fall back to another build);
 *   2. `ffmpeg-static` (optional dependency) when importable and its binary exists;
 *   3. `ffmpeg` on PATH;
 *   4. `@ffmpeg-installer/ffmpeg` (always installed).
 * Output: `{ path, source, version }` with `version` from the first line of `ffmpeg -version`.
 * Ref: DESIGN.md "media" (no ffprobe is assumed; decode.ts probes from ffmpeg's own output).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type FfmpegSource = 'env' | 'ffmpeg-static' | 'path' | '@ffmpeg-installer';

export interface ResolvedFfmpeg {
  path: string;
  source: FfmpegSource;
  version: string;
}

const require = createRequire(import.meta.url);
let cached: Promise<ResolvedFfmpeg> | undefined;

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function versionOf(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['-hide_banner', '-version'], { timeout: 15_000 }, (err, stdout) => {
      if (err) return reject(new Error(`ffmpeg at ${binary} does not run: ${err.message}`));
      const first = stdout.split('\n')[0] ?? '';
      resolve(/ffmpeg version (\S+)/.exec(first)?.[1] ?? first.trim());
    });
  });
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, process.platform === 'win32' ? `${name}.exe` : name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function locate(): Promise<{ path: string; source: FfmpegSource }> {
  for (const name of ['STELLA_FFMPEG', 'FFMPEG_PATH'] as const) {
    const value = process.env[name];
    if (value === undefined || value === '') continue;
    if (!isExecutableFile(value)) {
      throw new Error(`${name}=${value} does not name an executable ffmpeg binary; fix or unset ${name}`);
    }
    return { path: value, source: 'env' };
  }
  try {
    const p = require('ffmpeg-static') as string | { default?: string } | null;
    const file = typeof p === 'string' ? p : p?.default;
    if (file && isExecutableFile(file)) return { path: file, source: 'ffmpeg-static' };
  } catch { /* optional dependency absent */ }
  const fromPath = onPath('ffmpeg');
  if (fromPath) return { path: fromPath, source: 'path' };
  try {
    const installer = require('@ffmpeg-installer/ffmpeg') as { path: string };
    if (isExecutableFile(installer.path)) return { path: installer.path, source: '@ffmpeg-installer' };
  } catch { /* fall through to the error */ }
  throw new Error('no ffmpeg found: set STELLA_FFMPEG, install ffmpeg-static or @ffmpeg-installer/ffmpeg, or put ffmpeg on PATH');
}

/** The ffmpeg to spawn; resolved once per process (a failure is not cached, so a fixed env can retry). */
export function resolveFfmpeg(): Promise<ResolvedFfmpeg> {
  if (!cached) {
    cached = (async () => {
      const found = await locate();
      return { ...found, version: await versionOf(found.path) };
    })();
    cached.catch(() => { cached = undefined; });
  }
  return cached;
}

/** Forgets the cached answer (tests that change the environment). */
export function resetFfmpegCache(): void {
  cached = undefined;
}
