/**
 * ModelService: the backbone, the AVM and their single Adam optimizer (DESIGN "Where state lives").
 * `score` reads it, `train` updates it.
 *
 * `trainStep(lossFn, vars)` differentiates `lossFn` with respect to the chosen group ('backbone',
 * 'avm' or 'all', default 'all'), applies Adam and returns the loss value. Everything created in
 * the step is disposed. Weights save/load by state_dict name as safetensors (backbone names plain,
 * AVM names under `avmatching_module.`); `optimizerState()`/`restoreOptimizer()` for checkpoints.
 * With `fastMatmul` the step's forward/backward runs under `withSharedSaves` (tensors saved for the
 * gradient share their buffers instead of wasm Identity copies); the plain model keeps tfjs as is.
 * Options: `config`, `rng`, `fastMatmul` (true), `normPixLoss` (true), `avmHeads` (config), `adam`.
 * Ref: spec §4.4 (AVM trained with the backbone's optimizer), §7.5.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';
import type { Rng, RngState } from '../core/rng.ts';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../core/safetensors.ts';
import { createAvm, type AvmModel } from './avm.ts';
import { createCavBackbone, type CavBackboneModel } from './cav-backbone.ts';
import { Adam, inDecayGroup, type AdamOptions, type AdamState, type OptimizedParam } from './optimizer.ts';
import { loadStateDict, stateDict } from './weights.ts';
import { withFreeingBackward, withSharedSaves, withoutReading } from '../core/fast-matmul.ts';

export type TrainableGroup = 'backbone' | 'avm' | 'all';

export interface ModelServiceOptions {
  config: ModelConfig;
  rng: Rng;
  fastMatmul?: boolean;
  normPixLoss?: boolean;
  /** Contrastive term weight (spec 0.1). */
  contrastiveWeight?: number;
  avmHeads?: number;
  adam?: AdamOptions;
}

export const AVM_PREFIX = 'avmatching_module.';

/** A state dict split into backbone tensors and AVM tensors (names under `avmatching_module.`). */
export function splitBackboneAvm<T = NamedTensor>(tensors: ReadonlyMap<string, T>): { backbone: Map<string, T>; avm: Map<string, T> } {
  const avm = new Map<string, T>(), backbone = new Map<string, T>();
  for (const [name, t] of tensors) (name.startsWith(AVM_PREFIX) || name.startsWith('module.' + AVM_PREFIX) ? avm : backbone).set(name, t);
  return { backbone, avm };
}

export class ModelService {
  readonly backbone: CavBackboneModel;
  readonly avm: AvmModel;
  readonly optimizer: Adam;
  private readonly groups: Record<'backbone' | 'avm', OptimizedParam[]>;
  /** Fast path: tensors saved for the gradient share their buffers (no wasm Identity copies). */
  private readonly sharedSaves: boolean;

  constructor(options: ModelServiceOptions) {
    const { config, rng } = options;
    this.backbone = createCavBackbone(config, { rng: rng.fork('backbone'), fastMatmul: options.fastMatmul, normPixLoss: options.normPixLoss, contrastiveWeight: options.contrastiveWeight });
    this.avm = createAvm(config.embedDim, options.avmHeads ?? config.avmHeads, { rng: rng.fork('avm'), fastMatmul: options.fastMatmul });
    const collect = (owner: string, module: CavBackboneModel | AvmModel): OptimizedParam[] =>
      [...module.params.entries].map(([name, info]) => ({ key: `${owner}/${name}`, variable: info.variable, decay: inDecayGroup(name, info.torchShape) }));
    this.groups = { backbone: collect('backbone', this.backbone), avm: collect('avm', this.avm) };
    this.optimizer = new Adam([...this.groups.backbone, ...this.groups.avm], options.adam);
    this.sharedSaves = options.fastMatmul ?? true;
  }

  get config(): ModelConfig {
    return this.backbone.config;
  }

