/**
 * Patch selection primitives: Bernoulli pruning, weighted video permutation, the audio time-chunk
 * rule, and kept-id orders. Typed arrays on the CPU: these are small ([B', L]) and the chunk rule is
 * inherently sequential per row.
 *
 * Randomness is injectable everywhere so golden cases can pin every draw:
 *   - Bernoulli: `bernoulliMask(p, u)` is `u < p` with given uniforms (`drawUniforms(n, rng)` makes them);
 *   - video: `weightedOrder(W, B, L, rng | pinnedOrder)` = torch.multinomial(W, L, replacement=False)
 *     per row (Rng.weightedPermutation, Efraimidis–Spirakis keys);
 *   - audio: `coreAudioPrune({ data: W, rows: B }, P, K, { order?, coin?, rng? } | rng)` (spec §5.3), chunk order and coins
 *     pinned or drawn (the coin only for rows that need it, as the reference).
 * Masks use 1 = pruned. Id orders are "kept ascending, then pruned ascending" (deterministic; the
 * reference's unstable argsort of the mask gives the same sets, spec §11 Q19).
 * Ref: spec §5.2 steps (6)–(8), §5.3, §5.5 (STELLA+ video ids), §11 Q10, Q12, Q19; golden G2, G3.
 */
import type { Rng } from '../core/rng.ts';

/** How the audio tokens tile the spectrogram: F frequency tokens per time row, c time rows per chunk. */
export interface AudioGrid {
  freqTokens: number;
  chunkTimes: number;
}
export const DEFAULT_AUDIO_GRID: AudioGrid = { freqTokens: 8, chunkTimes: 4 };

/** `n` uniforms in [0, 1) from the stream (two words each). */
export function drawUniforms(n: number, rng: Rng): Float32Array {
  const u = new Float32Array(n);
  for (let i = 0; i < n; i++) u[i] = rng.uniform();
  return u;
}

/** Bernoulli(p) with given uniforms: 1 (pruned) where u < p. */
export function bernoulliMask(prob: ArrayLike<number>, uniforms: ArrayLike<number>): Uint8Array {
  if (prob.length !== uniforms.length) throw new RangeError(`bernoulliMask: ${prob.length} probabilities but ${uniforms.length} uniforms`);
  const m = new Uint8Array(prob.length);
  for (let i = 0; i < prob.length; i++) m[i] = uniforms[i] < prob[i] ? 1 : 0;
  return m;
}

/** Copy of `weights` with the pruned entries set to 0. */
export function zeroPruned(weights: ArrayLike<number>, pruned: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(weights);
  for (let i = 0; i < out.length; i++) if (pruned[i]) out[i] = 0;
  return out;
}

/**
 * Per row, a weighted random permutation of 0..L-1 (first entries most likely the heaviest).
 * Zero-weight entries always come after every positive one. `source` is an Rng or a pinned [B·L] order.
 */
export function weightedOrder(weights: ArrayLike<number>, B: number, L: number, source: Rng | ArrayLike<number>): Int32Array {
  if (weights.length !== B * L) throw new RangeError(`weightedOrder: weights have ${weights.length} values, expected B·L = ${B}·${L}`);
  if (!('weightedPermutation' in source)) {
    if (source.length !== B * L) throw new RangeError(`weightedOrder: pinned order has ${source.length} values, expected ${B * L}`);
    return Int32Array.from(source);
  }
  const out = new Int32Array(B * L);
  const w = Float64Array.from(weights);
  for (let b = 0; b < B; b++) out.set(source.weightedPermutation(w.subarray(b * L, (b + 1) * L)), b * L);
  return out;
}

/** Per row: ids with mask 0 ascending, then ids with mask 1 ascending. */
export function keptFirstIds(pruned: ArrayLike<number>, B: number, L: number): Int32Array {
  const out = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    let o = b * L;
    for (let j = 0; j < L; j++) if (!pruned[b * L + j]) out[o++] = j;
    for (let j = 0; j < L; j++) if (pruned[b * L + j]) out[o++] = j;
  }
  return out;
}

/** Per row: the first `k` ids of `order` ascending, then the rest ascending (STELLA+ video ids, spec §5.5, Q30). */
export function selectedFirstIds(order: ArrayLike<number>, B: number, L: number, k: number): Int32Array {
  const notSelected = new Uint8Array(B * L).fill(1);
  for (let b = 0; b < B; b++) for (let j = 0; j < k; j++) notSelected[b * L + order[b * L + j]] = 0;
  return keptFirstIds(notSelected, B, L);
}

/** Number of zeros per row of a 0/1 mask (kept tokens). */
export function keptCounts(pruned: ArrayLike<number>, B: number, L: number): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let j = 0; j < L; j++) if (!pruned[b * L + j]) n++;
    out[b] = n;
  }
  return out;
}

/** Chunk scores: sum over the F frequency tokens of each time row, then mean over the c rows of a chunk. [B, C]. */
export function audioChunkScores(W: ArrayLike<number>, B: number, L: number, grid: AudioGrid = DEFAULT_AUDIO_GRID): Float32Array {
  const { freqTokens: F, chunkTimes: c } = grid;
  const T = L / F, C = T / c;
  const out = new Float32Array(B * C);
  for (let b = 0; b < B; b++)
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let t = k * c; t < (k + 1) * c; t++) {
        let row = 0;
        for (let f = 0; f < F; f++) row += W[b * L + t * F + f];
        s += Math.fround(row);
      }
      out[b * C + k] = s / c;
    }
  return out;
}

