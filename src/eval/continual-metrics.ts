/**
 * Continual-learning metrics over an accuracy matrix.
 *
 * Behaviour: M[t][j] is R@K (percent) on task j's queries after training task t, t, j = 0..T−1.
 * Retrieval is zero-shot on every task at every stage, so M is a full T×T matrix (t < j exists).
 * - Average accuracy A = (1/T) Σ_j M[T−1][j].
 * - Forgetting F (textbook) = (1/(T−1)) Σ_{j<T−1} max_{j≤t≤T−2} (M[t][j] − M[T−1][j]).
 * - Forgetting F_authors (as coded in the reference scripts) = (1/(T−1)) Σ_{j=0}^{T−1}
 *   max_{0≤t≤T−2} (M[t][j] − M[T−1][j]): the sum includes the last task, the max includes stages
 *   before task j was learned, and nothing is clamped at 0.
 * - T = 1 (one task, e.g. multitask): there is no earlier stage, so both forgettings are defined as 0.
 * - `avg` = mean over R1/R5/R10 of A, F and F_authors (the tables' "Avg" columns).
 * - Across seeds: mean and population std (ddof 0, as NumPy's default).
 *
 * Ref: spec §9.3, §11 Q7, §12 item 12; paper-results.md §2.3.
 */
import type { RetrievalResult } from './retrieval.ts';

export type AccuracyMatrix = number[][];
export type RecallMetric = 'R1' | 'R5' | 'R10';
export type Direction = 'a2v' | 'v2a';
export const RECALL_METRICS: readonly RecallMetric[] = ['R1', 'R5', 'R10'];
export const DIRECTIONS: readonly Direction[] = ['a2v', 'v2a'];

export interface ContinualScores { A: number; F: number; F_authors: number; }
export type DirectionSummary = Record<RecallMetric | 'avg', ContinualScores>;
export type RetrievalSummary = Record<Direction, DirectionSummary>;
/** Accuracy matrices per direction and metric, as stored in results.json `retrieval`. */
export type RetrievalMatrices = Record<Direction, Record<RecallMetric, AccuracyMatrix>>;

/** Throws unless M is a non-empty square matrix of finite numbers. Returns T. */
export function checkAccuracyMatrix(m: AccuracyMatrix, name = 'accuracy matrix'): number {
  const T = m.length;
  if (T === 0) throw new RangeError(`${name}: empty (needs at least one stage)`);
  m.forEach((row, t) => {
    if (!Array.isArray(row) || row.length !== T) {
      throw new RangeError(`${name}: row ${t} has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${T} (a T×T matrix)`);
    }
    row.forEach((x, j) => {
      if (!Number.isFinite(x)) throw new RangeError(`${name}: entry [${t}][${j}] is ${x}, not a finite number`);
    });
  });
  return T;
}

export function averageAccuracy(m: AccuracyMatrix): number {
  const T = checkAccuracyMatrix(m);
  return m[T - 1].reduce((s, x) => s + x, 0) / T;
}

/** Textbook forgetting: tasks j < T−1, max over stages from j's own stage to T−2. */
export function forgetting(m: AccuracyMatrix): number {
  const T = checkAccuracyMatrix(m);
  if (T === 1) return 0;
  let total = 0;
  for (let j = 0; j < T - 1; j++) {
    let best = -Infinity;
    for (let t = j; t <= T - 2; t++) best = Math.max(best, m[t][j] - m[T - 1][j]);
    total += best;
  }
  return total / (T - 1);
}

/** Forgetting exactly as the reference scripts compute it (spec §9.3, Q7). */
export function forgettingAuthors(m: AccuracyMatrix): number {
  const T = checkAccuracyMatrix(m);
  if (T === 1) return 0;
  let total = 0;
  for (let j = 0; j < T; j++) {
    let best = -Infinity;
    for (let t = 0; t <= T - 2; t++) best = Math.max(best, m[t][j] - m[T - 1][j]);
    total += best;
  }
  return total / (T - 1);
}

export function continualScores(m: AccuracyMatrix): ContinualScores {
  return { A: averageAccuracy(m), F: forgetting(m), F_authors: forgettingAuthors(m) };
}

/** A/F/F_authors per direction and metric, plus their mean over R1/R5/R10 (`avg`). */
export function summarizeRetrieval(matrices: RetrievalMatrices): RetrievalSummary {
  const out = {} as RetrievalSummary;
  for (const d of DIRECTIONS) {
    const perMetric = {} as DirectionSummary;
    for (const k of RECALL_METRICS) {
      const m = matrices[d]?.[k];
      if (!m) throw new Error(`retrieval matrices: missing ${d}.${k}`);
      checkAccuracyMatrix(m, `retrieval.${d}.${k}`);
      perMetric[k] = continualScores(m);
    }
    const mean = (f: keyof ContinualScores) => RECALL_METRICS.reduce((s, k) => s + perMetric[k][f], 0) / RECALL_METRICS.length;
    perMetric.avg = { A: mean('A'), F: mean('F'), F_authors: mean('F_authors') };
    out[d] = perMetric;
  }
  return out;
}

/**
 * Builds M[t][j] from the retrieval result after each stage t: the per-category row of task j.
 * `stages[t]` must hold a per-category row for every task name.
 */
export function accuracyMatrixFromStages(
  stages: RetrievalResult[],
  tasks: string[],
  direction: Direction,
  metric: RecallMetric,
): AccuracyMatrix {
  if (stages.length !== tasks.length) {
    throw new RangeError(`accuracy matrix: ${stages.length} evaluation stages for ${tasks.length} tasks; need one per task`);
  }
  return stages.map((stage, t) =>
    tasks.map((task) => {
      const row = stage.perCategory[task];
      if (!row) throw new Error(`accuracy matrix: stage ${t} has no retrieval row for task '${task}' (categories: ${Object.keys(stage.perCategory).join(', ')})`);
      return row[direction][metric];
    }),
  );
}

/** All six matrices (a2v/v2a × R1/R5/R10) from per-stage retrieval results. */
export function retrievalMatricesFromStages(stages: RetrievalResult[], tasks: string[]): RetrievalMatrices {
  const out = {} as RetrievalMatrices;
  for (const d of DIRECTIONS) {
    out[d] = {} as Record<RecallMetric, AccuracyMatrix>;
    for (const k of RECALL_METRICS) out[d][k] = accuracyMatrixFromStages(stages, tasks, d, k);
  }
  return out;
}

/** Mean and population standard deviation (ddof 0). */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) throw new RangeError('meanStd: no values');
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const variance = values.reduce((s, x) => s + (x - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Seed aggregation of whole summaries: every leaf becomes {mean, std}. */
export function summaryAcrossSeeds(summaries: readonly RetrievalSummary[]) {
  if (summaries.length === 0) throw new RangeError('summaryAcrossSeeds: no summaries');
  const out = {} as Record<Direction, Record<RecallMetric | 'avg', Record<keyof ContinualScores, { mean: number; std: number }>>>;
  for (const d of DIRECTIONS) {
    out[d] = {} as (typeof out)[Direction];
    for (const k of [...RECALL_METRICS, 'avg'] as const) {
      out[d][k] = {
        A: meanStd(summaries.map((s) => s[d][k].A)),
        F: meanStd(summaries.map((s) => s[d][k].F)),
        F_authors: meanStd(summaries.map((s) => s[d][k].F_authors)),
      };
    }
  }
  return out;
}
