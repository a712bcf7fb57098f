/**
 * ingest: decode + tokenize every clip of a manifest into an on-disk cache (ingest-cache.ts).
 *
 * Inputs: `{ manifest (path or loaded Manifest), out, config ('tiny'|'base', default tiny),
 * concurrency (default 2), allowOutside (default false), signal, onProgress }`.
 * Behaviour: clips are decoded in eval mode (deterministic, so the cache is reusable), INGEST_BATCH
 * clips per ffmpeg run (decodeClipsTogether: one start-up for eight files; each file's output is its
 * own run's), with at most `concurrency` runs in flight (RxJS `mergeMap(…, N)`); a `processClip` of
 * the caller's (`stella ingest --redis`) gets the clips one by one instead. Results are appended by
 * a single writer in completion order. Clips already in the cache are skipped (resume). A bad clip becomes one
 * `{path, stage, message}` error and the run goes on. The index is flushed at most every 0.5 s and at
 * the end; `DIR/ingest-report.json` = `{ processed: [{path, label, task, split, cached}], errors: [...] }`.
 * Unsubscribing / aborting kills in-flight ffmpeg children.
 * Output: the report plus counts. Throws only when nothing can run (unreadable manifest, bad cache).
 * Ref: DESIGN.md "decode → tokenize", StageError contract.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bufferCount, concatMap, defer, from, lastValueFrom, mergeMap, Observable, scan } from 'rxjs';
import { z } from 'zod';
import { modelConfig, tokenGrid, type ModelConfig } from '../core/config.ts';
import { decodeClip, decodeClipsTogether } from './decode.ts';
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

/** Clips one ffmpeg run of ingest decodes. */
export const INGEST_BATCH = 8;

type ClipResult = Awaited<ReturnType<ClipProcessor>>;

/** decodeAndTokenize for several clips in one ffmpeg run: per clip its result or its error. */
async function decodeAndTokenizeTogether(clips: { path: string }[], config: ModelConfig, signal: AbortSignal): Promise<(ClipResult | Error)[]> {
  const decoded = await decodeClipsTogether(clips.map((c) => c.path), { config }, signal);
  return decoded.map((d) => (d instanceof Error ? d : { tokens: tokenizeClip(d, config), info: d.info }));
}

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

  type Clip = (typeof clips)[number];
  type Outcome = { clip: Clip; cached: boolean; error?: IngestErrorRecord; tokens?: TokenizedPatches; info?: MediaInfo };
  // The caller's processor takes one clip at a time; ours decodes INGEST_BATCH per ffmpeg run.
  const own = options.processClip;
  const processClips = own
    ? (group: Clip[], signal: AbortSignal) => Promise.all(group.map((clip) => own(clip, cfg, signal).catch((e: unknown) => {
      if (isAbortError(e)) throw e;
      return e instanceof Error ? e : new Error(String(e));
    })))
    : (group: Clip[], signal: AbortSignal) => decodeAndTokenizeTogether(group, cfg, signal);
  const outcome = (clip: Clip, r: ClipResult | Error): Outcome => {
    if (!(r instanceof Error)) return { clip, cached: false, tokens: r.tokens, info: r.info };
    const error = r instanceof MediaError
      ? { path: r.path, stage: r.stage, message: r.message }
      : { path: clip.path, stage: 'decode', message: `${clip.path}: ${r?.message ?? String(r)}` };
    return { clip, cached: false, error };
  };
  const work$ = from(clips).pipe(
    bufferCount(own ? 1 : INGEST_BATCH),
    mergeMap((group) => {
      const todo = group.filter((clip) => !writer.has(clip.path));
      const cached = group.filter((clip) => writer.has(clip.path)).map((clip): Outcome => ({ clip, cached: true }));
      if (!todo.length) return from(cached);
      return abortable((signal) => processClips(todo, signal), options.signal).pipe(
        mergeMap((results) => from([...cached, ...results.map((r, i) => outcome(todo[i], r))])),
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
