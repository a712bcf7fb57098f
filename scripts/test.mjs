#!/usr/bin/env node
/**
 * `npm test`: ava, with every temporary file of the run under one folder that is removed when the
 * run ends. Tests make corpora, runs, checkpoints, Redis data and repository clones under
 * `os.tmpdir()`; many are killed on purpose (kill -9 tests) and cannot clean up after themselves,
 * and a run left about 30 GB behind over a few dozen suites. Here TMPDIR points at a fresh
 * `stella-tests-*` folder for ava and every process it starts, and the folder goes at exit
 * (also after a failure or Ctrl-C). Arguments go to ava unchanged (`npm test -- --tap`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

// ava's main entry and its command line sit side by side in entrypoints/ (its exports hide package.json).
const avaCli = path.join(path.dirname(createRequire(import.meta.url).resolve('ava')), 'cli.mjs');
const root = mkdtempSync(path.join(os.tmpdir(), 'stella-tests-'));
const child = spawn(process.execPath, [avaCli, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: root },
});
const forward = (signal) => child.kill(signal);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, forward);
child.on('exit', (code, signal) => {
  rmSync(root, { recursive: true, force: true });
  process.exitCode = code ?? (signal ? 1 : 0);
});
