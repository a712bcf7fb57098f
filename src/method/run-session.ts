/**
 * RunSession: the state one `stella run` shares between its stages and the command that reports it
 * (DESIGN "Where state lives"): the trainers by train-node id, the evaluation after each task, the loss
 * record, test-set load errors, and — when resuming — what the checkpoint restored. One per container
 * (singleton); stages reach it through the `RunSession` token.
 */
import type { Evaluation } from '../eval/evaluator.ts';
import type { StrategyTrainer, TrainerState } from './strategy-trainer.ts';
import type { ResolvedInit, WeightsReader } from './model-init.ts';

export const RunSession = Symbol('RunSession');

export interface LossRecord { step: number; task: string; values: Record<string, number>; /** Train node id. */ node: string }
export interface TaskEvaluation {
  task: number;
  taskName: string;
  step: number;
  trainer: string;
  /** Optimisation steps the evaluated model had taken (all of tasks 0..task, none of the next). */
  trainedSteps: number;
  evaluation: Evaluation;
}

/** What a checkpoint gives back to a resumed run. */
export interface RestoredRun {
  /** Global steps already trained (each train node skips that many batches of the replayed stream). */
  steps: number;
  trainers: Record<string, { weights: Uint8Array; state: TrainerState }>;
  evaluations: TaskEvaluation[];
  losses: LossRecord[];
  /** Checkpoint it came from, for messages. */
  from: string;
}

export interface CheckpointPolicy {
  /** Save every N steps (0 = only at task ends and on stop). */
  every: number;
  save(reason: 'step' | 'task-end' | 'stop', step: number): Promise<string | undefined>;
  /** The command that continues the run from `checkpoint` (printed after a graceful stop). */
  resumeCommand?(checkpoint: string): string;
}

export class RunSessionState {
  readonly trainers = new Map<string, StrategyTrainer>();
  /** Where each train node's model started (init weights), by node id. */
  readonly inits = new Map<string, ResolvedInit>();
  /** Reads an init weights file (safetensors by default; the run may add the authors' .pth). */
  weightsReader: WeightsReader | undefined;
  readonly evaluations: TaskEvaluation[] = [];
  readonly losses: LossRecord[] = [];
  readonly testSetErrors: { path: string; stage: string; message: string }[] = [];
  restored: RestoredRun | undefined;
  checkpoints: CheckpointPolicy | undefined;
  /** Manifest the evaluator reads test clips from (the run's data). */
  manifest: string | undefined;
  /** Train nodes an evaluate node watches ('' = the only train node). */
  readonly evaluatedNodes = new Set<string>();
  private readonly evaluatedTasks = new Map<string, { promise: Promise<void>; resolve: () => void }>();

  /** True when an evaluate node evaluates `node`'s model, so its training must pause at task ends. */
  isEvaluated(node: string): boolean {
    return this.evaluatedNodes.has(node) || (this.evaluatedNodes.has('') && this.trainers.size === 1);
  }

  /** Resolves once task `task` of `node` has been evaluated (or its evaluation failed). */
  evaluated(node: string, task: number): Promise<void> {
    return this.deferred(node, task).promise;
  }

  markEvaluated(node: string, task: number): void {
    this.deferred(node, task).resolve();
  }

  private deferred(node: string, task: number) {
    const key = `${node}#${task}`;
    let d = this.evaluatedTasks.get(key);
    if (!d) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => { resolve = r; });
      d = { promise, resolve };
      this.evaluatedTasks.set(key, d);
    }
    return d;
  }

  /** Called after each task's evaluation (the CLI prints the retrieval row). */
  onEvaluation: ((e: TaskEvaluation) => void) | undefined;
  /** Task names in training order, for categories and the accuracy matrices. */
  tasks: string[] = [];

  /** The train node id `node`, or the only one when `node` is not given, with its trainer. */
  trainer(node?: string): [string, StrategyTrainer] {
    if (node) {
      const t = this.trainers.get(node);
      if (!t) throw new Error(`no train node '${node}' has run yet (known: ${[...this.trainers.keys()].join(', ') || 'none'})`);
      return [node, t];
    }
    if (this.trainers.size !== 1) {
      throw new Error(`evaluate needs option 'trainer' to pick one of the train nodes: ${[...this.trainers.keys()].join(', ') || '(none has run)'}`);
    }
    return [...this.trainers.entries()][0];
  }

  /** Evaluations of one train node, in task order. */
  evaluationsOf(node: string): TaskEvaluation[] {
    return this.evaluations.filter((e) => e.trainer === node);
  }
}
