/**
 * `npm test` (scripts/test.mjs): ava runs with TMPDIR in a fresh stella-tests-* folder, which is gone
 * when the run ends, after a normal exit and after Ctrl-C alike. A preload (NODE_OPTIONS) in ava's own
 * process reports the TMPDIR it was given and leaves a file there, as a killed test would.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function runTestScript(parent: string, hang: boolean): Promise<{ code: number | null; seen: string }> {
  const report = path.join(parent, hang ? 'seen-hang.txt' : 'seen.txt');
  const preload = path.join(parent, 'preload.cjs');
  writeFileSync(preload, [
    "const fs = require('fs'), path = require('path');",
    "if ((process.argv[1] || '').endsWith('cli.mjs')) {",
    "  fs.writeFileSync(path.join(process.env.TMPDIR, 'left-behind'), 'x');",
    `  fs.writeFileSync(${JSON.stringify(report)}, process.env.TMPDIR);`,
    // Blocks ava before it starts, until the signal ends the process.
    "  if (process.env.PROBE_HANG) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);",
    '}',
  ].join('\n'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'test.mjs'), '--version'], {
      cwd: ROOT,
      stdio: 'ignore',
      env: { ...process.env, TMPDIR: parent, NODE_OPTIONS: `--require ${preload}`, ...(hang ? { PROBE_HANG: '1' } : {}) },
    });
    let poll: NodeJS.Timeout | undefined;
    if (hang) poll = setInterval(() => { if (existsSync(report)) { clearInterval(poll); child.kill('SIGINT'); } }, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ code, seen: existsSync(report) ? readFileSync(report, 'utf8') : '' });
    });
  });
}

test('npm test gives ava a fresh stella-tests-* TMPDIR and removes it at exit, after Ctrl-C too', async (t) => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'test-script-'));
  try {
    const done = await runTestScript(parent, false);
    t.is(done.code, 0);
    t.is(path.dirname(done.seen), parent, 'TMPDIR is a folder inside the caller\'s');
    t.regex(path.basename(done.seen), /^stella-tests-/);
    t.false(existsSync(done.seen), `${done.seen} was removed`);

    const interrupted = await runTestScript(parent, true);
    t.is(interrupted.code, 1, 'an interrupted run exits with a failure');
    t.regex(path.basename(interrupted.seen), /^stella-tests-/);
    t.not(interrupted.seen, done.seen, 'each run gets its own folder');
    t.false(existsSync(interrupted.seen), `${interrupted.seen} was removed after Ctrl-C`);
    t.deepEqual(readdirSync(parent).filter((f) => f.startsWith('stella-tests-')), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
