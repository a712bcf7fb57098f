/** The run's ETA in the live display: the estimate, its formatting, and the plain and TTY renderings (on a manual clock). */
import test from 'ava';
import { etaSeconds, formatDuration, GraphMetrics, MetricsDisplay } from '../../src/graph/metrics.ts';
import { ManualClock } from './manual-clock.ts';

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

test('plain display: the progress count and its ETA end each line; a resumed start does not count as done', (t) => {
  const clock = new ManualClock();
  let done = 3; // restored from a checkpoint
  const lines: string[] = [];
  const display = new MetricsDisplay(new GraphMetrics(), {
    stream: { write: (x: string) => lines.push(x), isTTY: false }, intervalMs: 5_000, clock,
    progress: { label: 'train steps', total: 12, done: () => done },
  }).start();
  clock.advance(5_000);
  t.is(lines.length, 1, 'one line per interval');
  t.regex(lines[0], / \|\| train steps 3\/12 ETA --:--\n$/); // no step since the start yet, whatever was restored
  t.is((display.progressPayload() as { etaText: string }).etaText, '--:--');
  done = 5;
  clock.advance(35_000);
  t.is(lines.length, 8);
  // 2 steps in 40 s since the start (the 3 restored ones do not count): 20 s a step, 7 left.
  t.regex(lines[7], / \|\| train steps 5\/12 ETA 2:20\n$/);
  display.stop();
  t.is(lines.length, 9, 'stop prints a final line');
  t.regex(lines[8], / \|\| train steps 5\/12 ETA 2:20\n$/);
  t.deepEqual(display.progressPayload(), { label: 'train steps'.padEnd(14), done: 5, total: 12, elapsedText: '0:40', etaText: '2:20' });
  t.is(clock.pending, 0, 'the redraw ticker is cancelled at stop');
});

test('TTY display: a steps bar with the ETA above the stage bars; lines logged meanwhile go above the bars', (t) => {
  const clock = new ManualClock();
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
    mode: 'tty', stream, intervalMs: 30_000, clock,
    progress: { label: 'train steps', total: 4, done: () => done },
    attachLog: (w) => { write = w; },
  }).start();
  t.is(typeof write, 'function');
  done = 2;
  clock.advance(60_000);
  // Logged right before the end: stop must still show it (cli-progress alone would drop it).
  write!('after task 1/2: a table row');
  display.stop();
  t.is(write, undefined); // detached at stop
  // 2 steps in 60 s, 2 left.
  t.regex(text, /train steps +\[[^\]]+\] 2\/4 \| 1:00 elapsed \| ETA 1:00/);
  t.regex(text, /after task 1\/2: a table row\n/);
  t.true(text.indexOf('after task 1/2') < text.lastIndexOf('train steps'), 'the logged line is written above the last bars');
  t.regex(text, /train +\| 0 out \/ 2 in/);
});
