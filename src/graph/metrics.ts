/**
 * Observability: per-stage counts, latency and errors, per-edge queue depths, and a live view.
 *
 * - `GraphMetrics` collects. Stages call `stage(node).received()/emitted()/failed()` (the
 *   `tap-metrics` operator and the runner do it for every node), `observeLatency(ms)`;
 *   the runner registers each edge's queue with `watchQueue`.
 * - `snapshot()` is plain JSON, saved in results.json.
 * - `MetricsDisplay` shows it live: a cli-progress multibar on a TTY, one plain line every
 *   `intervalMs` otherwise, nothing with `quiet`. Given a `progress` source (a count with a known
 *   total, e.g. training steps), it adds a bar (TTY) or a line suffix (plain) with the ETA: the
 *   remaining count at the mean rate since the display started (so restored steps of a resumed run
 *   do not count as fast ones).
 * - Time comes from a `DisplayClock` (default: `performance.now` and an unref'd `setInterval`);
 *   tests pass a manual one so ETAs and redraws do not depend on how loaded the machine is.
 */
import cliProgress from 'cli-progress';

export interface StageSnapshot {
  received: number;
  emitted: number;
  errors: number;
  latencyMs: { count: number; mean: number; max: number };
}
export interface QueueSnapshot { capacity: number; depth: number; maxDepth: number; pushed: number }
export interface MetricsSnapshot {
  elapsedMs: number;
  stages: Record<string, StageSnapshot>;
  queues: Record<string, QueueSnapshot>;
  /** Last value of each named gauge (e.g. `train.loss`). */
  gauges: Record<string, number>;
}

class StageCounters {
  received = 0;
  emitted = 0;
  errors = 0;
  private latencyCount = 0;
  private latencySum = 0;
  private latencyMax = 0;
  observeLatency(ms: number) {
    this.latencyCount++;
    this.latencySum += ms;
    if (ms > this.latencyMax) this.latencyMax = ms;
  }
  snapshot(): StageSnapshot {
    return {
      received: this.received,
      emitted: this.emitted,
      errors: this.errors,
      latencyMs: {
        count: this.latencyCount,
        mean: this.latencyCount ? this.latencySum / this.latencyCount : 0,
        max: this.latencyMax,
      },
    };
  }
}

interface QueueLike { capacity: number; depth: number; maxDepth: number; pushed: number }

export class GraphMetrics {
  private readonly stages = new Map<string, StageCounters>();
  private readonly queues = new Map<string, QueueLike>();
  private readonly gauges = new Map<string, number>();
  private readonly startedAt = performance.now();

  stage(node: string): StageCounters {
    let counters = this.stages.get(node);
    if (!counters) this.stages.set(node, (counters = new StageCounters()));
    return counters;
  }
  watchQueue(edge: string, queue: QueueLike): void { this.queues.set(edge, queue); }
  gauge(name: string, value: number): void { this.gauges.set(name, value); }

  snapshot(): MetricsSnapshot {
    return {
      elapsedMs: Math.round(performance.now() - this.startedAt),
      stages: Object.fromEntries([...this.stages].map(([k, v]) => [k, v.snapshot()])),
      queues: Object.fromEntries(
        [...this.queues].map(([k, q]) => [k, { capacity: q.capacity, depth: q.depth, maxDepth: q.maxDepth, pushed: q.pushed }]),
      ),
      gauges: Object.fromEntries(this.gauges),
    };
  }

  /** One line: `decode 12/12 (err 1) | batch 3/12 | q decode→tokenize 2/4`. */
  summaryLine(): string {
    const s = this.snapshot();
    const stages = Object.entries(s.stages).map(
      ([k, v]) => `${k} ${v.emitted}/${v.received}${v.errors ? ` (err ${v.errors})` : ''}`,
    );
    const queues = Object.entries(s.queues).map(([k, q]) => `${k} ${q.depth}/${q.capacity}`);
    return `[${(s.elapsedMs / 1000).toFixed(1)}s] ${stages.join(' | ')}${queues.length ? ` || q ${queues.join(', ')}` : ''}`;
  }
}

export type DisplayMode = 'tty' | 'plain' | 'quiet';

/** A count with a known total (e.g. training steps over the run), shown with its ETA. */
export interface ProgressSource {
  /** What is counted, e.g. 'steps'. */
  label: string;
  total: number;
  /** Done so far; may start above 0 (a resumed run). */
  done(): number;
}

/** Where the display reads the time and schedules its redraws. */
export interface DisplayClock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Calls `tick` every `ms` until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

