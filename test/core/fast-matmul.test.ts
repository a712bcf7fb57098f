/** Fast-path products and gathers: values equal plain tfjs, gradients pass finite-difference checks. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { measurePeakBytes } from '../../src/model/step-bench.ts';
import { addRowVector, asConstant, fastBatchMatMul, fastGatherRows, fastGeluLinear2d, fastLinear2d, fastLinearOfData, fastMatMul2d, freeingGrad, gatherRows, splitRows, scaleBy, sumRows, tensorOps, transpose2d, withFreeingBackward, withSharedSaves } from '../../src/core/fast-matmul.ts';
import { slicedMatMul } from '../../src/core/sliced-matmul.ts';
import { gelu } from '../../src/model/layers.ts';

// Pinned to wasm: the fast paths' own kernels and buffer sharing are wasm's, and the checks below must
// run whatever else (tfjs-node) an install brings.
test.before(async () => {
  const info = await initBackend('wasm');
  if (tf.getBackend() !== 'wasm' || info.name !== 'wasm') throw new Error(`fast-matmul tests need the wasm backend, got ${tf.getBackend()}`);
});

const rng = Rng.fromSeed('fast-matmul');
const rand = (shape: number[]) => tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1), shape);

/**
 * Central differences of sum(f(x)·w) against the analytic gradient, for a few coordinates of every
 * input. float32 with step 1e-2 on a quadratic-ish function: tolerance 2e-3 absolute.
 */
function gradCheck(t: any, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], label: string) {
  const out = tf.tidy(() => f(...inputs));
  const weights = rand(out.shape);
  out.dispose();
  const scalar = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), weights)) as tf.Scalar;
  const analytic = tf.tidy(() => tf.grads(scalar)(inputs).map((g) => g.dataSync()));
  const h = 1e-2;
  inputs.forEach((x, i) => {
    const base = x.dataSync();
    for (const j of [0, Math.floor(base.length / 2), base.length - 1]) {
      const eval_ = (delta: number) => tf.tidy(() => {
        const copy = Float32Array.from(base); copy[j] += delta;
        const xs = inputs.map((y, k) => (k === i ? tf.tensor(copy, x.shape) : y));
        return scalar(...xs).dataSync()[0];
      });
      const numeric = (eval_(h) - eval_(-h)) / (2 * h);
      t.true(Math.abs(numeric - analytic[i][j]) < 2e-3, `${label}: d/dx${i}[${j}] numeric ${numeric} vs analytic ${analytic[i][j]}`);
    }
  });
  weights.dispose();
}

test('fastMatMul2d equals tf.matMul for every transpose combination and its gradient checks numerically', (t) => {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    const a = rand(ta ? [5, 4] : [4, 5]) as tf.Tensor2D, b = rand(tb ? [3, 5] : [5, 3]) as tf.Tensor2D;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fastMatMul2d(a, b, ta, tb), tf.matMul(a, b, ta, tb)))).dataSync()[0]);
    t.true(diff < 1e-5, `values ta=${ta} tb=${tb}: ${diff}`);
    gradCheck(t, (x, y) => fastMatMul2d(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), [a, b], `2d ta=${ta} tb=${tb}`);
    a.dispose(); b.dispose();
  }
});

test('fastBatchMatMul (one and several groups, transposeB) matches tf.matMul and checks numerically', (t) => {
  for (const g of [1, 3]) for (const tb of [false, true]) {
    const a = rand([g, 4, 5]) as tf.Tensor3D, b = rand(tb ? [g, 3, 5] : [g, 5, 3]) as tf.Tensor3D;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fastBatchMatMul(a, b, tb), tf.matMul(a, b, false, tb)))).dataSync()[0]);
    t.true(diff < 1e-5);
    gradCheck(t, (x, y) => fastBatchMatMul(x as tf.Tensor3D, y as tf.Tensor3D, tb), [a, b], `batched g=${g} tb=${tb}`);
    a.dispose(); b.dispose();
  }
});

