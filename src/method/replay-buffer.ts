/**
 * Task-free reservoir replay buffer (the authors' `Buffer_task_free`), typed-array storage.
 *
 * Behaviour:
 *   - `add(rows, count, rng)`: for each offered row in order — slot = seen while seen < capacity, else
 *     r = randint(0, seen) inclusive and slot = r when r < capacity (else the row is dropped); seen += 1;
 *     every field of the slot is overwritten with the row (copied). Returns the slot per row (−1 = dropped).
 *   - `sample(requested, rng)`: size = min(requested, min(seen, capacity)) distinct slots, uniform without
 *     replacement; the rows are copies (editing them never touches the buffer). `undefined` when empty.
 *   - never emptied or resized: the reservoir spans task boundaries.
 * INVARIANT: after n offered rows, each row is held with probability min(1, capacity / n); `seen` counts
 * every row ever offered (restored from checkpoints).
 * Storage: one Float32Array/Int32Array per field, allocated lazily on the first insert ([capacity, row]);
 * no tf tensors are held. `bytes()` counts the allocated storage.
 * Layouts (what a row holds): `stellaLayout` (§6.2, with tokenized patches instead of pixels),
 * `stellaPlusLayout` (§5.5), `patchLayout` (ER/LUMP; + logits for DER++).
 * Ref: spec §6 (6.1–6.6), §5.5, §8; golden G2 (`buffer_choice`).
 */
import { z } from 'zod';
import type { Rng } from '../core/rng.ts';
import type { ModelConfig } from '../core/config.ts';
import { tokenGrid } from '../core/config.ts';

export interface FieldSpec {
  name: string;
  /** Values per row. */
  size: number;
  dtype: 'float32' | 'int32';
}
export type BufferLayout = readonly FieldSpec[];
type Storage = Float32Array | Int32Array;
export type BufferRows = Record<string, Storage>;

export interface ReplayDraw {
  /** M rows drawn. */
  count: number;
  /** The slots, in draw order. */
  slots: Int32Array;
  /** Per field: [M · size] copies. */
  rows: BufferRows;
}

export const replayBufferOptionsSchema = z.object({ capacity: z.number().int().positive() });

const fieldSchema = z.object({ name: z.string().min(1), size: z.number().int().nonnegative(), dtype: z.enum(['float32', 'int32']) });
const metaSchema = z.object({ capacity: z.number().int().positive(), seen: z.number().int().nonnegative(), layout: z.array(fieldSchema) });
export type ReplayBufferMeta = z.infer<typeof metaSchema>;

/** Serialisable state: JSON metadata plus one little-endian byte blob per allocated field. */
export interface ReplayBufferState {
  meta: ReplayBufferMeta;
  data: Record<string, Uint8Array>;
}

export class ReplayBuffer {
  private storage = new Map<string, Storage>();
  private seenRows = 0;

  constructor(readonly capacity: number, readonly layout: BufferLayout) {
    replayBufferOptionsSchema.parse({ capacity });
    const names = new Set<string>();
    for (const f of layout) {
      fieldSchema.parse(f);
      if (names.has(f.name)) throw new Error(`ReplayBuffer: field '${f.name}' appears twice in the layout`);
      names.add(f.name);
    }
  }

  /** Rows ever offered. */
  get seen(): number { return this.seenRows; }
  /** Rows held: min(seen, capacity). */
  get size(): number { return Math.min(this.seenRows, this.capacity); }
  get isEmpty(): boolean { return this.seenRows === 0; }

  /** Bytes per stored row. */
  rowBytes(): number {
    return this.layout.reduce((s, f) => s + f.size * 4, 0);
  }

  /** Allocated bytes (0 before the first insert, capacity · rowBytes after). */
  bytes(): number {
    let n = 0;
    for (const a of this.storage.values()) n += a.byteLength;
    return n;
  }

