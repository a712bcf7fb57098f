/**
 * STELLA's per-step patch selection over current + replay rows, on the CPU with typed arrays.
 *
 * Behaviour (spec §5.2 steps (6)–(8); first step (4)):
 *   - no replay (`replay` undefined: the buffer was empty): deterministic top-K by importance, video ids =
 *     importance order, audio ids = importance order (token level, no chunk rule) — spec §11 Q10;
 *   - otherwise, draws in the reference's order: X_v ~ Bern(π_v), X_a ~ Bern(π_a), Xb_v ~ Bern(replay π_v);
 *     video ids = weighted permutation of [I_v with X_v zeroed ; replay I_v with Xb_v zeroed];
 *     Xb_a ~ Bern(replay π_a); audio = coreAudioPrune([I_a ; replay I_a], [X_a ; Xb_a], K_a), ids kept-first.
 * A replay block with M = 0 rows forces the sampled path (the Random ablation uses it from step 1).
 * Inputs: flat [N·L] arrays (current), optional replay [M·L] arrays, K_v, K_a, the audio grid.
 * Output: id permutations for Mode D (first K_v / K_a entries are the selection) and every intermediate
 * mask and weight (for golden checks, reports and visualisation).
 * Options: `videoIds` 'sampled' (the multinomial order, as STELLA) or 'selected-ascending' (STELLA+, §5.5).
 * Draws: an `Rng`, or `PinnedSelectionDraws` with every uniform, order and coin given (golden G2).
 * Ref: spec §5.2, §5.3, §5.5, §11 Q10–Q12, Q19, Q30.
 */
import type { Rng } from '../core/rng.ts';
import {
  bernoulliMask, coreAudioPrune, drawUniforms, keptFirstIds, selectedFirstIds, weightedOrder, zeroPruned,
  DEFAULT_AUDIO_GRID, type AudioGrid,
} from './selection.ts';

export interface SelectionRows {
  /** Importance I_v [R·Lv], I_a [R·La]. */
  importanceV: Float32Array;
  importanceA: Float32Array;
  /** Prune probabilities π_v [R·Lv], π_a [R·La]. */
  probV: Float32Array;
  probA: Float32Array;
}

export interface StellaSelectionInput {
  current: SelectionRows & {
    /** Descending importance orders [N·L] (used at the first step). */
    orderV: ArrayLike<number>;
    orderA: ArrayLike<number>;
  };
  /** Replay rows (stored importance and π); undefined when the buffer was empty. */
  replay?: SelectionRows;
  N: number;
  Lv: number;
  La: number;
  kV: number;
  kA: number;
  grid?: AudioGrid;
  videoIds?: 'sampled' | 'selected-ascending';
}

/** Every draw of one selection, pinned (golden G2). Uniforms are flat [rows·L]. */
export interface PinnedSelectionDraws {
  uniformsCurrentV: ArrayLike<number>;
  uniformsCurrentA: ArrayLike<number>;
  uniformsReplayV: ArrayLike<number>;
  uniformsReplayA: ArrayLike<number>;
  /** Video weighted permutation [(N+M)·Lv]. */
  videoOrder: ArrayLike<number>;
  /** Audio chunk orders [(N+M)·C] and coins [N+M]. */
  chunkOrder: ArrayLike<number>;
  coin: ArrayLike<number>;
}

export interface StellaSelection {
  /** Rows selected: N + M (N at the first step). */
  rows: number;
  firstStep: boolean;
  /** [rows·Lv] / [rows·La] int32 permutations; the first K entries are the selected patches. */
  avIds: Int32Array;
  vaIds: Int32Array;
  /** Bernoulli masks (1 = pruned): current [N·L], replay [M·L]; empty at the first step. */
  pruneV: Uint8Array;
  pruneA: Uint8Array;
  replayPruneV: Uint8Array;
  replayPruneA: Uint8Array;
  /** Video sampling weights [rows·Lv] (pruned importance). */
  videoWeights: Float32Array;
  /** Audio prune mask into / out of the chunk rule [rows·La]. */
  audioPruneIn: Uint8Array;
  audioPruneOut: Uint8Array;
  chunkScores: Float32Array;
  chunkOrder: Int32Array;
  coinUsed: Uint8Array;
}

