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
import { WASM_BASE64 as GELU } from './wasm/gelu.wasm.ts';
import { WASM_BASE64 as LAYER_NORM } from './wasm/layer-norm.wasm.ts';
import { WASM_BASE64 as PRODUCT } from './wasm/product.wasm.ts';
import { WASM_BASE64 as WEIGHT_GRADS } from './wasm/weight-grads.wasm.ts';

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
  /** src/core/wasm/gelu.wat: y = x·Φ(x) and Φ(x) for n floats, as tfjs-wasm's Erf and elementwise kernels give them. */
  gelu(x: number, out: number, cdf: number, n: number): void;
  /** Its backward: dx = dy·(Φ(x) + x·φ(x)), with tfjs-wasm's Exp. */
  geluGrad(dy: number, x: number, cdf: number, dx: number, n: number): void;
  /** src/core/wasm/product.wat: out [m, n] = a [m, k]·b [k, n] (+ bias [n]; 0 = none), summed as XNNPACK sums. */
  product(a: number, b: number, bias: number, out: number, m: number, k: number, n: number): void;
  /** src/core/wasm/weight-grads.wat: dW = xᵀ·g [in, out] and dβ = Σ_rows g [out] (db 0: dW alone) for x [rows, in], g [rows, out]. */
  weightGrads(x: number, g: number, dw: number, db: number, rows: number, inDim: number, outDim: number): void;
  /** Its column sums alone: sums [cols] of g [rows, cols] over the rows, in order from +0. */
  columnSums(g: number, sums: number, rows: number, cols: number): void;
  /** tfjs-wasm's erf and exp of n floats, n a multiple of 4 (for tests). */
  erf(x: number, out: number, n: number): void;
  exp(x: number, out: number, n: number): void;
}

/**
 * expf's table (gelu.wat): bits of 2^(i/32), rounded to the nearest double, less i << 47, so that
 * adding k << 47 gives 2^(k/32) for any integer k (test/core/heap-simd.test.ts recomputes them).
 */
export const EXP2_TABLE: readonly bigint[] = [
  0x3ff0000000000000n, 0x3fefd9b0d3158574n, 0x3fefb5586cf9890fn, 0x3fef9301d0125b51n, 0x3fef72b83c7d517bn, 0x3fef54873168b9aan,
  0x3fef387a6e756238n, 0x3fef1e9df51fdee1n, 0x3fef06fe0a31b715n, 0x3feef1a7373aa9cbn, 0x3feedea64c123422n, 0x3feece086061892dn,
  0x3feebfdad5362a27n, 0x3feeb42b569d4f82n, 0x3feeab07dd485429n, 0x3feea47eb03a5585n, 0x3feea09e667f3bcdn, 0x3fee9f75e8ec5f74n,
  0x3feea11473eb0187n, 0x3feea589994cce13n, 0x3feeace5422aa0dbn, 0x3feeb737b0cdc5e5n, 0x3feec49182a3f090n, 0x3feed503b23e255dn,
  0x3feee89f995ad3adn, 0x3feeff76f2fb5e47n, 0x3fef199bdd85529cn, 0x3fef3720dcef9069n, 0x3fef5818dcfba487n, 0x3fef7c97337b9b5fn,
  0x3fefa4afa2a490dan, 0x3fefd0765b6e4540n,
];

/** What we use of the wasm backend's Emscripten module. */
export interface WasmHeapModule {
  asm?: { memory?: unknown };
  _malloc(bytes: number): number;
  _free(offset: number): void;
  HEAPF32: Float32Array;
}

/**
 * `bytes` of the wasm heap, as an unsigned offset: Emscripten's _malloc returns an i32, negative once
 * the heap passes 2 GiB (as a base model's weights and moments take it), and 0 when the heap (4 GiB
 * at most) cannot hold the block, which is reported naming `what`.
 */
export function heapAlloc(wasm: WasmHeapModule, bytes: number, what: string): number {
  const offset = wasm._malloc(bytes) >>> 0;
  if (offset === 0) throw new Error(`the wasm heap cannot hold ${(bytes / 2 ** 20).toFixed(1)} MiB more for ${what} (tfjs-wasm's heap is limited to 4 GiB; STELLA_BACKEND=cpu or tensorflow has no such limit)`);
  return offset;
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
      const adam = load(ADAM_UPDATE), layerNorm = load(LAYER_NORM), gelu = load(GELU), weightGrads = load(WEIGHT_GRADS), product = load(PRODUCT);
      // gelu.wat's block: the table, then 96 bytes of scratch; kept for the module's life.
      const table = heapAlloc(wasm, EXP2_TABLE.length * 8 + 96 + 8, 'the GELU kernel\'s table');
      const tableAt = Math.ceil(table / 8) * 8;
      new BigUint64Array((memory as WebAssembly.Memory).buffer, tableAt, EXP2_TABLE.length).set(EXP2_TABLE);
      const withTable = <F extends (...args: number[]) => void>(f: unknown) => ((...args: number[]) => (f as F)(...args, tableAt)) as F;
      kernels = {
        adamUpdate: adam.adam_update as HeapSimdKernels['adamUpdate'],
        layerNorm: layerNorm.layer_norm as HeapSimdKernels['layerNorm'],
        layerNormGrad: layerNorm.layer_norm_grad as HeapSimdKernels['layerNormGrad'],
        weightGrads: weightGrads.weight_grads as HeapSimdKernels['weightGrads'],
        columnSums: weightGrads.column_sums as HeapSimdKernels['columnSums'],
        product: product.product as HeapSimdKernels['product'],
        gelu: withTable<HeapSimdKernels['gelu']>(gelu.gelu),
        geluGrad: withTable<HeapSimdKernels['geluGrad']>(gelu.gelu_grad),
        erf: withTable<HeapSimdKernels['erf']>(gelu.erf),
        exp: withTable<HeapSimdKernels['exp']>(gelu.exp),
      };
    }
    instances.set(wasm, kernels);
  }
  return kernels ?? undefined;
}
