/**
 * Our hand-written SIMD kernels (src/core/wasm/*.wat, compiled by scripts/build-wasm.ts), run on
 * tfjs-wasm's own heap: the module imports the backend's WebAssembly.Memory, so its arguments are
 * byte offsets of tensors (and of blocks we malloc there) and nothing is copied.
 *
 * Why: a JS loop over heap views runs one float at a time; wasm SIMD does four per instruction.
 * Each kernel does exactly the float32 operations of the JS loop it replaces, in the same order
 * (wasm has no implicit fused multiply-add), so results are bit for bit the same.
 *
 * Not available (undefined) on a backend whose memory is shared (the threaded wasm build: the
 * import would need a matching `shared` declaration) or where the memory cannot be found; callers
 * keep their JS loop for that case.
 */
import { WASM_BASE64 as ADAM_UPDATE } from './wasm/adam-update.wasm.ts';
import { WASM_BASE64 as LAYER_NORM } from './wasm/layer-norm.wasm.ts';
import { WASM_BASE64 as SMALL_PRODUCTS } from './wasm/small-products.wasm.ts';

export interface HeapSimdKernels {
  /** src/core/wasm/adam-update.wat: one Adam update of n floats; m and v in place, θ' to `out`. */
  adamUpdate(
    theta: number, grad: number, m: number, v: number, out: number, n: number, decay: number,
    weightDecay: number, beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number,
    sqrtBias2: number, eps: number, stepSize: number,
  ): void;
  /** src/core/wasm/layer-norm.wat: LayerNorm of x [rows, dim]; writes y, the normalised x̂ and r = 1/√(σ² + ε) [rows]. */
  layerNorm(x: number, gamma: number, beta: number, out: number, normed: number, rstd: number, rows: number, dim: number, eps: number): void;
  /** Its backward from dy, x̂ and r: dx [rows, dim], dγ and dβ [dim]. */
  layerNormGrad(dy: number, normed: number, rstd: number, gamma: number, dx: number, dgamma: number, dbeta: number, rows: number, dim: number): void;
  /** src/core/wasm/small-products.wat: out[g] = a[g]·b[g] for a [groups, m, k], b [groups, k, n], summed as XNNPACK sums. */
  batchedProduct(a: number, b: number, out: number, groups: number, m: number, k: number, n: number): void;
}

/** What we use of the wasm backend's Emscripten module. */
export interface WasmHeapModule {
  asm?: { memory?: unknown };
  _malloc(bytes: number): number;
  _free(offset: number): void;
  HEAPF32: Float32Array;
}

const instances = new WeakMap<object, HeapSimdKernels | null>();

/** The kernels bound to this module's heap, or undefined (see the header). */
export function heapSimdKernels(wasm: WasmHeapModule): HeapSimdKernels | undefined {
  let kernels = instances.get(wasm);
  if (kernels === undefined) {
    const memory = wasm.asm?.memory;
    kernels = null;
    if (memory instanceof WebAssembly.Memory && !(memory.buffer instanceof SharedArrayBuffer)) {
      const load = (base64: string) => new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(base64, 'base64')), { env: { memory } }).exports;
      const adam = load(ADAM_UPDATE), layerNorm = load(LAYER_NORM), smallProducts = load(SMALL_PRODUCTS);
      kernels = {
        adamUpdate: adam.adam_update as HeapSimdKernels['adamUpdate'],
        layerNorm: layerNorm.layer_norm as HeapSimdKernels['layerNorm'],
        layerNormGrad: layerNorm.layer_norm_grad as HeapSimdKernels['layerNormGrad'],
        batchedProduct: smallProducts.batched_product as HeapSimdKernels['batchedProduct'],
      };
    }
    instances.set(wasm, kernels);
  }
  return kernels ?? undefined;
}
