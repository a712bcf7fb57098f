/**
 * Runs a validated graph (loader.ts) and resolves with the final metrics and results.
 *
 * Topology: every edge is a BoundedQueue of its own size. A node reads its input queue(s)
 * through `fromQueues`, gated on room in all its output queues, so with fan-out (one node
 * feeding two) the slower branch throttles the producer and nothing buffers without bound.
 * A fanned-out item is cloned for every branch after the first (its own `clone()`, else a
 * structured clone), so branches own what they receive. Root nodes (sources) are pulled one item
 * at a time when their outputs have room.
 *
 *   source ─▶[q]─▶ decode ─▶[q]─▶ tokenize ─▶[q]─▶ batch ─┬▶[q]─▶ train A ─▶[q]─▶ results A
 *                                                       └▶[q]─▶ train B ─▶[q]─▶ results B
 *
 * Errors: per-item StageErrors are collected (and counted per node); a fatal error from any
 * node unsubscribes every node (finalizers run: ffmpeg children killed, tensors disposed),
 * disposes queued items and rejects. Graceful stop (stop.ts): nodes stop taking input, finish
 * what they hold, the Checkpointer writes, and the run resolves with `stopped: true`.
 * Sinks: outputs of nodes without outgoing edges are collected (steps, evals) and disposed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Subject, type Subscription } from 'rxjs';
import { BoundedQueue, fromQueues, isPullable, pullable } from './bounded-queue.ts';
import { getRole } from './container.ts';
import { DevicePool, WeightSync } from './device-pool.ts';
import { messageOf } from './errors.ts';
import { cloneItem, disposeItem, isEvalResult, isStepResult, type EvalResult, type GraphItem, type StageError, type StepResult } from './items.ts';
import type { LoadedGraph } from './loader.ts';
import { GraphMetrics, MetricsDisplay, type DisplayOptions, type MetricsSnapshot } from './metrics.ts';
import { Checkpointer, Metrics, ModelService, type StreamPosition } from './roles.ts';
import { StopController, stopMessage, type SignalSource } from './stop.ts';

export interface RunOptions {
  /** Stop flag; default one listening on `signals`. */
  stop?: StopController;
  /** Where SIGINT/SIGTERM come from (default: the process; `null`: no signal handling). */
  signals?: SignalSource | null;
  /** Live display; `{ mode: 'quiet' }` for none. Default: quiet (the CLI turns it on). */
  display?: DisplayOptions;
  /** Writes resolved.yaml and overrides.yaml here (STYLE §11). */
  outDir?: string;
  /** Redis for nodes on `device: redis` (default $STELLA_REDIS). */
  redis?: string;
}

export interface RunResult {
  metrics: MetricsSnapshot;
  steps: StepResult[];
  evals: EvalResult[];
  errors: StageError[];
  stopped: boolean;
  position: StreamPosition;
  checkpoint?: string;
  /** How to resume after a stop. */
  message?: string;
}

