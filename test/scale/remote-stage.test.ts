/**
 * `device: redis` with a real redis-server and real `stella worker` processes (killed with SIGKILL
 * in one case): remote decode/tokenize match the local graph bit for bit (patches, per-clip errors,
 * a whole `stella run`'s results.json), in-flight items stay bounded by the node's queueSize when
 * the workers or the downstream consumer stall, and the items of a worker that dies are claimed by
 * another worker.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { parseResults } from '../../src/eval/results.ts';
import { runCommand } from '../../src/cli/run.ts';
import type { ClipRef, TokenizedClip } from '../../src/media/items.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import testStages, { probe, resetProbe } from '../graph/fixtures/test-stages.ts';
import { REPO_ROOT } from '../helpers.ts';
import { badClips, tempDir } from '../media/fixtures.ts';
import remoteStages, { collected, gate } from './fixtures/remote-stages.ts';
import { hasRedisServer, NO_REDIS_SERVER, RedisServer } from './redis-server.ts';

const modules = { container: { modules: [testStages, remoteStages], autoloadPlugins: false } };

function startWorker(url: string, env: Record<string, string> = {}): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'worker', '--redis', url, '--claim-idle', '1000', '--items', '2'], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: string[] };
  child.output = [];
  child.stdout!.on('data', (d) => child.output.push(String(d)));
  child.stderr!.on('data', (d) => child.output.push(String(d)));
  return child;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const sha = (a: ArrayBufferView) => createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

test.serial('decode and tokenize on device redis give the local patches bit for bit and the same per-clip errors', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(4 * 60_000);
  const dir = await tempDir('remote-media');
  const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 2, train: 2, test: 0, seed: 4, durationSec: 2 });
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  const bad = await badClips(dir);
  const label = manifest.tasks[0].train[0].label;
  manifest.tasks[0].train.push({ path: bad[Object.keys(bad)[0]], label }, { path: path.join(dir, 'missing.mp4'), label });
  const mixed = path.join(dir, 'mixed.json');
  manifest.tasks[0].train = manifest.tasks[0].train.map((c: { path: string; label: string }) => ({ ...c, path: path.resolve(path.dirname(manifestPath), c.path) }));
  await writeFile(mixed, JSON.stringify(manifest));

  const server = await RedisServer.start();
  const workers = [startWorker(server.url), startWorker(server.url)];
  try {
    const runs: Record<string, { items: string[]; errors: string[] }> = {};
    for (const device of ['cpu', 'redis']) {
      // Train mode: the augmentation draws from the per-clip rng fork, which must not see the worker's copy of the file.
      const graph = await loadGraphText(`name: remote-media
nodes:
  source: { stage: source, options: { manifest: ${mixed}, epochs: 2 } }
  decode: { stage: decode, device: ${device}, options: { mode: train } }
  tokenize: { stage: tokenize, device: ${device} }
  sink: { stage: collect }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: sink }
`, path.join(dir, 'g.yaml'), modules);
      collected.length = 0;
      const result = await runGraph(graph, { signals: null, redis: server.url });
      const items = collected.filter((i): i is TokenizedClip => i.kind === 'tokenized').map((c) => `${c.path}#${c.epoch} ${sha(c.videoPatches)} ${sha(c.audioPatches)}`);
      runs[device] = { items, errors: result.errors.map((e) => `${e.stage} ${e.path}: ${e.message}`).sort() };
    }
    t.is(runs.cpu.items.length, 4 * 2, '4 good clips × 2 epochs');
    t.is(runs.cpu.errors.length, 2 * 2, 'the bad and the missing clip fail in each epoch');
    t.deepEqual(runs.redis.items, runs.cpu.items);
    t.deepEqual(runs.redis.errors, runs.cpu.errors);
    const redis = new Redis({ host: '127.0.0.1', port: server.port });
    t.deepEqual(await redis.keys('stella:stage:*'), [], 'the run deletes its streams');
    t.deepEqual(await redis.keys('stella:file:*'), [], 'and the shipped files');
    redis.disconnect();
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await server.stop();
  }
});

test.serial('a stella run with decode and tokenize on redis writes the local results.json', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(6 * 60_000);
  const small = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=1', 'train.batchSize=2', 'train.memory=4', 'report.clips=1'];
  const quiet = { quiet: true, log: () => {}, signals: null } as const;
  const server = await RedisServer.start();
  const worker = startWorker(server.url);
  try {
    const dir = await tempDir('remote-run');
    const local = await runCommand({ sets: small, out: path.join(dir, 'local'), ...quiet });
    const remote = await runCommand({ sets: [...small, 'nodes.decode.device=redis', 'nodes.tokenize.device=redis'], out: path.join(dir, 'remote'), redis: server.url, ...quiet });
    const comparable = (file: string) => readFile(file, 'utf8').then((s) => {
      const { timing: _t, memory: _m, metrics: _s, ...rest } = parseResults(JSON.parse(s));
      return rest;
    });
    const [a, b] = [await comparable(path.join(local.outDir, 'results.json')), await comparable(path.join(remote.outDir, 'results.json'))];
    t.true(Object.keys(a).length > 5);
    t.deepEqual(b, a);
    // The remote run's items went through Redis streams (2 tasks × 2 classes × (2 train + 1 test) clips, decode and tokenize).
    const redis = new Redis({ host: '127.0.0.1', port: server.port });
    const xadds = Number(/cmdstat_xadd:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
    redis.disconnect();
    t.true(xadds >= 2 * 12, `${xadds} stream entries added`);
  } finally {
    worker.kill('SIGKILL');
    await server.stop();
  }
});

test.serial('in-flight items stay within queueSize when no worker runs and when the consumer downstream stalls', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(3 * 60_000);
  const server = await RedisServer.start();
  const redis = new Redis({ host: '127.0.0.1', port: server.port });
  let worker: ChildProcess | undefined;
  let watching = false;
  try {
    resetProbe();
    gate.reset();
    collected.length = 0;
    const graph = await loadGraphText(`name: remote-backpressure
nodes:
  source: { stage: count-source, options: { count: 40, payload: 4096 } }
  echo: { stage: remote-echo, device: redis, queueSize: 3 }
  hold: { stage: gate, queueSize: 6 }
  sink: { stage: collect }
edges:
  - { from: source, to: echo }
  - { from: echo, to: hold }
  - { from: hold, to: sink }
`, path.join(REPO_ROOT, 'g.yaml'), modules);
    const run = runGraph(graph, { signals: null, redis: server.url });
    watching = true;
    const inStream = async () => (await redis.keys('stella:stage:*:echo:in'))[0];
    const streamLength = async () => { const k = await inStream(); return k ? redis.xlen(k) : 0; };
    let maxLength = 0;
    const watch = setInterval(() => { if (watching) void streamLength().then((n) => { maxLength = Math.max(maxLength, n); }, () => {}); }, 5);

    // No worker: the node sends its window (its queueSize, 3; the queue after it would allow 6) and the source stops behind the full queue.
    await until('3 items in the stream', async () => (await streamLength()) === 3);
    await sleep(300);
    t.is(await streamLength(), 3);
    const bound1 = 3 /* source→echo queue */ + 3 /* echo's window */ + 1 /* the source's pending pull */;
    t.true(probe.produced <= bound1, `source produced ${probe.produced} with no worker (bound ${bound1})`);

    // A worker drains the stream, but the gate takes one item and holds it: everything upstream fills and stops.
    worker = startWorker(server.url);
    await until('the gate to hold an item', () => gate.taken >= 1);
    let last = -1;
    let still = 0;
    await until('the source to stop', () => { still = probe.produced === last ? still + 1 : 0; last = probe.produced; return still >= 25; });
    // echo's items in flight and the echo→hold queue share that queue's 6 slots (the runner reserves them).
    const bound2 = 3 /* source→echo queue */ + 6 /* echo→hold queue and echo's window */ + 1 /* held by the gate */ + 1 /* pending pull */;
    t.true(probe.produced <= bound2, `source produced ${probe.produced} with the consumer stalled (bound ${bound2})`);
    t.true(probe.produced < 40);
    t.true(maxLength <= 3, `the stream held ${maxLength} entries`);

    gate.open();
    const result = await run;
    watching = false;
    clearInterval(watch);
    t.deepEqual(result.errors, []);
    const clips = collected.filter((i): i is ClipRef & { payload: Float32Array } => i.kind === 'clip');
    t.deepEqual(clips.map((c) => c.index), [...Array(40).keys()], 'all items, in order');
    t.true(clips.every((c) => c.payload.length === 4096 && c.payload[0] === 2 * c.index), 'payloads doubled by the worker');
    t.true(maxLength <= 3, `the stream held ${maxLength} entries`);
  } finally {
    watching = false;
    worker?.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
  }
});

