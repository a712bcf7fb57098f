/**
 * Small CLI manners a new user meets: `--version`, required options marked, the same exit code for a
 * missing graph file in every graph command, `graph run --out` holding everything the run writes, a
 * bad value naming the `--set` it came from, manifest typos naming the unknown key, and a settable
 * corpus cache.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { buildProgram, packageVersion } from '../../src/cli/main.ts';
import { CORPUS_VERSION, generateCorpus } from '../../src/media/corpus.ts';
import { loadManifest } from '../../src/media/manifest.ts';
import { loadGraph } from '../../src/graph/loader.ts';
import { GraphConfigError } from '../../src/graph/errors.ts';
import { runCommand } from '../../src/cli/run.ts';
import { cacheRoot } from '../../src/core/cache-dir.ts';
import { graphEnv, parseRunSets, RUN_KEY_PLACEHOLDERS } from '../../src/cli/run-params.ts';
import { REPO_ROOT } from '../helpers.ts';

/** Runs the program in this process; the exit code is commander's or the action's `process.exitCode`. */
async function stella(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const writeErr = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.exitCode = undefined;
  try {
    await buildProgram({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } }).parseAsync(['node', 'stella', ...args]);
    return { code: Number(process.exitCode ?? 0), out, err };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, out, err };
  } finally {
    process.stderr.write = writeErr;
    process.stdout.write = writeOut;
    process.env = saved;
    process.exitCode = undefined;
  }
}

test.serial('stella --version prints package.json\'s version', async (t) => {
  const { code, out } = await stella(['--version']);
  t.is(code, 0);
  t.is(out.trim(), JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')).version);
  t.is(packageVersion(), out.trim());
});

test.serial('required options say so in their help', async (t) => {
  t.regex((await stella(['ingest', '--help'])).out, /--out <dir>\s+cache folder \(required\)/);
  t.regex((await stella(['corpus', '--help'])).out, /--out <dir>\s+output folder \(required\)/);
});

test.serial('a missing graph file exits 2 in graph check, graph run and run alike; an invalid graph is graph check\'s 1', async (t) => {
  const missing = path.join(os.tmpdir(), 'no-such-graph.yaml');
  for (const args of [['graph', 'check', missing], ['graph', 'run', missing], ['run', missing]]) {
    const { code, err } = await stella(args);
    t.is(code, 2, args.join(' '));
    t.regex(err, /no-such-graph\.yaml.*cannot read the graph file/, args.join(' '));
  }
  const invalid = await stella(['graph', 'check', path.join(REPO_ROOT, 'graphs/continual-pretrain.yaml'), '--set', 'nodes.batch.options.size=zero']);
  t.is(invalid.code, 1);
  t.regex(invalid.err, /nodes\.batch\.options\.size/);
});

test.serial('graph run --out DIR puts the graph\'s own files (steps.json) in DIR too', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-graph-out-'));
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 1, test: 1, seed: 3 });
  const out = path.join(dir, 'run');
  const elsewhere = path.join(dir, 'elsewhere');
  const { code, err } = await stella(['graph', 'run', path.join(REPO_ROOT, 'graphs/continual-pretrain.yaml'), '--quiet', '--out', out,
    '--set', 'nodes.batch.options.size=2', '--set', 'nodes.source.options.epochs=1'], { STELLA_MANIFEST: manifestPath, STELLA_OUT: elsewhere });
  t.is(code, 0, err);
  for (const file of ['resolved.yaml', 'overrides.yaml', 'steps.json']) t.true(existsSync(path.join(out, file)), file);
  t.false(existsSync(elsewhere), '--out wins over STELLA_OUT');
  t.is(JSON.parse(await readFile(path.join(out, 'steps.json'), 'utf8')).steps.length, 1);
});

test.serial('a bad graph value set through stella run names the --set it came from', async (t) => {
  const origins = { STELLA_SELECTOR: '--set selector=stela' };
  const error = await t.throwsAsync(() => loadGraph(path.join(REPO_ROOT, 'graphs/continual-pretrain.yaml'), { env: { ...process.env, STELLA_SELECTOR: 'stela' }, origins }), { instanceOf: GraphConfigError });
  t.regex(error!.message, /continual-pretrain\.yaml':\d+:\d+ at 'nodes\.train\.options\.selector': unknown selector 'stela'.*\(value from --set selector=stela\)/);
  // The same variable from the plain environment (no origin known) names no --set.
  const plain = await t.throwsAsync(() => loadGraph(path.join(REPO_ROOT, 'graphs/continual-pretrain.yaml'), { env: { ...process.env, STELLA_SELECTOR: 'stela' } }));
  t.notRegex(plain!.message, /value from/);
  t.deepEqual(Object.keys(RUN_KEY_PLACEHOLDERS).filter((k) => !(RUN_KEY_PLACEHOLDERS[k] in graphEnv(parseRunSets(['train.epochs=1', 'train.batchSize=1', 'train.memory=1', 'train.lr=0.1', 'init=none', 'avmInit=random']).params, 'm', 'o'))), [], 'every mapped placeholder is one stella run sets');
});

test.serial('a manifest field typo names the unknown key beside the missing one', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-manifest-typo-'));
  await writeFile(path.join(dir, 'm.json'), JSON.stringify({ tasks: [{ name: 't', train: [{ path: 'a.mp4', lable: 'dog' }] }] }));
  await t.throwsAsync(() => loadManifest(path.join(dir, 'm.json')), {
    message: /m\.json: invalid manifest: tasks\[0\]\.train\[0\]\.label: .*expected string.*; unknown key 'lable' there \(known: path, label, groundTruth\)/,
  });
});

