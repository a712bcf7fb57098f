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
import path from 'node:path';
import { REPO_ROOT } from '../graph/container.ts';
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
export function portableGraph(graph: string | undefined): string | undefined {
  if (!graph) return undefined;
  const rel = path.relative(REPO_ROOT, path.resolve(graph));
  return rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(graph) : rel;
}

export const localGraph = (graph: string | undefined) => (graph ? path.resolve(REPO_ROOT, graph) : undefined);
