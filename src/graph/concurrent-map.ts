/**
 * `mapConcurrent`: the engine of every async 1:1 stage (decode, tokenize in a worker, train).
 *
 * Runs `project` on up to `concurrency` items at once and emits results in input order. It is
 * pull-aware: it requests `concurrency` items when subscribed and one more each time the oldest
 * slot is emitted, so with a `PullObservable` upstream nothing is buffered beyond its window.
 * Items for which `passThrough(item)` is true (markers such as `task-end`) take a slot and come
 * out in order, untouched. A rejected `project` becomes a `StageError` on `errors` and the slot
 * is dropped; a `FatalStageError` errors the stream. Unsubscribing aborts every in-flight
 * item's `AbortSignal` (decode kills its ffmpeg child on it) and disposes finished results
 * that were never emitted.
 *
 * Ref: STYLE.md §1 (state in the closure, user code never throws through the stream).
 */
import { Observable, type Observer, type OperatorFunction } from 'rxjs';
import { requestFrom } from './bounded-queue.ts';
import { FatalStageError, messageOf, STDERR_ERRORS } from './errors.ts';
import { disposeItem, type StageError } from './items.ts';

export interface MapConcurrentOptions<In> {
  /** Stage name reported in StageErrors. */
  stage: string;
  /** Items processed at once (≥ 1). */
  concurrency: number;
  /** Items forwarded unchanged, in order. */
  passThrough?: (item: In) => boolean;
  /** Where per-item errors go (default: stderr). */
  errors?: Pick<Observer<StageError>, 'next'>;
  /** The path reported for a failed item. */
  pathOf?: (item: In) => string;
}

type Slot<Out> = { state: 'pending' | 'done' | 'failed'; value?: Out; abort?: AbortController };

export function mapConcurrent<In, Out>(
  project: (item: In, signal: AbortSignal) => Promise<Out> | Out,
  options: MapConcurrentOptions<In>,
): OperatorFunction<In, Out | In> {
  const { stage, concurrency } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`stage '${stage}': concurrency must be an integer ≥ 1, got ${concurrency}`);
  }
  const errors = options.errors ?? STDERR_ERRORS;
  const pathOf = options.pathOf ?? ((item: In) => String((item as { path?: string })?.path ?? ''));
  return (source) =>
    new Observable<Out | In>((subscriber) => {
      const slots: Slot<Out | In>[] = [];
      let upstreamDone = false;

      let flushing = false;
      const flush = () => {
        if (flushing) return;
        flushing = true;
        let freed = 0;
        while (slots.length && slots[0].state !== 'pending' && !subscriber.closed) {
          const slot = slots.shift()!;
          freed++;
          if (slot.state === 'done') subscriber.next(slot.value as Out | In);
          start();
        }
        flushing = false;
        if (upstreamDone && slots.length === 0 && inbox.length === 0) subscriber.complete();
        else if (freed) requestFrom(source, freed);
      };

      // Items received but not started: at most `concurrency` with a pull source; a plain push
      // source (e.g. `from(array)`) may fill it, like mergeMap's own buffer.
      const inbox: In[] = [];
      const start = () => {
        while (inbox.length && slots.length < concurrency && !subscriber.closed) {
          const item = inbox.shift()!;
          if (options.passThrough?.(item)) {
            slots.push({ state: 'done', value: item });
            continue;
          }
          const slot: Slot<Out | In> = { state: 'pending', abort: new AbortController() };
          slots.push(slot);
          let result: Promise<Out> | Out;
          try {
            result = project(item, slot.abort!.signal);
          } catch (error) {
            result = Promise.reject(error);
          }
          Promise.resolve(result).then(
            (value) => {
              if (subscriber.closed) { disposeItem(value); return; }
              slot.state = 'done';
              slot.value = value;
              flush();
            },
            (error) => {
              if (subscriber.closed) return;
              if (error instanceof FatalStageError) { subscriber.error(error); return; }
              slot.state = 'failed';
              errors.next({ path: pathOf(item), stage, message: messageOf(error) });
              flush();
            },
          );
        }
      };

      const subscription = source.subscribe({
        next(item) {
          inbox.push(item);
          start();
          flush();
        },
        error(error) { subscriber.error(error); },
        complete() {
          upstreamDone = true;
          if (slots.length === 0 && inbox.length === 0) subscriber.complete();
        },
      });
      requestFrom(source, concurrency);
      return () => {
        subscription.unsubscribe();
        for (const slot of slots) {
          slot.abort?.abort(new Error(`stage '${stage}' unsubscribed`));
          if (slot.state === 'done') disposeItem(slot.value);
        }
        slots.length = 0;
        for (const item of inbox.splice(0)) disposeItem(item);
      };
    });
}
