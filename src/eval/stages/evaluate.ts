/**
 * `evaluate`: on each `task-end`, runs the `Evaluator` role and emits an EvalResult.
 *
 * Behaviour: every `every`-th task end calls
 * `evaluator.evaluate(taskEnd, { step })`, then emits the EvalResult followed by the `task-end`
 * itself. Everything else (StepResults from an upstream `train`) passes through in order and
 * updates the step count handed to the evaluator. An evaluation that fails becomes a StageError
 * (path = the task name); the `task-end` still passes on.
 *
 * Inputs:  `task-end`, `step` (counted, passed through).
 * Outputs: `eval`.
 * Options (defaults): every 1, trainer (the only train node), manifest (the run's data), cache false
 *   (the test clips' decodes are stored in and read from the decoded cache: true or a folder; the
 *   clips are bit for bit the same).
 * Roles: Evaluator.
 *
 * Example node:
 *   evaluate: { stage: evaluate }
 *
 * ## Example (plain RxJS)
 * ```ts
 * steps$.pipe(evaluate({}, { evaluator }))
 * ```
 * Ref: spec §9.1 (retrieval after each task).
 */
import { mergeMap, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { messageOf, STDERR_ERRORS } from '../../graph/errors.ts';
import type { EvalResult, StageError } from '../../graph/items.ts';
import { Evaluator } from '../../method/roles.ts';
import { defineStage } from '../../graph/stage.ts';
import type { StellaItem } from '../../method/items.ts';

export const evaluateOptionsSchema = z.object({
  /** Evaluate after every N-th task (1 = after each task). */
  every: z.number().int().positive().default(1),
  /** Train node whose model is evaluated (needed only when the graph has several). */
  trainer: z.string().optional(),
  /** Manifest whose test clips are evaluated (default: the run's data). */
  manifest: z.string().optional(),
  /** The decoded cache for the test clips: false, true (media's `.cache/decoded/`) or a folder (src/eval/test-set.ts). */
  cache: z.union([z.boolean(), z.string().min(1)]).default(false),
});

export function evaluate(
  options: z.input<typeof evaluateOptionsSchema>,
  deps: { evaluator: Evaluator; errors?: { next(e: StageError): void }; stage?: string },
): OperatorFunction<StellaItem, StellaItem> {
  const { every, trainer, manifest, cache } = evaluateOptionsSchema.parse(options);
  const errors = deps.errors ?? STDERR_ERRORS;
  const stage = deps.stage ?? 'evaluate';
  return (input) => {
    let step = 0;
    let taskEnds = 0;
    return input.pipe(
      mapConcurrent<StellaItem, StellaItem[]>(
        async (item) => {
          if (item.kind === 'step') { step = item.step; return [item]; }
          if (item.kind !== 'task-end') return [item];
          taskEnds++;
          if (taskEnds % every !== 0) return [item];
          let metrics: EvalResult['metrics'];
          try {
            metrics = await deps.evaluator.evaluate(item, { step, trainer, manifest, cache });
          } catch (error) {
            errors.next({ path: item.taskName, stage, message: messageOf(error) });
            return [item];
          }
          const result: EvalResult = { kind: 'eval', task: item.task, taskName: item.taskName, metrics };
          return [result, item];
        },
        { stage, concurrency: 1, errors },
      ),
      // Arrays are flattened synchronously, so this adds no buffering.
      mergeMap((items) => items as StellaItem[]),
    );
  };
}

export const stage = defineStage({
  type: 'evaluate',
  description: 'on TaskEnd, runs the Evaluator role → EvalResult',
  inputs: ['task-end', 'step'],
  outputs: ['eval', 'step'],
  optionsSchema: evaluateOptionsSchema,
  roles: [Evaluator],
  create: (deps, options) => {
    const evaluator = deps.get<Evaluator>(Evaluator);
    evaluator.attach?.(options.trainer);
    return evaluate(options, { evaluator, errors: deps.errors, stage: deps.node });
  },
});
