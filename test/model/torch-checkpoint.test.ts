/**
 * Reading the authors' PyTorch checkpoints: the three layouts written here (test/model/fixtures/
 * torch-save.ts, from a real tiny model's weights) read back bit for bit and load into a model; views
 * (transposed, offset, shared, expanded) and float16 / bfloat16 / float64 storages; the config
 * inferred from shapes (tiny, ViT-B, custom); and refusals: a foreign pickle global (nothing runs),
 * the legacy format, a truncated zip, tensors that do not fit.
 */
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS, type ModelConfig } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import type { NamedTensor } from '../../src/core/safetensors.ts';
import { avmParamShapes } from '../../src/model/avm.ts';
import { backboneParamShapes } from '../../src/model/cav-backbone.ts';
import { AVM_PREFIX, ModelService } from '../../src/model/model-service.ts';
import { inspectWeights, readWeights } from '../../src/model/read-weights.ts';
import { authorsKey, OrderedDict, PyCall, PyTuple, stateDictOf, storage, tensor, torchSave, type PyValue, type TorchTensorSpec } from './fixtures/torch-save.ts';

const tiny = MODEL_CONFIGS.tiny;
const dir = mkdtempSync(path.join(os.tmpdir(), 'stella-pth-'));
let model: ModelService;
let weights: Map<string, NamedTensor>;

test.before(async () => {
  await initBackend();
  model = new ModelService({ config: tiny, rng: Rng.fromSeed(7) });
  weights = model.weights();
});

test.after.always(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});


function write(name: string, value: PyValue): string {
  const file = path.join(dir, name);
  writeFileSync(file, torchSave(value, path.basename(name, '.pth')));
  return file;
}

function assertSameTensors(t: import('ava').ExecutionContext, got: Map<string, NamedTensor>, want: Map<string, NamedTensor>) {
  t.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name)!;
    t.deepEqual(g.shape, w.shape, name);
    t.true(Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength).equals(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)), `${name} differs`);
  }
}

/** A Torch-style optimizer state with tensors (never read) and plain values. */
function optimizerState(): Map<string, PyValue> {
  const moments = new Map<number, PyValue>([[0, new Map<string, PyValue>([
    ['step', tensor(storage('opt-step', 'float32', [12]), [])],
    ['exp_avg', tensor(storage('opt-m', 'float32', new Float32Array(96)), [96])],
    ['exp_avg_sq', tensor(storage('opt-v', 'float32', new Float32Array(96)), [96])],
  ])]]);
  const group = new Map<string, PyValue>([['lr', 1e-4], ['betas', new PyTuple([0.95, 0.999])], ['eps', 1e-8], ['weight_decay', 5e-7], ['amsgrad', false], ['params', [0, 1, 2]]]);
  return new Map<string, PyValue>([['state', moments as Map<string | number, PyValue>], ['param_groups', [group]]]);
}

test('training checkpoint {model, optimizer, epoch}: every tensor bit for bit under our names, tiny config, optimizer and epoch dropped', async (t) => {
  const file = write('training.pth', new Map<string, PyValue>([
    ['model', stateDictOf(weights, authorsKey)],
    ['optimizer', optimizerState()],
    ['epoch', 3],
  ]));
  const w = await readWeights(file);
  t.is(w.format, 'pth-training');
  t.deepEqual(w.config, tiny);
  t.is(w.configSource, 'tiny');
  t.deepEqual(w.notes, []);
  t.true(w.hasAvm);
  t.is(w.avmTensors, model.avm.params.entries.size);
  t.is(w.backboneTensors, model.backbone.params.entries.size);
  t.deepEqual(w.dropped, ['optimizer (3 tensors)', 'epoch']);
  assertSameTensors(t, w.tensors, weights);
});

