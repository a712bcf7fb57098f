/**
 * The Redis executor of `stella sweep --redis URL`: each run not yet finished locally becomes a
 * BullMQ job (src/scale/sweep-jobs.ts) with `attempts` tries, done by `stella worker` processes on any
 * machine. The sweep polls the jobs' states (so it rides out a Redis restart: commands wait for the
 * reconnect), and for each completed job writes the run's files from Redis into its folder, then
 * deletes the job's checkpoint and files from Redis. A failed job (its attempts used up) is recorded
 * with its error. Re-running the same sweep finds the same job ids: finished runs are reused, failed
 * jobs are retried from their last checkpoint, running ones are waited for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { inspectRunFolder, readResultsFile } from '../sweep/run-folder.ts';
import { describeRun, reusedRun, type RunSpec, type SweepExecutor, type SweepRun } from '../sweep/sweep.ts';
import { openRedis, redisOptions } from '../graph/redis-connection.ts';
import { downloadRunFiles } from './run-files.ts';
import { checkpointKey, filesKey, portableGraph, SWEEP_QUEUE, sweepJobId, type SweepJobData, type SweepJobResult } from './sweep-jobs.ts';
import path from 'node:path';

const POLL_MS = 500;

export const redisSweepExecutor: SweepExecutor = async (specs, o, progress) => {
  const queue = new Queue(SWEEP_QUEUE, { connection: redisOptions(o.redis!) });
  queue.on('error', () => {}); // reconnects are retried; polling waits for them
  const redis = openRedis(o.redis!);
  const runs = new Map<string, SweepRun>();
  const pending = new Map<string, RunSpec>();
  const graph = portableGraph(o.graph);
  // An abort must also end commands that wait for an unreachable Redis.
  const onAbort = () => { redis.disconnect(); void queue.disconnect(); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const record = (spec: RunSpec, run: SweepRun) => {
    runs.set(spec.key, run);
    o.log(describeRun(run, runs.size, specs.length));
  };
  try {
    for (const spec of specs) {
      const state = await inspectRunFolder(spec.dir, spec.params, o.fresh);
      if (state.kind === 'finished') {
        progress.set(spec.key, 'done', { reused: true });
        record(spec, reusedRun(spec, state.results));
        continue;
      }
      const jobId = sweepJobId(spec.key, graph, spec.sets);
      const existing = await queue.getJob(jobId);
      if (existing && o.fresh) {
        await existing.remove();
        await redis.del(checkpointKey(jobId), filesKey(jobId));
      } else if (existing && (await existing.getState()) === 'failed') {
        await existing.retry('failed'); // resumes from the checkpoint it left in Redis
      }
      const data: SweepJobData = { key: spec.key, graph, sets: spec.sets };
      await queue.add('run', data, { jobId, attempts: o.attempts, removeOnComplete: false, removeOnFail: false });
      pending.set(jobId, spec);
    }
    while (pending.size) {
      o.signal?.throwIfAborted();
      for (const [jobId, spec] of [...pending]) {
        const job = await queue.getJob(jobId);
        const state = job ? await job.getState() : 'missing';
        if (state === 'completed' && job) {
          if (!(await downloadRunFiles(redis, filesKey(jobId), spec.dir))) throw new Error(`job ${jobId} completed but Redis holds none of its files (${filesKey(jobId)})`);
          const results = await readResultsFile(path.join(spec.dir, 'results.json'));
          await redis.del(checkpointKey(jobId), filesKey(jobId));
          pending.delete(jobId);
          progress.set(spec.key, 'done');
          const r = job.returnvalue as SweepJobResult;
          record(spec, { selector: spec.selector, seed: spec.seed, dir: spec.dir, worker: r.worker, attempts: job.attemptsStarted, wallSeconds: r.wallSeconds, reused: false, results });
        } else if (state === 'failed' || state === 'missing') {
          pending.delete(jobId);
          progress.set(spec.key, 'failed');
          const error = job?.failedReason ?? `job ${jobId} vanished from Redis (removed, or Redis lost its data)`;
          record(spec, { selector: spec.selector, seed: spec.seed, dir: spec.dir, worker: job?.processedBy ?? '', attempts: job?.attemptsStarted ?? 0, wallSeconds: 0, reused: false, error, results: null });
        } else {
          progress.set(spec.key, state === 'active' ? 'running' : 'queued');
        }
      }
      if (pending.size) await sleep(POLL_MS);
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (!o.signal?.aborted) await queue.close();
    redis.disconnect();
  }
  return specs.map((s) => runs.get(s.key)!);
};