test('fast linear on a 3-D input equals the plain one, gradients included', (t) => {
  const x = rand([2, 3, 4]), w = rand([4, 5]), b = rand([5]);
  const fast = tensorOps(true), plain = tensorOps(false);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fast.linear(x, w, b), plain.linear(x, w, b)))).dataSync()[0]);
  t.true(diff < 1e-5);
  gradCheck(t, (xx, ww, bb) => fast.linear(xx, ww, bb), [x, w, b], 'linear');
  tf.dispose([x, w, b]);
});

test('gatherRows sums the gradient of repeated rows (ScatterNd) and checks numerically', (t) => {
  const x = rand([4, 3]) as tf.Tensor2D;
  const idx = tf.tensor1d([2, 0, 2, 3], 'int32');
  const g = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(gatherRows(v as tf.Tensor2D, idx)))(x).arraySync() as number[][]);
  t.deepEqual(g, [[1, 1, 1], [0, 0, 0], [2, 2, 2], [1, 1, 1]]);
  gradCheck(t, (v) => gatherRows(v as tf.Tensor2D, idx), [x], 'gatherRows');
  x.dispose(); idx.dispose();
});

test('transpose2d (rank-3 view for 128·k rows) equals tf.transpose; sumRows equals tf.sum over rows', (t) => {
  for (const shape of [[256, 3], [6, 5]]) {
    const x = rand(shape) as tf.Tensor2D;
    const [dt, ds] = tf.tidy(() => [
      tf.max(tf.abs(tf.sub(transpose2d(x), tf.transpose(x)))).dataSync()[0],
      tf.max(tf.abs(tf.sub(sumRows(x), tf.sum(x, 0)))).dataSync()[0],
    ]);
    t.is(dt, 0, `transpose [${shape}]`);
    t.true(ds < 1e-5, `sumRows [${shape}]: ${ds}`);
    x.dispose();
  }
});

test('fastLinear2d (fused bias) and addRowVector match plain tfjs and check numerically', (t) => {
  const x = rand([128, 4]) as tf.Tensor2D, w = rand([4, 3]) as tf.Tensor2D, b = rand([3]);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fastLinear2d(x, w, b), tf.add(tf.matMul(x, w), b)))).dataSync()[0]);
  t.true(diff < 1e-5, `linear values: ${diff}`);
  gradCheck(t, (xx, ww, bb) => fastLinear2d(xx as tf.Tensor2D, ww as tf.Tensor2D, bb), [x, w, b], 'fastLinear2d');
  const v = rand([4]);
  const addDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(addRowVector(x, v), tf.add(x, v)))).dataSync()[0]);
  t.is(addDiff, 0);
  gradCheck(t, (xx, vv) => addRowVector(xx as tf.Tensor2D, vv), [x, v], 'addRowVector');
  tf.dispose([x, w, b, v]);
});

test('sumRows of one buffer under two shapes stays correct', (t) => {
  const x = rand([4, 6]) as tf.Tensor2D;
  const [a, b] = tf.tidy(() => {
    const wide = tf.reshape(x, [2, 12]) as tf.Tensor2D;
    return [
      tf.max(tf.abs(tf.sub(sumRows(x), tf.sum(x, 0)))).dataSync()[0],
      tf.max(tf.abs(tf.sub(sumRows(wide), tf.sum(wide, 0)))).dataSync()[0],
    ];
  });
  t.true(a < 1e-5 && b < 1e-5, `${a} ${b}`);
  x.dispose();
});

test('splitRows gives contiguous row blocks and concatenates the gradient', (t) => {
  const x = rand([6, 3]) as tf.Tensor2D;
  const pieces = splitRows(x, 3);
  t.deepEqual(pieces.map((p) => p.shape), [[2, 3], [2, 3], [2, 3]]);
  t.deepEqual(Array.from(pieces[1].dataSync()), Array.from(x.dataSync().subarray(6, 12)));
  const g = tf.tidy(() => tf.grad((v: tf.Tensor) => { const [a, , c] = splitRows(v as tf.Tensor2D, 3); return tf.add(tf.sum(a), tf.mul(tf.sum(c), 2)); })(x).dataSync());
  t.deepEqual(Array.from(g), [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2]);
  t.throws(() => splitRows(x, 4), { message: /6 rows do not split into 4 pieces/ });
  tf.dispose([x, ...pieces]);
});

