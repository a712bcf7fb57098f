/**
 * TaskEvaluator: the graph's `Evaluator` role for continual runs. At each task end it evaluates the
 * trainer's current model on every task's test clips (zero-shot retrieval, gallery = all test clips,
 * one category per task; localisation AUC where clips carry ground truth) and records the stage in the
 * run session; the run then writes the accuracy matrices, A and F from those stages.
 *
 * The test set is decoded once, on the first task end, from the session's manifest (or the evaluate
 * node's `manifest` option). On resume, stages the checkpoint already holds are returned as stored.
 * After recording, it asks the session's checkpoint policy to save (reason `task-end`).
 * Ref: spec §9.1–§9.3.
 */
import type { ModelConfig } from '../core/config.ts';
import type { TaskEnd } from '../media/items.ts';
import type { Evaluator } from '../method/roles.ts';
import { loadManifest } from '../media/manifest.ts';
import type { RunSessionState } from '../method/run-session.ts';
import type { StrategyTrainer } from '../method/strategy-trainer.ts';
import { ContinualEvaluator, type Evaluation } from './evaluator.ts';
import { loadTestSet } from './test-set.ts';

export interface EvaluateContext {
  step: number;
  /** Evaluate node options: which train node's model, which manifest, the decoded cache for its test clips. */
  trainer?: string;
  manifest?: string;
  cache?: boolean | string;
}

export class TaskEvaluator implements Evaluator {
  private evaluator: Promise<ContinualEvaluator> | undefined;

  constructor(private readonly session: RunSessionState, private readonly config: ModelConfig) {}

  /** The evaluator over the run's test clips (loaded once). */
  load(manifestPath?: string, cache: boolean | string = false): Promise<ContinualEvaluator> {
    this.evaluator ??= (async () => {
      const file = manifestPath ?? this.session.manifest;
      if (!file) throw new Error(`evaluate: no manifest to read test clips from (set the evaluate node's 'manifest' option)`);
      const manifest = await loadManifest(file);
      const testSet = await loadTestSet(manifest, this.config, { cache });
      this.session.testSetErrors.push(...testSet.errors);
      if (this.session.tasks.length === 0) this.session.tasks = manifest.tasks.map((t) => t.name);
      return new ContinualEvaluator({ config: this.config, testSet });
    })();
    return this.evaluator;
  }

  attach(trainer: string | undefined): void {
    this.session.evaluatedNodes.add(trainer ?? '');
  }

  async evaluate(taskEnd: TaskEnd, context: EvaluateContext): Promise<Record<string, unknown>> {
    const [node, trainer] = this.session.trainer(context.trainer);
    try {
      return await this.evaluateNode(node, trainer, taskEnd, context);
    } finally {
      // The trainer waits for this before its next step, so the row is "after task t" exactly.
      this.session.markEvaluated(node, taskEnd.task);
    }
  }

  private async evaluateNode(node: string, trainer: StrategyTrainer, taskEnd: TaskEnd, context: EvaluateContext): Promise<Record<string, unknown>> {
    const restored = this.session.restored?.evaluations.find((e) => e.task === taskEnd.task && e.trainer === node);
    let evaluation: Evaluation;
    if (restored) {
      evaluation = restored.evaluation;
    } else {
      const evaluator = await this.load(context.manifest, context.cache);
      evaluation = evaluator.evaluate({ backbone: trainer.model.backbone, avm: trainer.model.avm });
    }
    const record = { task: taskEnd.task, taskName: taskEnd.taskName, step: context.step, trainer: node, trainedSteps: restored?.trainedSteps ?? trainer.stepsDone, evaluation };
    this.session.evaluations.push(record);
    this.session.onEvaluation?.(record);
    if (!restored) await this.session.checkpoints?.save('task-end', context.step);
    return { retrieval: evaluation.retrieval, localization: evaluation.localization };
  }
}
