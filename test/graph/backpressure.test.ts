import test from 'ava';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { map } from 'rxjs';
import { pullable } from '../../src/graph/bounded-queue.ts';
import { mapConcurrent } from '../../src/graph/concurrent-map.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import testStages, { probe, resetProbe } from './fixtures/test-stages.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const N = 10_000;
const PAYLOAD = 4096; // floats per item: 16 KiB, so 10,000 buffered items would hold 160 MiB

test.serial('plain RxJS: a 10,000-item synchronous pull source through a slow stage keeps ≤ concurrency in flight', async (t) => {
  let produced = 0;
  let done = 0;
  let maxInFlight = 0;
  const concurrency = 3;
  function* items() {
    for (let i = 0; i < N; i++) {
      produced++;
      maxInFlight = Math.max(maxInFlight, produced - done);
      yield i;
    }
  }
  const out: number[] = [];
  await new Promise<void>((resolve, reject) =>
    pullable(items())
      .pipe(mapConcurrent(async (i: number) => { await new Promise(setImmediate); return i * 2; }, { stage: 'slow', concurrency }), map((x) => { done++; return x; }))
      .subscribe({ next: (x) => out.push(x), error: reject, complete: resolve }),
  );
  t.is(out.length, N);
  t.is(out[N - 1], 2 * (N - 1), 'order kept');
  t.true(maxInFlight <= concurrency, `max in flight ${maxInFlight} > ${concurrency}`);
});

test.serial('graph: 10,000 items from a fast source through a slow stage; in flight ≤ queue size + concurrency, memory flat', async (t) => {
  resetProbe();
  const queueSize = 3;
  const concurrency = 2;
  const graph = await loadGraphText(
    `name: bp
nodes:
  source: { stage: count-source, options: { count: ${N}, payload: ${PAYLOAD} } }
  slow: { stage: slow, queueSize: ${queueSize}, options: { concurrency: ${concurrency} } }
edges:
  - { from: source, to: slow }
`,
    'bp.yaml',
    { container: { modules: [testStages], autoloadPlugins: false } },
  );
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = 0;
  let samples = 0;
  // Memory after a forced gc, every 500 clips the source produces (by count, not by time, so a fast
  // or a loaded machine samples the same points); buffering every item would need 160 MiB by the
  // end (80 MiB at the middle sample), the bounded pipeline stays far below.
  probe.onProduced = (produced) => {
    if (produced % 500 !== 0) return;
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
    samples++;
  };
  const result = await runGraph(graph, { signals: null });
  t.is(samples, N / 500);
  t.is(probe.produced, N);
  t.is(probe.consumed, N);
  t.true(probe.maxInFlight <= queueSize + concurrency, `max in flight ${probe.maxInFlight}`);
  t.true(probe.maxHeld <= concurrency);
  t.true(result.metrics.queues['source→slow'].maxDepth <= queueSize);
  t.log(`array buffer growth peak ${(peak / 2 ** 20).toFixed(1)} MiB`);
  t.true(peak < 64 * 1024 * 1024, `array buffers grew by ${(peak / 2 ** 20).toFixed(1)} MiB`);
});

test.serial('fan-out: the slow branch throttles the source instead of the fast branch buffering', async (t) => {
  resetProbe();
  const graph = await loadGraphText(
    `name: fan
nodes:
  source: { stage: count-source, options: { count: 300 } }
  fast: { stage: slow, queueSize: 2, options: { concurrency: 4, last: false } }
  slow: { stage: slow, queueSize: 2, options: { concurrency: 1, delayMs: 1 } }
edges:
  - { from: source, to: fast }
  - { from: source, to: slow }
`,
    'fan.yaml',
    { container: { modules: [testStages], autoloadPlugins: false } },
  );
  const result = await runGraph(graph, { signals: null });
  t.is(probe.consumed, 300);
  // The slow branch counts consumption: the source may run ahead of it by its queue + window only.
  t.true(probe.maxInFlight <= 2 + 1 + 1, `source ran ${probe.maxInFlight} ahead of the slow branch`);
  t.true(result.metrics.queues['source→fast'].maxDepth <= 2);
  t.true(result.metrics.queues['source→slow'].maxDepth <= 2);
  t.is(result.metrics.stages.fast.emitted, 301, 'the fast branch saw every clip and the task end');
});

const queueGraph = (producer: string, failEvery = 0) => `name: gauge
nodes:
  source: { stage: count-source, options: { count: 400 } }
  work: { stage: ${producer}, queueSize: 2, options: { concurrency: 4, last: false, failEvery: ${failEvery} } }
  sink: { stage: slow, queueSize: 3, options: { concurrency: 1, delayMs: 1 } }
edges:
  - { from: source, to: work }
  - { from: work, to: sink }
`;

test.serial('queue gauge: a 1:1 node with 4 items in flight never fills its output queue past its size', async (t) => {
  // The live display showed `decode→tokenize 5/4`: the queue really held 5 items, because the gate
  // only asked for one free slot before handing out each of decode's concurrent items.
  const depths = async (producer: string, failEvery = 0) => {
    resetProbe();
    const graph = await loadGraphText(queueGraph(producer, failEvery), 'gauge.yaml', { container: { modules: [testStages], autoloadPlugins: false } });
    const result = await runGraph(graph, { signals: null });
    return result;
  };
  const declared = await depths('slow');
  t.is(declared.metrics.queues['work→sink'].capacity, 3);
  t.true(declared.metrics.queues['work→sink'].maxDepth <= 3, `max depth ${declared.metrics.queues['work→sink'].maxDepth} > 3`);
  t.is(declared.metrics.queues['work→sink'].maxDepth, 3, 'the queue still fills up to its size');
  t.is(declared.metrics.stages.sink.received, 401, 'every clip and the task end arrived');
  // Failed items free their slot: no deadlock, and the bound holds.
  const failing = await depths('slow', 5);
  t.is(failing.errors.length, 80);
  t.is(failing.metrics.stages.sink.received, 321);
  t.true(failing.metrics.queues['work→sink'].maxDepth <= 3);
  // Without the 1:1 declaration the runner cannot reserve, and the documented looser bound applies.
  const undeclared = await depths('slow-undeclared');
  const depth = undeclared.metrics.queues['work→sink'].maxDepth;
  t.true(depth > 3 && depth <= 3 + 4, `undeclared max depth ${depth}`);
});
