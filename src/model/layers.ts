/**
 * Building blocks shared by the backbone and the AVM: the parameter store (state_dict names,
 * PyTorch-layout I/O), LayerNorm, exact-erf GELU, multi-head self-attention and the pre-norm ViT block.
 *
 * Layout: a Linear weight is held as [in, out] (PyTorch keeps [out, in]) and a patch-embedding conv
 * weight [D, C, P, P] as its [C·P·P, D] matmul form; `ParamStore.read/write` convert at the boundary,
 * so saved and loaded tensors always use the authors' layout and shapes.
 * Ref: spec §3.3 (block), §3.5 (init), Appendix B (layouts).
 */
import * as tf from '@tensorflow/tfjs';
import { fastGeluLinear, freeingGrad, splitRows, sumRows, type TensorOps } from '../core/fast-matmul.ts';
import { layerNormGradKernel, layerNormKernel } from '../core/layer-norm-kernel.ts';
import { INV_SQRT_2PI, geluGradKernel, geluKernel } from '../core/gelu-kernel.ts';

/** How a parameter's PyTorch layout maps onto the variable held here. */
export type ParamLayout = 'plain' | 'linear' | 'conv';

export interface ParamInfo {
  layout: ParamLayout;
  /** Shape in the authors' state_dict. */
  torchShape: number[];
  variable: tf.Variable;
}

/** Initial values, or a function computing them (so a shape-only sink never draws them). */
export type ParamValues = Float32Array | (() => Float32Array);

/** Where a module's parameter definitions go: a `ParamStore`, or `ParamShapes` (names and shapes only). */
export interface ParamSink {
  add(name: string, torchShape: number[], layout: ParamLayout, torchValues: ParamValues): void;
}

/** Records names and PyTorch shapes without computing any value (a ViT-B's shapes in microseconds). */
export class ParamShapes implements ParamSink {
  readonly shapes = new Map<string, number[]>();

  constructor(readonly owner: string) {}

  add(name: string, torchShape: number[]): void {
    if (this.shapes.has(name)) throw new Error(`${this.owner}: parameter '${name}' registered twice`);
    this.shapes.set(name, torchShape.slice());
  }
}

/** A random source for shape-only sinks: the few values computed eagerly (small tables) are unused. */
export const NO_DRAWS: NormalSource = { normal: () => 0, uniform: () => 0 };

/** Named trainable tensors of one module, keyed by state_dict name. */
let storeCount = 0;

export class ParamStore implements ParamSink {
  readonly entries = new Map<string, ParamInfo>();
  readonly variables = new Map<string, tf.Variable>();
  /** tfjs variable names are global: each store gets its own namespace. */
  private readonly namespace = `${++storeCount}`;

  constructor(readonly owner: string) {}

  /** Registers a parameter from its PyTorch-layout values (a function is called at once, keeping the draw order). */
  add(name: string, torchShape: number[], layout: ParamLayout, torchValues: ParamValues): tf.Variable {
    if (this.entries.has(name)) throw new Error(`${this.owner}: parameter '${name}' registered twice`);
    const values = typeof torchValues === 'function' ? torchValues() : torchValues;
    const initial = toInternal(values, torchShape, layout);
    const variable = tf.variable(initial, true, `${this.owner}#${this.namespace}/${name}`);
    // The variable shares the initial buffer; the initial tensor itself would otherwise stay tracked
    // (a second count of every weight) and, after the first update, hold the old values alive.
    initial.dispose();
    this.entries.set(name, { layout, torchShape, variable });
    this.variables.set(name, variable);
    return variable;
  }

  get(name: string): tf.Variable {
    const v = this.variables.get(name);
    if (!v) throw new Error(`${this.owner}: no parameter '${name}'`);
    return v;
  }

  /** Values in PyTorch layout. */
  read(name: string): { shape: number[]; data: Float32Array } {
    const info = this.entries.get(name);
    if (!info) throw new Error(`${this.owner}: no parameter '${name}'`);
    const internal = info.variable.dataSync() as Float32Array;
    return { shape: info.torchShape.slice(), data: fromInternal(internal, info.torchShape, info.layout) };
  }

