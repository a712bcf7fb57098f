/**
 * The worker side of `device: redis` (remote-device.ts): takes items from every stage stream
 * announced in `stella:stages`, runs the node's worker task on them and posts the results.
 * `stella worker --redis URL` runs one of these next to its job queues.
 *
 * - New entries come through the consumer group (XREADGROUP `>`), at most `concurrency` at once.
 * - Entries left pending by a worker that died (SIGKILL, machine lost) are claimed with XAUTOCLAIM
 *   once idle `claimIdleMs`. While an item runs, its worker re-claims it every `claimIdleMs / 3`,
 *   which resets its idle time, so a slow item is not taken from a live worker.
 * - The result is posted, and the entry acknowledged and deleted, in one MULTI: an item is either
 *   still pending (and will be redone) or done, never lost. XADD NOMKSTREAM drops the result of a
 *   graph that has closed instead of leaving a stray stream behind.
 * - Files the item names (the stage's `worker.files`) are fetched once per content into
 *   `workDir/files/<sha256><ext>`; the task opens them through `context.localPath`, and error
 *   messages name the original path, as a local run words them.
 * - `stop()` takes no new items and waits for the running ones to be posted.
 */
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { decodeItem, encodeItem } from './item-codec.ts';
import { localModule } from './portable-path.ts';
import { blobFields, blobsOf, fieldsOf, STAGE_GROUP, STAGE_REGISTRY, type RemoteTaskSpec, type ShippedFile } from './remote-device.ts';
import { openRedis } from './redis-connection.ts';
import { loadWorkerTask, type WorkerTask, type WorkerTaskContext } from './worker-task.ts';

export interface RemoteStageWorkerOptions {
  redis: string;
  /** Items run at once. */
  concurrency: number;
  /** An entry pending this long without its worker renewing it is claimed by another worker. */
  claimIdleMs: number;
  workDir: string;
  /** Consumer name in the group (default host:pid). */
  id?: string;
  log?: (line: string) => void;
}

export interface RemoteStageWorker {
  readonly id: string;
  /** Items this worker has posted results for. */
  readonly processed: number;
  stop(): Promise<void>;
}

type Entry = [Buffer, Buffer[] | null];
type LoadedSpec = { spec: RemoteTaskSpec; run: WorkerTask; loadError?: undefined } | { spec: RemoteTaskSpec; run?: undefined; loadError: Error };


/** Replaces every string equal to a local copy's path with the original path (walks plain data only). */
function originalPaths<T>(value: T, originals: Map<string, string>): T {
  if (!originals.size) return value;
  if (typeof value === 'string') return (originals.get(value) ?? value) as T;
  if (Array.isArray(value)) return value.map((v) => originalPaths(v, originals)) as T;
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = originalPaths(v, originals);
    return out as T;
  }
  return value;
}

