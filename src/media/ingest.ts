/**
 * ingest: decode + tokenize every clip of a manifest into an on-disk cache (ingest-cache.ts).
 *
 * Inputs: `{ manifest (path or loaded Manifest), out, config ('tiny'|'base', default tiny),
 * concurrency (default 2), allowOutside (default false), signal, onProgress }`.
 * Behaviour: clips are decoded in eval mode (deterministic, so the cache is reusable) with at most
 * `concurrency` ffmpeg decodes in flight (RxJS `mergeMap(…, N)`); results are appended by a single
 * writer in completion order. Clips already in the cache are skipped (resume). A bad clip becomes one
 * `{path, stage, message}` error and the run goes on. The index is flushed at most every 0.5 s and at
 * the end; `DIR/ingest-report.json` = `{ processed: [{path, label, task, split, cached}], errors: [...] }`.
 * Unsubscribing / aborting kills in-flight ffmpeg children.
 * Output: the report plus counts. Throws only when nothing can run (unreadable manifest, bad cache).
 * Ref: DESIGN.md "decode → tokenize", StageError contract.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { concatMap, defer, from, lastValueFrom, map, mergeMap, Observable, of, catchError, scan } from 'rxjs';
import { z } from 'zod';
import { modelConfig, tokenGrid, type ModelConfig } from '../core/config.ts';
import { decodeClip } from './decode.ts';
import { IngestCacheWriter } from './ingest-cache.ts';
import { loadManifest, manifestClips, type Manifest } from './manifest.ts';
import { MediaError, isAbortError } from './media-error.ts';
import type { MediaInfo } from './probe.ts';
import { tokenizeClip, type TokenizedPatches } from './tokenize.ts';

export const ingestOptionsSchema = z.object({
  out: z.string().min(1),
  config: z.enum(['tiny', 'base']).default('tiny'),
  concurrency: z.number().int().positive().default(2),
  allowOutside: z.boolean().default(false),
});
export type IngestOptions = z.input<typeof ingestOptionsSchema> & {
  manifest: string | Manifest;
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
  /** Decodes and tokenizes one clip (default: here, `decodeAndTokenize`); `stella ingest --redis` sends it to workers. */
  processClip?: ClipProcessor;
};

/** Decode (eval mode) + tokenize of one clip; throws MediaError for a bad clip. */
export type ClipProcessor = (clip: { path: string }, config: ModelConfig, signal: AbortSignal) => Promise<{ tokens: TokenizedPatches; info: MediaInfo }>;

export const decodeAndTokenize: ClipProcessor = async (clip, config, signal) => {
  const decoded = await decodeClip(clip.path, { config, mode: 'eval' }, signal);
  return { tokens: tokenizeClip(decoded, config), info: decoded.info };
};

export interface IngestErrorRecord { path: string; stage: string; message: string }
export interface IngestProcessedRecord { path: string; label: string; task: string; split: 'train' | 'test'; cached: boolean }
export interface IngestReport { processed: IngestProcessedRecord[]; errors: IngestErrorRecord[] }
export interface IngestProgress { done: number; total: number; path: string; ok: boolean; cached: boolean; message?: string }

/** Runs `fn(signal)` as a cold Observable whose unsubscribe aborts it. */
function abortable<T>(fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Observable<T> {
  return new Observable<T>((sub) => {
    const ac = new AbortController();
    const onOuter = () => ac.abort(outer?.reason);
    outer?.addEventListener('abort', onOuter, { once: true });
    fn(ac.signal).then((v) => { sub.next(v); sub.complete(); }, (e) => sub.error(e));
    return () => { outer?.removeEventListener('abort', onOuter); ac.abort(); };
  });
}

export async function runIngest(options: IngestOptions): Promise<IngestReport & { reportPath: string }> {
  const o = ingestOptionsSchema.parse(options);
  const manifest = typeof options.manifest === 'string' ? await loadManifest(options.manifest, { allowOutside: o.allowOutside }) : options.manifest;
  const cfg: ModelConfig = modelConfig(o.config);
  const grid = tokenGrid(cfg);
  const out = path.resolve(o.out);
  const writer = await IngestCacheWriter.open(out, {
    config: cfg.name, videoTokens: grid.videoTokens, videoDim: grid.videoPatchDim, audioTokens: grid.audioTokens, audioDim: grid.audioPatchDim,
  });
  const seen = new Set<string>();
  const clips = manifestClips(manifest).filter((c) => !seen.has(c.path) && seen.add(c.path));
  const report: IngestReport = { processed: [], errors: [] };
  const total = clips.length;
  let lastFlush = Date.now();

  const processClip = options.processClip ?? decodeAndTokenize;
  type Outcome = { clip: (typeof clips)[number]; cached: boolean; error?: IngestErrorRecord; tokens?: TokenizedPatches; info?: MediaInfo };
  const work$ = from(clips).pipe(
    mergeMap((clip) => {
      if (writer.has(clip.path)) return of<Outcome>({ clip, cached: true });
      return abortable((signal) => processClip(clip, cfg, signal), options.signal).pipe(
        map((done): Outcome => ({ clip, cached: false, tokens: done.tokens, info: done.info })),
        catchError((e: unknown) => {
          if (isAbortError(e)) throw e;
          const error = e instanceof MediaError
            ? { path: e.path, stage: e.stage, message: e.message }
            : { path: clip.path, stage: 'decode', message: `${clip.path}: ${(e as Error)?.message ?? String(e)}` };
          return of<Outcome>({ clip, cached: false, error });
        }),
      );
    }, o.concurrency),
    concatMap((r) => defer(async () => {
      if (r.error) report.errors.push(r.error);
      else {
        if (r.tokens) {
          await writer.append({ path: r.clip.path, label: r.clip.label, task: r.clip.task, split: r.clip.split, info: r.info, ...r.tokens });
          if (Date.now() - lastFlush > 500) { await writer.flush(); lastFlush = Date.now(); }
        }
        report.processed.push({ path: r.clip.path, label: r.clip.label, task: r.clip.task, split: r.clip.split, cached: r.cached });
      }
      return r;
    })),
    scan((done, r) => {
      options.onProgress?.({ done: done + 1, total, path: r.clip.path, ok: !r.error, cached: r.cached, message: r.error?.message });
      return done + 1;
    }, 0),
  );
  try {
    await lastValueFrom(work$, { defaultValue: 0 });
  } finally {
    await writer.close();
  }
  const reportPath = path.join(out, 'ingest-report.json');
  await writeFile(reportPath, JSON.stringify(report, null, 2) + '\n');
  return { ...report, reportPath };
}
