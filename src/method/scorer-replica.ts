/**
 * A scorer replica: a second backbone + AVM that the `score` stage scores with when its node sets
 * `syncEvery: K` (K ≥ 1) or runs on another device, so scoring may use weights up to K − 1 steps
 * stale, as a scorer on another device would (issue "Devices"; docs/graph.md "Devices").
 *
 * Weights travel as plain typed arrays in the variables' own (internal) layout, keyed
 * `backbone/<name>` and `avm/<name>` (`exportModelWeights`): a structured-clone-friendly form that
 * can be posted to a worker thread with its buffers transferred. `importModelWeights` writes them
 * into another ModelService of the same config (every name, every size checked).
 *
 * `SyncSchedule(K)` decides when: before the first scored step and then after every K-th trained
 * step. Scoring step s + 1 (s steps trained) needs the weights of step K·⌊s / K⌋; a sync happens
 * when that differs from what the replica holds. For a run of S scored steps that is ⌈S / K⌉ syncs
 * (steps 0, K, 2K, … below S). K = 0 on a replica means "strictly in step": a sync before every
 * step (used by a worker scorer whose results must equal the in-thread run).
 *
 * Ref: spec §5.2 (1)–(4); src/graph/device-pool.ts (WeightSync), src/method/stages/score.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import { ModelService } from '../model/model-service.ts';

const GROUPS = ['backbone', 'avm'] as const;

/** Copies of the model's variables (internal layout), keyed `backbone/<name>` and `avm/<name>`. */
export function exportModelWeights(model: ModelService): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const group of GROUPS) {
    for (const [name, variable] of model[group].params.variables) out.set(`${group}/${name}`, (variable.dataSync() as Float32Array).slice());
  }
  return out;
}

/** Writes `exportModelWeights` output into `model`; a missing, unknown or wrongly sized entry is an error naming it. */
export function importModelWeights(model: ModelService, weights: Map<string, Float32Array>, source = 'synced weights'): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const group of GROUPS) {
    for (const [name, variable] of model[group].params.variables) {
      const key = `${group}/${name}`;
      seen.add(key);
      const values = weights.get(key);
      if (!values) problems.push(`missing '${key}'`);
      else if (values.length !== variable.size) problems.push(`'${key}' has ${values.length} values, expected ${variable.size} [${variable.shape}]`);
    }
  }
  for (const key of weights.keys()) if (!seen.has(key)) problems.push(`unknown '${key}'`);
  if (problems.length) throw new Error(`scorer replica: cannot load ${source}: ${problems.join('; ')}`);
  for (const group of GROUPS) {
    for (const [name, variable] of model[group].params.variables) {
      tf.tidy(() => variable.assign(tf.tensor(weights.get(`${group}/${name}`)!, variable.shape, 'float32')));
    }
  }
}

/** When a replica needs fresh weights: before the first step, then after every K-th (K = 0: every step). */
export class SyncSchedule {
  /** Trained-step count whose weights the replica holds; undefined before the first sync. */
  private heldStep: number | undefined;
  syncs = 0;
  constructor(readonly everySteps: number) {
    if (!Number.isInteger(everySteps) || everySteps < 0) throw new RangeError(`syncEvery must be an integer ≥ 0, got ${everySteps}`);
  }
  /** The trained-step count whose weights scoring step `stepsDone + 1` must use. */
  wanted(stepsDone: number): number {
    return this.everySteps === 0 ? stepsDone : this.everySteps * Math.floor(stepsDone / this.everySteps);
  }
  /** True (and counts a sync) when the replica must be refreshed before scoring after `stepsDone` steps. */
  due(stepsDone: number): boolean {
    const want = this.wanted(stepsDone);
    if (this.heldStep === want) return false;
    this.heldStep = want;
    this.syncs++;
    return true;
  }
}

/** An in-process replica of a trainer's backbone + AVM (no optimiser is ever stepped). */
export class ScorerReplica {
  readonly model: ModelService;
  readonly schedule: SyncSchedule;
  constructor(config: ModelConfig, options: { syncEvery: number; fastMatmul?: boolean }) {
    this.schedule = new SyncSchedule(options.syncEvery);
    // The initial values never score: a sync precedes the first step.
    this.model = new ModelService({ config, rng: Rng.fromSeed('scorer-replica'), fastMatmul: options.fastMatmul });
  }
  /** Copies `source`'s weights when the schedule says so; returns whether it did. */
  syncFrom(source: ModelService, stepsDone: number): boolean {
    if (!this.schedule.due(stepsDone)) return false;
    importModelWeights(this.model, exportModelWeights(source));
    return true;
  }
  dispose(): void {
    this.model.dispose();
  }
}
