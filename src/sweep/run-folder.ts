/**
 * What a sweep finds in a run's folder before it starts the run: finished results of this very
 * configuration (reused), checkpoints of it (resumed), or nothing usable (a fresh run; leftovers of a
 * different configuration are cleared so they can never be resumed by mistake).
 */
import { isDeepStrictEqual } from 'node:util';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseResults, type Results } from '../eval/results.ts';
import type { RunParams } from '../cli/run-params.ts';

export type RunFolderState = { kind: 'finished'; results: Results } | { kind: 'resumable'; step: number } | { kind: 'empty' };

export async function readResultsFile(file: string): Promise<Results> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`);
  }
  return parseResults(json);
}

/** Whether a run made with `config` (results.json's, or a checkpoint's run params) used `params`. */
function sameParams(config: Record<string, unknown> | undefined, params: RunParams): boolean {
  return !!config && Object.entries(params).every(([k, v]) => isDeepStrictEqual(config[k], v));
}

export async function inspectRunFolder(dir: string, params: RunParams, fresh: boolean): Promise<RunFolderState> {
  if (fresh) {
    await rm(dir, { recursive: true, force: true });
    return { kind: 'empty' };
  }
  const resultsFile = path.join(dir, 'results.json');
  if (existsSync(resultsFile)) {
    const results = await readResultsFile(resultsFile).catch(() => undefined);
    if (results && sameParams(results.config, params)) return { kind: 'finished', results };
  }
  const ckpt = path.join(dir, 'checkpoints');
  const latest = await readFile(path.join(ckpt, 'latest'), 'utf8').then((s) => s.trim(), () => undefined);
  if (latest) {
    const manifest = await readFile(path.join(ckpt, latest, 'manifest.json'), 'utf8').then((s) => JSON.parse(s), () => undefined);
    if (sameParams(manifest?.state?.config?.run?.params, params)) return { kind: 'resumable', step: manifest.step };
  }
  await clearRun(dir);
  return { kind: 'empty' };
}

/** Removes a run's checkpoints and results so it starts afresh; run.log stays (earlier attempts' errors). */
export async function clearRun(dir: string): Promise<void> {
  for (const stale of ['checkpoints', 'results.json']) await rm(path.join(dir, stale), { recursive: true, force: true });
}