/** The tiny state dict with views and narrow storages, and the values a reader must produce. */
function awkwardStateDict(): { dict: OrderedDict; expected: Map<string, NamedTensor> } {
  const expected = new Map(weights);
  const entries = new Map<string, TorchTensorSpec>();
  for (const [name, t] of weights) entries.set(name, tensor(storage(name, 'float32', t.data), t.shape, { parameter: name.endsWith('.weight') }));
  // A linear weight saved as the transpose of a contiguous [in, out] storage (a .t() view).
  const qkv = 'blocks_v.0.attn.qkv.weight';
  const [out, inner] = weights.get(qkv)!.shape;
  const w = weights.get(qkv)!.data;
  const transposed = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inner; i++) transposed[i * out + o] = w[o * inner + i];
  entries.set(qkv, tensor(storage('qkv-t', 'float32', transposed), [out, inner], { stride: [1, out] }));
  // Two tensors in one storage, the second at an offset, after 5 unused values.
  const [g, b] = [weights.get('norm_v.weight')!.data, weights.get('norm_v.bias')!.data];
  const shared = storage('shared', 'float32', [...new Float32Array(5), ...g, ...b]);
  entries.set('norm_v.weight', tensor(shared, [g.length], { offset: 5 }));
  entries.set('norm_v.bias', tensor(shared, [b.length], { offset: 5 + g.length }));
  // An expanded view (stride 0) of a single zero, as torch.zeros(1).expand(D) saves: LN biases start at 0.
  entries.set('norm_a.bias', tensor(storage('zero', 'float32', [0]), [tiny.embedDim], { stride: [0] }));
  // Narrow and wide floats; the values are multiples of 2^-10 below 1/4, exact in float16 and bfloat16.
  const quantised = (name: string) => Float32Array.from(weights.get(name)!.data, (x) => Math.max(-255, Math.min(255, Math.round(x * 1024))) / 1024);
  for (const [name, dtype] of [['blocks_u.0.mlp.fc1.weight', 'float16'], ['decoder_embed.weight', 'bfloat16'], [`${AVM_PREFIX}to_v_q.weight`, 'float16']] as const) {
    const q = quantised(name);
    entries.set(name, tensor(storage(`${name}-${dtype}`, dtype, q), weights.get(name)!.shape));
    expected.set(name, { shape: weights.get(name)!.shape, dtype: 'float32', data: q });
  }
  entries.set('mae_score_video.decoder.bias', tensor(storage('f64', 'float64', weights.get('mae_score_video.decoder.bias')!.data), weights.get('mae_score_video.decoder.bias')!.shape));
  const dict = new OrderedDict([...entries].map(([name, spec]): [string, PyValue] => [authorsKey(name), spec]));
  return { dict, expected };
}

test('model_checkpoint state dict: transposed, offset, shared, expanded, parameter, float16, bfloat16 and float64 tensors read exactly', async (t) => {
  const { dict, expected } = awkwardStateDict();
  const file = write('model_checkpoint_0007.pth', dict);
  const w = await readWeights(file);
  t.is(w.format, 'pth-state-dict');
  t.deepEqual(w.config, tiny);
  t.deepEqual(w.dropped, []);
  assertSameTensors(t, w.tensors, expected);
});

test('the weights load into a fresh model, whose weights() then equal the file bit for bit', async (t) => {
  const { dict, expected } = awkwardStateDict();
  const w = await readWeights(write('to-load.pth', dict));
  const other = new ModelService({ config: w.config, rng: Rng.fromSeed(99) });
  try {
    other.loadTensors(w.tensors, { strict: true, source: w.file });
    assertSameTensors(t, other.weights(), expected);
  } finally {
    other.dispose();
  }
});

test('bare CAV state dict (adapt_imae_weights_to_vamae.py layout): backbone only, no AVM; the model\'s AVM keeps its init', async (t) => {
  const backbone = new Map([...weights].filter(([name]) => !name.startsWith(AVM_PREFIX)));
  const file = write('init_checkpoint.pth', stateDictOf(backbone, (n) => n));
  const w = await readWeights(file);
  t.is(w.format, 'pth-cav');
  t.false(w.hasAvm);
  t.is(w.avmTensors, 0);
  t.deepEqual(w.config, tiny);
  assertSameTensors(t, w.tensors, backbone);
  const other = new ModelService({ config: tiny, rng: Rng.fromSeed(5) });
  try {
    const avmBefore = other.avm.params.read('to_v_q.weight').data;
    other.loadTensors(w.tensors, { source: w.file, parts: 'backbone' });
    t.deepEqual(other.backbone.params.read('blocks_u.0.attn.qkv.weight').data, backbone.get('blocks_u.0.attn.qkv.weight')!.data);
    t.deepEqual(other.avm.params.read('to_v_q.weight').data, avmBefore);
  } finally {
    other.dispose();
  }
});

