/**
 * Distributed ingest: `stella ingest MANIFEST --out DIR --redis URL` sends each clip's decode +
 * tokenize to `stella worker` processes as a BullMQ job on the `stella-ingest` queue; the ingest
 * process stays the one writer of the cache (src/media/ingest.ts does the appending, resume and
 * report exactly as locally).
 *
 * No shared filesystem: the clip's bytes travel in `stella:ingest:in:<job id>`, the worker decodes a
 * private copy and puts the patches back in `stella:ingest:out:<job id>` as raw float32 (fields
 * `video`, `audio`, `info`), or a bad clip's `error` ({path, stage, kind, message}, worded as the
 * local decode words it, with the manifest's path). The job id is a hash of the config, the path and
 * the bytes, so re-sending an unchanged clip reuses its job. Keys are deleted once read.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { modelConfig } from '../core/config.ts';
import { decodeAndTokenize, type ClipProcessor } from '../media/ingest.ts';
import { MediaError, abortError, type MediaErrorKind } from '../media/media-error.ts';
import type { MediaInfo } from '../media/probe.ts';
import { KEY_PREFIX, openRedis, redisOptions } from '../graph/redis-connection.ts';

export const INGEST_QUEUE = 'stella-ingest';
/** A job's state is read again when its completion event arrives, or after this long without one (a missed event, a restart). */
const POLL_MS = 1000;

interface IngestJobData { path: string; config: string; ext: string; present: boolean }
const inKey = (id: string) => `${KEY_PREFIX}:ingest:in:${id}`;
const outKey = (id: string) => `${KEY_PREFIX}:ingest:out:${id}`;

const asBuffer = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** A copy, so the floats are 4-aligned whatever the Buffer's offset. */
const asFloats = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** The ingest side: a ClipProcessor that runs each clip on the workers. */
export function redisClipProcessor(url: string): { processClip: ClipProcessor; close(): Promise<void> } {
  const queue = new Queue(INGEST_QUEUE, { connection: redisOptions(url) });
  queue.on('error', () => {});
  const redis = openRedis(url);
  // Completion events wake the clip's wait at once; polling every 100 ms had cost ~50 ms per clip.
  const events = new QueueEvents(INGEST_QUEUE, { connection: redisOptions(url) });
  events.on('error', () => {});
  const waiters = new Map<string, () => void>();
  const wake = ({ jobId }: { jobId: string }) => waiters.get(jobId)?.();
  events.on('completed', wake);
  events.on('failed', wake);
  const eventsReady = events.waitUntilReady();
  const settledOrTimeout = (id: string) => new Promise<void>((resolve) => {
    const timer = setTimeout(done, POLL_MS);
    function done() { clearTimeout(timer); waiters.delete(id); resolve(); }
    waiters.set(id, done);
  });

  const processClip: ClipProcessor = async (clip, config, signal) => {
    const bytes = await readFile(clip.path).catch(() => undefined); // a missing clip is reported by the worker's decode
    const id = `clip-${createHash('sha256').update(JSON.stringify([config.name, clip.path])).update(bytes ?? 'absent').digest('hex').slice(0, 24)}`;
    const data: IngestJobData = { path: clip.path, config: config.name, ext: path.extname(clip.path), present: bytes !== undefined };
    const existing = await queue.getJob(id);
    if (existing && (await existing.getState()) === 'completed' && !(await redis.exists(outKey(id)))) await existing.remove(); // read by an earlier run
    if (bytes) await redis.set(inKey(id), bytes);
    await eventsReady;
    await queue.add('clip', data, { jobId: id, attempts: 3, removeOnComplete: false, removeOnFail: false });
    for (;;) {
      if (signal.aborted) throw abortError(signal);
      const wait = settledOrTimeout(id); // listening before the state is read, so no event falls in between
      const job = await queue.getJob(id);
      const state = job ? await job.getState() : 'missing';
      if (state === 'completed') { waiters.get(id)?.(); break; }
      if (state === 'failed' || state === 'missing') { waiters.get(id)?.(); throw new MediaError(clip.path, 'decode', 'ffmpeg', `remote decode failed: ${job?.failedReason ?? 'the job vanished from Redis'}`); }
      await wait;
    }
    const out = await redis.hgetallBuffer(outKey(id));
    await redis.del(inKey(id), outKey(id));
    await (await queue.getJob(id))?.remove();
    if (out.error) {
      const e = JSON.parse(out.error.toString()) as { path: string; stage: string; kind: MediaErrorKind; message: string };
      const error = new MediaError(e.path, e.stage, e.kind, '');
      Object.defineProperty(error, 'message', { value: e.message });
      throw error;
    }
    if (!out.video || !out.audio || !out.info) throw new MediaError(clip.path, 'decode', 'ffmpeg', `remote decode left no patches in ${outKey(id)}`);
    return { tokens: { videoPatches: asFloats(out.video), audioPatches: asFloats(out.audio) }, info: JSON.parse(out.info.toString()) as MediaInfo };
  };
  return { processClip, close: async () => { await events.close(); await queue.close(); redis.disconnect(); } };
}

/** The worker side: decode + tokenize clips from the `stella-ingest` queue. */
export function startIngestWorker(o: { redis: string; concurrency: number; workDir: string; id: string }): { stop(): Promise<void> } {
  const redis = openRedis(o.redis);
  const processor = async (job: Job) => {
    const data = job.data as IngestJobData;
    const dir = path.join(o.workDir, 'ingest');
    await mkdir(dir, { recursive: true });
    const local = path.join(dir, `${job.id}${data.ext}`);
    if (data.present) {
      const bytes = await redis.getBuffer(inKey(job.id!));
      if (!bytes) throw new Error(`${data.path}: its bytes are not in Redis (${inKey(job.id!)})`);
      await writeFile(local, bytes);
    }
    try {
      const { tokens, info } = await decodeAndTokenize({ path: local }, modelConfig(data.config as 'tiny' | 'base'), new AbortController().signal);
      await redis.multi().del(outKey(job.id!)).hset(outKey(job.id!), 'video', asBuffer(tokens.videoPatches), 'audio', asBuffer(tokens.audioPatches), 'info', JSON.stringify(info)).exec();
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      // Worded as a local decode of the manifest's path words it.
      const record = { path: data.path, stage: e.stage, kind: e.kind, message: e.message.split(local).join(data.path) };
      await redis.multi().del(outKey(job.id!)).hset(outKey(job.id!), 'error', JSON.stringify(record)).exec();
    } finally {
      await rm(local, { force: true });
    }
    return { worker: o.id };
  };
  const worker = new Worker(INGEST_QUEUE, processor, { connection: redisOptions(o.redis), concurrency: o.concurrency, name: o.id });
  worker.on('error', () => {});
  return { stop: async () => { await worker.close(); redis.disconnect(); } };
}