  /** One optimisation step on `lossFn`'s value; returns the loss. */
  trainStep(lossFn: () => tf.Scalar, vars: TrainableGroup = 'all'): number {
    const params = vars === 'all' ? [...this.groups.backbone, ...this.groups.avm] : this.groups[vars];
    if (!params) throw new Error(`ModelService.trainStep: vars must be 'backbone', 'avm' or 'all', got '${vars}'`);
    const { value, grads } = this.gradients(lossFn, params);
    try {
      this.apply([[params, grads]]);
      return value.dataSync()[0];
    } finally {
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  }

  /**
   * One optimisation step whose loss has a part on its own group of variables: `part.lossFn` is
   * differentiated first, on `part.vars` alone, and everything its forward kept is freed before
   * `lossFn(partValue)` runs and is differentiated on the other group; both gradients go into one
   * optimiser step. When the part reaches no variable of the other group and the rest none of the
   * part's (STELLA's AVM matching loss on constant embeddings), the gradients are those of one pass
   * over the sum, bit for bit, and the step's peak no longer holds both forwards at once.
   * A finite part's update is applied before the rest runs, so its gradients are not held through the
   * rest's pass either; the rest is then watched, and reading one of the part's variables is an error.
   * A non-finite part waits, so the rest's loss checks report it before anything moves.
   */
  trainStepSplit(part: { lossFn: () => tf.Scalar; vars: 'backbone' | 'avm' }, lossFn: (partValue: tf.Scalar) => tf.Scalar): number {
    const partParams = this.groups[part.vars];
    if (!partParams) throw new Error(`ModelService.trainStepSplit: part.vars must be 'backbone' or 'avm', got '${part.vars}'`);
    const restParams = this.groups[part.vars === 'avm' ? 'backbone' : 'avm'];
    const first = this.gradients(part.lossFn, partParams);
    try {
      let step: ReturnType<Adam['beginStep']> | undefined;
      if (Number.isFinite(first.value.dataSync()[0])) {
        step = this.optimizer.beginStep();
        this.applyTo(step, [[partParams, first.grads]]);
        tf.dispose(Object.values(first.grads));
      }
      const restGradients = () => this.gradients(() => lossFn(first.value), restParams);
      const rest = step ? withoutReading(new Map(partParams.map((p) => [p.variable, p.key])), 'the rest of a split step', restGradients) : restGradients();
      try {
        if (step) this.applyTo(step, [[restParams, rest.grads]]);
        else this.applyTo(this.optimizer.beginStep(), [[partParams, first.grads], [restParams, rest.grads]]);
        return rest.value.dataSync()[0];
      } finally {
        rest.value.dispose();
        tf.dispose(Object.values(rest.grads));
      }
    } finally {
      first.value.dispose();
      tf.dispose(Object.values(first.grads));
    }
  }

  private gradients(lossFn: () => tf.Scalar, params: OptimizedParam[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const variables = params.map((p) => p.variable);
    return this.sharedSaves ? withSharedSaves(() => withFreeingBackward(() => tf.variableGrads(lossFn, variables))) : tf.variableGrads(lossFn, variables);
  }

  /** One optimiser step over every (parameters, gradients by variable name) pair. */
  private apply(parts: [OptimizedParam[], tf.NamedTensorMap][]): void {
    this.applyTo(this.optimizer.beginStep(), parts);
  }

  /** The gradients of every (parameters, gradients by variable name) pair into `step`. */
  private applyTo(step: ReturnType<Adam['beginStep']>, parts: [OptimizedParam[], tf.NamedTensorMap][]): void {
    const byKey = new Map<string, tf.Tensor>();
    for (const [params, grads] of parts) {
      for (const p of params) {
        const g = grads[p.variable.name];
        if (g) byKey.set(p.key, g);
      }
    }
    step.apply(byKey);
  }

  /** Tensors held by the models and the optimizer (for leak checks: stable across steps; Adam's moments are JS arrays). */
  heldTensorCount(): number {
    return this.backbone.params.variables.size + this.avm.params.variables.size + this.optimizer.momentTensorCount;
  }

  /** Backbone and AVM weights in PyTorch layout (AVM under `avmatching_module.`). */
  weights(): Map<string, NamedTensor> {
    return new Map([...stateDict(this.backbone), ...stateDict(this.avm, AVM_PREFIX)]);
  }

  saveWeights(file: string, metadata?: Record<string, string>): void {
    writeSafetensors(file, this.weights(), { config: JSON.stringify(this.config), ...metadata });
  }

  /** Loads backbone and/or AVM tensors from one safetensors file (prefixes as in checkpoints). */
  loadWeights(file: string, { strict = true }: { strict?: boolean } = {}): void {
    this.loadTensors(readSafetensors(file).tensors, { strict, source: file });
  }

  /** Loads a state dict (AVM names under `avmatching_module.`); errors name `source` and the tensor. */
  loadTensors(tensors: Map<string, NamedTensor>, { strict = true, source, parts = 'all' }: { strict?: boolean; source: string; parts?: 'all' | 'backbone' }): void {
    const { backbone, avm } = splitBackboneAvm(tensors);
    loadStateDict(this.backbone, backbone, { strict, source });
    if (parts === 'all' && (avm.size || strict)) loadStateDict(this.avm, avm, { strict, source });
  }

  /** The model's own random stream (masking noise), for exact resume. */
  rngState(): RngState {
    return this.backbone.maskingRng.state();
  }

  restoreRng(state: RngState): void {
    this.backbone.maskingRng.setState(state);
  }

  optimizerState(): AdamState {
    return this.optimizer.getState();
  }

  restoreOptimizer(state: AdamState): void {
    this.optimizer.setState(state);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.backbone.dispose();
    this.avm.dispose();
  }
}
