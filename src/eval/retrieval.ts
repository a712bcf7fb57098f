/**
 * Zero-shot audio↔video retrieval metrics.
 *
 * Behaviour: given paired clip embeddings `audio` [n, D] and `video` [n, D] (row i of each is the
 * same clip), build the cosine similarity matrix, rank the ground-truth item (the diagonal) of every
 * query row, and report R@1/R@5/R@10 (percent) and MR (median rank + 1) for audio→video
 * (rows = audio queries, columns = video gallery) and video→audio. Per-category rows restrict the
 * QUERY rows to one category; the gallery always stays the whole retrieval set.
 *
 * Inputs: Float32Array (row-major, with `dim`) or 2-D tf tensors; optional `categories` (one label
 * per clip). The embeddings are re-normalised here, as the reference does in `get_sim_mat`, so
 * un-normalised input is also fine.
 * Options: `tieMode` 'strict' (default) | 'authors'; `queryBatch` rows per matmul (default 1024).
 *
 * Rank: rank_i = number of gallery items whose similarity is STRICTLY greater than Sim[i, i]
 * (0-based), so a tie with the ground truth counts in the query's favour. The reference instead sorts
 * each row and takes every position holding the diagonal's value: a row where the diagonal ties with
 * k other items yields k + 1 entries (ranks g, g+1, …, g+k with g the strict count), all of which
 * enter the denominator. `tieMode: 'authors'` reproduces that; with float features ties are rare and
 * both agree (spec §11 Q6).
 *
 * Ref: spec §9.2, §11 Q6, §12 item 11 (train_algo/retrieval.py `compute_metrics`).
 *
 * ## Example
 * ```ts
 * const r = retrievalMetrics(audioEmb, videoEmb, { dim: 96, categories });
 * r.all.a2v.R1; r.perCategory.music.v2a.MR;
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const retrievalOptionsSchema = z.object({
  /** Embedding width; required when the inputs are flat Float32Arrays. */
  dim: z.number().int().positive().optional(),
  /** One category label per clip (query rows of a category form its per-category row). */
  categories: z.array(z.string()).optional(),
  tieMode: z.enum(['strict', 'authors']).default('strict'),
  /** Query rows per similarity matmul, bounding peak memory at queryBatch × n floats. */
  queryBatch: z.number().int().positive().default(1024),
});
export type RetrievalOptions = z.input<typeof retrievalOptionsSchema>;

/** R@K in percent (0–100); MR = median(rank) + 1. */
export interface RecallRow { R1: number; R5: number; R10: number; MR: number; }
export interface DirectionRows { a2v: RecallRow; v2a: RecallRow; }
export interface RetrievalResult {
  /** Clips in the retrieval set (gallery size). */
  n: number;
  all: DirectionRows;
  perCategory: Record<string, DirectionRows>;
}

export type EmbeddingInput = Float32Array | tf.Tensor2D;

/**
 * Per query row of `Sim = normalize(query) · normalize(gallery)ᵀ`: the number of gallery items
 * strictly more similar than the diagonal, and how many others tie with it exactly.
 */
export function diagonalRanks(
  query: tf.Tensor2D,
  gallery: tf.Tensor2D,
  queryBatch = 1024,
): { greater: Int32Array; ties: Int32Array } {
  const [n, d] = query.shape;
  if (gallery.shape[0] !== n || gallery.shape[1] !== d) {
    throw new RangeError(`retrieval: query is [${query.shape}] but gallery is [${gallery.shape}]; both must be [n, D] with aligned rows`);
  }
  const greater = new Int32Array(n);
  const ties = new Int32Array(n);
  // One transpose up front: the wasm backend runs a plain 2-D matmul far faster than a transposed one.
  const galleryT = tf.tidy(() => tf.transpose(l2Normalize(gallery)));
  try {
    for (let start = 0; start < n; start += queryBatch) {
      const rows = Math.min(queryBatch, n - start);
      const [g, e] = tf.tidy(() => {
        const q = l2Normalize(tf.slice(query, [start, 0], [rows, d]));
        const sim = tf.matMul(q, galleryT);
        // Sim[i, start + i] for each row of the block.
        const diagMask = tf.oneHot(tf.range(start, start + rows, 1, 'int32'), n);
        const diag = tf.sum(tf.mul(sim, diagMask), 1, true);
        const gt = tf.sum(tf.cast(tf.greater(sim, diag), 'int32'), 1);
        // Equal entries minus the diagonal itself.
        const eq = tf.sub(tf.sum(tf.cast(tf.equal(sim, diag), 'int32'), 1), 1);
        return [gt, eq];
      });
      greater.set(g.dataSync() as Int32Array, start);
      ties.set(e.dataSync() as Int32Array, start);
      g.dispose();
      e.dispose();
    }
  } finally {
    galleryT.dispose();
  }
  return { greater, ties };
}

function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D);
}