  /** Overwrites a parameter from PyTorch-layout values; a shape mismatch names both shapes. */
  write(name: string, shape: number[], data: Float32Array): void {
    const info = this.entries.get(name);
    if (!info) throw new Error(`${this.owner}: unknown parameter '${name}' (shape [${shape}])`);
    if (shape.length !== info.torchShape.length || shape.some((d, i) => d !== info.torchShape[i])) {
      throw new Error(`${this.owner}: parameter '${name}' has shape [${info.torchShape}] but the weights give [${shape}]`);
    }
    tf.tidy(() => info.variable.assign(toInternal(data, shape, info.layout)));
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.entries.clear();
    this.variables.clear();
  }
}

function toInternal(values: Float32Array, shape: number[], layout: ParamLayout): tf.Tensor {
  if (layout === 'plain') return tf.tensor(values, shape, 'float32');
  const out = shape[0];
  const inner = values.length / out;
  // Linear [out, in] and conv [out, C, P, P] both become [in', out].
  return tf.tidy(() => tf.transpose(tf.tensor2d(values, [out, inner])));
}

function fromInternal(values: Float32Array, shape: number[], layout: ParamLayout): Float32Array {
  if (layout === 'plain') return Float32Array.from(values);
  const out = shape[0];
  const inner = values.length / out;
  const result = new Float32Array(values.length);
  for (let i = 0; i < inner; i++) for (let o = 0; o < out; o++) result[o * inner + i] = values[i * out + o];
  return result;
}

/** Parameter initialisers drawing from a `normal()` source (spec §3.5). */
export interface NormalSource { normal(): number; uniform(): number }

export function normalValues(rng: NormalSource, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

export function uniformValues(rng: NormalSource, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.uniform() * 2 - 1) * bound;
  return out;
}

/** Linear [out, in] ~ N(0, 0.02²) with zero bias (the wrapper's generic init, §11 Q24). */
export function addLinear(store: ParamSink, rng: NormalSource, name: string, inDim: number, outDim: number, bias = true): void {
  store.add(`${name}.weight`, [outDim, inDim], 'linear', () => normalValues(rng, inDim * outDim, 0.02));
  if (bias) store.add(`${name}.bias`, [outDim], 'plain', new Float32Array(outDim));
}

export function addLayerNorm(store: ParamSink, name: string, dim: number): void {
  store.add(`${name}.weight`, [dim], 'plain', new Float32Array(dim).fill(1));
  store.add(`${name}.bias`, [dim], 'plain', new Float32Array(dim));
}

/** LayerNorm over the last axis; `ops.fast` selects the fused-gradient form (same values). */
export function layerNorm(store: ParamStore, name: string, x: tf.Tensor, eps: number, ops?: TensorOps): tf.Tensor {
  const weight = store.get(`${name}.weight`), bias = store.get(`${name}.bias`);
  if (ops?.fast) return layerNormFastGrad(x, weight, bias, eps);
  const { mean, variance } = tf.moments(x, -1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, weight), bias);
}

/**
 * LayerNorm with its gradient written out (autodiff of the moments form costs ~3× the kernels):
 * x̂ = (x − μ)·r, r = (σ² + ε)^-½; dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ;
 * dγ, dβ are column sums (fast products, `sumRows`).
 */
