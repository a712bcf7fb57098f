/**
 * Which ffmpeg binary the media stages spawn.
 *
 * 1. `STELLA_FFMPEG`, then `FFMPEG_PATH`: an explicit choice, used as it is (an override that points
 *    at nothing is an error, never silently skipped, so a typo cannot fall back to another build).
 * 2. Otherwise every candidate that exists — `ffmpeg-static` (optional dependency), `ffmpeg` on
 *    PATH, `@ffmpeg-installer/ffmpeg` (always installed) — is measured, and the cheapest one that
 *    has the codecs the project uses wins: decoders h264 and aac, encoders libx264 and aac (the
 *    corpus). Cost = start-up time, the median of three runs that print nothing but lists
 *    (`-version`, `-decoders`, `-encoders`). Why: a media decode of a short clip is mostly
 *    start-up, and a dynamically linked build (Debian's ffmpeg 5.1 loads 216 libraries) starts in
 *    80 ms where the static build needs 3 ms, so position on PATH says nothing about cost. A
 *    candidate that lacks a codec is chosen only when none has them all.
 * Output: `{ path, source, version, startupMs, reason, candidates }` (`stella doctor` prints it).
 * The answer is cached for the process, the measurements in `.cache/ffmpeg.json` (by binary path,
 * size and mtime), so a process pays the measuring only when a binary is new or replaced.
 * Ref: DESIGN.md "media" (no ffprobe is assumed; decode.ts probes from ffmpeg's own output).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { cacheRoot } from '../core/cache-dir.ts';

export type FfmpegSource = 'env' | 'ffmpeg-static' | 'path' | '@ffmpeg-installer';

/** Codecs the project spawns ffmpeg for: decode (h264, aac) and the corpus encoder (libx264, aac). */
export const REQUIRED_CODECS = { decoders: ['h264', 'aac'], encoders: ['libx264', 'aac'] } as const;

export interface FfmpegCandidate {
  path: string;
  source: FfmpegSource;
  version: string;
  /** Median start-up of three runs, ms (0 for an override, which is not measured). */
  startupMs: number;
  /** Required codecs it lacks, e.g. ['encoder libx264']; empty when complete. */
  missing: string[];
  /** Why it could not be measured (it did not run). */
  error?: string;
}

export interface ResolvedFfmpeg {
  path: string;
  source: FfmpegSource;
  version: string;
  startupMs: number;
  /** One line: why this binary. */
  reason: string;
  /** Everything considered, the chosen one included. */
  candidates: FfmpegCandidate[];
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

function runFor(binary: string, args: string[]): Promise<{ stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(binary, ['-hide_banner', ...args], { timeout: 15_000, maxBuffer: 8 * 2 ** 20 }, (err, stdout) => {
      if (err) return reject(new Error(`ffmpeg at ${binary} does not run: ${err.message}`));
      resolve({ stdout, ms: performance.now() - t0 });
    });
  });
}

