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
 *
 * Speed: one pass per element does the whole update in float32 arithmetic (every operation
 * rounded, in the order of the tensor formulation above, so the result is bit for bit what eight
 * elementwise kernels per parameter gave). On wasm one kernel (`StellaAdamUpdate`) reads every
 * gradient and parameter in place in the heap and writes the new parameters into fresh buffers (a
 * fresh data id per step, as XNNPACK caches packed weights by data id); there the moments live in
 * the heap too and the pass is our SIMD kernel (src/core/wasm/adam-update.wat, four floats per
 * instruction, the same operations; src/core/heap-simd.ts). Elsewhere the moments are JS arrays,
 * and the pass is the JS loop below (`Math.fround` after each operation); other backends read with
 * `dataSync` and upload the new values.
 * Ref: spec §7.5; torch.optim.Adam.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { heapAlloc, heapSimdKernels, type WasmHeapModule } from '../core/heap-simd.ts';
import { wasmKernelOnce } from '../core/wasm-kernel.ts';

export const adamOptionsSchema = z.object({
  lr: z.number().positive().default(1e-4),
  beta1: z.number().min(0).max(1).default(0.95),
  beta2: z.number().min(0).max(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(5e-7),
  /**
   * Bytes of new parameter values one update call makes before they replace the old ones: the step
   * never holds a second copy of all the weights. Small next to `base` (~730 MiB) and larger than all
   * of `tiny`, which stays one kernel call per step.
   */
  updateChunkBytes: z.number().int().positive().default(64 * 2 ** 20),
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

/** Float32 constants of one step (each rounded as tfjs rounds a scalar operand). */
interface StepConstants {
  weightDecay: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  sqrtBias2: number;
  eps: number;
  stepSize: number;
}

const f32 = Math.fround;

/**
 * One Adam update of n elements: reads θ and g, updates m and v in place, writes θ' to `out`. Each
 * operation is rounded to float32 in the order of the tensor formulation (bit-identical to it).
 */
function adamUpdate(theta: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, out: Float32Array, decay: boolean, c: StepConstants): void {
  const { weightDecay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, sqrtBias2, eps, stepSize } = c;
  const n = theta.length;
  for (let i = 0; i < n; i++) {
    const th = theta[i];
    const g = decay ? f32(grad[i] + f32(th * weightDecay)) : grad[i];
    const mi = f32(f32(m[i] * beta1) + f32(g * oneMinusBeta1));
    const vi = f32(f32(v[i] * beta2) + f32(f32(g * g) * oneMinusBeta2));
    m[i] = mi;
    v[i] = vi;
    const denom = f32(f32(f32(Math.sqrt(vi)) / sqrtBias2) + eps);
    out[i] = th - f32(f32(mi / denom) * stepSize);
  }
}

/**
 * A parameter's first and second moments: JS arrays, or two blocks in the wasm heap that the SIMD
 * kernel updates in place (moved there at the first update on wasm; freed by `free`).
 */
class Moments {
  private arraysHeld?: { m: Float32Array; v: Float32Array };
  private heap?: { wasm: WasmHeapModule; m: number; v: number };

  constructor(readonly size: number, initial?: { m: Float32Array; v: Float32Array }) {
    this.arraysHeld = initial ?? { m: new Float32Array(size), v: new Float32Array(size) };
  }

  /** Byte offsets of m and v in `wasm`'s heap, copying the values there on the first call. */
  onHeap(wasm: WasmHeapModule): { m: number; v: number } {
    if (!this.heap) {
      const bytes = this.size * 4;
      const m = heapAlloc(wasm, bytes, 'Adam\'s first moments'), v = heapAlloc(wasm, bytes, 'Adam\'s second moments');
      // Views after both allocations: an allocation may grow the heap and detach earlier views.
      wasm.HEAPF32.set(this.arraysHeld!.m, m / 4);
      wasm.HEAPF32.set(this.arraysHeld!.v, v / 4);
      this.heap = { wasm, m, v };
      this.arraysHeld = undefined;
    }
    return this.heap;
  }

  /** The values: the JS arrays, or views of the heap (valid until the next heap allocation). */
  arrays(): { m: Float32Array; v: Float32Array } {
    if (this.arraysHeld) return this.arraysHeld;
    const { wasm, m, v } = this.heap!;
    return { m: wasm.HEAPF32.subarray(m / 4, m / 4 + this.size), v: wasm.HEAPF32.subarray(v / 4, v / 4 + this.size) };
  }

  free(): void {
    if (this.heap) {
      this.heap.wasm._free(this.heap.m);
      this.heap.wasm._free(this.heap.v);
      this.heap = undefined;
      this.arraysHeld = { m: new Float32Array(0), v: new Float32Array(0) };
    }
  }
}

interface UpdateSlot {
  moments: Moments;
  decay: boolean;
}

const ADAM_UPDATE = 'StellaAdamUpdate';

/** Consecutive runs of `items` whose parameters hold at most `maxBytes` (a larger one alone). */
function updateChunks<T extends { p: OptimizedParam }>(items: T[], maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [], bytes = 0;
  for (const item of items) {
    const size = item.p.variable.size * 4;
    if (current.length && bytes + size > maxBytes) { chunks.push(current); current = []; bytes = 0; }
    current.push(item);
    bytes += size;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/**
 * Registers `StellaAdamUpdate` for wasm: inputs `theta{i}`, `grad{i}` for every slot i; returns the
 * new parameter values (fresh buffers), reading inputs as heap views (no copies, one kernel call).
 */
const ensureAdamKernel = wasmKernelOnce(ADAM_UPDATE, ({ inputs, backend, attrs }) => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the wasm backend's heap helpers are not in its typings
  const wasm = backend as any;
  const slots = attrs!.slots as unknown as UpdateSlot[];
  const constants = attrs!.constants as unknown as StepConstants;
  // Allocate every output first: an allocation may grow the heap and detach earlier views.
  const outs: tf.TensorInfo[] = slots.map((_, i) => wasm.makeOutput((inputs[`theta${i}`] as tf.TensorInfo).shape, 'float32'));
  const simd = heapSimdKernels(wasm.wasm);
  if (simd) {
    const moments = slots.map((slot) => slot.moments.onHeap(wasm.wasm)); // allocations first, as above
    const offset = (t: tf.TensorInfo) => wasm.dataIdMap.get(t.dataId).memoryOffset as number;
    const c = constants;
    slots.forEach((slot, i) => {
      simd.adamUpdate(
        offset(inputs[`theta${i}`] as tf.TensorInfo), offset(inputs[`grad${i}`] as tf.TensorInfo), moments[i].m, moments[i].v, offset(outs[i]),
        slot.moments.size, slot.decay ? 1 : 0, c.weightDecay, c.beta1, c.oneMinusBeta1, c.beta2, c.oneMinusBeta2, c.sqrtBias2, c.eps, c.stepSize,
      );
    });
    return outs;
  }
  slots.forEach((slot, i) => {
    const { m, v } = slot.moments.arrays();
    adamUpdate(wasm.typedArrayFromHeap(inputs[`theta${i}`]), wasm.typedArrayFromHeap(inputs[`grad${i}`]), m, v, wasm.typedArrayFromHeap(outs[i]), slot.decay, constants);
  });
  return outs;
});

export class Adam {
  readonly options: Required<z.output<typeof adamOptionsSchema>>;
  private step = 0;
  /** Per key: moments in the variable's layout (created at the parameter's first gradient). */
  private readonly moments = new Map<string, Moments>();

  constructor(readonly params: OptimizedParam[], options: AdamOptions = {}) {
    this.options = adamOptionsSchema.parse(options);
    const keys = new Set<string>();
    for (const p of params) {
      if (keys.has(p.key)) throw new Error(`Adam: parameter key '${p.key}' given twice`);
      keys.add(p.key);
    }
  }

  /** Moment tensors held: none (the moments are JS arrays or wasm heap blocks, outside the tensor engine). */
  get momentTensorCount(): number {
    return 0;
  }

  /** Parameters that have moments (updated at least once, or restored). */
  get momentCount(): number {
    return this.moments.size;
  }

  get stepCount(): number {
    return this.step;
  }

  /** Applies one update from gradients keyed like `params` (absent = no gradient, skipped). */
  apply(grads: Map<string, tf.Tensor>): void {
    this.checkShapes(grads); // before the step counts
    this.applyPart(this.startStep(), grads);
  }

  /**
   * Starts one step whose gradients may come in parts, each applied as it comes (no parameter twice
   * in a step): the same update as one `apply` of them all, since a parameter's update reads only its
   * own gradient and moments and the step's constants. A part applied early frees its gradients
   * before the rest are computed.
   */
  beginStep(): { apply(grads: Map<string, tf.Tensor>): void } {
    const step = this.startStep();
    return {
      apply: (grads) => {
        this.checkShapes(grads);
        this.applyPart(step, grads);
      },
    };
  }

  /** Counts a step and returns its constants, with the keys updated in it so far. */
  private startStep(): { constants: StepConstants; done: Set<string> } {
    this.step += 1;
    const { lr, beta1, beta2, eps, weightDecay } = this.options;
    const bias1 = 1 - beta1 ** this.step;
    const bias2 = 1 - beta2 ** this.step;
    const constants: StepConstants = {
      weightDecay: f32(weightDecay), beta1: f32(beta1), oneMinusBeta1: f32(1 - beta1), beta2: f32(beta2), oneMinusBeta2: f32(1 - beta2),
      sqrtBias2: f32(Math.sqrt(bias2)), eps: f32(eps), stepSize: f32(lr / bias1),
    };
    return { constants, done: new Set() };
  }

  /** Updates the parameters of `grads` (shapes already checked) within `step`. */
  private applyPart(step: { constants: StepConstants; done: Set<string> }, grads: Map<string, tf.Tensor>): void {
    for (const key of grads.keys()) {
      if (step.done.has(key)) throw new Error(`Adam: parameter '${key}' was already updated in this step`);
    }
    for (const key of grads.keys()) step.done.add(key);
    this.update(grads, step.constants);
  }

  private checkShapes(grads: Map<string, tf.Tensor>): void {
    for (const p of this.params) {
      const grad = grads.get(p.key);
      if (grad && (grad.shape.length !== p.variable.shape.length || grad.shape.some((d, i) => d !== p.variable.shape[i]))) {
        throw new Error(`Adam.apply: gradient of '${p.key}' has shape [${grad.shape}] but the parameter is [${p.variable.shape}]`);
      }
    }
  }

  private update(grads: Map<string, tf.Tensor>, constants: StepConstants): void {
    const { weightDecay } = this.options;
    const updated: { p: OptimizedParam; grad: tf.Tensor; slot: UpdateSlot }[] = [];
    for (const p of this.params) {
      const grad = grads.get(p.key);
      if (!grad) continue;
      let mo = this.moments.get(p.key);
      if (!mo) {
        mo = new Moments(p.variable.size);
        this.moments.set(p.key, mo);
      }
      updated.push({ p, grad, slot: { moments: mo, decay: p.decay && weightDecay > 0 } });
    }
    if (!updated.length) return;
    const onHeap = tf.getBackend() === 'wasm' && updated.every((u) => u.grad.dtype === 'float32' && u.p.variable.dtype === 'float32');
    if (onHeap) ensureAdamKernel();
    // A chunk at a time, each new value assigned (the old one freed) before the next chunk is computed.
    for (const chunk of updateChunks(updated, this.options.updateChunkBytes)) {
      let next: tf.Tensor[];
      if (onHeap) {
        const inputs: Record<string, tf.Tensor> = {};
        chunk.forEach((u, i) => { inputs[`theta${i}`] = u.p.variable; inputs[`grad${i}`] = u.grad; });
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- attrs carry the JS moment arrays
        next = tf.engine().runKernel(ADAM_UPDATE, inputs, { slots: chunk.map((u) => u.slot), constants } as any) as unknown as tf.Tensor[];
      } else {
        next = chunk.map(({ p, grad, slot }) => {
          const out = new Float32Array(p.variable.size);
          const { m, v } = slot.moments.arrays();
          adamUpdate(p.variable.dataSync() as Float32Array, grad.dataSync() as Float32Array, m, v, out, slot.decay, constants);
          return tf.tensor(out, p.variable.shape, 'float32');
        });
      }
      chunk.forEach((u, i) => {
        u.p.variable.assign(next[i]);
        next[i].dispose();
      });
    }
  }

  getState(): AdamState {
    const moments: AdamState['moments'] = {};
    const shapes = new Map(this.params.map((p) => [p.key, p.variable.shape]));
    for (const [key, mo] of this.moments) {
      const { m, v } = mo.arrays();
      moments[key] = { shape: shapes.get(key)!.slice(), m: Float32Array.from(m), v: Float32Array.from(v) };
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
      if (mo.m.length !== p.variable.size || mo.v.length !== p.variable.size) {
        throw new Error(`Adam.setState: moments of '${key}' hold ${mo.m.length}/${mo.v.length} values but the parameter has ${p.variable.size}`);
      }
    }
    this.dispose();
    this.step = state.step;
    for (const [key, mo] of Object.entries(state.moments)) this.moments.set(key, new Moments(mo.m.length, { m: Float32Array.from(mo.m), v: Float32Array.from(mo.v) }));
  }

  /** Frees the moments (those in the wasm heap too). */
  dispose(): void {
    for (const mo of this.moments.values()) mo.free();
    this.moments.clear();
  }
}