test.serial('the items of a worker killed while holding them are claimed by another worker', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(3 * 60_000);
  const server = await RedisServer.start();
  const redis = new Redis({ host: '127.0.0.1', port: server.port });
  const hanging = startWorker(server.url, { STELLA_TEST_HANG: '1' });
  let second: (ChildProcess & { output: string[] }) | undefined;
  try {
    resetProbe();
    collected.length = 0;
    const graph = await loadGraphText(`name: remote-claim
nodes:
  source: { stage: count-source, options: { count: 6, payload: 8 } }
  echo: { stage: remote-echo, device: redis, queueSize: 3 }
  sink: { stage: collect }
edges:
  - { from: source, to: echo }
  - { from: echo, to: sink }
`, path.join(REPO_ROOT, 'g.yaml'), modules);
    const run = runGraph(graph, { signals: null, redis: server.url });
    // The hanging worker reads 2 items (--items 2) and never posts them.
    const held = async () => {
      const key = (await redis.keys('stella:stage:*:echo:in'))[0];
      if (!key) return 0;
      const consumers = (await redis.xpending(key, 'workers'))[3] as [string, string][] | null;
      return Number(consumers?.find(([name]) => name.endsWith(`:${hanging.pid}`))?.[1] ?? 0);
    };
    await until('the first worker to hold 2 items', async () => (await held()) === 2);
    hanging.kill('SIGKILL');
    second = startWorker(server.url);
    const result = await run;
    t.deepEqual(result.errors, []);
    const clips = collected.filter((i): i is ClipRef & { payload: Float32Array; doneBy: number } => i.kind === 'clip');
    t.deepEqual(clips.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
    t.true(clips.every((c) => c.payload[0] === 2 * c.index && c.doneBy === second!.pid), 'every item done by the second worker');
    t.regex(second.output.join(''), /claimed .* from a worker that stopped renewing it/);
    t.deepEqual(await redis.keys('stella:stage:*'), []);
  } finally {
    hanging.kill('SIGKILL');
    second?.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
  }
});

