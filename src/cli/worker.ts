/**
 * `stella worker --redis URL [--concurrency N]`: a long-lived process on any machine that takes
 * sweep runs (src/scale/sweep-worker.ts), ingest clips (src/scale/redis-ingest.ts) and the items of
 * graph nodes on `device: redis` (src/graph/remote-worker.ts) from Redis. SIGTERM/SIGINT: each run
 * checkpoints after its current step and its job goes back to the queue, running items are
 * finished; then the worker exits 0. docs/scale-out.md.
 */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { helpFooter, positiveInt } from './help.ts';

export function register(program: Command): void {
  program
    .command('worker')
    .description('take sweep runs, ingest clips and remote graph items from Redis until stopped; SIGTERM hands running jobs back after a checkpoint')
    .requiredOption('--redis <url>', 'redis://host:port of the queue')
    .option('--concurrency <n>', 'runs at a time on this machine', positiveInt, 1)
    .option('--work-dir <dir>', 'scratch folder for the runs (default: a temp folder)')
    .option('--lock-duration <ms>', 'a job whose worker stops renewing its lock this long is stalled and goes to another worker', positiveInt, 30_000)
    .option('--stalled-interval <ms>', 'how often this worker checks for stalled jobs', positiveInt, 30_000)
    .option('--max-stalled <n>', 'stalls (killed workers) a job survives before it fails', positiveInt, 5)
    .option('--items <n>', 'graph items (nodes on device: redis) at a time on this machine', positiveInt, 2)
    .option('--claim-idle <ms>', 'a graph item whose worker stops renewing it this long is taken by another worker', positiveInt, 30_000)
    .addHelpText('after', helpFooter(
      ['stella worker --redis redis://127.0.0.1:6379', 'stella worker --redis redis://queue-host:6379 --concurrency 2'],
      '0 stopped by SIGTERM/SIGINT after handing its jobs back, 1 could not start, 2 usage error',
      ['Each run\'s checkpoints are copied into Redis, so any worker can resume a job; a killed worker\'s job is', 'resumed elsewhere after --lock-duration (BullMQ stalled-job check).'],
    ))
    .action(async (opts: { redis: string; concurrency: number; workDir?: string; lockDuration: number; stalledInterval: number; maxStalled: number; items: number; claimIdle: number }) => {
      const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      // Loaded here so other commands never load the Redis client.
      const { startSweepWorker } = await import('../scale/sweep-worker.ts');
      const { startIngestWorker } = await import('../scale/redis-ingest.ts');
      const { startRemoteStageWorker } = await import('../graph/remote-worker.ts');
      const workDir = path.resolve(opts.workDir ?? path.join(os.tmpdir(), `stella-worker-${process.pid}`));
      const handle = startSweepWorker({
        redis: opts.redis, concurrency: opts.concurrency, lockDurationMs: opts.lockDuration, stalledIntervalMs: opts.stalledInterval,
        maxStalledCount: opts.maxStalled, workDir, log,
      });
      const ingest = startIngestWorker({ redis: opts.redis, concurrency: opts.concurrency, workDir, id: handle.id });
      const items = startRemoteStageWorker({ redis: opts.redis, concurrency: opts.items, claimIdleMs: opts.claimIdle, workDir, id: handle.id, log });
      log(`worker ${handle.id} on ${opts.redis}: sweep runs and ingest clips, ${opts.concurrency} at a time; graph items, ${opts.items} at a time`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log(`${signal}: handing back running jobs`);
          Promise.all([handle.stop(), ingest.stop(), items.stop()]).then(() => resolve(), (e) => { log(`stop failed: ${(e as Error).message}`); resolve(); });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      log('worker stopped');
      process.exit(0);
    });
}