test('slicedMatMul equals tf.matMul for every transpose pair', (t) => {
  const [g, m, k, n] = [5, 7, 3, 6];
  const shapeOf = (rows: number, cols: number, transposed: boolean) => (transposed ? [g, cols, rows] : [g, rows, cols]);
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const a = rand(shapeOf(m, k, ta)) as tf.Tensor3D, b = rand(shapeOf(k, n, tb)) as tf.Tensor3D;
    const tensors = tf.memory().numTensors;
    const got = slicedMatMul(a, b, ta, tb);
    t.is(tf.memory().numTensors, tensors + 1, `one output tensor, the transposed operands freed (${ta}, ${tb})`);
    t.deepEqual(got.shape, [g, m, n]);
    const want = tf.matMul(a, b, ta, tb);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]);
    t.true(diff < 1e-6, `(${ta}, ${tb}): max difference ${diff}`);
    tf.dispose([a, b, got, want]);
  }
  const a = rand([2, 3, 4]) as tf.Tensor3D, b = rand([2, 5, 4]) as tf.Tensor3D;
  t.throws(() => slicedMatMul(a, b), { message: /inner sizes 4 and 5 differ \(\[2,3,4\] · \[2,5,4\]\)/ });
  tf.dispose([a, b]);
});

test('slicedMatMul drops its heap views: 12,800 per-slice products do not grow the wasm heap', (t) => {
  // Every slice packs a 64×64 XNNPACK operator (16 KiB) under its view's id; a view left registered
  // would keep it, ~200 MiB over this loop.
  const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const a = rand([64, 8, 64]) as tf.Tensor3D, b = rand([64, 64, 64]) as tf.Tensor3D;
  tf.dispose(slicedMatMul(a, b));
  const before = heap();
  for (let i = 0; i < 200; i++) tf.dispose(slicedMatMul(a, b));
  const grown = heap() - before;
  t.true(grown < 16 * 2 ** 20, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
  tf.dispose([a, b]);
});

test('fastBatchMatMul (sliced XNNPACK products) matches autodiff of tf.matMul and checks numerically', (t) => {
  for (const transposeB of [false, true]) {
    const a = rand([6, 5, 4]) as tf.Tensor3D, b = rand(transposeB ? [6, 3, 4] : [6, 4, 3]) as tf.Tensor3D;
    const w = rand([6, 5, 3]);
    const diffs = tf.tidy(() => {
      const fast = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(fastBatchMatMul(x as tf.Tensor3D, y as tf.Tensor3D, transposeB), w)))([a, b]);
      const plain = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, transposeB), w)))([a, b]);
      const value = tf.max(tf.abs(tf.sub(fastBatchMatMul(a, b, transposeB), tf.matMul(a, b, false, transposeB)))).dataSync()[0];
      return [value, ...fast.map((gf, i) => tf.max(tf.abs(tf.sub(gf, plain[i]))).dataSync()[0])];
    });
    t.true(Math.max(...diffs) < 1e-5, `transposeB ${transposeB}: value, dA, dB differences ${diffs}`);
    gradCheck(t, (x, y) => fastBatchMatMul(x as tf.Tensor3D, y as tf.Tensor3D, transposeB), [a, b], `fastBatchMatMul transposeB=${transposeB}`);
    tf.dispose([a, b, w]);
  }
});

test('a linear reads a variable weight instead of saving it: the same gradients, one handle fewer kept for the backward', (t) => {
  const x = rand([64, 32]) as tf.Tensor2D, w0 = rand([32, 48]) as tf.Tensor2D, b = rand([48]);
  const v = tf.variable(w0);
  // Handles alive when the backward reaches the linear (its saves included), and the gradients.
  const run = (w: tf.Tensor2D) => {
    let held = 0;
    const probe = tf.customGrad(((a: tf.Tensor, save: tf.GradSaveFunc) => {
      save([]);
      return { value: a.clone(), gradFunc: (dy: tf.Tensor) => { held = tf.memory().numTensors; return [dy.clone()]; } };
    }) as any) as (a: tf.Tensor) => tf.Tensor;
    const grads = tf.tidy(() => tf.grads((xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(probe(fastLinear2d(xx as tf.Tensor2D, w, bb)))))([x, b]).map((g) => Array.from(g.dataSync())));
    return { grads, held };
  };
  const saved = run(w0), read = run(v);
  t.deepEqual(read.grads, saved.grads);
  t.is(saved.held - read.held, 1, `handles at the backward: ${saved.held} with a tensor weight, ${read.held} with a variable`);
  const dw = tf.tidy(() => Array.from(tf.variableGrads(() => tf.sum(tf.square(fastLinear2d(x, v, b))) as tf.Scalar, [v]).grads[v.name].dataSync()));
  const dwPlain = tf.tidy(() => Array.from(tf.grad((ww: tf.Tensor) => tf.sum(tf.square(fastLinear2d(x, ww as tf.Tensor2D, b))))(w0).dataSync()));
  t.deepEqual(dw, dwPlain, 'the weight gradient through the variable');
  tf.dispose([x, w0, b, v]);
});