function isRng(x: Rng | PinnedSelectionDraws): x is Rng {
  return typeof (x as Rng).uniform === 'function';
}

function concat<T extends Float32Array | Uint8Array>(a: T, b: T): T {
  const out = new (a.constructor as any)(a.length + b.length) as T;
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function checkRows(name: string, rows: SelectionRows, R: number, Lv: number, La: number): void {
  const want: [keyof SelectionRows, number][] = [['importanceV', R * Lv], ['importanceA', R * La], ['probV', R * Lv], ['probA', R * La]];
  for (const [k, n] of want) {
    if (rows[k].length !== n) throw new RangeError(`stellaSelection: ${name}.${k} has ${rows[k].length} values, expected ${n} (${R} rows)`);
  }
}

export function stellaSelection(input: StellaSelectionInput, draws: Rng | PinnedSelectionDraws): StellaSelection {
  const { N, Lv, La, kV, kA, current, replay } = input;
  const grid = input.grid ?? DEFAULT_AUDIO_GRID;
  checkRows('current', current, N, Lv, La);
  if (!replay) {
    return {
      rows: N, firstStep: true,
      avIds: Int32Array.from(current.orderV), vaIds: Int32Array.from(current.orderA),
      pruneV: new Uint8Array(0), pruneA: new Uint8Array(0), replayPruneV: new Uint8Array(0), replayPruneA: new Uint8Array(0),
      videoWeights: Float32Array.from(current.importanceV), audioPruneIn: new Uint8Array(0), audioPruneOut: new Uint8Array(0),
      chunkScores: new Float32Array(0), chunkOrder: new Int32Array(0), coinUsed: new Uint8Array(0),
    };
  }
  const M = replay.importanceV.length / Lv;
  if (!Number.isInteger(M)) throw new RangeError(`stellaSelection: replay.importanceV has ${replay.importanceV.length} values, not a multiple of Lv = ${Lv}`);
  checkRows('replay', replay, M, Lv, La);
  const rng = isRng(draws) ? draws : undefined;
  const pinned = isRng(draws) ? undefined : draws;
  const uniforms = (n: number, pin?: ArrayLike<number>) => (pin ?? drawUniforms(n, rng!));

  // Draw order as the reference (§5.2 "Random-draw order"): X_v, X_a, Xb_v, video multinomial, Xb_a, chunks, coins.
  const pruneV = bernoulliMask(current.probV, uniforms(N * Lv, pinned?.uniformsCurrentV));
  const pruneA = bernoulliMask(current.probA, uniforms(N * La, pinned?.uniformsCurrentA));
  const replayPruneV = bernoulliMask(replay.probV, uniforms(M * Lv, pinned?.uniformsReplayV));
  const videoWeights = concat(zeroPruned(current.importanceV, pruneV), zeroPruned(replay.importanceV, replayPruneV));
  const rows = N + M;
  const order = weightedOrder(videoWeights, rows, Lv, rng ?? pinned!.videoOrder);
  const avIds = input.videoIds === 'selected-ascending' ? selectedFirstIds(order, rows, Lv, kV) : order;

  const replayPruneA = bernoulliMask(replay.probA, uniforms(M * La, pinned?.uniformsReplayA));
  const audioPruneIn = concat(pruneA, replayPruneA);
  const audioWeights = concat(Float32Array.from(current.importanceA), Float32Array.from(replay.importanceA));
  const audio = coreAudioPrune({ data: audioWeights, rows }, audioPruneIn, kA, pinned ? { order: pinned.chunkOrder, coin: pinned.coin, grid } : { rng, grid });
  const vaIds = keptFirstIds(audio.pruned, rows, La);
  return {
    rows, firstStep: false, avIds, vaIds, pruneV, pruneA, replayPruneV, replayPruneA, videoWeights,
    audioPruneIn, audioPruneOut: audio.pruned, chunkScores: audio.chunkScores, chunkOrder: audio.order, coinUsed: audio.coinUsed,
  };
}
