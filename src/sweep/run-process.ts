/**
 * One sweep run as a child process (src/sweep/run-child.ts): fresh, or resumed from the newest
 * checkpoint in its folder. Output goes to `<dir>/run.log` (appended, so every attempt stays
 * readable); a failure's error carries the log's last lines.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunChildInput, RunChildMessage } from './run-child.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run-child.ts');
/** Runs the child with this package's tsconfig whatever the working directory (bin/run-ts.js). */
const RUN_TS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run-ts.js');

export interface RunProcess {
  /** `host:pid` of the child, for sweep.json's `worker`. */
  readonly id: string;
  /** Resolves when the child exits 0; `stopped` when it checkpointed and stopped early. */
  readonly finished: Promise<{ stopped: boolean }>;
  /** Graceful stop: the current step finishes, a checkpoint is written, the child exits. */
  stop(): void;
  /** Ends the child at once (its job was taken elsewhere). */
  kill(): void;
}

export interface StartRunOptions extends RunChildInput {
  /** Each committed checkpoint's directory, in order (awaited one after another). */
  onCheckpoint?: (dir: string) => Promise<void> | void;
}

export async function startRun(o: StartRunOptions): Promise<RunProcess> {
  await mkdir(o.out, { recursive: true });
  const logFile = path.join(o.out, 'run.log');
  const logFd = openSync(logFile, 'a');
  const logStart = fstatSync(logFd).size; // this attempt's output starts here
  const input: RunChildInput = { graph: o.graph, sets: o.sets, out: o.out, resume: o.resume };
  const child = spawn(process.execPath, [RUN_TS, CHILD, JSON.stringify(input)], { stdio: ['ignore', logFd, logFd, 'ipc'] });
  closeSync(logFd);
  let stopped = false;
  let checkpoints: Promise<void> = Promise.resolve();
  child.on('message', (m: RunChildMessage) => {
    if (m.type === 'checkpoint' && o.onCheckpoint) checkpoints = checkpoints.then(() => o.onCheckpoint!(m.path));
    if (m.type === 'finished') stopped = m.stopped;
  });
  const finished = new Promise<{ stopped: boolean }>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      checkpoints.then(async () => {
        if (code === 0) return resolve({ stopped });
        const lines = (await readFile(logFile).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8').split('\n').filter(Boolean);
        // The child's own error line when it wrote one, else the log's last lines.
        const reason = lines.filter((l) => l.startsWith('stella run: ')).pop()?.slice('stella run: '.length) ?? lines.slice(-3).join(' | ');
        reject(new Error(`stella run exited with ${code ?? signal}${reason ? `: ${reason}` : ''} (log: ${logFile})`));
      }, reject);
    });
  });
  return { id: `${os.hostname()}:${child.pid}`, finished, stop: () => { child.kill('SIGTERM'); }, kill: () => { child.kill('SIGKILL'); } };
}