test('fastGeluLinear2d: GELU then a linear, values and gradients bit for bit, keeping x and Phi(x) but not GELU(x)', (t) => {
  const n = 96, k = 128, m = 32, bytes = n * k * 4;
  const x = rand([n, k]) as tf.Tensor2D, w = rand([k, m]) as tf.Tensor2D, b = rand([m]);
  const ops = tensorOps(true);
  const composed = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => ops.linear(gelu(xx, ops), ww, bb);
  const fused = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Tensor => fastGeluLinear2d(xx as tf.Tensor2D, ww as tf.Tensor2D, bb)!;
  const bits = (a: Float32Array | Int32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  t.is(tf.tidy(() => bits(fused(x, w, b).dataSync())), tf.tidy(() => bits(composed(x, w, b).dataSync())), 'values');
  const gradsOf = (f: typeof fused) => tf.tidy(() => tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(f(xx, ww, bb))))([x, w, b]).map((g) => bits(g.dataSync())));
  t.deepEqual(gradsOf(fused), gradsOf(composed), 'gradients of x, w and b');
  // Bytes held between the forward and the backward: the composed form also keeps GELU(x) for the linear.
  const keptOf = (f: typeof fused) => {
    let kept = 0;
    const start = tf.memory().numBytes;
    tf.tidy(() => tf.grads((xx: tf.Tensor) => {
      const y = tf.sum(f(xx, w, b));
      kept = tf.memory().numBytes - start;
      return y;
    })([x]));
    return kept;
  };
  const keptComposed = keptOf(composed), keptFused = keptOf(fused);
  t.true(keptComposed - keptFused >= bytes, `kept for the backward: composed ${keptComposed} B, fused ${keptFused} B`);
  tf.dispose([x, w, b]);
});

test('fastLinearOfData: the value and weight gradients of fastLinear2d, and no gradient path to its data input', (t) => {
  for (const [inDim, outDim] of [[24, 8], [8, 24]]) { // both weight-gradient forms
    const x = rand([16, inDim]) as tf.Tensor2D, w = rand([inDim, outDim]) as tf.Tensor2D, b = rand([outDim]);
    const dy = rand([16, outDim]);
    const diffs = tf.tidy(() => {
      const data = tf.grads((ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fastLinearOfData(x, ww as tf.Tensor2D, bb), dy)))([w, b]);
      const full = tf.grads((ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fastLinear2d(x, ww as tf.Tensor2D, bb), dy)))([w, b]);
      const value = tf.max(tf.abs(tf.sub(fastLinearOfData(x, w, b), fastLinear2d(x, w, b)))).dataSync()[0];
      return [value, ...data.map((g, i) => tf.max(tf.abs(tf.sub(g, full[i]))).dataSync()[0])];
    });
    t.deepEqual(diffs, [0, 0, 0], `[${inDim}, ${outDim}]: value, dW, dβ identical`);
    t.throws(() => tf.tidy(() => tf.grad((xx: tf.Tensor) => tf.sum(fastLinearOfData(xx as tf.Tensor2D, w, b)))(x)), { message: /Cannot compute gradient/ });
    tf.dispose([x, w, b, dy]);
  }
});

/** Peak tensor bytes above the start while `fn` runs. */
const peakRise = (fn: () => unknown) => {
  const m = measurePeakBytes(() => tf.tidy(() => { fn(); }));
  return m.peakBytes - m.startBytes;
};

