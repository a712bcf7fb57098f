/**
 * A `DisplayClock` that moves only when the test says so: `advance(ms)` sets the time forward and
 * runs each due tick once per interval passed, in time order. Nothing depends on the wall clock.
 */
import type { DisplayClock } from '../../src/graph/metrics.ts';

export class ManualClock implements DisplayClock {
  private time = 0;
  private readonly timers = new Set<{ ms: number; due: number; tick: () => void }>();

  now(): number { return this.time; }

  every(ms: number, tick: () => void): () => void {
    if (!(ms > 0)) throw new RangeError(`ManualClock.every: interval must be > 0 ms, got ${ms}`);
    const timer = { ms, due: this.time + ms, tick };
    this.timers.add(timer);
    return () => { this.timers.delete(timer); };
  }

  /** Registered tickers not yet cancelled. */
  get pending(): number { return this.timers.size; }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: { ms: number; due: number; tick: () => void } | undefined;
      for (const t of this.timers) if (t.due <= end && (!next || t.due < next.due)) next = t;
      if (!next) break;
      this.time = next.due;
      next.due += next.ms;
      next.tick();
    }
    this.time = end;
  }
}
