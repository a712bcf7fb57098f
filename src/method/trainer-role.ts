/**
 * TrainerRole: the graph's `Trainer` (src/method/roles.ts) for one train node, over a StrategyTrainer.
 *
 * The train stage calls `configure({ node, memory, lr, …trainer options })` once (unknown options are
 * refused; `init`/`avmInit` load the starting weights, model-init.ts), then `step(batch, { step, selector })`
 * per batch. The node's model is seeded from the run's root Rng forked by node id, so two train nodes
 * (the A/B graph) train two independent models on the same batches. When the run resumes, the node
 * restores its weights and state from the session and skips the batches the checkpoint already saw
 * (the stream is deterministic per clip, so the replayed batches are the same ones). Losses go to the
 * session; every `checkpoint.every` steps the session's checkpoint policy saves.
 */
import type { ModelConfig } from '../core/config.ts';
import type { Rng } from '../core/rng.ts';
import { parseSafetensors } from '../core/safetensors.ts';
import type { Batch } from './items.ts';
import type { StepResult } from '../graph/items.ts';
import type { TaskEnd } from '../media/items.ts';
import type { Trainer, TrainContext } from './roles.ts';
import { FatalStageError } from '../graph/errors.ts';
import { NonFiniteLossError } from './strategy.ts';
import type { RunSessionState } from './run-session.ts';
import { StrategyTrainer, trainerOptionsSchema, type TrainerOptions } from './strategy-trainer.ts';
import { applyModelInit, modelInitSchema, type ModelInit } from './model-init.ts';
import { z } from 'zod';

export interface TrainerNodeSettings extends TrainerOptions, ModelInit {
  node: string;
}

/** What a train node's `configure` accepts: the trainer's options and where its model starts. */
const nodeSettingsSchema = trainerOptionsSchema.extend(modelInitSchema.shape).extend({ node: z.string() }).strict();

export class TrainerRole implements Trainer {
  private trainer: StrategyTrainer | undefined;
  private node: string | undefined;
  private skip = 0;
  /** Set at a task end that an evaluate node will evaluate: the next step waits for it. */
  private evaluation: Promise<void> | undefined;

  constructor(private readonly session: RunSessionState, private readonly config: ModelConfig, private readonly root: Rng) {}

  configure(settings: TrainerNodeSettings): void {
    if (this.trainer) return;
    const parsed = nodeSettingsSchema.safeParse(settings);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const key = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
      throw new Error(`train node '${settings.node}': option ${key}: ${issue.message} (trainer options: ${Object.keys(nodeSettingsSchema.shape).filter((k) => k !== 'node').join(', ')})`);
    }
    const { node, init, avmInit, ...options } = parsed.data;
    this.node = node;
    const trainer = new StrategyTrainer(this.config, this.root.fork(`trainer/${node}`), options);
    // The init is recorded even on resume (the checkpoint's weights replace it), so results name it.
    this.session.inits.set(node, applyModelInit(trainer.model, { init, avmInit }, this.session.weightsReader));
    const restored = this.session.restored?.trainers[node];
    if (restored) {
      const tensors = parseSafetensors(restored.weights, `${this.session.restored!.from}: weights of '${node}'`).tensors;
      trainer.model.loadTensors(tensors, { source: this.session.restored!.from });
      trainer.restore(restored.state);
      this.skip = this.session.restored!.steps;
    }
    this.session.trainers.set(node, trainer);
    this.trainer = trainer;
  }

  onTaskEnd(taskEnd: TaskEnd): void {
    const node = this.node ?? 'train';
    if (this.session.isEvaluated(node)) this.evaluation = this.session.evaluated(node, taskEnd.task);
  }

  async step(batch: Batch, context: TrainContext): Promise<Omit<StepResult, 'kind' | 'step' | 'task' | 'taskName' | 'batchSize'>> {
    if (!this.trainer) this.configure({ node: 'train' });
    let evaluationWaitMs = 0;
    if (this.evaluation) {
      // The model must not move until the evaluator has measured it "after task t" (and checkpointed).
      const waitFrom = performance.now();
      await this.evaluation;
      evaluationWaitMs = performance.now() - waitFrom;
      this.evaluation = undefined;
    }
    if (this.skip > 0) {
      // Resuming: this batch was trained before the checkpoint.
      this.skip--;
      return { losses: {}, timings: { skipped: 1 } };
    }
    const step = context.step + 1;
    let out;
    try {
      out = this.trainer!.step(batch, context.selector as Parameters<StrategyTrainer['step']>[1]);
    } catch (error) {
      // A bad loss ends the run and no checkpoint is written after it (the step's update was not
      // applied, except a finite AVM part that STELLA's split step applies first).
      if (error instanceof NonFiniteLossError) {
        throw new FatalStageError(this.node ?? 'train', `${error.message} (step ${step}, task '${batch.taskName}'); the run stops and its last checkpoint stays the newest good one`);
      }
      throw error;
    }
    this.session.losses.push({ step, task: batch.taskName, values: out.losses, node: this.node ?? 'train' });
    const policy = this.session.checkpoints;
    if (policy && policy.every > 0 && step % policy.every === 0) await policy.save('step', step);
    // The wait is part of this node's latency but not training: reported apart (bench/run-decode.ts subtracts it).
    return evaluationWaitMs > 0 ? { ...out, timings: { ...out.timings, evaluationWaitMs } } : out;
  }
}