/** Names in the second column of `-decoders` / `-encoders` output (` V....D h264  H.264 …`). */
function codecNames(list: string): Set<string> {
  const names = new Set<string>();
  for (const line of list.split('\n')) {
    const m = /^\s*[VAS][A-Z.]{5}\s+(\S+)/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

/** Version, codecs and start-up cost of one binary (three runs, one after another). */
export async function measureFfmpeg(binary: string, source: FfmpegSource): Promise<FfmpegCandidate> {
  try {
    const version = await runFor(binary, ['-version']);
    const decoders = await runFor(binary, ['-decoders']);
    const encoders = await runFor(binary, ['-encoders']);
    const first = version.stdout.split('\n')[0] ?? '';
    const have = { decoders: codecNames(decoders.stdout), encoders: codecNames(encoders.stdout) };
    const missing = [
      ...REQUIRED_CODECS.decoders.filter((c) => !have.decoders.has(c)).map((c) => `decoder ${c}`),
      ...REQUIRED_CODECS.encoders.filter((c) => !have.encoders.has(c)).map((c) => `encoder ${c}`),
    ];
    const times = [version.ms, decoders.ms, encoders.ms].sort((a, b) => a - b);
    return { path: binary, source, version: /ffmpeg version (\S+)/.exec(first)?.[1] ?? first.trim(), startupMs: times[1], missing };
  } catch (e) {
    return { path: binary, source, version: '', startupMs: Infinity, missing: [], error: (e as Error).message };
  }
}

/** The cheapest candidate with every required codec, else the cheapest that runs; with the reason. */
export function chooseFfmpeg(candidates: FfmpegCandidate[]): { chosen: FfmpegCandidate; reason: string } | undefined {
  const running = candidates.filter((c) => !c.error);
  const complete = running.filter((c) => c.missing.length === 0);
  const pool = complete.length ? complete : running;
  if (!pool.length) return undefined;
  // Stable: on equal cost the earlier candidate (ffmpeg-static, PATH, @ffmpeg-installer) stays.
  const chosen = pool.reduce((best, c) => (c.startupMs < best.startupMs ? c : best));
  const others = candidates.filter((c) => c !== chosen).map((c) =>
    c.error ? `${c.path} does not run` : c.missing.length ? `${c.path} lacks ${c.missing.join(', ')}` : `${c.path} starts in ${c.startupMs.toFixed(0)} ms`);
  const why = complete.length
    ? `cheapest start-up (${chosen.startupMs.toFixed(0)} ms) with decoders h264/aac and encoders libx264/aac`
    : `no candidate has every codec (decoders h264/aac, encoders libx264/aac); cheapest that runs, lacks ${chosen.missing.join(', ')}`;
  return { chosen, reason: others.length ? `${why}; ${others.join('; ')}` : `${why}; the only candidate` };
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, process.platform === 'win32' ? `${name}.exe` : name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Every binary found without an override, in the order a tie keeps. */
function candidatePaths(): { path: string; source: FfmpegSource }[] {
  const found: { path: string; source: FfmpegSource }[] = [];
  try {
    const p = require('ffmpeg-static') as string | { default?: string } | null;
    const file = typeof p === 'string' ? p : p?.default;
    if (file && isExecutableFile(file)) found.push({ path: file, source: 'ffmpeg-static' });
  } catch { /* optional dependency absent */ }
  const fromPath = onPath('ffmpeg');
  if (fromPath) found.push({ path: fromPath, source: 'path' });
  try {
    const installer = require('@ffmpeg-installer/ffmpeg') as { path: string };
    if (isExecutableFile(installer.path)) found.push({ path: installer.path, source: '@ffmpeg-installer' });
  } catch { /* fall through to the error */ }
  // The same file reached twice (a PATH entry linking to a package's binary) is measured once.
  const seen = new Set<string>();
  return found.filter((c) => {
    const real = realpathOr(c.path);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

function realpathOr(file: string): string {
  try { return realpathSync(file); } catch { return file; }
}

/**
 * Measurements are kept in `<cacheRoot>/ffmpeg.json`, keyed by the binary's real path, size and
 * mtime, so each process (and worker thread) does not pay three start-ups per candidate again; a
 * replaced binary is measured again. Entries whose file is gone are dropped on write.
 */
const measurementsFile = () => path.join(cacheRoot(), 'ffmpeg.json');

function binaryKey(file: string): string | undefined {
  try {
    const real = realpathSync(file);
    const st = statSync(real);
    return `${real}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

async function readMeasurements(): Promise<Record<string, FfmpegCandidate>> {
  try {
    const json = JSON.parse(await readFile(measurementsFile(), 'utf8')) as { format?: string; binaries?: Record<string, FfmpegCandidate> };
    return json.format === 'stella-ffmpeg/1' && json.binaries ? json.binaries : {};
  } catch {
    return {};
  }
}

async function writeMeasurements(binaries: Record<string, FfmpegCandidate>): Promise<void> {
  const kept = Object.fromEntries(Object.entries(binaries).filter(([key]) => binaryKey(key.slice(0, key.lastIndexOf(':', key.lastIndexOf(':') - 1))) === key));
  try {
    await mkdir(cacheRoot(), { recursive: true });
    const file = measurementsFile(), temporary = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(temporary, JSON.stringify({ format: 'stella-ffmpeg/1', binaries: kept }, null, 1));
    await rename(temporary, file);
  } catch { /* a read-only checkout measures again next time */ }
}

async function locate(): Promise<ResolvedFfmpeg> {
  for (const name of ['STELLA_FFMPEG', 'FFMPEG_PATH'] as const) {
    const value = process.env[name];
    if (value === undefined || value === '') continue;
    if (!isExecutableFile(value)) {
      throw new Error(`${name}=${value} does not name an executable ffmpeg binary; fix or unset ${name}`);
    }
    const version = await runFor(value, ['-version']);
    const first = version.stdout.split('\n')[0] ?? '';
    const candidate: FfmpegCandidate = { path: value, source: 'env', version: /ffmpeg version (\S+)/.exec(first)?.[1] ?? first.trim(), startupMs: version.ms, missing: [] };
    return { ...candidate, reason: `set by ${name} (an explicit choice: not measured against others)`, candidates: [candidate] };
  }
  const candidates: FfmpegCandidate[] = [];
  const known = await readMeasurements();
  let changed = false;
  for (const c of candidatePaths()) {
    const key = binaryKey(c.path);
    const hit = key ? known[key] : undefined;
    if (hit) { candidates.push({ ...hit, path: c.path, source: c.source }); continue; }
    const measured = await measureFfmpeg(c.path, c.source);
    candidates.push(measured);
    if (key && !measured.error) { known[key] = measured; changed = true; }
  }
  if (changed) await writeMeasurements(known);
  const choice = chooseFfmpeg(candidates);
  if (!choice) {
    const tried = candidates.map((c) => `${c.path}: ${c.error}`).join('; ');
    throw new Error(`no ffmpeg found${tried ? ` that runs (${tried})` : ''}: set STELLA_FFMPEG, install ffmpeg-static or @ffmpeg-installer/ffmpeg, or put ffmpeg on PATH`);
  }
  const { chosen, reason } = choice;
  return { path: chosen.path, source: chosen.source, version: chosen.version, startupMs: chosen.startupMs, reason, candidates };
}

/** The ffmpeg to spawn; resolved once per process (a failure is not cached, so a fixed env can retry). */
export function resolveFfmpeg(): Promise<ResolvedFfmpeg> {
  if (!cached) {
    cached = locate();
    cached.catch(() => { cached = undefined; });
  }
  return cached;
}

/** Forgets the cached answer (tests that change the environment). */
export function resetFfmpegCache(): void {
  cached = undefined;
}