test('scaleBy: the values and gradient of tf.mul by a constant, without keeping its input for the backward', (t) => {
  const x = rand([64, 64]), bytes = 64 * 64 * 4;
  const grads = (scale: (v: tf.Tensor) => tf.Tensor) => tf.tidy(() => Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.square(scale(tf.add(v, 1)))))(x).dataSync()));
  t.deepEqual(grads((v) => scaleBy(v, 0.125)), grads((v) => tf.mul(v, 0.125)));
  t.deepEqual(Array.from(tf.tidy(() => scaleBy(x, 0.125).dataSync())), Array.from(tf.tidy(() => tf.mul(x, 0.125).dataSync())));
  // Multiply saves both inputs for the backward (here the Add's output); scaleBy saves none.
  const withMul = peakRise(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.add(v, 1), 0.125)))(x));
  const withScale = peakRise(() => tf.grad((v: tf.Tensor) => tf.sum(scaleBy(tf.add(v, 1), 0.125)))(x));
  t.true(withMul - withScale >= bytes, `peak with Multiply ${withMul} B, with scaleBy ${withScale} B`);
  x.dispose();
});

test('asConstant: the same values, and its intermediates are not kept for the backward', (t) => {
  const w = rand([128, 64]), data = rand([128, 64]), bytes = 128 * 64 * 4;
  const standardise = (v: tf.Tensor) => tf.div(tf.sub(v, tf.mean(v, -1, true)), tf.add(tf.sqrt(tf.mean(tf.square(tf.sub(v, tf.mean(v, -1, true))), -1, true)), 1e-6));
  t.deepEqual(Array.from(tf.tidy(() => asConstant(data, standardise).dataSync())), Array.from(tf.tidy(() => standardise(data).dataSync())));
  const loss = (target: (v: tf.Tensor) => tf.Tensor) => (ww: tf.Tensor) => tf.sum(tf.square(tf.sub(ww, target(data))));
  const gradOf = (target: (v: tf.Tensor) => tf.Tensor) => tf.tidy(() => Array.from(tf.grad(loss(target))(w).dataSync()));
  t.deepEqual(gradOf((v) => asConstant(v, standardise)), gradOf(standardise));
  // On the tape, the standardisation's full-size intermediates stay alive until the backward ends.
  const onTape = peakRise(() => tf.grad(loss(standardise))(w));
  const offTape = peakRise(() => tf.grad(loss((v) => asConstant(v, standardise)))(w));
  t.true(onTape - offTape >= 2 * bytes, `peak on the tape ${onTape} B, off it ${offTape} B`);
  tf.dispose([w, data]);
});

test('withFreeingBackward: the same gradients bit for bit, with each upstream gradient freed once used', (t) => {
  const x = rand([256, 64]), w1 = rand([64, 64]), w2 = rand([64, 64]);
  const v1 = tf.variable(w1), v2 = tf.variable(w2);
  // Plain tfjs ops (their gradients do not free anything themselves): a chain whose dy's pile up.
  const loss = () => tf.sum(tf.square(tf.sigmoid(tf.matMul(tf.tanh(tf.add(tf.matMul(x, v1), 1)), v2)))) as tf.Scalar;
  const run = (wrap: <T>(f: () => T) => T) => {
    let values: number[][] = [];
    const rise = peakRise(() => {
      const { grads } = wrap(() => tf.variableGrads(loss, [v1, v2]));
      values = Object.values(grads).map((g) => Array.from(g.dataSync()));
    });
    return { values, rise };
  };
  const tensors = tf.memory().numTensors;
  const plain = run((f) => f()), freeing = run(withFreeingBackward);
  t.deepEqual(freeing.values, plain.values);
  t.is(tf.memory().numTensors, tensors, 'nothing left behind');
  t.true(plain.rise - freeing.rise >= 2 * 256 * 64 * 4, `peak rise without ${plain.rise} B, with ${freeing.rise} B`);
  tf.dispose([x, w1, w2, v1, v2]);
});