function layerNormFastGrad(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const dim = x.shape[x.rank - 1];
  const flat = tf.reshape(x, [-1, dim]) as tf.Tensor2D;
  const op = tf.customGrad(((xx: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    // One kernel each way where it runs (wasm, cpu: src/core/layer-norm-kernel.ts), the same values.
    const fused = layerNormKernel(xx, w, b, eps);
    const centred = fused ? undefined : tf.sub(xx, tf.mean(xx, -1, true));
    const rstd = fused?.rstd ?? tf.rsqrt(tf.add(tf.mean(tf.square(centred!), -1, true), eps));
    const normed = fused?.normed ?? tf.mul(centred!, rstd);
    save([normed, rstd, w]);
    return {
      value: fused?.out ?? tf.add(tf.mul(normed, w), b),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sn, sr, sw] = saved;
        const grads = layerNormGradKernel(dy as tf.Tensor2D, sn as tf.Tensor2D, sr as tf.Tensor2D, sw);
        if (grads) return grads;
        const g = tf.mul(dy, sw);
        const dx = tf.mul(sr, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(sn, tf.mean(tf.mul(g, sn), -1, true))));
        return [dx, sumRows(tf.mul(dy, sn) as tf.Tensor2D), sumRows(dy as tf.Tensor2D)];
      }),
    };
  }) as any);
  return tf.reshape(op(flat, weight, bias), x.shape);
}

export function linear(ops: TensorOps, store: ParamStore, name: string, x: tf.Tensor, bias = true): tf.Tensor {
  return ops.linear(x, store.get(`${name}.weight`), bias ? store.get(`${name}.bias`) : undefined);
}

/** Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)); tf.erf has a registered gradient. `ops.fast`: written-out gradient. */
export function gelu(x: tf.Tensor, ops?: TensorOps): tf.Tensor {
  if (ops?.fast) return geluFastGrad(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/** GELU with d/dx = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π), reusing Φ from the forward. */
function geluFastGrad(x: tf.Tensor): tf.Tensor {
  const op = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    // One kernel each way where it runs (wasm, cpu: src/core/gelu-kernel.ts), the same values.
    const fused = geluKernel(xx);
    const cdf = fused?.cdf ?? tf.mul(tf.add(tf.erf(tf.mul(xx, Math.SQRT1_2)), 1), 0.5);
    save([xx, cdf]);
    return {
      value: fused?.out ?? tf.mul(xx, cdf),
      gradFunc: freeingGrad((dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sc] = saved;
        const dx = geluGradKernel(dy, sx, sc);
        if (dx) return [dx];
        const pdfTimesX = tf.mul(tf.mul(tf.exp(tf.mul(tf.square(sx), -0.5)), sx), INV_SQRT_2PI);
        return [tf.mul(dy, tf.add(sc, pdfTimesX))];
      }),
    };
  }) as any);
  return op(x);
}

/** linear `name` of GELU(x); on the fast path one op that keeps less for its gradient (`fastGeluLinear2d`). */
function geluThenLinear(ops: TensorOps, store: ParamStore, name: string, x: tf.Tensor): tf.Tensor {
  const fused = ops.fast ? fastGeluLinear(x, store.get(`${name}.weight`) as tf.Tensor2D, store.get(`${name}.bias`)) : undefined;
  return fused ?? linear(ops, store, name, gelu(x, ops));
}

/** Registers a ViT block's parameters; `modalityNorms` adds norm{1,2}_{a,v} (shared blocks). */
export function addBlock(store: ParamSink, rng: NormalSource, name: string, dim: number, mlpRatio: number, modalityNorms: boolean): void {
  const hidden = Math.round(dim * mlpRatio);
  addLayerNorm(store, `${name}.norm1`, dim);
  if (modalityNorms) { addLayerNorm(store, `${name}.norm1_a`, dim); addLayerNorm(store, `${name}.norm1_v`, dim); }
  addLinear(store, rng, `${name}.attn.qkv`, dim, 3 * dim);
  addLinear(store, rng, `${name}.attn.proj`, dim, dim);
  addLayerNorm(store, `${name}.norm2`, dim);
  if (modalityNorms) { addLayerNorm(store, `${name}.norm2_a`, dim); addLayerNorm(store, `${name}.norm2_v`, dim); }
  addLinear(store, rng, `${name}.mlp.fc1`, dim, hidden);
  addLinear(store, rng, `${name}.mlp.fc2`, hidden, dim);
}

