/**
 * Backpressure: stages pull, every edge has a bounded queue, nothing buffers without bound.
 *
 * RxJS pushes. To make it pull, sources here are `PullObservable`s: they emit only as much as
 * has been requested with `requestFrom(source, n)`. A pull-aware operator (every built-in stage)
 * requests synchronously when it subscribes, up to its window (decode: its concurrency; batch:
 * one at a time), and one more each time it frees a slot. A consumer that never requests gets
 * plain RxJS push semantics (the source emits everything), so a `PullObservable` also works
 * with ordinary operators.
 *
 * In a graph, each edge is a `BoundedQueue`. The runner feeds a node from its input queue(s)
 * through `fromQueues`, which hands out an item only when (a) the node requested one and
 * (b) every output queue of the node has room (`gate`). So a slow consumer throttles its
 * producer, all the way up to the source; with fan-out the slowest branch sets the pace.
 *
 * INVARIANT: items taken by a node and not yet emitted ≤ its window. A queue's depth ≤ its
 * capacity when its producer is 1:1 (`oneToOne` stages and worker-placed nodes: the gate counts
 * the items the node holds as taken slots); otherwise ≤ capacity + the producer's window (items
 * the node took before its output queue filled; a batching node cannot tell how many outputs it
 * holds).
 *
 * Ref: DESIGN.md "Backpressure"; STYLE.md §1 (state in the closure, explicit teardown).
 */
import { Observable, type Subscriber } from 'rxjs';

const PULL = Symbol.for('stella.graph.pull');

/** An Observable that emits on demand. Single active subscriber at a time. */
export interface PullObservable<T> extends Observable<T> {
  readonly [PULL]: true;
  /** Asks for `n` more items (no-op when nothing is subscribed). */
  request(n: number): void;
  /** Whether the current subscriber has requested anything (false → push mode). */
  readonly pulled: boolean;
}

export function isPullable<T>(source: Observable<T>): source is PullObservable<T> {
  return (source as Partial<PullObservable<T>>)[PULL] === true;
}

/** Pull-aware operators call this with their upstream; a no-op for ordinary Observables. */
export function requestFrom(source: Observable<unknown>, n: number): void {
  if (n > 0 && isPullable(source)) source.request(n);
}

interface Producer<T> {
  /** Next item, `DONE`, or a Promise of either; `WAIT` when nothing is ready yet (call `wake` later). */
  next(): T | typeof DONE | typeof WAIT | Promise<T | typeof DONE>;
  close?(): void;
}
export const DONE: unique symbol = Symbol('done');
export const WAIT: unique symbol = Symbol('wait');

/**
 * Core: demand counting + a drain loop that is safe against re-entrant `request` calls made
 * from inside `subscriber.next`.
 */
function makePullObservable<T>(openProducer: (wake: () => void) => Producer<T>): PullObservable<T> {
  let active: { request(n: number): void; pulled: boolean } | undefined;
  const observable = new Observable<T>((subscriber: Subscriber<T>) => {
    let demand = 0;
    let draining = false;
    let awaiting = false;
    let pushMode = false;
    let finished = false;
    const state = { pulled: false, request };
    const producer = openProducer(() => drain());
    active = state;

    function request(n: number) {
      state.pulled = true;
      demand += n;
      drain();
    }
    function drain() {
      if (draining || awaiting || finished) return;
      draining = true;
      try {
        while (!finished && !subscriber.closed && (pushMode || demand > 0)) {
          const next = producer.next();
          if (next === WAIT) break;
          if (next === DONE) { finished = true; subscriber.complete(); break; }
          if (next instanceof Promise) {
            awaiting = true;
            next.then(
              (value) => {
                awaiting = false;
                if (subscriber.closed) return;
                if (value === DONE) { finished = true; subscriber.complete(); return; }
                if (!pushMode) demand--;
                subscriber.next(value as T);
                drain();
              },
              (error) => { awaiting = false; finished = true; subscriber.error(error); },
            );
            break;
          }
          if (!pushMode) demand--;
          subscriber.next(next as T);
        }
      } catch (error) {
        finished = true;
        subscriber.error(error);
      } finally {
        draining = false;
      }
    }
    // A consumer that did not request during its own subscribe gets push semantics.
    queueMicrotask(() => {
      if (!state.pulled && !subscriber.closed) { pushMode = true; drain(); }
    });
    return () => {
      finished = true;
      if (active === state) active = undefined;
      producer.close?.();
    };
  });
  return Object.assign(observable, {
    [PULL]: true as const,
    request(n: number) { active?.request(n); },
    get pulled() { return active?.pulled ?? false; },
  }) as PullObservable<T>;
}

