/**
 * Adam with coupled L2 weight decay, as `torch.optim.Adam` (spec §7.5): one optimizer for the
 * backbone and the AVM for the whole run.
 *
 *   g ← g + wd·θ            (decay group only)
 *   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
 *   θ ← θ − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)
 *
 * Defaults: lr 1e-4, betas (0.95, 0.999), eps 1e-8, weight decay 5e-7. The decay group holds every
 * parameter with ≥ 2 dims (PyTorch shape) except `pos_embed_*`, `inter_pos_embed_*`,
 * `decoder_pos_embed_*`, `modality_*`, `decoder_modality_*`, `mask_token_*`; 1-D parameters get none.
 * State (`getState`/`setState`) is plain typed arrays in the variables' own layout, for checkpoints.
 * Ref: spec §7.5; torch.optim.Adam.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const adamOptionsSchema = z.object({
  lr: z.number().positive().default(1e-4),
  beta1: z.number().min(0).max(1).default(0.95),
  beta2: z.number().min(0).max(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(5e-7),
});
export type AdamOptions = z.input<typeof adamOptionsSchema>;

const NO_DECAY_NAME = /^(pos_embed_|inter_pos_embed_|decoder_pos_embed_|modality_|decoder_modality_|mask_token_)/;

/** Whether a parameter of this state_dict name and PyTorch shape is in the weight-decay group. */
export function inDecayGroup(name: string, torchShape: readonly number[]): boolean {
  return torchShape.length >= 2 && !NO_DECAY_NAME.test(name);
}

export interface OptimizedParam {
  /** Unique key, e.g. `backbone/blocks_a.0.attn.qkv.weight`. */
  key: string;
  variable: tf.Variable;
  decay: boolean;
}

export interface AdamState {
  step: number;
  /** Per key: first and second moments, in the variable's layout. */
  moments: Record<string, { shape: number[]; m: Float32Array; v: Float32Array }>;
}

export class Adam {
  readonly options: Required<z.output<typeof adamOptionsSchema>>;
  private step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(readonly params: OptimizedParam[], options: AdamOptions = {}) {
    this.options = adamOptionsSchema.parse(options);
    const keys = new Set<string>();
    for (const p of params) {
      if (keys.has(p.key)) throw new Error(`Adam: parameter key '${p.key}' given twice`);
      keys.add(p.key);
    }
  }

  /** Moment tensors held (two per parameter updated so far). */
  get momentTensorCount(): number {
    return this.m.size + this.v.size;
  }

  get stepCount(): number {
    return this.step;
  }

  /** Applies one update from gradients keyed like `params` (absent = no gradient, skipped). */
  apply(grads: Map<string, tf.Tensor>): void {
    this.step += 1;
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    const bias1 = 1 - beta1 ** this.step;
    const bias2 = 1 - beta2 ** this.step;
    for (const p of this.params) {
      const g0 = grads.get(p.key);
      if (!g0) continue;
      tf.tidy(() => {
        const g = p.decay && weightDecay > 0 ? tf.add(g0, tf.mul(p.variable, weightDecay)) : g0;
        let m = this.m.get(p.key), v = this.v.get(p.key);
        if (!m || !v) {
          m = tf.variable(tf.zerosLike(p.variable), false);
          v = tf.variable(tf.zerosLike(p.variable), false);
          this.m.set(p.key, m);
          this.v.set(p.key, v);
        }
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bias2)), eps);
        p.variable.assign(tf.sub(p.variable, tf.mul(tf.div(m, denom), lr / bias1)));
      });
    }
  }

  getState(): AdamState {
    const moments: AdamState['moments'] = {};
    for (const [key, m] of this.m) {
      moments[key] = { shape: m.shape.slice(), m: Float32Array.from(m.dataSync() as Float32Array), v: Float32Array.from(this.v.get(key)!.dataSync() as Float32Array) };
    }
    return { step: this.step, moments };
  }

  setState(state: AdamState): void {
    const known = new Map(this.params.map((p) => [p.key, p]));
    for (const [key, mo] of Object.entries(state.moments)) {
      const p = known.get(key);
      if (!p) throw new Error(`Adam.setState: unknown parameter '${key}'`);
      if (mo.shape.length !== p.variable.shape.length || mo.shape.some((d, i) => d !== p.variable.shape[i])) {
        throw new Error(`Adam.setState: moments of '${key}' have shape [${mo.shape}] but the parameter is [${p.variable.shape}]`);
      }
    }
    this.disposeMoments();
    this.step = state.step;
    for (const [key, mo] of Object.entries(state.moments)) {
      this.m.set(key, tf.variable(tf.tensor(mo.m, mo.shape), false));
      this.v.set(key, tf.variable(tf.tensor(mo.v, mo.shape), false));
    }
  }

  private disposeMoments(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeMoments();
  }
}
