/**
 * results.json: the one summary file a run writes, read by the report and by comparisons.
 *
 * Shape (percent for every R@K; matrices are T×T, row = stage "after task t", column = task j):
 * ```
 * { backend, selector, config, tasks: [names],
 *   retrieval: { a2v: { R1: M, R5: M, R10: M }, v2a: { … } },
 *   summary:   { a2v: { R1: {A, F, F_authors}, R5, R10, avg }, v2a: { … } },
 *   chance:    { gallery: G, formula, R1, R5, R10, avg },   R@K = min(K, G) / G × 100
 *   localization: { video?: {meanAuc, clips, skipped}, audio?: { … } },
 *   memory: { bufferBytes, peakTensorBytes, peakRssBytes },
 *   timing: { wallSeconds, stepMsMedian },
 *   errors: [ { path, stage, message } ], metrics?: { stages, queues, … },
 *   init?: { backbone: file | 'none', avm: 'pretrained' | 'random', sha256?, note? } }
 * ```
 * `parseResults` validates a parsed JSON value and checks every matrix is T×T for T = tasks.length.
 * `meanAuc` is null when no clip had both positive and negative patches (JSON has no NaN).
 * Ref: spec §9.3 (matrix, A, F), src/eval/continual-metrics.ts (summary), src/eval/localization.ts.
 */
import { z } from 'zod';

const matrixSchema = z.array(z.array(z.number()));
const recallMatricesSchema = z.object({ R1: matrixSchema, R5: matrixSchema, R10: matrixSchema });
const scoresSchema = z.object({ A: z.number(), F: z.number(), F_authors: z.number() });
const directionSummarySchema = z.object({ R1: scoresSchema, R5: scoresSchema, R10: scoresSchema, avg: scoresSchema });
const localizationSummarySchema = z.object({
  meanAuc: z.number().nullable(),
  clips: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
});

export const resultsSchema = z
  .object({
    /** Resolved tensor backend, e.g. `wasm`. */
    backend: z.string(),
    /** Selector plugin name, e.g. `stella`, `random`. */
    selector: z.string(),
    /** The resolved run configuration. */
    config: z.record(z.string(), z.unknown()),
    /** Task names in training order. */
    tasks: z.array(z.string()).min(1),
    retrieval: z.object({ a2v: recallMatricesSchema, v2a: recallMatricesSchema }),
    summary: z.object({ a2v: directionSummarySchema, v2a: directionSummarySchema }),
    /**
     * What R@K a model that learned nothing reaches: one positive per query in a gallery of G test
     * clips gives min(K, G) / G × 100 (src/eval/retrieval.ts `chanceLevels`). Optional only so that
     * results.json files written before it existed still read.
     */
    chance: z.object({
      gallery: z.number().int().positive(),
      formula: z.string(),
      R1: z.number(), R5: z.number(), R10: z.number(), avg: z.number(),
    }).optional(),
    localization: z.object({ video: localizationSummarySchema.optional(), audio: localizationSummarySchema.optional() }),
    memory: z.object({
      /** Replay buffer payload. */
      bufferBytes: z.number().nonnegative(),
      /** Peak bytes held by tensors (tf.memory().numBytes high-water mark). */
      peakTensorBytes: z.number().nonnegative(),
      /** Peak resident set size of the process. */
      peakRssBytes: z.number().nonnegative(),
    }),
    timing: z.object({ wallSeconds: z.number().nonnegative(), stepMsMedian: z.number().nonnegative() }),
    errors: z.array(z.object({ path: z.string(), stage: z.string(), message: z.string() })),
    /** The graph's per-stage counts, queue depths, latency and error counts at the end (src/graph/metrics.ts). */
    metrics: z.record(z.string(), z.unknown()).optional(),
    /** The weights the model started from (src/method/model-init.ts). */
    init: z.object({
      backbone: z.string(),
      avm: z.enum(['pretrained', 'random']),
      sha256: z.string().optional(),
      note: z.string().optional(),
    }).optional(),
  })
  .superRefine((r, ctx) => {
    const T = r.tasks.length;
    for (const d of ['a2v', 'v2a'] as const) {
      for (const k of ['R1', 'R5', 'R10'] as const) {
        const m = r.retrieval[d][k];
        if (m.length !== T || m.some((row) => row.length !== T)) {
          ctx.addIssue({
            code: 'custom',
            path: ['retrieval', d, k],
            message: `must be ${T}×${T} (one row per stage, one column per task), got ${m.length} rows of lengths [${m.map((row) => row.length)}]`,
          });
        }
      }
    }
  });

export type Results = z.infer<typeof resultsSchema>;
export type LocalizationResult = z.infer<typeof localizationSummarySchema>;

/** Validates a results object; the error names the source and each offending field. */
export function parseResults(value: unknown, source = 'results.json'): Results {
  const parsed = resultsSchema.safeParse(value);
  if (!parsed.success) throw new Error(`In '${source}': ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
