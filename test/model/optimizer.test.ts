/** Adam's fused update equals the eight-kernels-per-parameter tensor formulation bit for bit, and its state round-trips exactly. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/core/backend.ts';
import { Rng } from '../../src/core/rng.ts';
import { Adam, type OptimizedParam } from '../../src/model/optimizer.ts';
import { measurePeakBytes } from '../../src/model/step-bench.ts';

test.before(async () => { await initBackend(); });

const SHAPES: number[][] = [[96, 288], [288], [1, 64, 96], [7, 3, 5], [1]];
const OPTIONS = { lr: 1e-4, beta1: 0.95, beta2: 0.999, eps: 1e-8, weightDecay: 5e-7 };

function makeParams(seed: string): OptimizedParam[] {
  const rng = Rng.fromSeed(seed);
  return SHAPES.map((shape, i) => {
    const values = rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))).map((x) => x * 2 - 1);
    const initial = tf.tensor(values, shape), variable = tf.variable(initial);
    initial.dispose(); // the variable alone holds the values, as ParamStore's do
    return { key: `p${i}`, variable, decay: shape.length >= 2 && i !== 2 };
  });
}

function gradients(step: number): Map<string, tf.Tensor> {
  const rng = Rng.fromSeed(`grads-${step}`);
  // Mixed magnitudes, including exact zeros, so the √v/ε balance is exercised.
  return new Map(SHAPES.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = rng.fillUniform(new Float32Array(n)).map((x, j) => (j % 17 === 0 ? 0 : (x - 0.5) * 10 ** (-(j % 9))));
    return [`p${i}`, tf.tensor(values, shape)];
  }));
}

/** The tensor formulation the fused update replaces (θ, m, v as tensors, eight kernels per parameter). */
function referenceAdam(params: OptimizedParam[], steps: number): void {
  const { lr, beta1, beta2, eps, weightDecay } = OPTIONS;
  const m = new Map<string, tf.Tensor>(), v = new Map<string, tf.Tensor>();
  for (let step = 1; step <= steps; step++) {
    const grads = gradients(step);
    const bias1 = 1 - beta1 ** step, bias2 = 1 - beta2 ** step;
    for (const p of params) {
      const g0 = grads.get(p.key)!;
      const [mNew, vNew, theta] = tf.tidy(() => {
        const g = p.decay ? tf.add(g0, tf.mul(p.variable, weightDecay)) : g0;
        const mPrev = m.get(p.key) ?? tf.zerosLike(p.variable), vPrev = v.get(p.key) ?? tf.zerosLike(p.variable);
        const mi = tf.add(tf.mul(mPrev, beta1), tf.mul(g, 1 - beta1));
        const vi = tf.add(tf.mul(vPrev, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(vi), Math.sqrt(bias2)), eps);
        return [mi, vi, tf.sub(p.variable, tf.mul(tf.div(mi, denom), lr / bias1))];
      });
      m.get(p.key)?.dispose(); v.get(p.key)?.dispose();
      m.set(p.key, mNew); v.set(p.key, vNew);
      p.variable.assign(theta);
      theta.dispose();
    }
    tf.dispose([...grads.values()]);
  }
  tf.dispose([...m.values(), ...v.values()]);
}

test('fused Adam equals the tensor formulation bit for bit over 4 steps (decay and no-decay parameters)', (t) => {
  const fused = makeParams('theta'), reference = makeParams('theta');
  const adam = new Adam(fused, OPTIONS);
  const before = tf.memory().numTensors;
  for (let step = 1; step <= 4; step++) {
    const grads = gradients(step);
    adam.apply(grads);
    tf.dispose([...grads.values()]);
  }
  t.is(tf.memory().numTensors, before, 'the update leaks no tensors');
  referenceAdam(reference, 4);
  fused.forEach((p, i) => {
    const a = p.variable.dataSync(), b = reference[i].variable.dataSync();
    let differing = 0;
    for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) differing++;
    t.is(differing, 0, `${p.key} [${p.variable.shape}]: ${differing} of ${a.length} values differ`);
  });
  t.notDeepEqual(Array.from(fused[0].variable.dataSync()), Array.from(makeParams('theta')[0].variable.dataSync()), 'the parameters moved');
  adam.dispose();
  for (const p of [...fused, ...reference]) p.variable.dispose();
});

