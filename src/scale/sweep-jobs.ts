/**
 * What a sweep run looks like as a BullMQ job, shared by the sweep (producer) and `stella worker`.
 *
 * Queue `stella-sweep`; job id `<selector>-seed<seed>-<hash of graph and --set values>`, so adding
 * the same run twice (a restarted sweep) is a no-op. Beside the job, in Redis:
 *   stella:ckpt:<job id>   the run's newest checkpoint (src/scale/redis-checkpoints.ts)
 *   stella:files:<job id>  results.json, report.html and pictures/* of the finished run
 * The job's return value is `{ worker, wallSeconds }`.
 */
import { createHash } from 'node:crypto';
import { localPath, portablePath } from '../graph/portable-path.ts';
import { KEY_PREFIX } from '../graph/redis-connection.ts';

export const SWEEP_QUEUE = 'stella-sweep';

export interface SweepJobData {
  key: string;
  /** Graph file relative to the repository root (each machine has its own checkout), or absolute. */
  graph?: string;
  sets: string[];
}
export interface SweepJobResult { worker: string; wallSeconds: number }

export function sweepJobId(key: string, graph: string | undefined, sets: readonly string[]): string {
  const hash = createHash('sha256').update(JSON.stringify({ graph: graph ?? '', sets })).digest('hex').slice(0, 12);
  return `${key}-${hash}`;
}

export const checkpointKey = (jobId: string) => `${KEY_PREFIX}:ckpt:${jobId}`;
export const filesKey = (jobId: string) => `${KEY_PREFIX}:files:${jobId}`;

/** A graph path as sent in a job: relative to the repository root when inside it. */
export const portableGraph = (graph: string | undefined) => (graph ? portablePath(graph) : undefined);

export const localGraph = (graph: string | undefined) => (graph ? localPath(graph) : undefined);
