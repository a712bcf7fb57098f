/**
 * StrategyTrainer: the graph's `Trainer` role for the continual method. One per train node: it owns
 * the node's model (ModelService: backbone + AVM + Adam), its replay buffer and its random stream, and
 * runs the chosen strategy (`selector:` in the graph: a built-in strategy or a plugin PatchSelector)
 * once per batch.
 *
 * Per step it reports the losses, the step time and memory (replay-buffer bytes, live tensor bytes at the
 * end of the forward, i.e. the step's peak, and process RSS), and keeps the last selection of the current
 * rows for reports. `state()`/`restore()` give everything a checkpoint needs for an exact resume.
 * Ref: spec §5.2 (the step), §6 (buffer: task-free, never emptied), §7.5 (one optimiser for the run).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { assertTrainingFitsBackend } from '../core/backend-limits.ts';
import type { ModelConfig } from '../core/config.ts';
import { Rng, type RngState } from '../core/rng.ts';
import type { AdamState } from '../model/optimizer.ts';
import { ModelService } from '../model/model-service.ts';
import type { PatchSelector } from './patch-selector.ts';
import { ReplayBuffer, type ReplayBufferState } from './replay-buffer.ts';
import { createSelectorStrategy } from './strategies/plugin-selector.ts';
import type { SelectionSnapshot, StepReport, Strategy } from './strategy.ts';
import { createStrategy } from './strategy-registry.ts';

export const trainerOptionsSchema = z.object({
  /** Replay memory in samples (spec: 2000 over 4 GPUs; the tiny default suits the generated corpus). */
  memory: z.number().int().positive().default(64),
  /** Strategy used when the graph names none. */
  defaultStrategy: z.string().default('stella'),
  /** Use the fast-path matmuls (false = plain tfjs, for benchmarks). */
  fastMatmul: z.boolean().default(true),
  normPixLoss: z.boolean().default(true),
  /** Adam learning rate (spec §7.5: 1e-4, for fine-tuning a pre-trained ViT-B). */
  lr: z.number().positive().default(1e-4),
  /** Contrastive term weight (spec §7.2: 0.1). Pre-training the tiny model from scratch raises it (models/README.md). */
  contrastiveWeight: z.number().nonnegative().default(0.1),
});
export type TrainerOptions = z.input<typeof trainerOptionsSchema>;

export interface TrainerState {
  strategy: string;
  rng: RngState;
  buffer?: ReplayBufferState;
  optimizer: AdamState;
  /** The model's masking-noise stream. */
  modelRng: RngState;
  steps: number;
}

export interface TrainerStepOutcome {
  losses: Record<string, number>;
  timings: Record<string, number>;
  memory: Record<string, number>;
}

function isStrategy(x: unknown): x is Strategy {
  return !!x && typeof (x as Strategy).step === 'function' && typeof (x as Strategy).bufferLayout === 'function';
}
function isPatchSelector(x: unknown): x is PatchSelector {
  return !!x && typeof (x as PatchSelector).select === 'function';
}

export class StrategyTrainer {
  readonly model: ModelService;
  readonly options: z.output<typeof trainerOptionsSchema>;
  private rng: Rng;
  private strategy: Strategy | undefined;
  private buffer: ReplayBuffer | undefined;
  private steps = 0;
  peakTensorBytes = 0;
  peakRssBytes = 0;
  lastSelection: SelectionSnapshot | undefined;

  constructor(readonly config: ModelConfig, rng: Rng, options: TrainerOptions = {}) {
    assertTrainingFitsBackend(config); // before the weights take their share of a heap that cannot hold the step
    this.options = trainerOptionsSchema.parse(options);
    this.model = new ModelService({ config, rng: rng.fork('model'), fastMatmul: this.options.fastMatmul, normPixLoss: this.options.normPixLoss, contrastiveWeight: this.options.contrastiveWeight, adam: { lr: this.options.lr } });
    this.rng = rng.fork('steps');
  }

