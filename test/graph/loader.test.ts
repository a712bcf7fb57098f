import test from 'ava';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GraphConfigError } from '../../src/graph/errors.ts';
import { loadGraph, loadGraphText } from '../../src/graph/loader.ts';
import { Evaluator, SelectorContribution, Trainer } from '../../src/method/roles.ts';
import { REPO_ROOT } from '../helpers.ts';
import { FakeEvaluator, FakeTrainer, stellaStagesOnly } from './fakes.ts';

const values: Array<[symbol, unknown]> = [[Trainer, new FakeTrainer()], [Evaluator, new FakeEvaluator()]];
// The engine with STELLA's stages but no method services (src/method binds the real selectors and trainer), fakes injected.
const container = { values, autoloadPlugins: false, loadAreaModules: false, modules: stellaStagesOnly };

const BASE = `name: t
nodes:
  source:
    stage: source
    options:
      manifest: m.json
  decode:
    stage: decode
    options:
      concurrency: 2
  tokenize: { stage: tokenize }
  batch:
    stage: batch
    options: { size: 4 }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: batch }
`;

async function problem(text: string, options: Parameters<typeof loadGraphText>[2] = { container }) {
  const error = await loadGraphText(text, 'g.yaml', options).then(() => undefined, (e: unknown) => e);
  if (!(error instanceof GraphConfigError)) throw new Error(`expected a GraphConfigError, got ${String(error)}`);
  return error;
}

test('a valid graph loads with option defaults filled in and queue sizes resolved', async (t) => {
  const g = await loadGraphText(BASE, 'g.yaml', { container });
  t.deepEqual(g.nodes.get('batch')!.options, { size: 4, dropLast: true });
  t.deepEqual(g.nodes.get('decode')!.options, { concurrency: 2, mode: 'train', cache: false, warm: false });
  t.deepEqual(g.edges.map((e) => e.queueSize), [4, 4, 4]);
  t.is(g.nodes.get('decode')!.device, 'cpu');
});

test('an unknown stage type names file, line, key and the known types', async (t) => {
  const e = await problem(BASE.replace('stage: tokenize', 'stage: tokenise'));
  t.regex(e.message, /In 'g\.yaml':11:\d+ at 'nodes\.tokenize\.stage': unknown stage type 'tokenise' \(did you mean 'tokenize'\?\); known types: .*batch.*decode.*source.*train/);
});

