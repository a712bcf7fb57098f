/**
 * `source`: manifest → a stream of `ClipRef`s with a `TaskEnd` after each task.
 *
 * Behaviour: tasks in manifest order; for each task, `epochs` passes over its `split` rows
 * (reshuffled per epoch when `shuffle`, with `rng.fork('<task>/epoch-<e>')`, so the order does
 * not depend on anything else drawn), then one `TaskEnd`. `index` is the row's position in the
 * task's split and stays the same across epochs. Produces lazily: one item per request.
 *
 * Inputs:  none (a graph root).
 * Outputs: `clip`, `task-end`.
 * Options (defaults): manifest (required), split 'train', epochs 1, shuffle false,
 *   tasks [] (all, else only these names, in manifest order), limit 0 (clips per task; 0 = all).
 * Roles: ManifestLoader, Rng.
 *
 * Example node:
 *   source: { stage: source, options: { manifest: data/corpus/manifest.json, epochs: 2 } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * source({ manifest: 'm.json' }, { loader, rng }).pipe(decode(), tokenize(), batch({ size: 4 }))
 * ```
 * Ref: spec §1.5 (epochs restart per task), §9.1 (tasks in listed order).
 */
import type { Observable, OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { Rng as SeededRng } from '../../core/rng.ts';
import { pullable } from '../../graph/bounded-queue.ts';
import { mediaManifestLoader } from '../default-roles.ts';
import { TASK_END, type ClipRef, type TaskEnd } from '../items.ts';
import { ManifestLoader, type ManifestRow } from '../roles.ts';
import { Rng } from '../../graph/roles.ts';
import { defineStage } from '../../graph/stage.ts';
import type { StellaItem } from '../../method/items.ts';

export const SOURCE_DEFAULTS = { split: 'train', epochs: 1, shuffle: false, tasks: [] as string[], limit: 0 };

export const sourceOptionsSchema = z.object({
  /** Manifest file (JSON/CSV as src/media/manifest.ts reads it). */
  manifest: z.string().min(1),
  split: z.string().default(SOURCE_DEFAULTS.split),
  epochs: z.number().int().positive().default(SOURCE_DEFAULTS.epochs),
  shuffle: z.boolean().default(SOURCE_DEFAULTS.shuffle),
  tasks: z.array(z.string()).default(SOURCE_DEFAULTS.tasks),
  limit: z.number().int().nonnegative().default(SOURCE_DEFAULTS.limit),
});
export type SourceOptions = z.infer<typeof sourceOptionsSchema>;

/** The clip order as a lazy generator over manifest rows (pure: same rows + rng → same stream). */
export function* clipStream(rows: ManifestRow[], options: Omit<SourceOptions, 'manifest'>, rng: SeededRng): Generator<ClipRef | TaskEnd> {
  const taskNames = [...new Set(rows.map((r) => r.task))].filter((t) => !options.tasks.length || options.tasks.includes(t));
  for (const missing of options.tasks.filter((t) => !taskNames.includes(t))) {
    throw new Error(`source: task '${missing}' is not in the manifest; tasks: ${[...new Set(rows.map((r) => r.task))].join(', ')}`);
  }
  for (const [task, taskName] of taskNames.entries()) {
    let split = rows.filter((r) => r.task === taskName && r.split === options.split);
    if (options.limit) split = split.slice(0, options.limit);
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const order = options.shuffle ? rng.fork(`${taskName}/epoch-${epoch}`).permutation(split.length) : split.map((_, i) => i);
      for (const index of order) {
        const row = split[index];
        yield { kind: 'clip', path: row.path, label: row.label, task, taskName, split: row.split, index, epoch };
      }
    }
    yield { kind: 'task-end', task, taskName };
  }
}

/** Creation function for plain RxJS: a pull source (nothing is read before it is requested). */
export function source(
  options: z.input<typeof sourceOptionsSchema>,
  deps: { loader?: ManifestLoader; rng?: SeededRng } = {},
): Observable<ClipRef | TaskEnd> {
  const parsed = sourceOptionsSchema.parse(options);
  const loader = deps.loader ?? mediaManifestLoader;
  const rng = deps.rng ?? SeededRng.fromSeed(0);
  let rows: ManifestRow[] | undefined;
  async function* lazily() {
    rows ??= await loader.load(parsed.manifest);
    yield* clipStream(rows, parsed, rng.fork('source'));
  }
  return pullable(lazily());
}

export const stage = defineStage({
  type: 'source',
  description: 'manifest → ClipRef stream, TaskEnd after each task, epochs per task',
  inputs: [],
  outputs: ['clip', TASK_END],
  // Every stage forwards task boundaries, so an edge carries them whatever its producer lists.
  markers: [TASK_END],
  optionsSchema: sourceOptionsSchema,
  roles: [ManifestLoader, Rng],
  create: (deps, options): OperatorFunction<StellaItem, StellaItem> => {
    const loader = deps.get<ManifestLoader>(ManifestLoader);
    const rng = deps.get<SeededRng>(Rng).fork(deps.node);
    // A root node ignores its (empty) input; the runner pulls from the returned source.
    return () => source(options, { loader, rng });
  },
});
