/**
 * `device: redis`: a node's per-item work (its stage's `worker` task, stage.ts) runs on
 * `stella worker` processes on any machine, fed through Redis Streams. This file is the graph
 * side; remote-worker.ts is the worker side.
 *
 * Per run and node: a stream `stella:stage:<run>:<node>:in` with the consumer group `workers`,
 * and the task's description in `…:spec` (module, export, options, context). The run's key is in
 * the set `stella:stages`, which workers watch. Results come back on the run's reply stream
 * `stella:stage:<run>:out`, which only this process reads.
 *
 * Semantics (BullMQ-style, spelled out):
 * - **Bounded.** The runner keeps at most the node's `queueSize` items in flight (mapConcurrent's
 *   window), so the input stream never holds more; a full output queue downstream stops the
 *   node taking input, so a slow consumer stops the producers across machines, and Redis memory
 *   stays flat.
 * - **At-least-once.** A worker acknowledges and deletes an entry in the same MULTI that posts
 *   its result. An entry whose worker died stays pending in the group and is claimed by another
 *   worker (XAUTOCLAIM) once it has been idle `claimIdleMs`; live workers keep theirs fresh. An
 *   item may thus be processed twice; the first result for an id wins and later ones are dropped,
 *   so each item comes out once. Tasks must be pure functions of the item, which the worker
 *   contract already asks.
 * - **Binary.** Items travel as a JSON header plus raw typed-array bytes (item-codec.ts).
 * - **No shared filesystem.** Fields the stage lists in `worker.files` name local files: their
 *   bytes go to Redis once per run (`stella:file:<run>:<sha256>`, expiring after a day as a safety net),
 *   the worker keeps a copy by content hash, and the task opens it through `context.localPath`.
 * - **Teardown.** `close()` deletes the run's keys; items in flight are abandoned.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { FatalStageError } from './errors.ts';
import { decodeItem, encodeItem } from './item-codec.ts';
import type { GraphItem } from './items.ts';
import { portableModule } from './portable-path.ts';
import { KEY_PREFIX, openRedis } from './redis-connection.ts';
import type { StageDefinition } from './stage.ts';

export const STAGE_REGISTRY = `${KEY_PREFIX}:stages`;
export const STAGE_GROUP = 'workers';
const FILE_TTL_SECONDS = 24 * 3600;

/** What a worker needs to run a node's items: stored as the `…:spec` hash's `json` field. */
export interface RemoteTaskSpec {
  node: string;
  module: string;
  export: string;
  backend: boolean;
  files: string[];
  options: Record<string, unknown>;
  context: Record<string, unknown>;
  reply: string;
}

/** A file's bytes in Redis (`key`), named by their hash, so a worker copies each content once. */
export interface ShippedFile { key: string; sha: string; ext: string }

type WorkerSpec = NonNullable<StageDefinition['worker']>;
interface Pending { node: string; resolve(item: GraphItem): void; reject(error: Error): void }

export class RedisStageDevice {
  readonly runId = randomUUID().slice(0, 12);
  private readonly redis: Redis;
  private readonly reader: Redis;
  private readonly nodes = new Map<string, { inKey: string; specKey: string; files: string[]; ready: Promise<unknown> }>();
  private readonly pending = new Map<string, Pending>();
  private readonly shipped = new Map<string, Promise<ShippedFile | undefined>>();
  private readonly replyKey: string;
  private nextId = 0;
  private closed = false;
  private readonly reading: Promise<void>;
  private readonly replyReady: Promise<unknown>;

  constructor(readonly device: string, url: string) {
    this.redis = openRedis(url);
    this.reader = openRedis(url);
    this.replyKey = `${KEY_PREFIX}:stage:${this.runId}:out`;
    this.replyReady = this.redis.xgroup('CREATE', this.replyKey, 'graph', '$', 'MKSTREAM').catch((e: Error) => {
      if (!/BUSYGROUP/.test(e.message)) throw e;
    });
    this.reading = this.readReplies();
  }

  private base(node: string) { return `${KEY_PREFIX}:stage:${this.runId}:${node}`; }

  load(key: string, worker: WorkerSpec, options: Record<string, unknown>, context: Record<string, unknown>) {
    if (this.nodes.has(key)) return;
    const inKey = `${this.base(key)}:in`;
    const specKey = `${this.base(key)}:spec`;
    const spec: RemoteTaskSpec = {
      node: key, module: portableModule(worker.module), export: worker.export, backend: worker.backend ?? true,
      files: [...(worker.files ?? [])], options, context, reply: this.replyKey,
    };
    // The group exists before the stream is announced, so a worker never reads a stream without it;
    // the reply stream exists before any item is sent, since workers post with NOMKSTREAM.
    const ready = (async () => {
      await this.replyReady;
      await this.redis.xgroup('CREATE', inKey, STAGE_GROUP, '0', 'MKSTREAM').catch((e: Error) => {
        if (!/BUSYGROUP/.test(e.message)) throw e;
      });
      await this.redis.hset(specKey, 'json', JSON.stringify(spec));
      await this.redis.sadd(STAGE_REGISTRY, inKey);
    })();
    this.nodes.set(key, { inKey, specKey, files: spec.files, ready });
  }

