import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { sweep, type SweepOptions, type SweepRun } from '../../src/sweep/sweep.ts';
import { SweepProgress } from '../../src/sweep/sweep-progress.ts';
import { parseResults, type Results } from '../../src/eval/results.ts';
import { REPO_ROOT } from '../helpers.ts';
import { hasRedisServer, NO_REDIS_SERVER, RedisServer } from './redis-server.ts';

// 2 tasks × 2 classes, 2 train + 1 test clip per class, batch 2, 2 epochs → 8 steps, a checkpoint after each
// (enough that a run is still going when the tests below stop or kill its worker after its first checkpoints).
const SMALL = ['data.tasks=2', 'data.classes=2', 'data.train=2', 'data.test=1', 'train.epochs=2', 'train.batchSize=2', 'train.memory=4', 'checkpoint.every=1', 'report.clips=0'];
const tmp = () => mkdtemp(path.join(os.tmpdir(), 'stella-sweep-'));
const options = (out: string, extra: Partial<SweepOptions> = {}): SweepOptions => ({
  selectors: ['stella', 'random'], seeds: [2021], sets: SMALL, out, jobs: 1, attempts: 2, fresh: false, tableOnly: false, log: process.env.SWEEP_DEBUG ? (l) => process.stderr.write(`${l}\n`) : () => {}, ...extra,
});
/** What must match between two runs of the same configuration (timing and memory differ). */
const comparable = (r: Results | null) => r && { retrieval: r.retrieval, summary: r.summary, localization: r.localization, errors: r.errors, tasks: r.tasks };
const bySelector = (runs: SweepRun[]) => Object.fromEntries(runs.map((r) => [r.selector, r]));

// The 1-process reference sweep every distributed sweep is compared with, run for run.
const reference = (async () => {
  const out = await tmp();
  return { out, outcome: await sweep(options(out)) };
})();

function startWorker(url: string, extra: string[] = []): ChildProcess & { log: string[] } {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stella.js'), 'worker', '--redis', url, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { log: string[] };
  child.log = [];
  child.stdout!.on('data', (d) => { child.log.push(String(d)); if (process.env.SWEEP_DEBUG) process.stderr.write(`[worker ${child.pid}] ${d}`); });
  child.stderr!.on('data', (d) => child.log.push(String(d)));
  return child;
}