/** Rank entries for the chosen rows: one per row (strict), or one per tied position (authors). */
function rankEntries(greater: Int32Array, ties: Int32Array, rows: number[], tieMode: 'strict' | 'authors'): number[] {
  const out: number[] = [];
  for (const i of rows) {
    if (tieMode === 'strict') out.push(greater[i]);
    else for (let k = 0; k <= ties[i]; k++) out.push(greater[i] + k);
  }
  return out;
}

/** R@1/5/10 (percent) and MR from 0-based ranks. */
export function recallFromRanks(ranks: ArrayLike<number>): RecallRow {
  const m = ranks.length;
  if (m === 0) return { R1: NaN, R5: NaN, R10: NaN, MR: NaN };
  let r1 = 0, r5 = 0, r10 = 0;
  const sorted = Float64Array.from(ranks).sort();
  for (const r of sorted) {
    if (r < 1) r1++;
    if (r < 5) r5++;
    if (r < 10) r10++;
  }
  // NumPy median: mean of the two middle values for an even count.
  const median = m % 2 ? sorted[(m - 1) / 2] : (sorted[m / 2 - 1] + sorted[m / 2]) / 2;
  return { R1: (100 * r1) / m, R5: (100 * r5) / m, R10: (100 * r10) / m, MR: median + 1 };
}

function toTensor(x: EmbeddingInput, name: string, dim?: number): tf.Tensor2D {
  if (x instanceof Float32Array) {
    if (!dim) throw new Error(`retrieval: ${name} is a Float32Array, so options.dim (the embedding width) is required`);
    if (x.length % dim !== 0) throw new RangeError(`retrieval: ${name} has ${x.length} values, not a multiple of dim ${dim}`);
    return tf.tensor2d(x, [x.length / dim, dim]);
  }
  if (x.rank !== 2) throw new RangeError(`retrieval: ${name} must be a 2-D [n, D] tensor, got shape [${x.shape}]`);
  return tf.clone(x);
}

/**
 * Retrieval metrics for both directions, over all rows and per category.
 * Tensors passed in are not disposed; everything created here is.
 */
export function retrievalMetrics(audio: EmbeddingInput, video: EmbeddingInput, options: RetrievalOptions = {}): RetrievalResult {
  const opts = retrievalOptionsSchema.parse(options);
  const a = toTensor(audio, 'audio embeddings', opts.dim);
  const v = toTensor(video, 'video embeddings', opts.dim);
  try {
    if (a.shape[0] !== v.shape[0] || a.shape[1] !== v.shape[1]) {
      throw new RangeError(`retrieval: audio embeddings are [${a.shape}] but video embeddings are [${v.shape}]; they must match`);
    }
    const n = a.shape[0];
    if (n === 0) throw new RangeError('retrieval: no clips (n = 0)');
    if (opts.categories && opts.categories.length !== n) {
      throw new RangeError(`retrieval: ${opts.categories.length} categories given for ${n} clips`);
    }
    const a2v = diagonalRanks(a, v, opts.queryBatch);
    const v2a = diagonalRanks(v, a, opts.queryBatch);
    const rowsOf = (rows: number[]): DirectionRows => ({
      a2v: recallFromRanks(rankEntries(a2v.greater, a2v.ties, rows, opts.tieMode)),
      v2a: recallFromRanks(rankEntries(v2a.greater, v2a.ties, rows, opts.tieMode)),
    });
    const allRows = Array.from({ length: n }, (_, i) => i);
    const perCategory: Record<string, DirectionRows> = {};
    if (opts.categories) {
      const byCategory = new Map<string, number[]>();
      opts.categories.forEach((c, i) => {
        if (!byCategory.has(c)) byCategory.set(c, []);
        byCategory.get(c)!.push(i);
      });
      for (const [c, rows] of byCategory) perCategory[c] = rowsOf(rows);
    }
    return { n, all: rowsOf(allRows), perCategory };
  } finally {
    a.dispose();
    v.dispose();
  }
}

/** R@K a model with no knowledge reaches, for one positive per query in a gallery of G clips. */
export interface ChanceLevels {
  /** Gallery size G (every test clip, as `retrievalMetrics` ranks against the whole set). */
  gallery: number;
  formula: string;
  R1: number;
  R5: number;
  R10: number;
  /** Mean of R1/R5/R10, comparable to the summaries' `avg`. */
  avg: number;
}

export const CHANCE_FORMULA = 'R@K chance = min(K, G) / G × 100 (one positive per query, gallery of G test clips)';

/**
 * Chance R@K: a random ranking puts the one positive among the first K of G items with probability
 * min(K, G) / G; ties count for the query (strict ranks), so random embeddings land there on average.
 */
export function chanceLevels(gallery: number): ChanceLevels {
  if (!Number.isInteger(gallery) || gallery <= 0) throw new RangeError(`chance levels need a gallery of at least one clip, got ${gallery}`);
  const at = (k: number) => (100 * Math.min(k, gallery)) / gallery;
  const [R1, R5, R10] = [at(1), at(5), at(10)];
  return { gallery, formula: CHANCE_FORMULA, R1, R5, R10, avg: (R1 + R5 + R10) / 3 };
}
