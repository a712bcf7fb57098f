/**
 * What the decode stage's `warm` option decodes ahead: when a clip of a task is requested, the
 * clips of that task and of the manifest's next task (same split, manifest order), once per task.
 *
 * Why: a run over a new corpus decodes each clip on its first request (the decoded cache,
 * decoded-cache.ts), so each task's epoch 1 waits on ffmpeg, while in epochs 2, 3, … the decoding
 * core sits idle. Filling the cache with the next task's clips in that idle time lets its epoch 1
 * read the cache as later epochs do. The current task is warmed too: its requests come in shuffled
 * order and take the clips they need first (a request joins a warm run that holds its clip), and
 * the warmer decodes the rest eight files per ffmpeg run, about half the CPU per clip of the
 * requests' one-file runs; clips already stored or being decoded cost a header read.
 *
 * Decoding ahead draws nothing (augmentation is drawn per request from the stored clip), so a
 * run's results are the same with or without the warmer. A manifest that cannot be read warms
 * nothing: the source stage reports it.
 */
import type { ManifestRow } from './roles.ts';

export class TaskWarmer {
  private readonly asked = new Set<string>();
  private readonly abort = new AbortController();
  private chain: Promise<void> = Promise.resolve();
  private rows?: Promise<ManifestRow[]>;

  /**
   * @param loadRows the manifest's rows, tasks in training order (read once, on the first request)
   * @param warm decodes `paths` into the cache, in order; stops when `signal` aborts
   */
  constructor(
    private readonly loadRows: () => Promise<ManifestRow[]>,
    private readonly warm: (paths: string[], signal: AbortSignal) => Promise<void>,
  ) {}

  /** A clip of `taskName` (`split`) was requested: queue this task's and the next task's clips, once per task. */
  requested(clip: { taskName: string; split: string }): void {
    const key = `${clip.split}\u0000${clip.taskName}`;
    if (this.asked.has(key) || this.abort.signal.aborted) return;
    this.asked.add(key);
    this.chain = this.chain
      .then(async () => {
        const rows = await (this.rows ??= this.loadRows());
        const tasks = [...new Set(rows.map((r) => r.task))];
        const at = tasks.indexOf(clip.taskName);
        if (at < 0 || this.abort.signal.aborted) return;
        const wanted = new Set(tasks.slice(at, at + 2));
        await this.warm(rows.filter((r) => wanted.has(r.task) && r.split === clip.split).map((r) => r.path), this.abort.signal);
      })
      .catch(() => {});
  }

  /** Settles once everything queued so far is warmed (or stopped). */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Stops warming: the decode in flight is killed, nothing more starts. */
  stop(): void {
    this.abort.abort();
  }
}
