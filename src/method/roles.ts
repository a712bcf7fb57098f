/**
 * STELLA's roles: the selector extension point, the trainer and the evaluator. One Symbol token
 * per role, named like its interface, bound by src/method/method-module.ts and
 * src/eval/eval-module.ts, or by a plugin. The engine's own roles (Metrics, Rng, Checkpointer,
 * ModelService, RunConfig) are in src/graph/roles.ts, the media roles in src/media/roles.ts.
 *
 * Ref: DESIGN.md "Swapping"; STYLE.md §7, §8.
 */
import type { Rng as SeededRng } from '../core/rng.ts';
import type { Batch, EvalResult, StepResult, TaskEnd } from './items.ts';
import type { PatchSelector, SelectionInput, SelectionResult } from './patch-selector.ts';

export type { PatchSelector, SelectionInput, SelectionResult };

/** A whole training strategy (src/method/strategy.ts: `stella`, `der++`, `finetune`, …). */
export interface StrategySelector {
  readonly name: string;
  step(batch: unknown, context: unknown): unknown;
  onTaskEnd?(task: number): void;
  afterStep?(step: number): void;
}

/**
 * What `selector: <name>` on a train node resolves to: a built-in strategy, or a patch selector
 * (plugins; src/method/patch-selector.ts) that the trainer runs inside the STELLA step.
 */
export type Selector = PatchSelector | StrategySelector;
export const Selector = Symbol('Selector');

/**
 * One way to build a selector, contributed to the SelectorRegistry under `name`
 * (a plugin binds one of these to `SelectorContribution`).
 */
export interface SelectorContribution {
  readonly name: string;
  /** One line for `stella graph selectors` and error messages. */
  readonly description?: string;
  create(options: Record<string, unknown>): Selector;
}
export const SelectorContribution = Symbol('SelectorContribution');

export interface TrainContext {
  /** Steps completed so far in this run (0 before the first). */
  step: number;
  selector?: Selector;
  rng: SeededRng;
}

/** Runs one optimisation step on a batch. Must not dispose the batch (the train stage does). */
export interface Trainer {
  step(batch: Batch, context: TrainContext): Promise<Omit<StepResult, 'kind' | 'step' | 'task' | 'taskName' | 'batchSize'>>;
  /** A task ended upstream of the evaluator (optional; TrainerRole holds its next step until the task is evaluated). */
  onTaskEnd?(taskEnd: TaskEnd): void;
}
export const Trainer = Symbol('Trainer');

/** Evaluates after a task (retrieval on the eval split etc.). */
export interface Evaluator {
  evaluate(taskEnd: TaskEnd, context: { step: number; trainer?: string; manifest?: string; cache?: boolean | string }): Promise<EvalResult['metrics']>;
  /** Called once per evaluate node with the train node it evaluates (undefined: the only one). */
  attach?(trainer: string | undefined): void;
}
export const Evaluator = Symbol('Evaluator');

/** The replay buffer's size, for stages and displays that only count. */
export interface ReplayBuffer { readonly size: number }
export const ReplayBuffer = Symbol('ReplayBuffer');
