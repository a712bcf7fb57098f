import test from 'ava';
import { BoundedQueue } from '../../src/graph/bounded-queue.ts';
import { GraphMetrics, MetricsDisplay } from '../../src/graph/metrics.ts';
import { ManualClock } from './manual-clock.ts';

test('snapshot holds per-stage counts, latency, errors, queue depths and gauges as plain JSON', (t) => {
  const metrics = new GraphMetrics();
  const decode = metrics.stage('decode');
  decode.received = 3; decode.emitted = 2; decode.errors = 1;
  decode.observeLatency(10); decode.observeLatency(30);
  const q = new BoundedQueue<number>(4, 'decode→tokenize');
  q.push(1); q.push(2); q.shift();
  metrics.watchQueue(q.name, q);
  metrics.gauge('train.loss.total', 0.25);
  const s = JSON.parse(JSON.stringify(metrics.snapshot()));
  t.deepEqual(s.stages.decode, { received: 3, emitted: 2, errors: 1, latencyMs: { count: 2, mean: 20, max: 30 } });
  t.deepEqual(s.queues['decode→tokenize'], { capacity: 4, depth: 1, maxDepth: 2, pushed: 2 });
  t.is(s.gauges['train.loss.total'], 0.25);
  t.regex(metrics.summaryLine(), /decode 2\/3 \(err 1\) \|\| q decode→tokenize 1\/4/);
});

test('display: plain lines off a TTY, one per interval and one at stop; nothing when quiet', (t) => {
  const metrics = new GraphMetrics();
  metrics.stage('train').received = 1;
  const clock = new ManualClock();
  const plain: string[] = [];
  const display = new MetricsDisplay(metrics, { stream: { write: (x: string) => plain.push(x), isTTY: false }, intervalMs: 5, clock }).start();
  t.is(display.mode, 'plain');
  clock.advance(4);
  t.deepEqual(plain, [], 'nothing before the first interval');
  clock.advance(6);
  t.is(plain.length, 2);
  metrics.stage('train').emitted = 1;
  display.stop();
  t.is(plain.length, 3);
  t.regex(plain[0], /train 0\/1\n$/);
  t.regex(plain[2], /train 1\/1\n$/);
  clock.advance(50);
  t.is(plain.length, 3, 'no line after stop');
  const quiet: string[] = [];
  const q = new MetricsDisplay(metrics, { mode: 'quiet', stream: { write: (x: string) => quiet.push(x) }, intervalMs: 5, clock }).start();
  clock.advance(20);
  q.stop();
  t.deepEqual(quiet, []);
});

test('a queue refuses a capacity below 1 with its name', (t) => {
  t.throws(() => new BoundedQueue(0, 'a→b'), { message: "queue 'a→b': capacity must be an integer ≥ 1, got 0" });
});