/** Polls until `probe` returns a value (or fails the test after `ms`). */
async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) {
    const v = await probe();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The job (key suffix) that worker `pid` holds and has checkpointed at least once, if any. */
async function checkpointedJobOf(redis: Redis, pid: number | undefined): Promise<string | undefined> {
  for (const key of await redis.keys('stella:ckpt:*')) {
    const jobId = key.slice('stella:ckpt:'.length);
    const processedBy = await redis.hget(`bull:stella-sweep:${jobId}`, 'pb');
    const active = await redis.lrange('bull:stella-sweep:active', 0, -1);
    if (active.includes(jobId) && processedBy?.endsWith(`:${pid}`)) return jobId;
  }
  return undefined;
}

test('sweep progress counts done, running and queued runs and projects an ETA from the pace so far', (t) => {
  let now = 0;
  const p = new SweepProgress(['a', 'b', 'c', 'd'], () => now);
  t.is(p.etaSeconds(), undefined);
  p.set('a', 'done', { reused: true }); // reused runs say nothing about the pace
  p.set('b', 'running');
  t.is(p.etaSeconds(), undefined);
  now = 60_000;
  p.set('b', 'done');
  p.set('c', 'running');
  t.deepEqual(p.counts(), { queued: 1, running: 1, done: 2, failed: 0 });
  t.is(p.etaSeconds(), 120); // 60 s per run here, 2 left
  t.is(p.line(), 'sweep: 2/4 done, 1 running, 1 queued, ETA 2:00');
});

test('a local sweep writes one folder per selector × seed and sweep.json with the mean ± std table; a rerun reuses finished runs', async (t) => {
  const { out, outcome } = await reference;
  t.deepEqual(outcome.runs.map((r) => [r.selector, r.seed, r.attempts, r.reused]), [['stella', 2021, 1, false], ['random', 2021, 1, false]]);
  const json = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8'));
  for (const [i, run] of json.runs.entries()) {
    const onDisk = parseResults(JSON.parse(await readFile(path.join(out, `${run.selector}-seed2021`, 'results.json'), 'utf8')));
    t.deepEqual(comparable(parseResults(run.results)), comparable(onDisk));
    t.is(onDisk.selector, ['stella', 'random'][i]);
    t.regex(run.worker, /^.+:\d+$/);
  }
  t.regex(json.table, /\| stella \| 1 \| \d+\.\d\d ± 0\.00 \|/);
  t.regex(json.table, /\| random \| 1 \|/);
  t.is(json.aggregates[0].summary.a2v.avg.A.mean, outcome.runs[0].results!.summary.a2v.avg.A);
  const again = await sweep(options(out));
  t.deepEqual(again.runs.map((r) => [r.worker, r.attempts, r.reused]), [['reused', 0, true], ['reused', 0, true]]);
  await t.throwsAsync(() => sweep(options(out, { sets: [...SMALL, 'seed=3'] })), { message: /--set seed=3: use --seeds/ });
});

test.serial('Redis sweep, 2 workers, one SIGKILLed mid-run and replaced: every run matches the local sweep; a failing job stops after its attempts', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(15 * 60_000);
  const server = await RedisServer.start();
  const abort = new AbortController();
  const redis = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: null });
  const fast = ['--lock-duration', '10000', '--stalled-interval', '2000'];
  const workers = [startWorker(server.url, fast), startWorker(server.url, fast)];
  try {
    const out = await tmp();
    const running = sweep(options(out, { selectors: ['stella', 'random', 'nope'], redis: server.url, signal: abort.signal }));
    running.catch(() => {}); // awaited below; this only keeps an aborted sweep from being reported twice
    const victim = workers[0];
    const jobId = await until(() => checkpointedJobOf(redis, victim.pid), 10 * 60_000, 'worker 1 to checkpoint a run');
    victim.kill('SIGKILL');
    workers.push(startWorker(server.url, fast)); // the replacement
    // The killed worker's run process follows it (it notices between steps; no orphan keeps computing).
    await until(async () => (spawnSync('pgrep', ['-f', `stella-worker-${victim.pid}/`]).status === 1 ? true : undefined), 90_000, 'the killed worker\'s run process to exit');
    const outcome = await running;
    const { outcome: ref } = await reference;
    const runs = bySelector(outcome.runs);
    t.is(outcome.runs.length, 3);
    for (const selector of ['stella', 'random']) {
      t.is(runs[selector].error, undefined);
      t.deepEqual(comparable(runs[selector].results), comparable(bySelector(ref.runs)[selector].results), `${selector} differs from the local sweep`);
      t.true(existsSync(path.join(out, `${selector}-seed2021`, 'results.json')));
    }
    const taken = outcome.runs.find((r) => jobId.startsWith(`${r.selector}-seed`))!;
    t.true(taken.attempts >= 2, `the killed run was started ${taken.attempts} time(s)`);
    t.not(taken.worker, `${os.hostname()}:${victim.pid}`);
    t.regex(runs.nope.error!, /unknown selector 'nope'/);
    t.is(runs.nope.attempts, 2);
    const json = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8'));
    t.regex(json.runs.find((r: SweepRun) => r.selector === 'nope').error, /unknown selector 'nope'/);
    t.deepEqual(await redis.keys('stella:files:*'), []); // collected by the sweep
  } finally {
    abort.abort(); // a failed assertion must not leave the sweep waiting for Redis
    for (const w of workers) w.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
  }
});

test.serial('Redis restarted mid-sweep (append-only file) and the worker stopped with SIGTERM: nothing lost or duplicated', async (t) => {
  if (!hasRedisServer) return t.fail(NO_REDIS_SERVER);
  t.timeout(15 * 60_000);
  const server = await RedisServer.start();
  const abort = new AbortController();
  const redis = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: null });
  redis.on('error', () => {});
  const first = startWorker(server.url, ['--lock-duration', '10000', '--stalled-interval', '2000']);
  const workers = [first];
  try {
    const out = await tmp();
    const running = sweep(options(out, { selectors: ['stella'], redis: server.url, signal: abort.signal }));
    running.catch(() => {}); // awaited below; this only keeps an aborted sweep from being reported twice
    await until(() => checkpointedJobOf(redis, first.pid), 10 * 60_000, 'a checkpointed run');
    await server.restart(300);
    // SIGTERM: the worker checkpoints its runs, hands the jobs back and exits 0.
    await until(() => checkpointedJobOf(redis, first.pid), 60_000, 'the worker to checkpoint after the restart');
    const exit = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
    first.kill('SIGTERM');
    t.is(await exit, 0, first.log.join(''));
    t.regex(first.log.join(''), /handed back after a checkpoint/);
    workers.push(startWorker(server.url));
    const outcome = await running;
    const { outcome: ref } = await reference;
    t.deepEqual(outcome.runs.map((r) => r.selector), ['stella']);
    for (const run of outcome.runs) {
      t.deepEqual(comparable(run.results), comparable(bySelector(ref.runs)[run.selector].results), `${run.selector} differs from the local sweep`);
    }
    t.is(await redis.zcard('bull:stella-sweep:completed'), 1); // completed once
    t.is(await redis.llen('bull:stella-sweep:wait'), 0);
  } finally {
    abort.abort(); // a failed assertion must not leave the sweep waiting for Redis
    for (const w of workers) w.kill('SIGKILL');
    redis.disconnect();
    await server.stop();
  }
});