test('a missing required option and a mistyped one are reported together with their lines', async (t) => {
  const text = BASE.replace('      manifest: m.json\n', '      epochs: 1\n').replace('concurrency: 2', 'concurrency: two');
  const e = await problem(text);
  t.is(e.problems.length, 2);
  t.regex(e.message, /g\.yaml':5:\d+ at 'nodes\.source\.options\.manifest': missing required key \(stage 'source'\)/);
  t.regex(e.message, /g\.yaml':10:\d+ at 'nodes\.decode\.options\.concurrency': .*expected number.*stage 'decode'/);
});

test('an unknown option key is refused with a hint', async (t) => {
  const e = await problem(BASE.replace('options: { size: 4 }', 'options: { sise: 4 }'));
  t.regex(e.message, /:14:\d+ at 'nodes\.batch\.options\.sise': unknown key 'sise' \(did you mean 'size'\?\); known: size, dropLast/);
});

test('an unknown plugin, a dangling edge and a cycle are each refused', async (t) => {
  const plugin = await problem(`plugins: [./nowhere-plugin.ts, no-such-package-xyz]\n${BASE}`);
  t.regex(plugin.message, /g\.yaml':1:\d+ at 'plugins\.0': plugin '\.\/nowhere-plugin\.ts': no such file/);
  t.regex(plugin.message, /at 'plugins\.1': plugin 'no-such-package-xyz': not an installed npm package/);

  const dangling = await problem(`${BASE}  - { from: batch, to: trian }\n`);
  t.regex(dangling.message, /:19:\d+ at 'edges\.3\.to': edge to unknown node 'trian'; nodes: source, decode, tokenize, batch/);

  const cyclic = await problem(
    BASE.replace('  batch:\n', '  again:\n    stage: tap-metrics\n  batch:\n') + '  - { from: batch, to: again }\n  - { from: again, to: batch }\n',
  );
  t.regex(cyclic.message, /cycle: batch → again → batch/);
});

test('an edge that cannot carry the kinds is refused, and so is a node nothing feeds', async (t) => {
  const e = await problem(BASE.replace('{ from: tokenize, to: batch }', '{ from: source, to: batch }'));
  t.regex(e.message, /'source' \(source\) emits \[clip, task-end\] but 'batch' \(batch\) takes \[tokenized\]/);
  const unfed = await problem(BASE.replace('  - { from: decode, to: tokenize }\n', ''));
  t.regex(unfed.message, /at 'nodes\.tokenize': node 'tokenize' \(tokenize\) takes \[decoded\] but no edge leads to it/);
});

test('--set overrides are typed by the schema and refuse unknown keys with the nearest one', async (t) => {
  const g = await loadGraphText(BASE, 'g.yaml', { container, overrides: ['nodes.batch.options.dropLast=false', 'nodes.decode.options.mode=eval', 'defaults.queueSize=2'] });
  t.false(g.nodes.get('batch')!.options.dropLast);
  t.is(g.nodes.get('decode')!.options.mode, 'eval');
  t.deepEqual(g.edges.map((e) => e.queueSize), [2, 2, 2]);
  t.is(g.nodes.get('source')!.options.manifest, 'm.json');
  const strings = await loadGraphText(BASE, 'g.yaml', { container, overrides: ['nodes.source.options.manifest=007'] });
  t.is(strings.nodes.get('source')!.options.manifest, '007', 'a string key keeps its text');

  const bad = await problem(BASE, { container, overrides: ['nodes.batch.options.size=abc'] });
  t.regex(bad.message, /at 'nodes\.batch\.options\.size': .*expected number.*\(value from --set nodes\.batch\.options\.size=abc\)/);
  const unknown = await problem(BASE, { container, overrides: ['nodes.batch.options.sise=4'] });
  t.regex(unknown.message, /no such key; did you mean 'nodes\.batch\.options\.size'\?/);
  const added = await problem(BASE, { container, overrides: ['+nodes.batch.options.sise=4'] });
  t.regex(added.message, /unknown key 'sise'/, '+ adds the key, and the stage schema still refuses it');
});

test('${ENV} and ${ENV:-default} interpolate, typed; an unset variable without default names its line', async (t) => {
  const text = BASE.replace('manifest: m.json', 'manifest: ${DATA_DIR}/m.json').replace('size: 4', 'size: "${BATCH:-6}"');
  const g = await loadGraphText(text, 'g.yaml', { container, env: { DATA_DIR: '/corpus' } });
  t.is(g.nodes.get('source')!.options.manifest, '/corpus/m.json');
  t.is(g.nodes.get('batch')!.options.size, 6);
  const e = await problem(text, { container, env: {} });
  t.regex(e.message, /g\.yaml':6:\d+ at 'nodes\.source\.options\.manifest': environment variable 'DATA_DIR' is not set/);
});

test('an unknown selector lists the known ones; a plugin file adds one', async (t) => {
  const train = `${BASE}  - { from: batch, to: train }\n`.replace('edges:', '  train:\n    stage: train\n    options: { selector: nope }\nedges:');
  const e = await problem(train);
  t.regex(e.message, /at 'nodes\.train\.options\.selector': unknown selector 'nope'; known selectors: \(none bound\)/);
  const inGraphs = path.join(REPO_ROOT, 'graphs/g.yaml');
  const withPlugin = await loadGraphText(`plugins: [../plugins/example-selector.ts]\n${train}`, inGraphs, { container }).then(() => undefined, (x: Error) => x);
  t.regex(withPlugin!.message, /unknown selector 'nope'; known selectors: center-bias/);
  const g = await loadGraphText(`plugins: [../plugins/example-selector.ts]\n${train.replace('nope', 'center-bias')}`, inGraphs, { container });
  t.true(g.container.isBound(SelectorContribution));
});

test('a YAML syntax error names its line', async (t) => {
  const e = await problem(BASE.replace('options: { size: 4 }', 'options: { size: 4'));
  t.regex(e.message, /^In 'g\.yaml':\d+:\d+: /);
});

test('a missing role binding is reported before any data flows', async (t) => {
  const train = `${BASE}  - { from: batch, to: train }\n`.replace('edges:', '  train: { stage: train }\nedges:');
  const e = await problem(train, { container: { autoloadPlugins: false, loadAreaModules: false, modules: stellaStagesOnly } });
  t.regex(e.message, /stage 'train' needs role 'Trainer', which nothing binds/);
});

test('every shipped graph loads', async (t) => {
  const files = (await readdir(path.join(REPO_ROOT, 'graphs'))).filter((f) => f.endsWith('.yaml'));
  t.true(files.length >= 4);
  for (const file of files) {
    const full = path.join(REPO_ROOT, 'graphs', file);
    const result = await loadGraph(full, { container: { values }, env: { STELLA_CHECKPOINT: 'ckpt' } }).then(
      (g) => g,
      (e: Error) => e,
    );
    if (result instanceof Error) t.fail(`${file}: ${result.message}`);
    else t.true(result.nodes.size >= 4, file);
  }
});