/** A state dict of `shapes` whose tensors are all expanded views of one zero: a ViT-B in a few kB. */
function shapesOnlyDict(shapes: Map<string, number[]>): OrderedDict {
  const zero = storage('0', 'float32', [0]);
  return new OrderedDict([...shapes].map(([name, shape]): [string, PyValue] => [name, tensor(zero, shape, { stride: shape.map(() => 0) })]));
}

test('a bare CAV state dict at ViT-B size is recognised as the base config without reading its data', async (t) => {
  const shapes = backboneParamShapes(MODEL_CONFIGS.base);
  t.is(shapes.get('pos_embed_v')!.join(), '1,784,768');
  t.is(shapes.get('blocks_v.9.mlp.fc1.weight')!.join(), '3072,768');
  const file = write('vitb_init_checkpoint.pth', shapesOnlyDict(shapes));
  const w = await inspectWeights(file);
  t.is(w.format, 'pth-cav');
  t.deepEqual(w.config, MODEL_CONFIGS.base);
  t.is(w.configSource, 'base');
  t.false(w.hasAvm);
  t.is(w.backboneTensors, shapes.size);
  const params = [...w.shapes.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  t.true(params > 180e6 && params < 190e6, `${params} parameters (spec §3.2: about 185.5 M)`);
});

test('a custom model: its config is inferred from the shapes and the assumptions are listed', async (t) => {
  const custom: ModelConfig = {
    ...tiny, name: 'custom', embedDim: 128, numHeads: 2, depth: 4, modalityDepth: 1, mlpRatio: 2,
    decoderDim: 64, decoderDepth: 2, decoderHeads: 4, numFrames: 2, imageSize: 32, audioFrames: 128, avmHeads: 2,
  };
  const avm = [...avmParamShapes(custom.embedDim)].map(([n, s]): [string, number[]] => [AVM_PREFIX + n, s]);
  const file = write('custom.pth', shapesOnlyDict(new Map([...backboneParamShapes(custom), ...avm])));
  const w = await inspectWeights(file);
  t.deepEqual(w.config, custom);
  t.is(w.configSource, 'custom');
  t.true(w.hasAvm);
  const notes = w.notes.join('\n');
  t.regex(notes, /numFrames 2 \(pos_embed_v's 8 tokens also fit 8 frames/);
  t.regex(notes, /numHeads 2 \(heads of width 64/);
  t.regex(notes, /decoderHeads 4 \(the 'tiny' config's, same decoder width 64\)/);
  // The frame count decides the frame size: 8 frames of 1 patch.
  const eight = await inspectWeights(file, { numFrames: 8 });
  t.is(eight.config.numFrames, 8);
  t.is(eight.config.imageSize, 16);
  await t.throwsAsync(inspectWeights(file, { numFrames: 3 }), { message: /custom\.pth: pos_embed_v's 8 tokens are not 3 square frames \(possible frame counts: 2, 8\)/ });
});

test('a pickle calling a foreign global (os.system, builtins.eval) is refused by name and nothing runs', async (t) => {
  const marker = path.join(dir, 'pwned');
  for (const [module, name, arg] of [['os', 'system', `touch ${marker}`], ['builtins', 'eval', `open(${JSON.stringify(marker)}, 'w')`]]) {
    const sd = new OrderedDict([['pos_embed_v', new PyCall(module, name, [arg])]]);
    const file = write(`evil-${name}.pth`, new Map<string, PyValue>([['model', sd]]));
    await t.throwsAsync(readWeights(file), { message: new RegExp(`evil-${name}\\.pth: refused to unpickle global '${module}\\.${name}'.*allowed: collections\\.OrderedDict, torch\\._utils\\._rebuild_tensor_v2`) });
  }
  t.false(existsSync(marker));
});

test("a '__proto__' key in the checkpoint stays a dict key and pollutes no prototype", async (t) => {
  const file = write('proto.pth', new Map<string, PyValue>([
    ['model', stateDictOf(weights, authorsKey)],
    ['__proto__', new Map<string, PyValue>([['polluted', 'yes']])],
  ]));
  const w = await inspectWeights(file);
  t.deepEqual(w.dropped, ['__proto__']);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  t.is((new Map() as unknown as Record<string, unknown>).polluted, undefined);
});

test('the legacy (non-zip) torch.save format is refused, naming the file and how to re-save it', async (t) => {
  const file = path.join(dir, 'legacy.pth');
  // Legacy files open with the pickled magic number 0x1950a86a20f9469cfc6c.
  writeFileSync(file, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
  await t.throwsAsync(readWeights(file), { message: /legacy\.pth: legacy PyTorch checkpoint format .*re-save it with PyTorch >= 1\.6: python -c "import torch; .*torch\.save/ });
});

test('a truncated zip is refused naming the file; a flipped storage byte fails its CRC', async (t) => {
  const bytes = torchSave(stateDictOf(weights, authorsKey), 'cut');
  const cut = path.join(dir, 'cut.pth');
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await t.throwsAsync(readWeights(cut), { message: /cut\.pth: cannot open the checkpoint's zip archive \(truncated or corrupt file\)/ });
  const flipped = Uint8Array.from(bytes);
  flipped[Math.floor(bytes.length * 0.5)] ^= 0x40;
  const bad = path.join(dir, 'flipped.pth');
  writeFileSync(bad, flipped);
  await t.throwsAsync(readWeights(bad), { message: /flipped\.pth: cut\/data\/\d+ fails its CRC-32 check/ });
});

test('missing, unexpected and wrong-shaped tensors are all named, with the file', async (t) => {
  const entries = [...stateDictOf(weights, authorsKey).entries];
  const kept = entries.filter(([k]) => k !== 'module.backbone.transformer.decoder_norm.bias');
  const i = kept.findIndex(([k]) => k === 'module.backbone.transformer.modality_v');
  kept[i] = [kept[i][0], tensor(storage('wrong', 'float32', new Float32Array(95)), [1, 1, 95])];
  kept.push(['module.backbone.transformer.vacls_classifier.weight', tensor(storage('extra', 'float32', [1, 2]), [1, 2])]);
  kept.push(['module.avmatching_module.norm_v.weight', tensor(storage('avm-wrong', 'float32', new Float32Array(3)), [3])]);
  const file = write('bad-shapes.pth', new OrderedDict(kept));
  const error = await t.throwsAsync(readWeights(file));
  t.regex(error!.message, /^\S*bad-shapes\.pth: these pth-state-dict weights do not fit the 'tiny' model \(config inferred from the shapes\)/);
  t.regex(error!.message, /missing tensor 'decoder_norm\.bias' \[64\]/);
  t.regex(error!.message, /tensor 'modality_v' has shape \[1,1,95\] but the CAV backbone parameter is \[1,1,96\]/);
  t.regex(error!.message, /unknown tensor 'vacls_classifier\.weight' \[1,2\] \(no such CAV backbone parameter\)/);
  t.regex(error!.message, /tensor 'avmatching_module\.norm_v\.weight' has shape \[3\] but the AVM parameter is \[96\]/);
});

test('a tensor reaching past its storage, or of an integer dtype, is refused by name', async (t) => {
  const entries = [...stateDictOf(weights, authorsKey).entries];
  const at = (key: string) => entries.findIndex(([k]) => k === `module.backbone.transformer.${key}`);
  entries[at('norm.weight')] = [entries[at('norm.weight')][0], tensor(storage('short', 'float32', new Float32Array(90)), [96], { offset: 0 })];
  const file = write('past-end.pth', new OrderedDict(entries));
  await t.throwsAsync(readWeights(file), { message: /past-end\.pth: tensor 'norm\.weight' \[96\] \(offset 0, stride \[1\]\) reaches past the end of its storage 'short' of 90 elements/ });
  const ints = [...stateDictOf(weights, authorsKey).entries];
  ints[at('norm.bias')] = [ints[at('norm.bias')][0], tensor(storage('int', 'int64', new Array(96).fill(0)), [96])];
  await t.throwsAsync(readWeights(write('ints.pth', new OrderedDict(ints))), { message: /ints\.pth: .*tensor 'norm\.bias' is int64, expected float32/ });
});

test('our own safetensors files read through the same entry point, config from their metadata', async (t) => {
  const file = path.join(dir, 'ours.safetensors');
  model.saveWeights(file);
  const w = await readWeights(file);
  t.is(w.format, 'safetensors');
  t.is(w.configSource, 'metadata');
  t.deepEqual(w.config, tiny);
  t.true(w.hasAvm);
  assertSameTensors(t, w.tensors, weights);
});
