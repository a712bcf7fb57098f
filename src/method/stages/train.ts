/**
 * `train`: Batch → StepResult via the `Trainer` role, one step at a time.
 *
 * Behaviour: steps run strictly in order (concurrency 1); each gets `{ step, selector, rng }`,
 * where `selector` is built from `options.selector` by the SelectorRegistry (`selector: stella`
 * in YAML; unknown names are refused before data flows). The Batch is disposed after its step,
 * even when the step fails. A failed step becomes a StageError naming the batch's first clip;
 * the run goes on. `task-end` calls the selector's `onTaskEnd` and passes on. On a graceful stop
 * the runner stops feeding this stage; the step in progress finishes.
 *
 * Phase items (`scored`, `assessed`, `selected` from the `score` → `replay-assess` → `sample` stages)
 * are trained the same way: the trainer's STELLA step continues from the item's phase (for `selected`:
 * trains exactly the given selection), then the item is disposed, which hands the trainer's turn to the
 * next scored batch. `batch` items run the whole (fused) step, as do all strategies without phases.
 *
 * Inputs:  `batch`, `scored`, `assessed`, `selected`. Passes `task-end` through in order.
 * Outputs: `step`.
 * Options (defaults): selector '' (none: the trainer's own default), selectorOptions {}, memory 64
 * (replay samples), lr 1e-4, trainer {} (the bound Trainer's own options, e.g. the weights it starts
 * from; handed with the node id and the rest to the trainer's optional `configure`, which checks them).
 * Roles: Trainer, Rng (and the SelectorRegistry when `selector` is set).
 *
 * Example node:
 *   train: { stage: train, options: { selector: stella } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * batches$.pipe(train({}, { trainer }))
 * ```
 * Ref: spec §5.2 (the STELLA step), DESIGN.md "Where state lives".
 */
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { Rng as SeededRng } from '../../core/rng.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { withPhase } from '../phases.ts';
import { linkTrainNode } from '../phases-host.ts';
import { isPhaseItem, type Batch, type StellaItem } from '../items.ts';
import type { StageError, StepResult } from '../../graph/items.ts';
import { Rng } from '../../graph/roles.ts';
import { Trainer, type Selector } from '../roles.ts';
import { selectorRegistryOf } from '../selector-registry.ts';
import { defineStage } from '../../graph/stage.ts';

export const trainOptionsSchema = z.object({
  /** Selector binding name (`stella`, `random`, a plugin's name); empty = trainer default. */
  selector: z.string().default(''),
  selectorOptions: z.record(z.string(), z.unknown()).default({}),
  /** Replay memory in samples, for strategies with a buffer (spec §5.1 `memory_size`). */
  memory: z.number().int().positive().default(64),
  /** Adam learning rate (spec §7.5: 1e-4). */
  lr: z.number().positive().default(1e-4),
  /** Options for the bound Trainer itself (weights to start from, loss weights…); it validates them. */
  trainer: z.record(z.string(), z.unknown()).default({}),
});

export interface TrainDeps {
  trainer: Trainer;
  selector?: Selector;
  rng?: SeededRng;
  errors?: { next(e: StageError): void };
  stage?: string;
}

export function train(_options: z.input<typeof trainOptionsSchema>, deps: TrainDeps): OperatorFunction<StellaItem, StellaItem> {
  const rng = deps.rng ?? SeededRng.fromSeed(0).fork('train');
  let step = 0;
  return mapConcurrent<StellaItem, StepResult>(
    async (item) => {
      const owner = item as Batch | Extract<StellaItem, { phase: unknown }>;
      const batch = isPhaseItem(owner) ? withPhase(owner.batch, owner.phase) : owner;
      try {
        const outcome = await deps.trainer.step(batch, { step, selector: deps.selector, rng });
        step++;
        deps.selector?.afterStep?.(step);
        return { kind: 'step', step, node: deps.stage, task: batch.task, taskName: batch.taskName, batchSize: batch.clips.length, ...outcome };
      } finally {
        owner.dispose();
      }
    },
    {
      stage: deps.stage ?? 'train',
      concurrency: 1,
      errors: deps.errors,
      passThrough: (item) => {
        if (item.kind === 'task-end') {
          deps.selector?.onTaskEnd?.(item.task);
          deps.trainer.onTaskEnd?.(item);
        }
        return item.kind !== 'batch' && !isPhaseItem(item);
      },
      pathOf: (item) => (isPhaseItem(item) ? item.batch : (item as Batch)).clips?.[0]?.path ?? '',
    },
  );
}

export const stage = defineStage({
  type: 'train',
  description: 'Batch → StepResult through the Trainer role; selector picked by name',
  inputs: ['batch', 'scored', 'assessed', 'selected'],
  outputs: ['step'],
  optionsSchema: trainOptionsSchema,
  roles: [Trainer, Rng],
  // An unknown selector name is refused when the graph loads, with the names that are bound.
  check: (options, container) => {
    if (!options.selector) return [];
    const selectors = selectorRegistryOf(container);
    if (selectors.has(options.selector)) return [];
    const known = selectors.names();
    return [{ option: 'selector', message: `unknown selector '${options.selector}'; known selectors: ${known.length ? known.join(', ') : '(none bound)'}` }];
  },
  create: (deps, options) => {
    const selector = options.selector ? selectorRegistryOf(deps.container).create(options.selector, options.selectorOptions) : undefined;
    // The score / replay-assess / sample nodes serving this node find its trainer and selector by node id.
    linkTrainNode(deps.container, deps.node, selector);
    return train(options, {
      trainer: configured(deps.get<Trainer>(Trainer), { ...options.trainer, node: deps.node, memory: options.memory, lr: options.lr }),
      selector,
      rng: deps.get<SeededRng>(Rng).fork(deps.node),
      errors: deps.errors,
      stage: deps.node,
    });
  },
});

/** Tells a trainer which node it serves and its options, when it wants to know (TrainerRole does). */
function configured(trainer: Trainer, settings: Record<string, unknown> & { node: string; memory: number; lr: number }): Trainer {
  (trainer as Trainer & { configure?(s: typeof settings): void }).configure?.(settings);
  return trainer;
}
