/**
 * On-disk cache of tokenized clips: sharded float32 patch blocks + one JSON index.
 *
 * Layout of DIR (format documented in docs/media.md):
 *   index.json       { format: 'stella-ingest/1', config, videoTokens, videoDim, audioTokens, audioDim,
 *                      shards: [{ file, bytes }], clips: { [absPath]: CacheRecord } } — written atomically
 *                      (temp file + rename); only records listed here count as finished.
 *   shard-NNNNN.bin  records appended back to back; each record is
 *                      'STKN' | u32le headerBytes | JSON header (space-padded so data starts 4-aligned)
 *                      | float32le videoPatches [Lv·videoDim] | float32le audioPatches [La·audioDim].
 *                      A record's `dataOffset` is 4-aligned, so a mapped or read buffer views as Float32Array.
 * Resume (`IngestCacheWriter.open`): a shard longer than its indexed `bytes` holds a partial record
 * from an interrupted run and is truncated back; a shard shorter than indexed, or whose records fail
 * the magic check, is dropped with its clips (they are redone). A new shard starts every
 * `shardBytes` (default 64 MiB).
 * `openIngestCache(dir)` reads: `paths()`, `get(path)`, and `clips()` (async iterator in index order).
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { MediaInfo } from './probe.ts';

export const CACHE_FORMAT = 'stella-ingest/1';
const MAGIC = Buffer.from('STKN');

export interface CacheRecord {
  shard: number;
  /** Byte offset of the record ('STKN') in its shard. */
  offset: number;
  /** Byte offset of the float32 data (4-aligned); video first, then audio. */
  dataOffset: number;
  /** Total record bytes. */
  bytes: number;
  label?: string;
  task?: string;
  split?: 'train' | 'test';
  info?: MediaInfo;
}

export interface CacheIndex {
  format: typeof CACHE_FORMAT;
  config: string;
  videoTokens: number;
  videoDim: number;
  audioTokens: number;
  audioDim: number;
  shards: { file: string; bytes: number }[];
  clips: Record<string, CacheRecord>;
}

export interface TokenizedClip {
  path: string;
  label?: string;
  task?: string;
  split?: 'train' | 'test';
  info?: MediaInfo;
  /** [videoTokens, videoDim] */
  videoPatches: Float32Array;
  /** [audioTokens, audioDim] */
  audioPatches: Float32Array;
}

export type CacheLayout = Pick<CacheIndex, 'config' | 'videoTokens' | 'videoDim' | 'audioTokens' | 'audioDim'>;

/**
 * One record: 'STKN' | u32le headerBytes | JSON header (space-padded so the data starts 4-aligned)
 * | the payloads back to back. Shared by the ingest shards and the decoded cache (decoded-cache.ts).
 */
export function encodeRecord(header: unknown, payloads: ArrayBufferView[]): { buffers: Buffer[]; bytes: number; dataOffset: number } {
  let json = Buffer.from(JSON.stringify(header));
  const pad = (4 - ((8 + json.length) % 4)) % 4;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(json.length, 4);
  const data = payloads.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  const dataOffset = 8 + json.length;
  return { buffers: [prefix, json, ...data], bytes: dataOffset + data.reduce((a, b) => a + b.length, 0), dataOffset };
}

/** Reads a record at the start of `bytes`: its JSON header and where its data starts; throws naming `file` when it is not one. */
export function decodeRecord(bytes: Uint8Array, file: string): { header: unknown; dataOffset: number } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) throw new Error(`${file}: not a cache record (no 'STKN' magic)`);
  const headerBytes = buf.readUInt32LE(4);
  if (8 + headerBytes > buf.length) throw new Error(`${file}: cache record header runs past the end (${headerBytes} bytes)`);
  return { header: JSON.parse(buf.subarray(8, 8 + headerBytes).toString('utf8')), dataOffset: 8 + headerBytes };
}

const shardName = (i: number) => `shard-${String(i).padStart(5, '0')}.bin`;