/** A row-major [rows, L] matrix as a flat array. */
export interface RowMatrix {
  data: ArrayLike<number>;
  rows: number;
}

export interface CoreAudioOptions {
  /** Pinned chunk visiting orders [B·C] (each row a permutation of 0..C-1). */
  order?: ArrayLike<number>;
  /** Pinned coins [B] (0: trim from the chunk's end, 1: from its start); read only for rows that need one. */
  coin?: ArrayLike<number>;
  /** Draws whatever is not pinned: the chunk order (weighted by chunk score), then coins as needed. */
  rng?: Rng;
  grid?: AudioGrid;
}

export interface CoreAudioResult {
  /** [B·L], 1 = pruned; at most K zeros per row (exactly K when the input had ≥ K). */
  pruned: Uint8Array;
  /** [B·C] chunk scores the order is drawn from. */
  chunkScores: Float32Array;
  /** [B·C] the chunk order used. */
  order: Int32Array;
  /** [B] 1 where the row flipped its coin. */
  coinUsed: Uint8Array;
}

/**
 * The audio time-chunk rule (spec §5.3): visit chunks in importance-weighted random order, keep whole
 * chunks while the count of non-pruned tokens stays ≤ K; trim the overflowing chunk from the side that
 * keeps contiguity with an already-visited neighbour (coin if both or neither), prune every later chunk.
 * `P` (1 = pruned) is not modified.
 */
export function coreAudioPrune(W: RowMatrix, P: ArrayLike<number>, K: number, opts: CoreAudioOptions | Rng = {}): CoreAudioResult {
  const o: CoreAudioOptions = 'weightedPermutation' in opts ? { rng: opts } : opts;
  const grid = o.grid ?? DEFAULT_AUDIO_GRID;
  const { freqTokens: F, chunkTimes: c } = grid;
  const S = F * c;
  const B = W.rows;
  if (!Number.isInteger(B) || B < 0 || W.data.length % Math.max(B, 1) !== 0) throw new RangeError(`coreAudioPrune: ${W.data.length} scores do not split into ${B} rows`);
  const L = B === 0 ? 0 : W.data.length / B, C = L / S;
  if (!Number.isInteger(C)) throw new RangeError(`coreAudioPrune: ${L} tokens per row are not whole chunks of ${F} frequency tokens × ${c} time rows`);
  if (P.length !== W.data.length) throw new RangeError(`coreAudioPrune: W has ${W.data.length} values but P has ${P.length}`);
  if (o.coin && o.coin.length !== B) throw new RangeError(`coreAudioPrune: pinned coin has ${o.coin.length} values, expected one per row (${B})`);
  if (!Number.isInteger(K) || K < 0) throw new RangeError(`coreAudioPrune: K must be a non-negative integer, got ${K}`);
  const chunkScores = audioChunkScores(W.data, B, L, grid);
  let order: Int32Array;
  if (o.order) {
    if (o.order.length !== B * C) throw new RangeError(`coreAudioPrune: pinned order has ${o.order.length} values, expected B·C = ${B}·${C}`);
    order = Int32Array.from(o.order);
  } else {
    if (!o.rng) throw new Error('coreAudioPrune: give either a pinned `order` or an `rng`');
    order = weightedOrder(chunkScores, B, C, o.rng);
  }
  const pruned = Uint8Array.from(P, (x) => (x ? 1 : 0));
  const coinUsed = new Uint8Array(B);
  for (let b = 0; b < B; b++) {
    const base = b * L;
    const prunedInChunk = (k: number) => { let n = 0; for (let j = 0; j < S; j++) n += pruned[base + k * S + j]; return n; };
    let kept = 0;
    for (let i = 0; i < C; i++) {
      const k = order[b * C + i];
      kept += S - prunedInChunk(k);
      if (kept <= K) continue;
      const excess = kept - K;
      const earlier = Array.prototype.slice.call(order, b * C, b * C + i) as number[];
      const left = earlier.includes(k - 1), right = earlier.includes(k + 1);
      let fromEnd: boolean;
      if (left && !right) fromEnd = true;
      else if (right && !left) fromEnd = false;
      else {
        coinUsed[b] = 1;
        const coin = o.coin ? o.coin[b] : o.rng ? o.rng.int(2) : undefined;
        if (coin === undefined) throw new Error(`coreAudioPrune: row ${b} needs a coin but neither \`coin\` nor \`rng\` was given`);
        fromEnd = coin === 0;
      }
      let count = 0;
      for (let s = 0; s < S && count < excess; s++) {
        const tok = base + k * S + (fromEnd ? S - 1 - s : s);
        if (!pruned[tok]) count++;
        pruned[tok] = 1;
      }
      for (let r = i + 1; r < C; r++) pruned.fill(1, base + order[b * C + r] * S, base + (order[b * C + r] + 1) * S);
      break;
    }
  }
  return { pruned, chunkScores, order, coinUsed };
}
