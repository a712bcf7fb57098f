import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { readSafetensors, writeSafetensors } from '../../src/core/safetensors.ts';
import { AVM_PREFIX, ModelService } from '../../src/model/model-service.ts';
import { applyModelInit, preloadInitWeights, resolveInitFile, shippedWeights } from '../../src/method/model-init.ts';
import { authorsKey, stateDictOf, torchSave, type PyValue } from '../model/fixtures/torch-save.ts';

const config = MODEL_CONFIGS.tiny;
test.before(async () => { await initBackend(); });

const model = (seed: string) => new ModelService({ config, rng: Rng.fromSeed(seed).fork('model') });
const values = (m: ModelService) => new Map([...m.weights()].map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]));
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);

async function savedFrom(seed: string, filter?: (name: string) => boolean) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-init-'));
  const file = path.join(dir, 'w.safetensors');
  const m = model(seed);
  const tensors = new Map([...m.weights()].filter(([k]) => !filter || filter(k)));
  writeSafetensors(file, tensors);
  const expected = values(m);
  m.dispose();
  return { file, dir, expected };
}

test('init=FILE loads backbone and AVM bit for bit; avmInit=random keeps the AVM of the fresh model', async (t) => {
  const { file, expected } = await savedFrom('source');
  const a = model('target'), fresh = values(a);
  const used = applyModelInit(a, { init: file, avmInit: 'pretrained' });
  t.is(used.backbone, file);
  t.is(used.avm, 'pretrained');
  t.regex(used.sha256!, /^[0-9a-f]{16}$/);
  for (const [k, v] of values(a)) t.true(same(v, expected.get(k)!), k);

  const b = model('target');
  t.like(applyModelInit(b, { init: file, avmInit: 'random' }), { backbone: file, avm: 'random' });
  for (const [k, v] of values(b)) t.true(same(v, (k.startsWith(AVM_PREFIX) ? fresh : expected).get(k)!), k);
  a.dispose(); b.dispose();
});

test('init=none leaves the seeded random init; avmInit=pretrained on a file without AVM tensors is refused naming the file', async (t) => {
  const m = model('target'), fresh = values(m);
  t.deepEqual(applyModelInit(m, { init: 'none' }), { backbone: 'none', avm: 'random' });
  for (const [k, v] of values(m)) t.true(same(v, fresh.get(k)!), k);
  const { file } = await savedFrom('source', (k) => !k.startsWith(AVM_PREFIX));
  const error = t.throws(() => applyModelInit(m, { init: file, avmInit: 'pretrained' }));
  t.true(error!.message.includes(file) && error!.message.includes('no AVM tensors') && error!.message.includes('avmInit=random'), error!.message);
  t.is(applyModelInit(m, { init: file, avmInit: 'random' }).avm, 'random');
  m.dispose();
});

test('a missing file, a missing tensor and a wrong shape are errors that name the file and the tensor', async (t) => {
  const m = model('target');
  t.throws(() => applyModelInit(m, { init: '/nonexistent/w.safetensors' }), { message: /weights file not found: \/nonexistent\/w.safetensors/ });
  const { file, dir } = await savedFrom('source', (k) => k !== 'pos_embed_v');
  t.throws(() => applyModelInit(m, { init: file, avmInit: 'random' }), { message: new RegExp(`${file}.*missing tensor 'pos_embed_v'`) });
  const bad = readSafetensors((await savedFrom('source')).file).tensors;
  bad.set('norm_a.weight', { shape: [3], dtype: 'float32', data: new Float32Array(3) });
  const badFile = path.join(dir, 'bad.safetensors');
  writeSafetensors(badFile, bad);
  t.throws(() => applyModelInit(m, { init: badFile }), { message: /tensor 'norm_a.weight' has shape \[3\] but the .* parameter is \[96\]/ });
  t.throws(() => applyModelInit(m, { init: file, avmInit: 'sometimes' as 'random' }), { message: /avmInit/ });
  await writeFile(path.join(dir, 'x'), '');
  m.dispose();
});

test("init=shipped resolves to the config's shipped weights, or to scratch with a note when a config has none", (t) => {
  const tiny = shippedWeights(config);
  t.is(resolveInitFile('shipped', config).file, tiny);
  if (tiny) t.true(tiny.endsWith(path.join('models', 'tiny-pretrained.safetensors')));
  const base = resolveInitFile('shipped', MODEL_CONFIGS.base);
  t.is(base.file, undefined);
  t.regex(base.note!, /no shipped weights for config 'base'.*training from scratch/);
});

test("init takes the authors' training checkpoint (.pth): preloaded, then loaded bit for bit; unread it names the conversion", async (t) => {
  const { dir, expected } = await savedFrom('source');
  const source = model('source');
  const file = path.join(dir, 'checkpoint.pth');
  await writeFile(file, torchSave(new Map<string, PyValue>([['model', stateDictOf(source.weights(), authorsKey)], ['epoch', 3]]), 'checkpoint'));
  source.dispose();
  const m = model('target');
  t.throws(() => applyModelInit(m, { init: file }), { message: /is a PyTorch checkpoint.*stella convert/ });
  const reader = await preloadInitWeights([file, 'none', 'shipped'], config);
  t.like(applyModelInit(m, { init: file }, reader), { backbone: file, avm: 'pretrained' });
  for (const [k, v] of values(m)) t.true(same(v, expected.get(k)!), k);
  m.dispose();
});