test.serial('a worker that cannot load a node\'s task fails the graph with one clear error instead of dropping items', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(60_000);
  const server = await RedisServer.start();
  const worker = startWorker(server.url);
  try {
    const graph = await loadGraphText(`name: remote-missing
nodes:
  source: { stage: count-source, options: { count: 3 } }
  echo: { stage: remote-missing, device: redis }
edges:
  - { from: source, to: echo }
`, path.join(REPO_ROOT, 'g.yaml'), modules);
    await t.throwsAsync(() => runGraph(graph, { signals: null, redis: server.url }), {
      message: /stage 'echo': worker \S+ cannot load the task test\/scale\/fixtures\/no-such-task\.ts#task: .*no-such-task/,
    });
  } finally {
    worker.kill('SIGKILL');
    await server.stop();
  }
});

test('a node that reads the model or has no worker task is refused on device redis, naming the node', async (t) => {
  const error = await t.throwsAsync(() => loadGraphText(`name: bad-remote
nodes:
  source: { stage: count-source, options: { count: 1 } }
  sink: { stage: collect, device: redis }
edges:
  - { from: source, to: sink }
`, path.join(REPO_ROOT, 'g.yaml'), modules));
  t.regex(error!.message, /nodes\.sink\.device.*node 'sink' cannot run on device redis: stage 'collect' offers no worker task/s);
});

test('device redis without a Redis URL, or with a bad one, fails the graph once with a message that says how to give one', async (t) => {
  const graph = await loadGraphText(`name: no-url
nodes:
  source: { stage: count-source, options: { count: 1 } }
  echo: { stage: remote-echo, device: redis }
edges:
  - { from: source, to: echo }
`, path.join(REPO_ROOT, 'g.yaml'), modules);
  const saved = process.env.STELLA_REDIS;
  delete process.env.STELLA_REDIS;
  try {
    await t.throwsAsync(() => runGraph(graph, { signals: null }), { message: /device 'redis' needs a Redis server: pass --redis redis:\/\/host:port or set STELLA_REDIS/ });
    await t.throwsAsync(() => runGraph(graph, { signals: null, redis: 'localhost:6379' }), { message: /stage 'redis': --redis 'localhost:6379': expected a redis:\/\/ URL/ });
  } finally {
    if (saved !== undefined) process.env.STELLA_REDIS = saved;
  }
});

// The codec is what makes "bit for bit" possible: typed arrays travel as bytes.
test('items cross as a JSON header plus raw typed-array bytes, bit for bit', async (t) => {
  const { encodeItem, decodeItem } = await import('../../src/graph/item-codec.ts');
  const weird = new Float32Array([NaN, -0, Infinity, 1e-45, 3.4e38]);
  new Uint32Array(weird.buffer)[0] = 0x7fc01234; // a NaN payload
  const item = { kind: 'tokenized', path: 'a.mp4', n: -0, big: -Infinity, nested: { list: [1, 'x', null], ints: new Int32Array([1, -2]) }, videoPatches: weird };
  const { header, blobs } = encodeItem(item);
  t.false(header.includes('3.4e38'), 'no floats in the header');
  t.is(blobs.length, 2);
  // A transport may hand back the bytes at any offset.
  const shifted = blobs.map((b) => { const big = Buffer.alloc(b.length + 3); b.copy(big, 3); return big.subarray(3); });
  const back = decodeItem<typeof item>(header, shifted);
  t.deepEqual(new Uint8Array(back.videoPatches.buffer), new Uint8Array(weird.buffer));
  t.true(Object.is(back.n, -0));
  t.is(back.big, -Infinity);
  t.deepEqual([...back.nested.ints], [1, -2]);
  t.deepEqual(back.nested.list, [1, 'x', null]);
  t.throws(() => encodeItem({ kind: 'batch', dispose() {} }), { message: /item field 'dispose' is a function; only plain data and typed arrays/ });
  t.throws(() => decodeItem('{"a":{"$blob":1,"type":"Float32Array"}}', [Buffer.alloc(4)]), { message: /names blob 1, but 1 came with it/ });
});
