/**
 * The audio-video matching module (spec §4): cross-modal attention between the Mode-B embeddings
 * z_a [B, La, D] and z_v [B, Lv, D], and a matching head.
 *
 * `inferAttention`: LN both inputs, per-head q/k projections [B, H, L, dh], raw scaled logits
 * S_av = s·Q_a K_vᵀ [B, H, La, Lv] and S_va = s·Q_v K_aᵀ, s = dh^-½ (normalize = False).
 * `forward`: softmax both ways, O_a = P_av V_v, O_v = P_va V_a, then the authors' head merge quirk
 * (plain row-major reshape of [B, H, L, dh] to [B, L, H·dh], no transpose, §11 Q5), token means
 * f = [mean O_v', mean O_a'] (video first), logit = fc(tanh(dense(f))) [B, 1].
 * Options: `heads` (default 12), `rng` for the N(0, 0.02²) init, `fastMatmul` (default true).
 * Ref: spec §4.1–§4.4; models/avm_module.py CrossModalAttention, heads.MatchingHead.
 */
import * as tf from '@tensorflow/tfjs';
import { tensorOps, type TensorOps } from '../core/fast-matmul.ts';
import type { Rng } from '../core/rng.ts';
import type { AvmAttention, AvmModule } from './types.ts';
import { addLayerNorm, addLinear, layerNorm, linear, NO_DRAWS, ParamShapes, ParamStore, splitHeads, type NormalSource, type ParamSink } from './layers.ts';

export const AVM_DEFAULT_HEADS = 12;
const AVM_LN_EPS = 1e-5;

export interface AvmOptions {
  rng: Rng;
  fastMatmul?: boolean;
}

export class AvmModel implements AvmModule {
  readonly params: ParamStore;
  readonly ops: TensorOps;
  readonly headDim: number;

  constructor(readonly dim: number, readonly heads: number, options: AvmOptions) {
    if (dim % heads !== 0) throw new Error(`AVM: width ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.ops = tensorOps(options.fastMatmul ?? true);
    const store = new ParamStore('AVM');
    defineAvmParams(dim, options.rng.fork('avm-init'), store);
    this.params = store;
  }

  get variables(): Map<string, tf.Variable> {
    return this.params.variables;
  }

  private check(za: tf.Tensor, zv: tf.Tensor): void {
    for (const [what, z] of [['audio', za], ['video', zv]] as const) {
      if (z.rank !== 3 || z.shape[2] !== this.dim) throw new Error(`AVM: ${what} embeddings must be [B, L, ${this.dim}], got [${z.shape}]`);
    }
    if (za.shape[0] !== zv.shape[0]) throw new Error(`AVM: audio batch ${za.shape[0]} and video batch ${zv.shape[0]} differ`);
  }

  /** [B, L, D] → [B·H, L, dh] projection by `name`. */
  private project(name: string, x: tf.Tensor): tf.Tensor3D {
    return splitHeads(linear(this.ops, this.params, name, x, false), this.heads);
  }

  private logits(q: tf.Tensor3D, k: tf.Tensor3D): tf.Tensor3D {
    return this.ops.scale(this.ops.batchMatMul(q, k, true), this.headDim ** -0.5);
  }

  inferAttention(embA: tf.Tensor3D, embV: tf.Tensor3D): AvmAttention {
    this.check(embA, embV);
    return tf.tidy(() => {
      const [b, la] = embA.shape, lv = embV.shape[1];
      const xa = layerNorm(this.params, 'norm_a', embA, AVM_LN_EPS, this.ops);
      const xv = layerNorm(this.params, 'norm_v', embV, AVM_LN_EPS, this.ops);
      const qA = this.project('to_a_q', xa), kA = this.project('to_a_k', xa);
      const qV = this.project('to_v_q', xv), kV = this.project('to_v_k', xv);
      const h = this.heads, dh = this.headDim;
      return {
        sAV: tf.reshape(this.logits(qA, kV), [b, h, la, lv]) as tf.Tensor4D,
        sVA: tf.reshape(this.logits(qV, kA), [b, h, lv, la]) as tf.Tensor4D,
        qV: tf.reshape(qV, [b, h, lv, dh]) as tf.Tensor4D,
        kV: tf.reshape(kV, [b, h, lv, dh]) as tf.Tensor4D,
        qA: tf.reshape(qA, [b, h, la, dh]) as tf.Tensor4D,
        kA: tf.reshape(kA, [b, h, la, dh]) as tf.Tensor4D,
      };
    });
  }

  forward(embA: tf.Tensor3D, embV: tf.Tensor3D): tf.Tensor2D {
    this.check(embA, embV);
    return tf.tidy(() => {
      const [b, la] = embA.shape, lv = embV.shape[1];
      const xa = layerNorm(this.params, 'norm_a', embA, AVM_LN_EPS, this.ops);
      const xv = layerNorm(this.params, 'norm_v', embV, AVM_LN_EPS, this.ops);
      const qA = this.project('to_a_q', xa), kA = this.project('to_a_k', xa), vA = this.project('to_a_v', xa);
      const qV = this.project('to_v_q', xv), kV = this.project('to_v_k', xv), vV = this.project('to_v_v', xv);
      const oA = this.ops.batchMatMul(tf.softmax(this.logits(qA, kV)), vV); // [B·H, La, dh], head-major
      const oV = this.ops.batchMatMul(tf.softmax(this.logits(qV, kA)), vA);
      // The quirk: head-major [B, H, L, dh] read row-major as [B, L, H·dh].
      const meanA = tf.mean(tf.reshape(oA, [b, la, this.dim]), 1);
      const meanV = tf.mean(tf.reshape(oV, [b, lv, this.dim]), 1);
      const pooled = tf.tanh(linear(this.ops, this.params, 'matching_score.pooler.dense', tf.concat([meanV, meanA], 1)));
      return linear(this.ops, this.params, 'matching_score.fc', pooled) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** The AVM's parameters (spec §4.1); the head count changes no shape. */
function defineAvmParams(dim: number, rng: NormalSource, store: ParamSink): void {
  addLayerNorm(store, 'norm_v', dim);
  addLayerNorm(store, 'norm_a', dim);
  for (const name of ['to_v_q', 'to_v_k', 'to_v_v', 'to_a_q', 'to_a_k', 'to_a_v']) addLinear(store, rng, name, dim, dim, false);
  addLinear(store, rng, 'matching_score.pooler.dense', 2 * dim, 2 * dim);
  addLinear(store, rng, 'matching_score.fc', 2 * dim, 1);
}

/** The AVM's state_dict names and PyTorch shapes for width `dim`, without building it. */
export function avmParamShapes(dim: number): Map<string, number[]> {
  const shapes = new ParamShapes('AVM');
  defineAvmParams(dim, NO_DRAWS, shapes);
  return shapes.shapes;
}

export function createAvm(dim: number, heads = AVM_DEFAULT_HEADS, options: AvmOptions): AvmModel {
  return new AvmModel(dim, heads, options);
}

export { matchingLoss } from './losses.ts';
