/**
 * Observability: per-stage counts, latency and errors, per-edge queue depths, and a live view.
 *
 * - `GraphMetrics` collects. Stages call `stage(node).received()/emitted()/failed()` (the
 *   `tap-metrics` operator and the runner do it for every node), `observeLatency(ms)`;
 *   the runner registers each edge's queue with `watchQueue`.
 * - `snapshot()` is plain JSON, saved in results.json.
 * - `MetricsDisplay` shows it live: a cli-progress multibar on a TTY, one plain line every
 *   `intervalMs` otherwise, nothing with `quiet`.
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

export interface DisplayOptions {
  mode?: DisplayMode;
  intervalMs?: number;
  stream?: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
}

/** Live view of a GraphMetrics. `stop()` prints a final line (except in quiet mode). */
export class MetricsDisplay {
  private timer: NodeJS.Timeout | undefined;
  private multibar: cliProgress.MultiBar | undefined;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  readonly mode: DisplayMode;

  constructor(private readonly metrics: GraphMetrics, private readonly options: DisplayOptions = {}) {
    const stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? (stream.isTTY ? 'tty' : 'plain');
  }

  start(): this {
    if (this.mode === 'quiet') return this;
    const stream = this.options.stream ?? process.stderr;
    if (this.mode === 'tty') {
      this.multibar = new cliProgress.MultiBar(
        { format: ' {node} | {value} out / {received} in | err {errors} | {latency} ms', hideCursor: true, clearOnComplete: false, stream: stream as NodeJS.WriteStream },
        cliProgress.Presets.shades_grey,
      );
    }
    this.timer = setInterval(() => this.render(), this.options.intervalMs ?? (this.mode === 'tty' ? 250 : 10_000));
    this.timer.unref();
    return this;
  }

  private render() {
    if (this.mode === 'plain') {
      (this.options.stream ?? process.stderr).write(`${this.metrics.summaryLine()}\n`);
      return;
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
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'quiet') return;
    this.render();
    this.multibar?.stop();
    if (this.mode === 'plain') return;
  }
}