test('withFreeingBackward: saved tensors, what a gradient made for its thunks, shape-only saves and gradients already summed are freed as the backward goes', (t) => {
  const S = 128 * 128 * 4;
  const x = rand([128, 128]), v = tf.variable(rand([128, 128]));
  // tf.memory() when the backward reaches the probe: where it sits, what the chain still holds there.
  let held = 0;
  const probe = tf.customGrad(((a: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    return { value: a.clone(), gradFunc: (dy: tf.Tensor) => { held = tf.memory().numBytes; return [dy.clone()]; } };
  }) as any) as (a: tf.Tensor) => tf.Tensor;
  const cases: { name: string; chain: (h: tf.Tensor, n: number) => tf.Tensor; probeAt: 'first' | 'last'; n: number; plainKeeps: number }[] = [
    // Softmax saves its output, and its gradient makes dy·y for its thunk: seen as the backward
    // reaches the first op, n softmaxes later.
    { name: 'saved', chain: (h, n) => { for (let i = 0; i < n; i++) h = tf.softmax(h); return h; }, probeAt: 'first', n: 6, plainKeeps: 6 },
    // Reshape and Add save their inputs only for their shapes: seen as the backward starts.
    { name: 'shape-only', chain: (h, n) => { for (let i = 0; i < n; i++) h = tf.reshape(tf.add(tf.reshape(h, [128 * 128]), 1), [128, 128]); return h; }, probeAt: 'last', n: 6, plainKeeps: 6 },
    // h read by n ops: n - 1 of its gradients are added into the first one's total.
    { name: 'summed', chain: (h, n) => tf.addN(Array.from({ length: n }, (_, k) => tf.add(h, k))), probeAt: 'first', n: 6, plainKeeps: 5 },
  ];
  const tensors = tf.memory().numTensors;
  for (const { name, chain, probeAt, n, plainKeeps } of cases) {
    const run = (wrap: <T>(f: () => T) => T, length: number) => tf.tidy(() => {
      const loss = () => {
        const h = tf.matMul(x, v);
        const out = probeAt === 'first' ? chain(probe(h), length) : probe(chain(h, length));
        return tf.sum(tf.tanh(out)) as tf.Scalar;
      };
      const { grads } = wrap(() => tf.variableGrads(loss, [v]));
      return { grad: Array.from(grads[v.name].dataSync()), held };
    });
    const plain = run((f) => f(), n), freeing = run(withFreeingBackward, n);
    t.deepEqual(freeing.grad, plain.grad, `${name}: gradients bit for bit`);
    // What the chain's ops add to the bytes held at the probe: against a chain of one op.
    const extra = (wrap: <T>(f: () => T) => T, m: { held: number }) => (m.held - run(wrap, 1).held) / S;
    const withFreeing = extra(withFreeingBackward, freeing), withoutFreeing = extra((f) => f(), plain);
    t.true(withoutFreeing >= plainKeeps - 1, `${name}: plain tfjs keeps ${withoutFreeing} × [128, 128] more`);
    t.true(withFreeing <= 0, `${name}: ${n} ops keep ${withFreeing} × [128, 128] more than one op at the probe`);
  }
  t.is(tf.memory().numTensors, tensors, 'nothing left behind');
  tf.dispose([x, v]);
});

test('fastGatherRows equals tf.gather, sums repeated-row gradients and names a bad index', (t) => {
  const x = rand([4, 3]) as tf.Tensor2D;
  const idx = tf.tensor1d([2, 0, 2, 3], 'int32');
  t.deepEqual(Array.from(tf.tidy(() => fastGatherRows(x, idx).dataSync())), Array.from(tf.tidy(() => tf.gather(x, idx).dataSync())));
  const g = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(fastGatherRows(v as tf.Tensor2D, idx)))(x).arraySync() as number[][]);
  t.deepEqual(g, [[1, 1, 1], [0, 0, 0], [2, 2, 2], [1, 1, 1]]);
  gradCheck(t, (v) => fastGatherRows(v as tf.Tensor2D, idx), [x], 'fastGatherRows');
  const bad = tf.tensor1d([1, 4], 'int32');
  t.throws(() => tf.tidy(() => fastGatherRows(x, bad)), { message: /index 4 at position 1 is outside \[0, 4\)/ });
  tf.dispose([x, idx, bad]);
});

