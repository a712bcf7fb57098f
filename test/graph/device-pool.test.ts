import test from 'ava';
import { firstValueFrom, toArray } from 'rxjs';
import { initBackend } from '../../src/core/backend.ts';
import { pullable } from '../../src/graph/bounded-queue.ts';
import { DevicePool, WeightSync } from '../../src/graph/device-pool.ts';
import type { GraphItem } from '../../src/graph/items.ts';
import type { TokenizedClip } from '../../src/media/items.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { Decoder, ManifestLoader, Tokenizer } from '../../src/media/roles.ts';
import { FakeDecoder, TINY, fakeManifest, manifestRows, patchTokenizer } from './fakes.ts';
import testStages, { heavyStage, heavyWork, probe } from './fixtures/test-stages.ts';

test.before(async () => { await initBackend(); });

function tokenized(n: number): TokenizedClip[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: 'tokenized', path: `c${i}`, label: '', task: 0, taskName: 't', split: 'train', index: i,
    videoPatches: new Float32Array(4 * 16 * 768).map((_, k) => i + k / 1e5),
    audioPatches: new Float32Array(128 * 256).map((_, k) => -i - k / 1e5),
  }));
}

test('a worker-run stage gives outputs identical to the in-thread run, in order', async (t) => {
  const expected = tokenized(6).map(heavyWork);
  const pool = new DevicePool({ config: TINY, seed: 0 });
  try {
    const items: GraphItem[] = [...tokenized(6), { kind: 'task-end', task: 0, taskName: 't' } as GraphItem];
    const run = pool.operator('heavy', heavyStage, {}, 'worker:0', 2);
    const out = (await firstValueFrom(run(pullable(items)).pipe(toArray<GraphItem>()))) as TokenizedClip[];
    t.is(out.length, 7);
    t.is(out[6].kind, 'task-end' as never, 'markers pass through in order');
    for (let i = 0; i < 6; i++) {
      t.is(out[i].index, i);
      t.deepEqual(out[i].videoPatches, expected[i].videoPatches);
      t.deepEqual(out[i].audioPatches, expected[i].audioPatches);
    }
  } finally {
    await pool.close();
  }
});

test.serial('a graph node on device worker:0 gives the same outputs as on cpu', async (t) => {
  const graphText = (device: string) => `name: w
nodes:
  source: { stage: source, options: { manifest: m.json } }
  decode: { stage: decode }
  tokenize: { stage: tokenize }
  heavy: { stage: heavy, device: ${device} }
  results: { stage: checksum }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: heavy }
  - { from: heavy, to: results }
`;
  const sums: number[][] = [];
  for (const device of ['cpu', 'worker:0']) {
    const values: Array<[symbol, unknown]> = [[ManifestLoader, fakeManifest(manifestRows({ a: 3 }))], [Decoder, new FakeDecoder()], [Tokenizer, patchTokenizer]];
    const graph = await loadGraphText(graphText(device), 'w.yaml', { container: { values, modules: [testStages], autoloadPlugins: false } });
    const result = await runGraph(graph, { signals: null });
    t.is(result.metrics.stages.heavy.emitted, 4, device);
    t.is(result.errors.length, 0, device);
    sums.push(probe.checksum.splice(0));
  }
  t.is(sums[0].length, 3);
  t.deepEqual(sums[0], sums[1], 'same clips, same values, same order');
});

test('a stage without a worker task cannot be put on a worker', (t) => {
  const pool = new DevicePool({ config: TINY, seed: 0 });
  t.throws(() => pool.operator('b', { ...heavyStage, worker: undefined }, {}, 'worker:0'), { message: /offers no worker task/ });
});

test('gpu:N without tfjs-node-gpu is refused with the reason', (t) => {
  // Whatever is installed here: the pool is told the package cannot be found.
  const asked: string[] = [];
  const pool = new DevicePool({ config: TINY, seed: 0, resolvePackage: (id) => { asked.push(id); throw new Error(`Cannot find module '${id}'`); } });
  t.throws(() => pool.handle('gpu:0'), { message: /device 'gpu:0' needs @tensorflow\/tfjs-node-gpu, which is not installed/ });
  t.deepEqual(asked, ['@tensorflow/tfjs-node-gpu']);
});

test('WeightSync copies every K steps; K = 0 never copies (strictly in step)', async (t) => {
  let exported = 0;
  const model = { exportWeights: () => { exported++; return new Map([['w', new Float32Array([exported])]]); } };
  const pushedAt: number[] = [];
  const sync = new WeightSync(model, 3, () => { pushedAt.push(exported); });
  for (let step = 1; step <= 10; step++) await sync.afterStep(step);
  t.is(sync.syncs, 3);
  t.is(sync.lastSyncedStep, 9);
  const never = new WeightSync(model, 0, () => t.fail());
  for (let step = 1; step <= 5; step++) await never.afterStep(step);
  t.is(never.syncs, 0);
  t.throws(() => new WeightSync(model, -1, () => {}), { message: /syncEvery must be an integer ≥ 0/ });
});

/** The packages a fresh worker thread loads when it imports `modules` as the pool's workers do (tsx, then the modules). */
async function packagesLoadedInWorker(modules: string[]): Promise<string[]> {
  const { Worker } = await import('node:worker_threads');
  const urls = modules.map((m) => new URL(`../../${m}`, import.meta.url).href);
  const hooks = new URL('./fixtures/record-loads.mjs', import.meta.url).href;
  const boot = `const { MessageChannel, parentPort } = require('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    const loaded = [];
    port1.on('message', (url) => loaded.push(url));
    require('node:module').register(${JSON.stringify(hooks)}, { data: { port: port2 }, transferList: [port2] });
    import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(async (tsx) => {
      tsx.register();
      for (const url of ${JSON.stringify(urls)}) await import(url);
      setTimeout(() => { port1.close(); parentPort.postMessage(loaded); }, 200);
    });`;
  const worker = new Worker(boot, { eval: true });
  try {
    const loaded = await new Promise<string[]>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    return [...new Set(loaded.map((u) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]).filter((n): n is string => !!n))].sort();
  } finally {
    await worker.terminate();
  }
}

test('a decode/tokenize worker starts without the container and RxJS (half its start-up), which the stage files need', async (t) => {
  const heavy = (names: string[]) => names.filter((n) => /^(inversify|@inversifyjs\/|rxjs)/.test(n)).sort();
  const worker = await packagesLoadedInWorker(['src/graph/worker-host.ts', 'src/media/stages/decode-worker.ts', 'src/media/stages/tokenize-worker.ts']);
  t.deepEqual(heavy(worker), [], `loaded: ${worker.join(', ')}`);
  // The check sees them when they are loaded: the stage files import both.
  const stages = await packagesLoadedInWorker(['src/media/stages/decode.ts']);
  t.true(heavy(stages).includes('inversify') && heavy(stages).includes('rxjs'), `loaded: ${stages.join(', ')}`);
});