async function readIndex(dir: string): Promise<CacheIndex | undefined> {
  const file = path.join(dir, 'index.json');
  if (!existsSync(file)) return undefined;
  let json: CacheIndex;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: unreadable ingest index: ${(e as Error).message}`);
  }
  if (json.format !== CACHE_FORMAT) throw new Error(`${file}: format '${json.format}', expected '${CACHE_FORMAT}'`);
  return json;
}

/** Appends tokenized clips; one writer per cache folder at a time. */
export class IngestCacheWriter {
  private handle: FileHandle | undefined;
  private dirty = false;

  private constructor(readonly dir: string, readonly index: CacheIndex, private readonly shardBytes: number) {}

  /** Opens (or creates) the cache, repairing what an interrupted run left behind. */
  static async open(dir: string, layout: CacheLayout, shardBytes = 64 * 2 ** 20): Promise<IngestCacheWriter> {
    await mkdir(dir, { recursive: true });
    let index = await readIndex(dir);
    const matches = index && (['config', 'videoTokens', 'videoDim', 'audioTokens', 'audioDim'] as const).every((k) => index![k] === layout[k]);
    if (index && !matches) {
      throw new Error(`${path.join(dir, 'index.json')}: cache holds config '${index.config}' (${index.videoTokens}×${index.videoDim} / ${index.audioTokens}×${index.audioDim}); use another --out folder for config '${layout.config}'`);
    }
    index ??= { format: CACHE_FORMAT, ...layout, shards: [], clips: {} };
    const writer = new IngestCacheWriter(dir, index, shardBytes);
    await writer.repair();
    return writer;
  }

  has(clipPath: string): boolean {
    return clipPath in this.index.clips;
  }

  private async repair(): Promise<void> {
    const bad = new Set<number>();
    for (const [i, shard] of this.index.shards.entries()) {
      const file = path.join(this.dir, shard.file);
      const size = existsSync(file) ? (await stat(file)).size : -1;
      if (size < shard.bytes) bad.add(i);
      else if (size > shard.bytes) await truncate(file, shard.bytes); // partial record of an interrupted run
    }
    // Magic check of every indexed record.
    const handles = new Map<number, FileHandle>();
    try {
      for (const [p, rec] of Object.entries(this.index.clips)) {
        if (bad.has(rec.shard) || !this.index.shards[rec.shard]) { delete this.index.clips[p]; continue; }
        let h = handles.get(rec.shard);
        if (!h) handles.set(rec.shard, (h = await open(path.join(this.dir, this.index.shards[rec.shard].file), 'r')));
        const magic = Buffer.alloc(4);
        await h.read(magic, 0, 4, rec.offset);
        if (!magic.equals(MAGIC)) bad.add(rec.shard);
      }
    } finally {
      for (const h of handles.values()) await h.close();
    }
    if (bad.size) {
      for (const [p, rec] of Object.entries(this.index.clips)) if (bad.has(rec.shard)) delete this.index.clips[p];
      for (const i of bad) {
        await rm(path.join(this.dir, this.index.shards[i].file), { force: true });
        this.index.shards[i].bytes = 0;
      }
    }
    await this.flush(true);
  }

  /** Appends one clip; it counts as finished after the next `flush()`. */
  async append(clip: TokenizedClip): Promise<CacheRecord> {
    const { videoTokens, videoDim, audioTokens, audioDim } = this.index;
    if (clip.videoPatches.length !== videoTokens * videoDim || clip.audioPatches.length !== audioTokens * audioDim) {
      throw new RangeError(`${clip.path}: patches ${clip.videoPatches.length}/${clip.audioPatches.length} values, cache expects ${videoTokens}×${videoDim} / ${audioTokens}×${audioDim}`);
    }
    let shardId = this.index.shards.length - 1;
    if (shardId < 0 || this.index.shards[shardId].bytes >= this.shardBytes) {
      await this.handle?.close();
      this.handle = undefined;
      this.index.shards.push({ file: shardName(this.index.shards.length), bytes: 0 });
      shardId = this.index.shards.length - 1;
    }
    const shard = this.index.shards[shardId];
    this.handle ??= await open(path.join(this.dir, shard.file), 'a');
    const record = encodeRecord({ path: clip.path }, [clip.videoPatches, clip.audioPatches]);
    const offset = shard.bytes;
    await this.handle.writev(record.buffers);
    shard.bytes += record.bytes;
    const rec: CacheRecord = { shard: shardId, offset, dataOffset: offset + record.dataOffset, bytes: record.bytes, label: clip.label, task: clip.task, split: clip.split, info: clip.info };
    this.index.clips[clip.path] = rec;
    this.dirty = true;
    return rec;
  }

  /** Makes appended records durable, then writes the index atomically. */
  async flush(force = false): Promise<void> {
    if (!this.dirty && !force) return;
    await this.handle?.sync();
    const file = path.join(this.dir, 'index.json');
    await writeFile(`${file}.tmp`, JSON.stringify(this.index));
    await rename(`${file}.tmp`, file);
    this.dirty = false;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle?.close();
    this.handle = undefined;
  }
}

export interface IngestCache {
  index: CacheIndex;
  paths(): string[];
  has(clipPath: string): boolean;
  /** Reads one clip; throws naming the path when it is not cached. */
  get(clipPath: string): Promise<TokenizedClip>;
  /** Every clip in index order. */
  clips(): AsyncIterable<TokenizedClip>;
  close(): Promise<void>;
}

export async function openIngestCache(dir: string): Promise<IngestCache> {
  const index = await readIndex(dir);
  if (!index) throw new Error(`${dir}: no ingest cache here (index.json missing); run 'stella ingest MANIFEST --out ${dir}'`);
  const handles = new Map<number, FileHandle>();
  const get = async (clipPath: string): Promise<TokenizedClip> => {
    const rec = index.clips[clipPath] ?? index.clips[path.resolve(clipPath)];
    if (!rec) throw new Error(`${dir}: clip '${clipPath}' is not in the ingest cache`);
    let h = handles.get(rec.shard);
    if (!h) handles.set(rec.shard, (h = await open(path.join(dir, index.shards[rec.shard].file), 'r')));
    const vBytes = index.videoTokens * index.videoDim * 4, aBytes = index.audioTokens * index.audioDim * 4;
    const data = new Float32Array((vBytes + aBytes) / 4);
    const { bytesRead } = await h.read(new Uint8Array(data.buffer), 0, vBytes + aBytes, rec.dataOffset);
    if (bytesRead !== vBytes + aBytes) throw new Error(`${dir}: shard ${index.shards[rec.shard].file} is truncated at clip '${clipPath}'`);
    return {
      path: clipPath, label: rec.label, task: rec.task, split: rec.split, info: rec.info,
      videoPatches: data.subarray(0, vBytes / 4),
      audioPatches: data.subarray(vBytes / 4),
    };
  };
  return {
    index,
    paths: () => Object.keys(index.clips),
    has: (p) => p in index.clips,
    get,
    async *clips() {
      for (const p of Object.keys(index.clips)) yield await get(p);
    },
    async close() {
      for (const h of handles.values()) await h.close();
      handles.clear();
    },
  };
}