/** Wall-clock time; the redraw timer does not keep the process alive. */
export const systemClock: DisplayClock = {
  now: () => performance.now(),
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

export interface DisplayOptions {
  mode?: DisplayMode;
  intervalMs?: number;
  stream?: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
  progress?: ProgressSource;
  /**
   * TTY mode: called at start with a writer that prints a line above the live bars (other output
   * written meanwhile would tear the display), and with `undefined` at stop.
   */
  attachLog?: (write: ((line: string) => void) | undefined) => void;
  /** Default `systemClock`. */
  clock?: DisplayClock;
}

/** Seconds left at the mean rate so far; undefined until something was done. */
export function etaSeconds(elapsedMs: number, doneSinceStart: number, remaining: number): number | undefined {
  if (remaining <= 0) return 0;
  if (doneSinceStart <= 0 || elapsedMs <= 0) return undefined;
  return (elapsedMs / 1000 / doneSinceStart) * remaining;
}

/** `1:02:03`, `2:03`, or `--:--` when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const two = (n: number) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** Live view of a GraphMetrics. `stop()` prints a final line (except in quiet mode). */
export class MetricsDisplay {
  private stopTicks: (() => void) | undefined;
  private readonly clock: DisplayClock;
  private multibar: cliProgress.MultiBar | undefined;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private progressBar: cliProgress.SingleBar | undefined;
  private progressStart = { ms: 0, done: 0 };
  readonly mode: DisplayMode;

  constructor(private readonly metrics: GraphMetrics, private readonly options: DisplayOptions = {}) {
    const stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? (stream.isTTY ? 'tty' : 'plain');
    this.clock = options.clock ?? systemClock;
  }

  start(): this {
    if (this.mode === 'quiet') return this;
    const stream = this.options.stream ?? process.stderr;
    if (this.mode === 'tty') {
      this.multibar = new cliProgress.MultiBar(
        { format: ' {node} | {value} out / {received} in | err {errors} | {latency} ms', hideCursor: true, clearOnComplete: false, forceRedraw: true, stream: stream as NodeJS.WriteStream },
        cliProgress.Presets.shades_grey,
      );
    }
    const progress = this.options.progress;
    if (progress) {
      this.progressStart = { ms: this.clock.now(), done: progress.done() };
      if (this.multibar) {
        this.progressBar = this.multibar.create(Math.max(1, progress.total), Math.min(progress.done(), progress.total), this.progressPayload(), {
          format: ` {label} [{bar}] {value}/{total} | {elapsedText} elapsed | ETA {etaText}`,
        });
      }
    }
    if (this.multibar) this.options.attachLog?.((line) => this.multibar?.log(line.endsWith('\n') ? line : `${line}\n`));
    this.stopTicks = this.clock.every(this.options.intervalMs ?? (this.mode === 'tty' ? 250 : 10_000), () => this.render());
    return this;
  }

  /** The progress count, elapsed time and ETA (empty without a progress source). */
  progressPayload(): { label: string; done: number; total: number; elapsedText: string; etaText: string } | Record<string, never> {
    const p = this.options.progress;
    if (!p) return {};
    const done = Math.min(p.done(), p.total);
    const elapsedMs = this.clock.now() - this.progressStart.ms;
    const eta = etaSeconds(elapsedMs, done - this.progressStart.done, p.total - done);
    return { label: p.label.padEnd(14), done, total: p.total, elapsedText: formatDuration(elapsedMs / 1000), etaText: formatDuration(eta) };
  }

  private render() {
    if (this.mode === 'plain') {
      const p = this.progressPayload();
      const suffix = 'etaText' in p ? ` || ${p.label.trim()} ${p.done}/${p.total} ETA ${p.etaText}` : '';
      (this.options.stream ?? process.stderr).write(`${this.metrics.summaryLine()}${suffix}\n`);
      return;
    }
    if (this.progressBar) {
      const payload = this.progressPayload() as { done: number };
      this.progressBar.update(payload.done, payload);
    }
    const snapshot = this.metrics.snapshot();
    for (const [node, s] of Object.entries(snapshot.stages)) {
      let bar = this.bars.get(node);
      if (!bar) this.bars.set(node, (bar = this.multibar!.create(Math.max(1, s.received), 0)));
      bar.setTotal(Math.max(1, s.received));
      bar.update(s.emitted, { node: node.padEnd(14), received: s.received, errors: s.errors, latency: s.latencyMs.mean.toFixed(0) });
    }
  }

  stop(): void {
    this.stopTicks?.();
    this.stopTicks = undefined;
    if (this.mode === 'quiet') return;
    this.render();
    // cli-progress writes logged lines only on its own redraw timer, and its stop() drops them:
    // redraw once so a line logged just before the end (e.g. the last task's table) is shown.
    this.multibar?.update();
    this.options.attachLog?.(undefined);
    this.multibar?.stop();
    if (this.mode === 'plain') return;
  }
}