  /** Offers `count` rows (every layout field, [count · size] each); returns each row's slot or −1. */
  add(rows: Record<string, ArrayLike<number>>, count: number, rng: Rng): Int32Array {
    for (const f of this.layout) {
      const v = rows[f.name];
      if (!v) throw new Error(`ReplayBuffer.add: missing field '${f.name}' (layout: ${this.layout.map((x) => x.name).join(', ')})`);
      if (v.length !== count * f.size) throw new RangeError(`ReplayBuffer.add: field '${f.name}' has ${v.length} values, expected ${count} rows × ${f.size}`);
    }
    for (const name of Object.keys(rows)) {
      if (!this.layout.some((f) => f.name === name)) throw new Error(`ReplayBuffer.add: unknown field '${name}' (layout: ${this.layout.map((x) => x.name).join(', ')})`);
    }
    this.allocate();
    const slots = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      let slot = -1;
      if (this.seenRows < this.capacity) slot = this.seenRows;
      else {
        const r = rng.intInclusive(0, this.seenRows);
        if (r < this.capacity) slot = r;
      }
      this.seenRows++;
      slots[i] = slot;
      if (slot < 0) continue;
      for (const f of this.layout) {
        const src = rows[f.name];
        const dst = this.storage.get(f.name)!;
        // One block copy for typed arrays (the same per-element conversion as the loop).
        if (ArrayBuffer.isView(src)) dst.set((src as Float32Array).subarray(i * f.size, (i + 1) * f.size), slot * f.size);
        else for (let j = 0; j < f.size; j++) dst[slot * f.size + j] = src[i * f.size + j];
      }
    }
    return slots;
  }

  /** Up to `requested` distinct rows, uniform without replacement; undefined when the buffer is empty. */
  sample(requested: number, rng: Rng): ReplayDraw | undefined {
    if (!Number.isInteger(requested) || requested < 0) throw new RangeError(`ReplayBuffer.sample: requested must be a non-negative integer, got ${requested}`);
    const count = Math.min(requested, this.size);
    if (this.size === 0) return undefined;
    return this.read(rng.choiceWithoutReplacement(this.size, count));
  }

  /** Copies of the given slots (in that order). */
  read(slots: ArrayLike<number>): ReplayDraw {
    const rows: BufferRows = {};
    for (const f of this.layout) {
      const src = this.storage.get(f.name)!;
      const out = f.dtype === 'int32' ? new Int32Array(slots.length * f.size) : new Float32Array(slots.length * f.size);
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i];
        if (!(s >= 0 && s < this.size)) throw new RangeError(`ReplayBuffer.read: slot ${s} is not filled (size ${this.size})`);
        out.set(src.subarray(s * f.size, (s + 1) * f.size), i * f.size);
      }
      rows[f.name] = out;
    }
    return { count: slots.length, slots: Int32Array.from(slots), rows };
  }

  toState(): ReplayBufferState {
    const data: Record<string, Uint8Array> = {};
    for (const [name, a] of this.storage) data[name] = new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
    return { meta: { capacity: this.capacity, seen: this.seenRows, layout: this.layout.map((f) => ({ ...f })) }, data };
  }

  static fromState(state: ReplayBufferState): ReplayBuffer {
    const meta = metaSchema.parse(state.meta);
    const b = new ReplayBuffer(meta.capacity, meta.layout);
    b.seenRows = meta.seen;
    if (meta.seen > 0) {
      for (const f of meta.layout) {
        const bytes = state.data[f.name];
        const want = meta.capacity * f.size * 4;
        if (!bytes || bytes.byteLength !== want) throw new Error(`ReplayBuffer.fromState: field '${f.name}' has ${bytes?.byteLength ?? 0} bytes, expected ${want}`);
        const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        b.storage.set(f.name, f.dtype === 'int32' ? new Int32Array(buf) : new Float32Array(buf));
      }
    }
    return b;
  }

  private allocate(): void {
    if (this.storage.size > 0) return;
    for (const f of this.layout) {
      const values = f.dtype === 'int32' ? new Int32Array(this.capacity * f.size) : new Float32Array(this.capacity * f.size);
      // Writing the zeros commits the pages now: otherwise every insert until the reservoir is full
      // page-faults its rows in (~4 ms of a tiny STELLA step on this machine, for 1.3 MB of rows).
      values.fill(0);
      this.storage.set(f.name, values);
    }
  }
}