export async function runGraph(graph: LoadedGraph, options: RunOptions = {}): Promise<RunResult> {
  const { container, nodes, edges } = graph;
  const metrics = container.get<GraphMetrics>(Metrics);
  const stop = options.stop ?? new StopController();
  const unlisten = options.signals === null ? () => {} : stop.listen(options.signals ?? process);
  const display = new MetricsDisplay(metrics, options.display ?? { mode: 'quiet' }).start();
  const pool = new DevicePool({ config: graph.config, seed: graph.spec.seed, redis: options.redis });
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    await writeFile(path.join(options.outDir, 'resolved.yaml'), graph.resolvedYaml);
    await writeFile(path.join(options.outDir, 'overrides.yaml'), graph.overrides.map((o) => `- ${JSON.stringify(o)}`).join('\n') + '\n');
  }

  const errors: StageError[] = [];
  const errorChannel = new Subject<StageError>();
  // Per node: items taken and not yet emitted or failed (see `reserves` below).
  const reservations = new Map<string, { held: number; listeners: Set<() => void> }>();
  errorChannel.subscribe((e) => {
    errors.push(e);
    if (nodes.has(e.stage)) metrics.stage(e.stage).errors++;
    const r = reservations.get(e.stage);
    if (r && r.held > 0) {
      r.held--; // the failed item's slot is free again
      for (const l of [...r.listeners]) l();
    }
  });
  const steps: StepResult[] = [];
  const evals: EvalResult[] = [];
  const position: StreamPosition = { step: 0, task: 0, clipsSeen: 0, reason: 'end' };

  const queues = edges.map((e) => {
    const q = new BoundedQueue<GraphItem>(e.queueSize, `${e.from}→${e.to}`);
    metrics.watchQueue(q.name, q);
    return { edge: e, q };
  });
  const inputsOf = (id: string) => queues.filter((x) => x.edge.to === id).map((x) => x.q);
  const outputsOf = (id: string) => queues.filter((x) => x.edge.from === id).map((x) => x.q);

  // Weight sync for model-reading nodes on another device (syncEvery ≥ 1).
  const syncs: WeightSync[] = [];
  for (const node of nodes.values()) {
    const readsModel = node.stage.roles.includes(ModelService);
    if (readsModel && node.device !== 'cpu' && node.syncEvery > 0) {
      syncs.push(new WeightSync(getRole<ModelService>(container, ModelService, node.id), node.syncEvery, (w) => pool.pushWeights(node.device, w)));
    }
  }

  const subscriptions: Subscription[] = [];
  let settled = false;
  return new Promise<RunResult>((resolve, reject) => {
    let running = nodes.size;
    const teardown = async () => {
      for (const s of subscriptions) s.unsubscribe();
      for (const { q } of queues) for (const item of q.clear()) disposeItem(item);
      unlisten();
      display.stop();
      await pool.close();
    };
    const fail = (error: unknown, node: string) => {
      if (settled) return;
      settled = true;
      void teardown().then(() => reject(error instanceof Error ? Object.assign(error, { node }) : new Error(`node '${node}': ${messageOf(error)}`)));
    };
    const finish = async () => {
      if (settled) return;
      settled = true;
      try {
        let checkpoint: string | undefined;
        let message: string | undefined;
        if (stop.requested) {
          position.reason = 'stop';
          const checkpointer = container.isBound(Checkpointer) ? container.get<Checkpointer>(Checkpointer) : undefined;
          checkpoint = await checkpointer?.save({ ...position });
          const resumeCommand = checkpoint ? checkpointer?.resumeCommand?.(checkpoint) : undefined;
          message = stopMessage({ reason: stop.reason, step: position.step, checkpoint, resumeCommand });
        }
        await teardown();
        resolve({ metrics: metrics.snapshot(), steps, evals, errors, stopped: stop.requested, position, checkpoint, message });
      } catch (error) {
        reject(error);
      }
    };

    for (const node of nodes.values()) {
      const id = node.id;
      const outs = outputsOf(id);
      const counters = metrics.stage(id);
      const taken: number[] = [];
      // A 1:1 node holds a slot in each output queue for every item it has taken and not yet
      // emitted or failed, so a queue never holds more than its capacity (a window of concurrent
      // items finishing together would otherwise land on top of a queue that had room for one).
      const reserves = node.stage.oneToOne === true || (node.device !== 'cpu' && !node.stage.placesItself);
      const reservation = { held: 0, listeners: new Set<() => void>() };
      reservations.set(id, reservation);
      const gate = {
        open: () => outs.every((q) => q.depth + (reserves ? reservation.held : 0) < q.capacity),
        onChange: (listener: () => void) => {
          reservation.listeners.add(listener);
          const offs = [...outs.map((q) => q.onChange(listener)), stop.onRequest(listener), () => reservation.listeners.delete(listener)];
          return () => { for (const off of offs) off(); };
        },
      };
      const ins = inputsOf(id);
      const input$ = ins.length
        ? fromQueues(ins, gate, () => stop.requested, () => { counters.received++; reservation.held++; taken.push(performance.now()); })
        : pullable<GraphItem>([]);
      let output$;
      try {
        const deps = {
          node: id,
          get: <T>(token: Parameters<typeof getRole<T>>[1]) => getRole<T>(container, token, id),
          errors: errorChannel,
          metrics,
          stopRequested: () => stop.requested,
          container,
          placement: { device: node.device, syncEvery: node.syncEvery, pool },
        };
        const operator = node.device === 'cpu' || node.stage.placesItself
          ? node.stage.create(deps, node.options as never)
          // On Redis the window is the node's queueSize: that many items at most sit in its stream.
          : pool.operator(id, node.stage, node.options, node.device, node.device === 'redis' ? node.queueSize : Number(node.options.concurrency ?? 2), errorChannel);
        output$ = operator(input$);
      } catch (error) {
        fail(error, id);
        return;
      }
      const root = ins.length === 0 && isPullable(output$) ? output$ : undefined;
      let outstanding = 0;
      const pullRoot = () => {
        if (!root || settled || stop.requested || outstanding > 0 || !gate.open()) return;
        outstanding = 1;
        root.request(1);
      };
      const deliver = (item: GraphItem) => {
        counters.emitted++;
        if (reservation.held > 0) reservation.held--;
        const start = taken.shift();
        if (start !== undefined) counters.observeLatency(performance.now() - start);
        if (isStepResult(item)) {
          position.step = item.step;
          position.task = item.task;
          position.clipsSeen += item.batchSize;
          for (const s of syncs) s.afterStep(item.step).catch((e) => fail(e, id));
        }
        if (outs.length === 0) {
          if (isStepResult(item)) steps.push(item);
          else if (isEvalResult(item)) evals.push(item);
          disposeItem(item);
          return;
        }
        outs.forEach((q, i) => q.push(i === 0 ? item : cloneItem(item)));
      };
      let done = false;
      const nodeDone = () => {
        if (done) return;
        done = true;
        for (const q of outs) if (!q.closed) q.close();
        if (--running === 0) void finish();
      };
      const subscription = output$.subscribe({
        next: (item) => {
          deliver(item);
          if (root) { outstanding = 0; pullRoot(); }
        },
        error: (error) => fail(error, id),
        complete: () => nodeDone(),
      });
      subscriptions.push(subscription);
      if (root) {
        const offGate = gate.onChange(() => {
          if (stop.requested) {
            // A stopped source ends here; downstream drains what it already holds.
            subscription.unsubscribe();
            offGate();
            nodeDone();
            return;
          }
          pullRoot();
        });
        subscriptions.push({ unsubscribe: offGate } as Subscription);
        root.request(0); // marks the source as pulled, so it never falls back to push mode
        pullRoot();
      }
    }
  });
}
