/** The one-call GELU kernels: the composed tfjs ops' values bit for bit on wasm and on cpu, one kernel call each way, nothing left behind. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { geluGradKernel, geluKernel } from '../../src/core/gelu-kernel.ts';
import { EXP2_TABLE, heapSimdKernels, type WasmHeapModule } from '../../src/core/heap-simd.ts';
import { Rng } from '../../src/core/rng.ts';
import { gelu } from '../../src/model/layers.ts';

test.before(async () => {
  await initBackend('wasm');
  if (tf.getBackend() !== 'wasm') throw new Error(`gelu tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('gelu-kernel');
const values = (n: number, scale = 4) => rng.fillUniform(new Float32Array(n)).map((x) => (x * 2 - 1) * scale);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** The composed form of src/model/layers.ts geluFastGrad (its fallback), forward and backward. */
function composed(x: tf.Tensor, dy: tf.Tensor) {
  const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
  const out = tf.mul(x, cdf);
  const pdfTimesX = tf.mul(tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), x), INV_SQRT_2PI);
  const dx = tf.mul(dy, tf.add(cdf, pdfTimesX));
  return [out, cdf, dx].map((t) => t.dataSync());
}

function fused(x: tf.Tensor, dy: tf.Tensor) {
  const f = geluKernel(x)!;
  const dx = geluGradKernel(dy, x, f.cdf)!;
  return [f.out, f.cdf, dx].map((t) => t.dataSync());
}

const SHAPES = [[3], [7, 5], [512, 384]];
/** Every branch of erf (|x·√½| below 2^-28, 0.84375, 1.25, 1/0.35, 6 and above), exp's underflow, ±0, ±∞, NaN, subnormals. */
const SPECIAL = [0, -0, 1e-40, -1e-40, 1e-9, -3e-9, 0.5, -1.1, 1.5, -1.7, 3, -3.9, 5, -8, 9, 15, -20, 1e6, -1e30, Infinity, -Infinity, NaN, 1.2, -1.19];

for (const backend of ['wasm', 'cpu']) {
  test.serial(`${backend}: forward, Φ and backward equal the composed ops bit for bit`, async (t) => {
    await tf.setBackend(backend);
    try {
      for (const shape of SHAPES) {
        const n = shape.reduce((a, b) => a * b, 1);
        tf.tidy(() => {
          const x = tf.tensor(values(n, n > 100 ? 12 : 4), shape), dy = tf.tensor(values(n, 1), shape);
          const expected = composed(x, dy), actual = fused(x, dy);
          ['y', 'Φ', 'dx'].forEach((name, i) => t.deepEqual(actual[i], expected[i], `${name} at [${shape}]`));
        });
      }
      tf.tidy(() => {
        const x = tf.tensor1d(SPECIAL), dy = tf.onesLike(x);
        const expected = composed(x, dy), actual = fused(x, dy);
        ['y', 'Φ', 'dx'].forEach((name, i) => t.deepEqual(actual[i], expected[i], `${name} of ${SPECIAL.join(', ')}`));
      });
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

test.serial('gelu on the fast path: one kernel call forward, one backward, the plain GELU\'s values and its gradient within 1e-5, no tensor left', (t) => {
  const x = tf.tensor2d(values(64 * 96), [64, 96]), dy = tf.tensor2d(values(64 * 96, 1), [64, 96]);
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const original = engine.runKernel;
  const calls: string[] = [];
  engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) {
    calls.push(name);
    return original.call(this, name, ...rest);
  };
  const before = tf.memory().numTensors;
  let fast: tf.Tensor[];
  try {
    fast = tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads((xx: tf.Tensor) => tf.mul(gelu(xx, { fast: true } as never), dy))([x]);
      return [value, grads[0]];
    });
  } finally {
    delete (engine as { runKernel?: unknown }).runKernel;
  }
  t.is(calls.filter((c) => c === 'StellaGelu').length, 1);
  t.is(calls.filter((c) => c === 'StellaGeluGrad').length, 1);
  t.false(calls.includes('Erf') || calls.includes('Exp'), `no composed GELU kernels: ${calls.join(', ')}`);
  const plain = tf.tidy(() => {
    const { value, grads } = tf.valueAndGrads((xx: tf.Tensor) => tf.mul(gelu(xx), dy))([x]);
    return [value, grads[0]];
  });
  t.deepEqual(fast[0].dataSync(), plain[0].dataSync(), 'forward equals the plain GELU');
  // The plain form's autodiff gradient is another formula (erf's registered gradient); within float error.
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fast[1], plain[1]))).dataSync()[0]);
  t.true(diff < 1e-5, `gradients within 1e-5 (max |Δ| ${diff})`);
  tf.dispose([...fast, ...plain]);
  t.is(tf.memory().numTensors, before);
  tf.dispose([x, dy]);
});

test.serial('wasm: our erf and exp give tfjs-wasm\'s own Erf and Exp for 2^20 floats spread over every bit pattern', (t) => {
  const backend = tf.backend() as unknown as { wasm: WasmHeapModule; dataIdMap: { get(id: object): { memoryOffset: number } } };
  const simd = heapSimdKernels(backend.wasm)!;
  t.truthy(simd, 'the heap kernels load');
  const n = 1 << 20, stride = 2 ** 32 / n;
  const bits = Uint32Array.from({ length: n }, (_, i) => (i * stride + ((i * 2654435761) >>> 0) % stride) >>> 0);
  const x = tf.tensor1d(new Float32Array(bits.buffer));
  const at = (u: tf.Tensor) => backend.dataIdMap.get(u.dataId).memoryOffset;
  for (const [name, theirs, ours] of [['erf', tf.erf, simd.erf], ['exp', tf.exp, simd.exp]] as const) {
    const want = theirs(x), got = tf.zerosLike(x);
    ours(at(x), at(got), n);
    const w = new Uint32Array(want.dataSync().buffer), g = new Uint32Array(got.dataSync().buffer), wf = want.dataSync(), gf = got.dataSync();
    let differ = 0, first = -1;
    for (let i = 0; i < n; i++) if (w[i] !== g[i] && !(Number.isNaN(wf[i]) && Number.isNaN(gf[i]))) { differ++; if (first < 0) first = i; }
    t.is(differ, 0, `${name}: ${differ} of ${n} differ${first >= 0 ? `, first at x = ${x.dataSync()[first]}: ${wf[first]} against ${gf[first]}` : ''}`);
    tf.dispose([want, got]);
  }
  x.dispose();
});

test('the exp table is 2^(i/32) rounded to the nearest double, less i << 47', (t) => {
  // 2^(i/32)·2^120 by an integer 32nd root, then rounded to 53 bits (never a tie: the value is irrational for i > 0).
  const root32 = (n: bigint) => { let lo = 0n, hi = 1n; while (hi ** 32n <= n) hi <<= 1n; while (hi - lo > 1n) { const mid = (lo + hi) >> 1n; if (mid ** 32n <= n) lo = mid; else hi = mid; } return lo; };
  EXP2_TABLE.forEach((entry, i) => {
    const y = root32(2n ** (BigInt(i) + 32n * 120n)), drop = 120n - 52n;
    let m = y >> drop;
    if ((y - (m << drop)) * 2n > 1n << drop) m += 1n;
    const bits = (1023n << 52n) | (m - (1n << 52n));
    t.is(entry, BigInt.asUintN(64, bits - (BigInt(i) << 47n)), `entry ${i}`);
  });
  t.is(EXP2_TABLE.length, 32);
});
