import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { initBackend, pickBackend, BackendUnavailableError, BACKEND_NAMES, type BackendLoaders, type BackendName } from '../../src/core/backend.ts';

/** Loaders that fail with the given reasons (the rest load), recording which were tried. */
function fakeLoaders(failures: Partial<Record<BackendName, string>>, tried: BackendName[] = []): BackendLoaders {
  return Object.fromEntries(BACKEND_NAMES.map((name) => [name, async () => { tried.push(name); return failures[name]; }])) as BackendLoaders;
}

test.before(async () => {
  await initBackend();
});

test('automatic resolution falls back in order past the backends that fail, naming each reason', async (t) => {
  const tried: BackendName[] = [];
  const info = await pickBackend(undefined, fakeLoaders({ 'tensorflow-gpu': 'gpu package missing', tensorflow: 'binding failed' }, tried));
  t.is(info.name, 'wasm');
  t.is(info.detail, 'skipped: tensorflow-gpu: gpu package missing; tensorflow: binding failed');
  t.deepEqual(tried, ['tensorflow-gpu', 'tensorflow', 'wasm'], 'cpu is not tried once wasm loads');
  t.is((await pickBackend(undefined, fakeLoaders({ 'tensorflow-gpu': 'x', tensorflow: 'y', wasm: 'z' }))).name, 'cpu');
  const first = await pickBackend(undefined, fakeLoaders({}));
  t.deepEqual([first.name, first.detail], ['tensorflow-gpu', 'first choice']);
  await t.throwsAsync(() => pickBackend(undefined, fakeLoaders({ 'tensorflow-gpu': 'a', tensorflow: 'b', wasm: 'c', cpu: 'd' })), {
    message: 'no tensor backend could be initialised: tensorflow-gpu: a; tensorflow: b; wasm: c; cpu: d',
  });
});

test('a requested backend that cannot load is an error naming it and why; it never falls back', async (t) => {
  const tried: BackendName[] = [];
  await t.throwsAsync(() => pickBackend('tensorflow-gpu', fakeLoaders({ 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu is not installed' }, tried)), {
    instanceOf: BackendUnavailableError,
    message: /'tensorflow-gpu' was requested .*: @tensorflow\/tfjs-node-gpu is not installed\. Available choices: tensorflow-gpu, tensorflow, wasm, cpu/,
  });
  t.deepEqual(tried, ['tensorflow-gpu']);
  t.is((await pickBackend('cpu', fakeLoaders({ wasm: 'not this one' }))).detail, 'requested explicitly');
  await t.throwsAsync(() => initBackend('quantum'), { instanceOf: BackendUnavailableError, message: /'quantum'.*unknown backend name/ });
});

test('the process backend is what tfjs runs, and a native package that is missing is reported as skipped', async (t) => {
  const info = await initBackend('');
  t.is(tf.getBackend(), info.tfjsBackend);
  t.is(info, await initBackend(''), 'resolved once per process');
  // What this machine lacks (whatever it is) shows up in the detail rather than failing the run.
  for (const [name, pkg] of [['tensorflow-gpu', '@tensorflow/tfjs-node-gpu'], ['tensorflow', '@tensorflow/tfjs-node']] as const) {
    const installed = await import(pkg).then(() => true, () => false);
    if (!installed) t.regex(info.detail, new RegExp(`${name}: ${pkg} is not installed`));
  }
});
