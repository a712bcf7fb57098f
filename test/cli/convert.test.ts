/** `stella convert`: a training checkpoint becomes a safetensors file a model loads; the summary; refusals exit 1 naming the file. */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { initBackend } from '../../src/core/backend.ts';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { readSafetensors } from '../../src/core/safetensors.ts';
import { convertWeights, formatConvertSummary } from '../../src/cli/convert.ts';
import { AVM_PREFIX, ModelService } from '../../src/model/model-service.ts';
import { authorsKey, OrderedDict, PyCall, stateDictOf, storage, tensor, torchSave, type PyValue } from '../model/fixtures/torch-save.ts';
import { REPO_ROOT } from '../helpers.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'stella-convert-'));
let model: ModelService;
let checkpoint: string;

test.before(async () => {
  await initBackend();
  model = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(3) });
  checkpoint = path.join(dir, 'checkpoint.pth');
  const optimizer = new Map<string, PyValue>([['state', new Map<string, PyValue>([['0', new Map<string, PyValue>([['exp_avg', tensor(storage('m', 'float32', [1, 2]), [2])]])]])], ['param_groups', []]]);
  writeFileSync(checkpoint, torchSave(new Map<string, PyValue>([
    ['model', stateDictOf(model.weights(), authorsKey)],
    ['optimizer', optimizer],
    ['epoch', 24],
  ]), 'checkpoint'));
});

test.after.always(() => {
  model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('a training checkpoint converts to safetensors that load into a model bit for bit, with a summary of what was kept and dropped', async (t) => {
  const out = path.join(dir, 'converted.safetensors');
  const summary = await convertWeights(checkpoint, out);
  const backbone = model.backbone.params.entries.size, avm = model.avm.params.entries.size;
  t.is(summary.tensors, backbone + avm);
  t.is(summary.backboneTensors, backbone);
  t.is(summary.avmTensors, avm);
  t.deepEqual(summary.dropped, ['optimizer (1 tensor)', 'epoch']);
  t.is(formatConvertSummary(summary), [
    `convert: ${checkpoint} (pth-training)`,
    'config: tiny (the shapes match the named config)',
    `tensors: ${backbone + avm} (backbone ${backbone}, AVM ${avm})`,
    'dropped (no model parameters): optimizer (1 tensor), epoch',
    `wrote ${out}`,
  ].join('\n'));
  const written = readSafetensors(out);
  t.deepEqual(JSON.parse(written.metadata.config), MODEL_CONFIGS.tiny);
  t.is(written.metadata.format, 'pth-training');
  t.true([...written.tensors.keys()].some((k) => k.startsWith(AVM_PREFIX)));
  const other = new ModelService({ config: MODEL_CONFIGS.tiny, rng: Rng.fromSeed(4) });
  try {
    other.loadWeights(out);
    for (const [name, w] of model.weights()) t.deepEqual(other.weights().get(name)!.data, w.data, name);
  } finally {
    other.dispose();
  }
});

test('a bare CAV dict reports that it carries no AVM; --config base refuses tiny weights naming the tensors', async (t) => {
  const bare = path.join(dir, 'bare.pth');
  const backbone = new Map([...model.weights()].filter(([n]) => !n.startsWith(AVM_PREFIX)));
  writeFileSync(bare, torchSave(stateDictOf(backbone), 'bare'));
  const summary = await convertWeights(bare, path.join(dir, 'bare.safetensors'));
  t.regex(formatConvertSummary(summary), /\ntensors: \d+ \(backbone \d+, no AVM: a model loading these keeps its own AVM init\)\n/);
  await t.throwsAsync(convertWeights(bare, path.join(dir, 'as-base.safetensors'), { config: MODEL_CONFIGS.base }), {
    message: /bare\.pth: these pth-cav weights do not fit the 'base' model \(config as given\): .*tensor 'pos_embed_v' has shape \[1,64,96\] but the CAV backbone parameter is \[1,784,768\]/,
  });
  t.false(existsSync(path.join(dir, 'as-base.safetensors')));
});

test('the command, run from another folder, exits 0 with --json, 1 naming the file for a pickle that calls os.system, 2 for a bad --out', async (t) => {
  // Run from another folder: bin/stella.js must find the package's tsconfig (decorators) itself.
  const run = (args: string[]) => promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'bin', 'stella.js'), 'convert', ...args], { cwd: dir }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
  const out = path.join(dir, 'cli.safetensors');
  const ok = await run([checkpoint, '--out', out, '--json']);
  t.is(ok.code, 0, ok.stderr);
  const json = JSON.parse(ok.stdout);
  t.like(json, { format: 'pth-training', configSource: 'tiny', hasAvm: true, dropped: ['optimizer (1 tensor)', 'epoch'], out });
  t.true(existsSync(out));

  const evil = path.join(dir, 'evil.pth');
  const marker = path.join(dir, 'ran');
  writeFileSync(evil, torchSave(new OrderedDict([['x', new PyCall('os', 'system', [`touch ${marker}`])]]), 'evil'));
  const refused = await run([evil, '--out', path.join(dir, 'evil.safetensors')]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^stella: \S*evil\.pth: refused to unpickle global 'os\.system'/);
  t.false(existsSync(marker));
  const usage = await run([evil, '--out', path.join(dir, 'evil.bin')]);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--out must name a \.safetensors file/);
});
