/**
 * The sweep side of `stella worker`: a BullMQ worker on the `stella-sweep` queue. Each job is one
 * `stella run` in a child process in a private folder; the job's newest checkpoint is fetched from
 * Redis first (so a job another worker started resumes exactly where its last checkpoint left it),
 * and every checkpoint the run commits is copied into Redis. When the run ends, its files go to
 * Redis for the sweep and the job completes.
 *
 * Faults: a worker killed outright stops renewing its job's lock; after `lockDurationMs` BullMQ's
 * stalled-job check (every `stalledIntervalMs`, on any worker) puts the job back in the queue and
 * another worker resumes it (at-least-once: the steps after the last checkpoint are redone, with the
 * same result). A worker that finds it lost its lock ends its run at once. `stop()` (SIGTERM) hands
 * jobs back: each run checkpoints after its current step, the checkpoint goes to Redis, the job
 * returns to the queue without using an attempt.
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker, WaitingError, type Job } from 'bullmq';
import { startRun, type RunProcess } from '../sweep/run-process.ts';
import { openRedis, redisOptions } from '../graph/redis-connection.ts';
import { downloadCheckpoint, uploadCheckpoint } from './redis-checkpoints.ts';
import { uploadRunFiles } from './run-files.ts';
import { checkpointKey, filesKey, localGraph, SWEEP_QUEUE, type SweepJobData, type SweepJobResult } from './sweep-jobs.ts';

export interface ScaleWorkerOptions {
  redis: string;
  concurrency: number;
  /** A job's lock lasts this long without renewal before the job counts as stalled. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Stalls (killed workers) a job survives before it fails. */
  maxStalledCount: number;
  /** Private scratch folder of this worker. */
  workDir: string;
  log: (line: string) => void;
}

export interface SweepWorkerHandle {
  readonly id: string;
  /** Hands back every job (checkpoint first) and closes the worker. */
  stop(): Promise<void>;
}

export function startSweepWorker(o: ScaleWorkerOptions): SweepWorkerHandle {
  const id = `${os.hostname()}:${process.pid}`;
  const redis = openRedis(o.redis);
  const running = new Set<RunProcess>();

  const processor = async (job: Job<SweepJobData, SweepJobResult>, token?: string, signal?: AbortSignal): Promise<SweepJobResult> => {
    const jobId = job.id!;
    const dir = path.join(o.workDir, jobId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const step = await downloadCheckpoint(redis, checkpointKey(jobId), path.join(dir, 'checkpoints'));
    o.log(`${jobId}: ${step === undefined ? 'starting' : `resuming from the checkpoint at step ${step}`} (try ${job.attemptsStarted})`);
    const started = performance.now();
    const child = await startRun({
      graph: localGraph(job.data.graph), sets: job.data.sets, out: dir, resume: step !== undefined,
      onCheckpoint: (ckpt) => uploadCheckpoint(redis, checkpointKey(jobId), ckpt).then(
        (stored) => { if (!stored) o.log(`${jobId}: Redis already holds a newer checkpoint than ${path.basename(ckpt)}`); },
        (e) => o.log(`${jobId}: checkpoint ${path.basename(ckpt)} not copied to Redis: ${(e as Error).message}`),
      ),
    });
    const abandon = () => { o.log(`${jobId}: lost the job's lock (taken by another worker); ending the run`); child.kill(); };
    signal?.addEventListener('abort', abandon);
    running.add(child);
    try {
      const { stopped } = await child.finished;
      if (stopped) {
        await job.moveToWait(token);
        o.log(`${jobId}: handed back after a checkpoint`);
        throw new WaitingError();
      }
      await uploadRunFiles(redis, filesKey(jobId), dir);
      const wallSeconds = (performance.now() - started) / 1000;
      o.log(`${jobId}: done in ${wallSeconds.toFixed(0)} s`);
      return { worker: id, wallSeconds };
    } finally {
      running.delete(child);
      signal?.removeEventListener('abort', abandon);
      await rm(dir, { recursive: true, force: true });
    }
  };

  const worker = new Worker<SweepJobData, SweepJobResult>(SWEEP_QUEUE, processor, {
    connection: redisOptions(o.redis), concurrency: o.concurrency, name: id,
    lockDuration: o.lockDurationMs, stalledInterval: o.stalledIntervalMs, maxStalledCount: o.maxStalledCount,
  });
  worker.on('error', () => {}); // connection errors during a Redis restart; BullMQ reconnects
  worker.on('lockRenewalFailed', (ids) => { for (const j of ids) worker.cancelJob(j, 'lock lost'); });
  worker.on('failed', (job, err) => o.log(`${job?.id}: try ${job?.attemptsStarted} failed: ${err.message}`));

  return {
    id,
    async stop() {
      for (const child of running) child.stop();
      await worker.close();
      redis.disconnect();
    },
  };
}