test('chunked update: the same values bit for bit, and never a second copy of all the weights', (t) => {
  const run = (updateChunkBytes?: number) => {
    const params = makeParams('theta');
    const adam = new Adam(params, { ...OPTIONS, updateChunkBytes });
    let peakRise = 0;
    for (let step = 1; step <= 3; step++) {
      const grads = gradients(step);
      const m = measurePeakBytes(() => adam.apply(grads));
      peakRise = Math.max(peakRise, m.heldRise);
      tf.dispose([...grads.values()]);
    }
    const values = params.map((p) => Array.from(p.variable.dataSync()));
    adam.dispose();
    params.forEach((p) => p.variable.dispose());
    return { values, peakRise };
  };
  const sizes = SHAPES.map((shape) => shape.reduce((a, b) => a * b, 1) * 4);
  const total = sizes.reduce((a, b) => a + b), largest = Math.max(...sizes);
  const whole = run(), chunked = run(largest);
  t.deepEqual(chunked.values, whole.values);
  t.true(whole.peakRise >= total, `one chunk: the update held ${whole.peakRise} B of new values (all weights: ${total} B)`);
  t.true(chunked.peakRise <= largest, `chunks of ${largest} B: the update held at most ${chunked.peakRise} B`);
});

test('a step in parts (beginStep) equals one apply bit for bit, and refuses a parameter twice in a step', (t) => {
  const run = (parts: boolean) => {
    const params = makeParams('theta');
    const adam = new Adam(params, OPTIONS);
    for (let step = 1; step <= 3; step++) {
      const grads = gradients(step);
      if (parts) {
        const update = adam.beginStep();
        const keys = [...grads.keys()];
        update.apply(new Map(keys.slice(0, 2).map((k) => [k, grads.get(k)!])));
        update.apply(new Map(keys.slice(2).map((k) => [k, grads.get(k)!])));
      } else {
        adam.apply(grads);
      }
      tf.dispose([...grads.values()]);
    }
    const values = params.map((p) => Array.from(p.variable.dataSync()));
    const step = adam.stepCount;
    adam.dispose();
    params.forEach((p) => p.variable.dispose());
    return { values, step };
  };
  const whole = run(false), inParts = run(true);
  t.deepEqual(inParts.values, whole.values);
  t.is(inParts.step, 3, 'one step per beginStep');
  const params = makeParams('twice');
  const adam = new Adam(params, OPTIONS);
  const grads = gradients(1);
  const update = adam.beginStep();
  update.apply(new Map([['p1', grads.get('p1')!]]));
  t.throws(() => update.apply(new Map([['p1', grads.get('p1')!]])), { message: "Adam: parameter 'p1' was already updated in this step" });
  tf.dispose([...grads.values()]);
  adam.dispose();
  params.forEach((p) => p.variable.dispose());
});

test('state round trip: a restored Adam continues bit for bit; gradient shape and state errors name the parameter', (t) => {
  const a = makeParams('theta'), b = makeParams('theta');
  const first = new Adam(a, OPTIONS);
  const applyStep = (adam: Adam, step: number) => { const g = gradients(step); adam.apply(g); tf.dispose([...g.values()]); };
  for (let step = 1; step <= 2; step++) applyStep(first, step);
  const state = first.getState();
  t.is(state.step, 2);
  t.deepEqual(state.moments.p0.shape, [96, 288]);
  b.forEach((p, i) => p.variable.assign(a[i].variable));
  const second = new Adam(b, OPTIONS);
  second.setState(state);
  state.moments.p0.m.fill(0); // the restored optimizer holds its own copy
  applyStep(first, 3); applyStep(second, 3);
  a.forEach((p, i) => t.deepEqual(Array.from(p.variable.dataSync()), Array.from(b[i].variable.dataSync()), p.key));
  const wrong = tf.zeros([3]);
  t.throws(() => first.apply(new Map([['p1', wrong]])), { message: /gradient of 'p1' has shape \[3\] but the parameter is \[288\]/ });
  t.is(first.stepCount, 3, 'a rejected update does not count as a step');
  wrong.dispose();
  t.throws(() => second.setState({ step: 1, moments: { p1: { shape: [288], m: new Float32Array(2), v: new Float32Array(2) } } }), { message: /'p1' hold 2\/2 values but the parameter has 288/ });
  first.dispose(); second.dispose();
  for (const p of [...a, ...b]) p.variable.dispose();
});