export function startRemoteStageWorker(o: RemoteStageWorkerOptions): RemoteStageWorker {
  const id = o.id ?? `${os.hostname()}:${process.pid}`;
  const log = o.log ?? (() => {});
  const redis = openRedis(o.redis);
  const blocking = openRedis(o.redis);
  const specs = new Map<string, Promise<LoadedSpec | undefined>>();
  const files = new Map<string, Promise<string>>();
  const active = new Map<string, { stream: string; entry: string }>();
  let slotFreed: () => void = () => {};
  let stopped = false;
  let processed = 0;

  const specOf = (stream: string) => {
    let loaded = specs.get(stream);
    if (!loaded) {
      loaded = (async () => {
        const json = await redis.hget(stream.replace(/:in$/, ':spec'), 'json');
        if (!json) return undefined; // the graph closed
        const spec = JSON.parse(json) as RemoteTaskSpec;
        try {
          return { spec, run: await loadWorkerTask(localModule(spec.module), spec.export, spec.backend) };
        } catch (error) {
          // Reported to the graph as fatal: every item would fail the same way on this worker.
          const loadError = new Error(`worker ${id} cannot load the task ${spec.module}#${spec.export}: ${(error as Error).message}`);
          return { spec, loadError: Object.assign(loadError, { name: 'FatalStageError' }) };
        }
      })();
      loaded.catch(() => specs.delete(stream));
      specs.set(stream, loaded);
    }
    return loaded;
  };

  /** A local copy of a shipped file, written once per content (temp file renamed into place). */
  const fetchFile = (f: ShippedFile) => {
    let local = files.get(f.sha);
    if (!local) {
      local = (async () => {
        const dir = path.join(o.workDir, 'files');
        const file = path.join(dir, `${f.sha}${f.ext}`);
        if (await stat(file).then(() => true, () => false)) return file;
        const bytes = await redis.getBuffer(f.key);
        if (!bytes) throw new Error(`the file's bytes are not in Redis (${f.key})`);
        await mkdir(dir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file);
        return file;
      })();
      local.catch(() => files.delete(f.sha));
      files.set(f.sha, local);
    }
    return local;
  };

  const processEntry = async (stream: string, entry: string, fields: Map<string, Buffer>) => {
    const itemId = fields.get('id')?.toString() ?? '';
    const originals = new Map<string, string>();
    let reply: string | undefined;
    let post: (string | Buffer)[];
    try {
      const loaded = await specOf(stream);
      if (!loaded) throw new Error('the graph closed');
      const { spec, run, loadError } = loaded;
      reply = spec.reply;
      if (loadError) throw loadError;
      const shipped = JSON.parse(fields.get('files')?.toString() ?? '{}') as Record<string, ShippedFile>;
      const locals = new Map<string, string>();
      for (const [original, f] of Object.entries(shipped)) {
        const local = await fetchFile(f);
        locals.set(original, local);
        originals.set(local, original);
      }
      const item = decodeItem(fields.get('head')!, blobsOf(fields));
      const context = { ...spec.context, localPath: (p: string) => locals.get(p) ?? p } as unknown as WorkerTaskContext;
      const out = originalPaths(await run!(item as never, spec.options, context), originals);
      const { header, blobs } = encodeItem(out);
      post = ['ok', '1', 'head', header, ...blobFields(blobs)];
    } catch (error) {
      let message = String((error as Error)?.message ?? error);
      for (const [local, original] of originals) message = message.split(local).join(original);
      post = ['ok', '0', 'message', message, 'fatal', (error as Error)?.name === 'FatalStageError' ? '1' : '0'];
    }
    if (!reply) {
      // The graph is gone (no spec): drop the entry so it is not claimed again and again.
      await redis.multi().xack(stream, STAGE_GROUP, entry).xdel(stream, entry).exec();
      return;
    }
    await redis.multi()
      .xadd(reply, 'NOMKSTREAM', '*', 'id', itemId, ...post)
      .xack(stream, STAGE_GROUP, entry)
      .xdel(stream, entry)
      .exec();
    processed++;
  };

  const start = (stream: string, [entryId, flat]: Entry) => {
    if (!flat) return; // deleted while pending
    const entry = entryId.toString();
    const key = `${stream} ${entry}`;
    if (active.has(key)) return;
    active.set(key, { stream, entry });
    void processEntry(stream, entry, fieldsOf(flat))
      .catch((e) => log(`${stream} ${entry}: ${(e as Error).message}`))
      .finally(() => { active.delete(key); slotFreed(); });
  };

  // Keeps this worker's entries fresh, so that only a dead worker's entries go idle.
  const heartbeat = setInterval(() => {
    for (const { stream, entry } of active.values()) {
      void redis.xclaim(stream, STAGE_GROUP, id, 0, entry, 'JUSTID').catch(() => {});
    }
  }, Math.max(50, Math.floor(o.claimIdleMs / 3)));

  const free = () => o.concurrency - active.size;

  const loop = (async () => {
    while (!stopped) {
      if (free() <= 0) {
        await new Promise<void>((resolve) => { slotFreed = resolve; });
        continue;
      }
      let streams: string[];
      try {
        streams = await redis.smembers(STAGE_REGISTRY);
      } catch {
        await sleep(200);
        continue;
      }
      if (!streams.length) { await sleep(200); continue; }
      try {
        for (const stream of streams) {
          if (free() <= 0) break;
          const claimed = (await redis.callBuffer('XAUTOCLAIM', stream, STAGE_GROUP, id, o.claimIdleMs, '0-0', 'COUNT', free())) as [Buffer, Entry[]];
          for (const e of claimed[1]) {
            log(`${stream}: claimed ${e[0].toString()} from a worker that stopped renewing it`);
            start(stream, e);
          }
        }
        if (free() <= 0) continue;
        const read = (await blocking.xreadgroupBuffer(
          'GROUP', STAGE_GROUP, id, 'COUNT', free(), 'BLOCK', 500, 'STREAMS', ...streams, ...streams.map(() => '>'),
        )) as [Buffer, Entry[]][] | null;
        for (const [stream, entries] of read ?? []) for (const e of entries) start(stream.toString(), e);
      } catch (error) {
        if (stopped) break;
        // A stream whose graph closed between SMEMBERS and the read: forget it if its key is gone.
        if (/NOGROUP/.test((error as Error).message)) {
          for (const stream of streams) if (!(await redis.exists(stream))) await redis.srem(STAGE_REGISTRY, stream);
        } else {
          log(`reading stage streams failed: ${(error as Error).message}`);
          await sleep(200);
        }
      }
    }
  })();

  return {
    id,
    get processed() { return processed; },
    async stop() {
      stopped = true;
      slotFreed();
      blocking.disconnect();
      await loop;
      while (active.size) await new Promise<void>((resolve) => { slotFreed = resolve; });
      clearInterval(heartbeat);
      redis.disconnect();
    },
  };
}