/**
 * A pull source over a (sync or async) iterable. Items are produced only when requested, so a
 * 10,000-element array or an endless generator is read one item at a time.
 *
 * ## Example
 * ```ts
 * pullable(paths).pipe(decode({ concurrency: 2 }))   // decode asks for two paths at a time
 * ```
 */
export function pullable<T>(items: Iterable<T> | AsyncIterable<T>): PullObservable<T> {
  return makePullObservable<T>(() => {
    const iterator = Symbol.asyncIterator in Object(items)
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
    return {
      next() {
        const result = iterator.next();
        if (result instanceof Promise) return result.then((r) => (r.done ? DONE : r.value));
        return result.done ? DONE : result.value;
      },
      close() { void iterator.return?.(); },
    };
  });
}

/**
 * A bounded FIFO for one edge. Passive: the producer checks `hasRoom` before taking more input
 * (see `fromQueues`), so `push` never blocks and never drops.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private readonly listeners = new Set<() => void>();
  private closedFlag = false;
  /** Highest depth seen (for metrics and the backpressure test). */
  maxDepth = 0;
  pushed = 0;

  constructor(readonly capacity: number, readonly name = 'queue') {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`queue '${name}': capacity must be an integer ≥ 1, got ${capacity}`);
    }
  }
  get depth(): number { return this.items.length; }
  get hasRoom(): boolean { return this.items.length < this.capacity; }
  get closed(): boolean { return this.closedFlag; }
  get drained(): boolean { return this.closedFlag && this.items.length === 0; }

  push(item: T): void {
    if (this.closedFlag) throw new Error(`queue '${this.name}' is closed`);
    this.items.push(item);
    this.pushed++;
    if (this.items.length > this.maxDepth) this.maxDepth = this.items.length;
    this.notify();
  }
  shift(): T | undefined {
    const item = this.items.shift();
    if (item !== undefined) this.notify();
    return item;
  }
  close(): void { this.closedFlag = true; this.notify(); }
  /** Removes and returns everything left (for disposal at teardown). */
  clear(): T[] { const left = this.items.splice(0); this.notify(); return left; }
  /** Called on every push, shift and close. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  private notify() { for (const l of [...this.listeners]) l(); }
}

/**
 * The input of a graph node: items from its input queues (round robin), handed out on demand and
 * only while `gate()` says the node's outputs have room. Completes when every input queue is
 * closed and drained, or when `stopped()` turns true (graceful stop: queued items stay behind
 * for the runner to dispose).
 */
export function fromQueues<T>(
  queues: BoundedQueue<T>[],
  gate: { open(): boolean; onChange(listener: () => void): () => void },
  stopped: () => boolean = () => false,
  onTake?: (item: T) => void,
): PullObservable<T> {
  return makePullObservable<T>((wake) => {
    const unsubscribers = [...queues.map((q) => q.onChange(wake)), gate.onChange(wake)];
    let turn = 0;
    return {
      next() {
        if (stopped()) return DONE;
        if (queues.every((q) => q.drained)) return DONE;
        if (!gate.open()) return WAIT;
        for (let i = 0; i < queues.length; i++) {
          const q = queues[(turn + i) % queues.length];
          if (q.depth > 0) {
            turn = (turn + i + 1) % queues.length;
            const item = q.shift() as T;
            onTake?.(item);
            return item;
          }
        }
        return WAIT;
      },
      close() { for (const u of unsubscribers) u(); },
    };
  });
}
