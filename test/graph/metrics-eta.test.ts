/** The run's ETA in the live display: the estimate, its formatting, and the plain and TTY renderings. */
import test from 'ava';
import { etaSeconds, formatDuration, GraphMetrics, MetricsDisplay } from '../../src/graph/metrics.ts';

test('ETA is the remaining count at the mean rate since the display started', (t) => {
  t.is(etaSeconds(10_000, 4, 6), 15); // 2.5 s per step, 6 left
  t.is(etaSeconds(10_000, 0, 6), undefined); // nothing done yet: unknown
  t.is(etaSeconds(10_000, 4, 0), 0);
});

test('durations read m:ss below an hour, h:mm:ss above, --:-- when unknown', (t) => {
  t.is(formatDuration(0), '0:00');
  t.is(formatDuration(65.4), '1:05');
  t.is(formatDuration(3723), '1:02:03');
  t.is(formatDuration(undefined), '--:--');
  t.is(formatDuration(Infinity), '--:--');
});

test('plain display: the progress count and its ETA end each line; a resumed start does not count as done', async (t) => {
  let done = 3; // restored from a checkpoint
  const lines: string[] = [];
  const display = new MetricsDisplay(new GraphMetrics(), {
    stream: { write: (x: string) => lines.push(x), isTTY: false }, intervalMs: 5,
    progress: { label: 'train steps', total: 12, done: () => done },
  }).start();
  await new Promise((r) => setTimeout(r, 12));
  const before = display.progressPayload() as { etaText: string; done: number };
  t.is(before.etaText, '--:--'); // no step since the start yet, whatever was restored
  done = 5;
  await new Promise((r) => setTimeout(r, 30));
  display.stop();
  const last = lines[lines.length - 1];
  t.regex(last, / \|\| train steps 5\/12 ETA \d+:\d\d\n$/);
  const after = display.progressPayload() as { etaText: string };
  t.regex(after.etaText, /^0:0\d$/); // ~40 ms for 2 steps, 7 left: well under 10 s
});

test('TTY display: a steps bar with the ETA above the stage bars; lines logged meanwhile go above the bars', async (t) => {
  let text = '';
  let write: ((line: string) => void) | undefined;
  const stream = Object.assign(Object.create(process.stderr), {
    isTTY: true, columns: 120, rows: 40,
    write: (x: string) => { text += x; return true; },
    cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true,
  });
  const metrics = new GraphMetrics();
  metrics.stage('train').received = 2;
  let done = 0;
  const display = new MetricsDisplay(metrics, {
    mode: 'tty', stream, intervalMs: 5,
    progress: { label: 'train steps', total: 4, done: () => done },
    attachLog: (w) => { write = w; },
  }).start();
  t.is(typeof write, 'function');
  done = 2;
  write!('after task 1/2: a table row');
  await new Promise((r) => setTimeout(r, 150));
  display.stop();
  t.is(write, undefined); // detached at stop
  t.regex(text, /train steps +\[[^\]]+\] 2\/4 \| \d+:\d\d elapsed \| ETA \d+:\d\d/);
  t.regex(text, /after task 1\/2: a table row\n/);
  t.regex(text, /train +\| 0 out \/ 2 in/);
});