  /** The strategy in use (built on the first step). */
  get strategyName(): string | undefined {
    return this.strategy?.name;
  }

  /** Optimisation steps applied so far. */
  get stepsDone(): number {
    return this.steps;
  }

  /** The random stream the strategy draws from (the phase stages draw from a copy and write it back). */
  get randomStream(): Rng {
    return this.rng;
  }

  set randomStream(rng: Rng) {
    this.rng = rng;
  }

  get replayBuffer(): ReplayBuffer | undefined {
    return this.buffer;
  }

  get bufferBytes(): number {
    return this.buffer?.bytes() ?? 0;
  }

  /** Fixes the strategy: a Strategy, a PatchSelector (wrapped), or a built-in name. Once per run. */
  use(choice: Strategy | PatchSelector | string | undefined): Strategy {
    const strategy = typeof choice === 'string' || choice === undefined
      ? createStrategy(choice || this.options.defaultStrategy)
      : isStrategy(choice) ? choice
      : isPatchSelector(choice) ? createSelectorStrategy(choice)
      : undefined;
    if (!strategy) throw new Error(`trainer: the selector must be a strategy name, a Strategy or a PatchSelector`);
    if (this.strategy) {
      if (this.strategy.name !== strategy.name) throw new Error(`trainer: strategy is already '${this.strategy.name}', cannot switch to '${strategy.name}' mid-run`);
      return this.strategy;
    }
    this.strategy = strategy;
    const layout = strategy.bufferLayout(this.config);
    this.buffer = layout ? new ReplayBuffer(this.options.memory, layout) : undefined;
    return strategy;
  }

  step(batch: { video: tf.Tensor3D; audio: tf.Tensor3D; clips?: readonly unknown[] }, choice?: Strategy | PatchSelector | string): TrainerStepOutcome {
    const strategy = this.use(choice ?? this.strategy);
    const start = performance.now();
    let forwardBytes = 0;
    // The tensor bytes alive when a forward ends: the step's reported peak.
    const tracked = (lossFn: () => tf.Scalar) => () => {
      const loss = lossFn();
      forwardBytes = Math.max(forwardBytes, tf.memory().numBytes);
      return loss;
    };
    const report: StepReport = strategy.step(batch, {
      model: this.model.backbone,
      avm: strategy.usesAvm ? this.model.avm : undefined,
      buffer: this.buffer,
      rng: this.rng,
      trainStep: (lossFn, vars) => this.model.trainStep(tracked(lossFn), vars),
      trainStepSplit: (part, lossFn) => this.model.trainStepSplit({ ...part, lossFn: tracked(part.lossFn) }, (value) => tracked(() => lossFn(value))()),
    });
    const stepMs = performance.now() - start;
    this.steps++;
    this.peakTensorBytes = Math.max(this.peakTensorBytes, forwardBytes);
    const rss = process.memoryUsage().rss;
    this.peakRssBytes = Math.max(this.peakRssBytes, rss);
    if (report.selection) this.lastSelection = report.selection;
    return {
      losses: report.losses,
      timings: { stepMs },
      memory: { bufferBytes: this.bufferBytes, stepTensorBytes: forwardBytes, rssBytes: rss, rows: report.rows, replayed: report.replayed },
    };
  }

  state(): TrainerState {
    return {
      strategy: this.strategy?.name ?? this.options.defaultStrategy,
      rng: this.rng.state(),
      buffer: this.buffer?.toState(),
      optimizer: this.model.optimizerState(),
      modelRng: this.model.rngState(),
      steps: this.steps,
    };
  }

  /** Restores buffer, optimiser, random stream and step count (weights are loaded separately). */
  restore(state: TrainerState): void {
    this.use(state.strategy);
    this.rng = Rng.fromState(state.rng);
    if (state.buffer) this.buffer = ReplayBuffer.fromState(state.buffer);
    this.model.restoreOptimizer(state.optimizer);
    this.model.restoreRng(state.modelRng);
    this.steps = state.steps;
  }

  dispose(): void {
    this.model.dispose();
  }
}