/** Field names shared by the layouts and the strategies. */
export const FIELD = {
  video: 'video_data', audio: 'audio_data', logitsA: 'logits_a', logitsV: 'logits_v',
  audioQuery: 'audio_query', videoQuery: 'video_query', probV: 'prob_v_att', probA: 'prob_a_att',
  importanceV: 'n_attn_av', importanceA: 'n_attn_va', avIds: 'att_map_av_ids', vaIds: 'att_map_va_ids',
} as const;

/** STELLA (§6.2): full tokenized patches [Lv, 3P²] / [La, P²], logits [D] ×2, queries [H, d_h] ×2, π and I. */
export function stellaLayout(c: ModelConfig): BufferLayout {
  const g = tokenGrid(c);
  const q = c.avmHeads * (c.embedDim / c.avmHeads);
  return [
    { name: FIELD.video, size: g.videoTokens * g.videoPatchDim, dtype: 'float32' },
    { name: FIELD.audio, size: g.audioTokens * g.audioPatchDim, dtype: 'float32' },
    { name: FIELD.logitsA, size: c.embedDim, dtype: 'float32' },
    { name: FIELD.logitsV, size: c.embedDim, dtype: 'float32' },
    { name: FIELD.audioQuery, size: q, dtype: 'float32' },
    { name: FIELD.videoQuery, size: q, dtype: 'float32' },
    { name: FIELD.probV, size: g.videoTokens, dtype: 'float32' },
    { name: FIELD.probA, size: g.audioTokens, dtype: 'float32' },
    { name: FIELD.importanceV, size: g.videoTokens, dtype: 'float32' },
    { name: FIELD.importanceA, size: g.audioTokens, dtype: 'float32' },
  ];
}

/** STELLA+ (§5.5): the selected patches [K_v, 3P²] / [K_a, P²], their id permutations, logits and queries. */
export function stellaPlusLayout(c: ModelConfig, kV: number, kA: number): BufferLayout {
  const g = tokenGrid(c);
  const q = c.embedDim;
  return [
    { name: FIELD.video, size: kV * g.videoPatchDim, dtype: 'float32' },
    { name: FIELD.audio, size: kA * g.audioPatchDim, dtype: 'float32' },
    { name: FIELD.avIds, size: g.videoTokens, dtype: 'int32' },
    { name: FIELD.vaIds, size: g.audioTokens, dtype: 'int32' },
    { name: FIELD.logitsA, size: c.embedDim, dtype: 'float32' },
    { name: FIELD.logitsV, size: c.embedDim, dtype: 'float32' },
    { name: FIELD.audioQuery, size: q, dtype: 'float32' },
    { name: FIELD.videoQuery, size: q, dtype: 'float32' },
  ];
}

/** Baselines (§8): full patches; DER++ and the Random ablation add the logits. */
export function patchLayout(c: ModelConfig, opts: { logits?: boolean } = {}): BufferLayout {
  const g = tokenGrid(c);
  const base: FieldSpec[] = [
    { name: FIELD.video, size: g.videoTokens * g.videoPatchDim, dtype: 'float32' },
    { name: FIELD.audio, size: g.audioTokens * g.audioPatchDim, dtype: 'float32' },
  ];
  if (opts.logits) base.push({ name: FIELD.logitsA, size: c.embedDim, dtype: 'float32' }, { name: FIELD.logitsV, size: c.embedDim, dtype: 'float32' });
  return base;
}