/** Splits [B, L, H·dh] into heads [B·H, L, dh]. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor3D {
  const [b, l, c] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, l, heads, c / heads]), [0, 2, 1, 3]), [b * heads, l, c / heads]);
}

/** softmax((q·dh^-½)·kᵀ)·v over [B·H, L, dh] tensors. */
export function scaledDotAttention(ops: TensorOps, q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  const dh = q.shape[2];
  const scores = ops.batchMatMul(ops.scale(q, dh ** -0.5), k, true);
  return ops.batchMatMul(tf.softmax(scores), v);
}

/** Multi-head self-attention of block `name` on x [B, L, C]. */
export function selfAttention(ops: TensorOps, store: ParamStore, name: string, x: tf.Tensor, heads: number): tf.Tensor {
  if (ops.fast) {
    return headMajorSelfAttention(ops, store, name, x, heads);
  }
  const [b, l, c] = x.shape;
  const dh = c / heads;
  const qkv = linear(ops, store, `${name}.qkv`, x); // [B, L, 3C], columns [q | k | v], each [heads, dh]
  const split = tf.transpose(tf.reshape(qkv, [b, l, 3, heads, dh]), [2, 0, 3, 1, 4]); // [3, B, H, L, dh]
  const [q, k, v] = tf.unstack(tf.reshape(split, [3, b * heads, l, dh])) as tf.Tensor3D[];
  const o = scaledDotAttention(ops, q, k, v); // [B·H, L, dh]
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [b, heads, l, dh]), [0, 2, 1, 3]), [b, l, c]);
  return linear(ops, store, `${name}.proj`, merged);
}

/**
 * The same attention with heads split and merged by rank-3 transposes only (wasm runs rank ≤ 4
 * transposes natively; the rank-5 one of the plain form costs ~100× more). Groups come out ordered
 * (head, batch row) instead of (batch row, head), which attention does not care about.
 */
function headMajorSelfAttention(ops: TensorOps, store: ParamStore, name: string, x: tf.Tensor, heads: number): tf.Tensor {
  const [b, l, c] = x.shape;
  const dh = c / heads;
  const qkv = linear(ops, store, `${name}.qkv`, tf.reshape(x, [b * l, c])); // [B·L, 3C], columns [q | k | v] × [H, dh]
  const split = tf.transpose(tf.reshape(qkv, [b * l, 3 * heads, dh]), [1, 0, 2]); // [3H, B·L, dh]
  const [q, k, v] = splitRows(tf.reshape(split, [3 * heads * b * l, dh]) as tf.Tensor2D, 3).map((t) => tf.reshape(t, [heads * b, l, dh]) as tf.Tensor3D); // each [H·B, L, dh]
  const o = scaledDotAttention(ops, q, k, v);
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [heads, b * l, dh]), [1, 0, 2]), [b * l, c]);
  return tf.reshape(linear(ops, store, `${name}.proj`, merged), [b, l, c]);
}

/** Pre-norm block; `modality` picks norm{1,2}_a / _v of a shared block, else norm1 / norm2. */
export function block(ops: TensorOps, store: ParamStore, name: string, x: tf.Tensor, heads: number, eps: number, modality?: 'a' | 'v'): tf.Tensor {
  const suffix = modality ? `_${modality}` : '';
  // A scope per block: under autodiff, what a gradient needs is saved (kept) by its op, and every
  // other intermediate (reshaped views, head splits) is freed here instead of at the end of the step.
  return tf.tidy(() => {
    const attn = selfAttention(ops, store, `${name}.attn`, layerNorm(store, `${name}.norm1${suffix}`, x, eps, ops), heads);
    const h = tf.add(x, attn);
    const hidden = linear(ops, store, `${name}.mlp.fc1`, layerNorm(store, `${name}.norm2${suffix}`, h, eps, ops));
    return tf.add(h, geluThenLinear(ops, store, `${name}.mlp.fc2`, hidden));
  });
}