  /** Sends the item to the workers; resolves with the first result that comes back for it. */
  async run(key: string, item: GraphItem): Promise<GraphItem> {
    const node = this.nodes.get(key);
    if (!node) throw new Error(`no task '${key}' loaded on ${this.device}`);
    await node.ready;
    const files: Record<string, ShippedFile> = {};
    for (const field of node.files) {
      const file = (item as unknown as Record<string, unknown>)[field];
      if (typeof file !== 'string') continue;
      const shipped = await this.ship(file);
      if (shipped) files[file] = shipped; // a missing file is left to the task, which reports it as it does locally
    }
    const { header, blobs } = encodeItem(item);
    const id = String(this.nextId++);
    const result = new Promise<GraphItem>((resolve, reject) => this.pending.set(id, { node: key, resolve, reject }));
    await this.redis.xadd(node.inKey, '*', 'id', id, 'head', header, 'files', JSON.stringify(files), ...blobFields(blobs));
    return result;
  }

  /** Puts a file's bytes in Redis once per run and content. */
  private ship(file: string): Promise<ShippedFile | undefined> {
    let shipped = this.shipped.get(file);
    if (!shipped) {
      shipped = (async () => {
        const bytes = await readFile(file).catch(() => undefined);
        if (!bytes) return undefined;
        const sha = createHash('sha256').update(bytes).digest('hex');
        const key = `${KEY_PREFIX}:file:${this.runId}:${sha}`;
        await this.redis.set(key, bytes, 'EX', FILE_TTL_SECONDS, 'NX');
        return { key, sha, ext: path.extname(file) };
      })();
      this.shipped.set(file, shipped);
    }
    return shipped;
  }

  private async readReplies(): Promise<void> {
    let last = '0-0';
    while (!this.closed) {
      let streams: [Buffer, [Buffer, Buffer[]][]][] | null;
      try {
        streams = (await this.reader.xreadBuffer('COUNT', 64, 'BLOCK', 1000, 'STREAMS', this.replyKey, last)) as typeof streams;
      } catch (error) {
        if (this.closed) return;
        this.failAll(new FatalStageError(this.device, `reading results from Redis failed: ${(error as Error).message}`));
        return;
      }
      if (!streams) continue;
      const done: string[] = [];
      for (const [entryId, flat] of streams[0][1]) {
        last = entryId.toString();
        done.push(last);
        this.settle(fieldsOf(flat));
      }
      await this.redis.xdel(this.replyKey, ...done).catch(() => {});
    }
  }

  private settle(fields: Map<string, Buffer>) {
    const id = fields.get('id')?.toString() ?? '';
    const p = this.pending.get(id);
    if (!p) return; // a second result for an item processed twice (a claimed entry): the first won
    this.pending.delete(id);
    if (fields.get('ok')?.toString() === '1') {
      try {
        p.resolve(decodeItem<GraphItem>(fields.get('head')!, blobsOf(fields)));
      } catch (error) {
        p.reject(new FatalStageError(p.node, `a result from a worker could not be read: ${(error as Error).message}`));
      }
    } else {
      const message = fields.get('message')?.toString() ?? 'the worker sent no message';
      p.reject(fields.get('fatal')?.toString() === '1' ? new FatalStageError(p.node, message) : new Error(message));
    }
  }

  private failAll(error: Error) {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  pushWeights(): never {
    throw new FatalStageError(this.device, `device '${this.device}' runs only stages that read no model weights (decode, tokenize, …)`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reader.disconnect();
    await this.reading;
    this.failAll(new Error(`${this.device}: the graph closed`));
    const keys = [...this.nodes.values()].flatMap((n) => [n.inKey, n.specKey]);
    const files = (await Promise.all(this.shipped.values())).filter((f): f is ShippedFile => !!f).map((f) => f.key);
    try {
      if (keys.length) await this.redis.srem(STAGE_REGISTRY, ...[...this.nodes.values()].map((n) => n.inKey));
      await this.redis.del(this.replyKey, ...keys, ...new Set(files));
    } finally {
      this.redis.disconnect();
    }
  }
}

/** A stream entry's flat [field, value, …] list as a map. */
export function fieldsOf(flat: Buffer[]): Map<string, Buffer> {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i].toString(), flat[i + 1]);
  return fields;
}

/** An item's blobs as stream fields `b0`, `b1`, …. */
export const blobFields = (blobs: readonly Buffer[]): (string | Buffer)[] => blobs.flatMap((b, i) => [`b${i}`, b]);

/** The blobs `b0`, `b1`, … of an entry, in order. */
export function blobsOf(fields: Map<string, Buffer>): Buffer[] {
  const blobs: Buffer[] = [];
  for (let i = 0; fields.has(`b${i}`); i++) blobs.push(fields.get(`b${i}`)!);
  return blobs;
}
