/** Our SIMD kernels on tfjs-wasm's heap: the checked-in bytes match their .wat, and Adam's kernel equals the JS loop bit for bit. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileWat, WASM_DIR, wasmModuleSource } from '../../scripts/build-wasm.ts';
import { initBackend } from '../../src/core/backend.ts';
import { heapAlloc, heapSimdKernels, type WasmHeapModule } from '../../src/core/heap-simd.ts';
import { Rng } from '../../src/core/rng.ts';

test.before(async () => { await initBackend(); });

test('every src/core/wasm/*.wasm.ts is what its .wat compiles to (run npm run build:wasm after editing a .wat)', async (t) => {
  const sources = readdirSync(WASM_DIR).filter((f) => f.endsWith('.wat'));
  t.true(sources.length > 0);
  for (const wat of sources) {
    const built = wasmModuleSource(wat, await compileWat(path.join(WASM_DIR, wat)));
    t.is(readFileSync(path.join(WASM_DIR, wat.replace(/\.wat$/, '.wasm.ts')), 'utf8'), built, `${wat}: the generated module is stale`);
  }
});

const f32 = Math.fround;

test('heapAlloc reads an offset past 2 GiB as unsigned and names what a full heap could not hold', (t) => {
  // Emscripten's _malloc returns an i32: negative past 2 GiB, 0 when the heap is full.
  const fake = (offset: number) => ({ _malloc: () => offset, _free: () => {}, HEAPF32: new Float32Array(0) }) as WasmHeapModule;
  t.is(heapAlloc(fake(-2147483648), 64, 'x'), 2 ** 31);
  t.is(heapAlloc(fake(-16), 64, 'x'), 2 ** 32 - 16);
  t.is(heapAlloc(fake(4096), 64, 'x'), 4096);
  t.throws(() => heapAlloc(fake(0), 3 * 2 ** 20, "Adam's first moments"), { message: /the wasm heap cannot hold 3\.0 MiB more for Adam's first moments \(tfjs-wasm's heap is limited to 4 GiB/ });
});

test('adam_update on the heap equals the float32 JS loop bit for bit (vector body and tail, with and without decay)', (t) => {
  if (tf.getBackend() !== 'wasm') return t.pass('not on wasm: the JS loop runs');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the backend's Emscripten module
  const wasm = (tf.backend() as any).wasm as WasmHeapModule;
  if ((wasm.asm?.memory as WebAssembly.Memory).buffer instanceof SharedArrayBuffer) {
    t.is(heapSimdKernels(wasm), undefined, 'the threaded build: the JS loop runs');
    return;
  }
  const simd = heapSimdKernels(wasm);
  t.truthy(simd, 'the kernels load on the single-threaded wasm backend');
  const c = { wd: f32(5e-7), b1: f32(0.95), omb1: f32(1 - 0.95), b2: f32(0.999), omb2: f32(1 - 0.999), sqrtBias2: f32(Math.sqrt(1 - 0.999 ** 3)), eps: f32(1e-8), stepSize: f32(1e-4 / (1 - 0.95 ** 3)) };
  const rng = Rng.fromSeed('adam-simd');
  for (const n of [1, 3, 4, 7, 1031]) {
    for (const decay of [0, 1]) {
      const fill = (scale: number) => rng.fillUniform(new Float32Array(n)).map((x, j) => (j % 13 === 0 ? 0 : (x - 0.3) * scale));
      const theta = fill(2), grad = fill(1e-3), m = fill(1e-3), v = fill(1e-6).map(Math.abs);
      // The JS loop of src/model/optimizer.ts, written out.
      const mJs = m.slice(), vJs = v.slice(), outJs = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const th = theta[i];
        const g = decay ? f32(grad[i] + f32(th * c.wd)) : grad[i];
        mJs[i] = f32(f32(mJs[i] * c.b1) + f32(g * c.omb1));
        vJs[i] = f32(f32(vJs[i] * c.b2) + f32(f32(g * g) * c.omb2));
        outJs[i] = th - f32(f32(mJs[i] / f32(f32(f32(Math.sqrt(vJs[i])) / c.sqrtBias2) + c.eps)) * c.stepSize);
      }
      const at = [theta, grad, m, v, new Float32Array(n)].map(() => wasm._malloc(n * 4));
      [theta, grad, m, v].forEach((a, i) => wasm.HEAPF32.set(a, at[i] / 4));
      simd!.adamUpdate(at[0], at[1], at[2], at[3], at[4], n, decay, c.wd, c.b1, c.omb1, c.b2, c.omb2, c.sqrtBias2, c.eps, c.stepSize);
      const read = (offset: number) => wasm.HEAPF32.slice(offset / 4, offset / 4 + n);
      t.deepEqual(read(at[2]), mJs, `m, n=${n}, decay=${decay}`);
      t.deepEqual(read(at[3]), vJs, `v, n=${n}, decay=${decay}`);
      t.deepEqual(read(at[4]), outJs, `θ', n=${n}, decay=${decay}`);
      t.deepEqual(read(at[0]), theta, 'θ is only read');
      at.forEach((a) => wasm._free(a));
    }
  }
});