test('withSharedSaves: gradients equal the copying run, saved tensors share buffers inside only, nothing leaks', (t) => {
  const x = rand([16, 24]), w = rand([24, 8]), b = rand([8]);
  const lossOf = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.tanh(fastLinear2d(xx as tf.Tensor2D, ww as tf.Tensor2D, bb))));
  const run = () => {
    const g = tf.grads(lossOf)([x, w, b]);
    const values = g.map((gi) => Array.from(gi.dataSync()));
    tf.dispose(g);
    return values;
  };
  const copied = run();
  const before = tf.memory().numTensors;
  const shared = withSharedSaves(run);
  t.is(tf.memory().numTensors, before, 'no tensor leaks');
  t.deepEqual(shared, copied);
  const clonedInside = withSharedSaves(() => tf.clone(x));
  const clonedOutside = tf.clone(x);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- dataId is internal
  const dataId = (y: tf.Tensor) => (y as any).dataId;
  t.is(dataId(clonedInside), dataId(x), 'inside: the clone shares the buffer');
  t.not(dataId(clonedOutside), dataId(x), 'outside: wasm copies as before');
  const want = Array.from(x.dataSync());
  x.dispose();
  t.deepEqual(Array.from(clonedInside.dataSync()), want, 'the shared buffer outlives the disposed original');
  t.deepEqual(Array.from(clonedOutside.dataSync()), want);
  tf.dispose([clonedInside, clonedOutside, w, b]);
});

test('withSharedSaves: a cast to the same dtype shares the buffer inside (as on cpu), a real cast still converts', (t) => {
  const x = rand([4, 6]);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- dataId is internal
  const dataId = (y: tf.Tensor) => (y as any).dataId;
  const [same, toInt] = withSharedSaves(() => [tf.cast(x, 'float32'), tf.cast(tf.mul(x, 10), 'int32')]);
  const outside = tf.cast(x, 'float32');
  t.is(dataId(same), dataId(x), 'inside: float32 → float32 shares');
  t.not(dataId(outside), dataId(x), 'outside: wasm copies as before');
  const toIntOutside = tf.cast(tf.mul(x, 10), 'int32');
  t.is(toInt.dtype, 'int32');
  t.not(dataId(toInt), dataId(x));
  t.deepEqual(Array.from(toInt.dataSync()), Array.from(toIntOutside.dataSync()), 'float32 → int32 still converts');
  // The seeded gradient of a product casts its other operand: the same gradients either way.
  const grad = (f: () => tf.Tensor[]) => f().map((g) => Array.from(g.dataSync()));
  const w = rand([4, 6]);
  const f = () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(a, b)))([x, w]);
  t.deepEqual(withSharedSaves(() => grad(f)), grad(f));
  tf.dispose([x, w, same, toInt, toIntOutside, outside]);
});

test('freeingGrad: the same gradients bit for bit, a lower backward peak, and nothing left behind', (t) => {
  // x ↦ x² as a customGrad whose gradient makes intermediates, chained 6 times.
  const block = (free: boolean) => tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(tf.mul(dy, saved[0]), tf.scalar(2))];
    return { value: tf.square(x), gradFunc: free ? freeingGrad(gradFunc) : gradFunc };
  }) as any);
  const x = rand([64, 256]);
  const run = (free: boolean) => {
    const f = block(free);
    const before = tf.memory().numTensors;
    const m = measurePeakBytes(() => tf.tidy(() => {
      const g = tf.grad((v: tf.Tensor) => tf.sum(Array.from({ length: 6 }).reduce<tf.Tensor>((h) => f(h) as tf.Tensor, tf.mul(v, 0.9))))(x);
      return g.dataSync().slice();
    }));
    return { grad: m.result, rise: m.peakBytes - m.startBytes, left: tf.memory().numTensors - before };
  };
  const plain = run(false), freeing = run(true);
  t.deepEqual(Buffer.from(freeing.grad.buffer), Buffer.from(plain.grad.buffer));
  t.true(freeing.rise < plain.rise, `backward peak ${freeing.rise} B with freeingGrad, ${plain.rise} B without`);
  t.is(freeing.left, 0);
  t.is(plain.left, 0);
  x.dispose();
});