test.serial('the generated corpus goes where data.cache or STELLA_CACHE says', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-cache-'));
  const params = (sets: string[]) => parseRunSets(sets).params.data.cache;
  t.is(cacheRoot(params([`data.cache=${dir}/a`])), path.join(dir, 'a'));
  const saved = process.env.STELLA_CACHE;
  process.env.STELLA_CACHE = path.join(dir, 'env');
  try {
    t.is(cacheRoot(params([])), path.join(dir, 'env'));
    t.is(cacheRoot(params([`data.cache=${dir}/a`])), path.join(dir, 'a'), '--set wins over the environment');
  } finally {
    if (saved === undefined) delete process.env.STELLA_CACHE; else process.env.STELLA_CACHE = saved;
  }
  t.is(cacheRoot(params([])), path.resolve(saved ?? path.join(REPO_ROOT, '.cache')));
  const outcome = await runCommand({ sets: [`data.cache=${dir}/a`, 'data.tasks=1', 'data.classes=2', 'data.train=1', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'report.clips=0'], out: path.join(dir, 'run'), quiet: true, log: () => {}, signals: null });
  t.true(existsSync(path.join(dir, 'a', 'corpus', `tiny-seed2021-1x2-1+1-v${CORPUS_VERSION}`, 'manifest.json')));
  t.is(outcome.results.train.tasks.length, 1);
});

test.serial('the shipped graphs evaluate on STELLA_MANIFEST when STELLA_EVAL_MANIFEST is unset (nested defaults)', async (t) => {
  for (const graph of ['continual-pretrain.yaml', 'ab-selectors.yaml']) {
    const file = path.join(REPO_ROOT, 'graphs', graph);
    const env: Record<string, string | undefined> = { ...process.env, STELLA_MANIFEST: '/m/train.json' };
    delete env.STELLA_EVAL_MANIFEST;
    const evaluates = (loaded: Awaited<ReturnType<typeof loadGraph>>) => [...loaded.nodes.values()].filter((n) => n.stage.type === 'evaluate').map((n) => (n.options as { manifest: string }).manifest);
    t.deepEqual(new Set(evaluates(await loadGraph(file, { env }))), new Set(['/m/train.json']), graph);
    t.deepEqual(new Set(evaluates(await loadGraph(file, { env: { ...env, STELLA_EVAL_MANIFEST: '/m/eval.json' } }))), new Set(['/m/eval.json']), graph);
    t.deepEqual(new Set(evaluates(await loadGraph(file, { env: {} }))), new Set(['data/corpus/manifest.json']), graph);
  }
});

test('the shipped training graphs keep a batch in flight on the decode worker and cache their test clips', async (t) => {
  for (const graph of ['continual-pretrain.yaml', 'ab-selectors.yaml', 'pretrain.yaml', 'pretrain-avm.yaml']) {
    const loaded = await loadGraph(path.join(REPO_ROOT, 'graphs', graph), { env: {} });
    const nodes = [...loaded.nodes.values()];
    const decode = nodes.find((n) => n.stage.type === 'decode')!;
    const batch = nodes.find((n) => n.stage.type === 'batch')!;
    // A decoded clip reaches tokenize, and a tokenized one the batch, only through the main thread, which is
    // busy for a whole step: with fewer clips in flight than the decode queue holds, steps wait on the worker.
    const window = (decode.options as { concurrency: number }).concurrency;
    const decodeQueue = Math.min(...loaded.edges.filter((e) => e.from === decode.id).map((e) => e.queueSize));
    t.is(decode.device, 'worker:0', graph);
    t.true(window >= Math.min(decodeQueue, (batch.options as { size: number }).size), `${graph}: decode window ${window}`);
    for (const evaluate of nodes.filter((n) => n.stage.type === 'evaluate')) t.is((evaluate.options as { cache: unknown }).cache, true, `${graph}: ${evaluate.id}`);
  }
});
