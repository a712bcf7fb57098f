/**
 * A sweep's progress: runs done (finished or failed for good), running and queued, and an ETA from
 * the pace so far (runs finished by this sweep per second of its wall time; reused runs excluded).
 */
export type RunState = 'queued' | 'running' | 'done' | 'failed';

export class SweepProgress {
  private readonly states = new Map<string, RunState>();
  private readonly started: number;
  private finishedHere = 0;

  constructor(keys: readonly string[], private readonly now = () => performance.now()) {
    for (const k of keys) this.states.set(k, 'queued');
    this.started = now();
  }

  set(key: string, state: RunState, opts: { reused?: boolean } = {}): void {
    const before = this.states.get(key);
    this.states.set(key, state);
    if ((state === 'done' || state === 'failed') && before !== 'done' && before !== 'failed' && !opts.reused) this.finishedHere++;
  }

  counts(): Record<RunState, number> {
    const c: Record<RunState, number> = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const s of this.states.values()) c[s]++;
    return c;
  }

  /** Seconds left at the pace so far; undefined before the first run finishes here. */
  etaSeconds(): number | undefined {
    const c = this.counts();
    const left = c.queued + c.running;
    if (left === 0) return 0;
    if (this.finishedHere === 0) return undefined;
    return ((this.now() - this.started) / 1000 / this.finishedHere) * left;
  }

  line(): string {
    const c = this.counts(), eta = this.etaSeconds();
    const clock = (s: number) => { const t = Math.round(s); return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`; };
    return `sweep: ${c.done + c.failed}/${this.states.size} done${c.failed ? ` (${c.failed} failed)` : ''}, ${c.running} running, ${c.queued} queued, ETA ${eta === undefined ? '?' : clock(eta)}`;
  }
}
