/**
 * Every example of every `--help` and of the README runs as printed, in a fresh folder that holds
 * only the repository's files (symlinks), as a new user's clone would: commands that need a corpus
 * or a run use the ones earlier examples made (corpus first, then ingest, run, inspect, graphs).
 * docs/graph.md's examples are run by test/graph/docs-examples.test.ts.
 *
 * `stella …` runs in this process (the CLI's own program), `npm run …` as a child process; a
 * `VAR=value` prefix sets the environment for that one command. The few examples that are long by
 * nature (the full default run, the test suite, the quality benchmark, the full pre-training corpus)
 * and the ones whose input no clone has (the authors' .pth files for `convert`) are listed with the
 * reason; they are not run, and `stella run`'s run keys are still parsed.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommanderError, InvalidArgumentError, type Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { parseRunSets } from '../../src/cli/run-params.ts';
import { REPO_ROOT } from '../helpers.ts';

/** Examples not run here, with why. Matched against the command as printed (comment removed). */
const LONG: Record<string, string> = {
  'stella run': 'the full default job, a few minutes on 2 cores',
  'npm test': 'the test suite itself',
  'npm ci': 'installs the dependencies this test runs on',
};
/** Long by their shape: the quality benchmark (hours) and the full pre-training corpus (thousands of clips). */
const LONG_PATTERNS: [RegExp, string][] = [
  [/^npm run bench:quality\b/, 'the quality benchmark: full runs of every selector and seed'],
  [/^npm run bench:memory-base\b/, 'ViT-B steps in child processes: about 25 minutes, up to 11 GiB of memory each'],
  [/^stella corpus --kind pretrain\b/, 'the full pre-training corpus, thousands of clips'],
  // Not long, but its input is the authors' PyTorch file, which no clone has; test/cli/convert.test.ts
  // converts checkpoints it writes in each of these layouts.
  [/^stella convert \S+\.pth\b/, "needs the authors' .pth checkpoint (not in the repository)"],
  // A Redis server and long-lived `stella worker` processes: test/scale/ starts real ones on loopback.
  [/--redis\b/, 'needs a Redis server and stella worker processes (test/scale/sweep.test.ts runs them)'],
  [/^npm run bench:scale-ingest\b/, 'starts a Redis server and stella worker processes (test/scale/ingest.test.ts runs the same ingest)'],
  // It checks out an earlier commit with git worktree, and the folder here is a copy without .git.
  [/^npm run bench:step-against\b/, 'needs the git history (it checks out the earlier commit)'],
];
const longReason = (cmd: string) => LONG[cmd] ?? LONG_PATTERNS.find(([re]) => re.test(cmd))?.[1];
const isLong = (cmd: string) => longReason(cmd) !== undefined;

/** `$ stella …` lines of the --help of every command, in the order shown. */
async function helpExamples(): Promise<string[]> {
  const paths = (c: Command, prefix: string[] = []): string[][] => c.commands.flatMap((x) => [[...prefix, x.name()], ...paths(x, [...prefix, x.name()])]);
  const out: string[] = [];
  for (const p of [[], ...paths(buildProgram())]) {
    let text = '';
    try {
      await buildProgram({ writeOut: (s) => { text += s; }, writeErr: () => {} }).parseAsync(['node', 'stella', ...p, '--help']);
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
    }
    const block = /\nExamples:\n((?: {2}\$ .*\n?)+)/.exec(text)?.[1] ?? '';
    out.push(...block.split('\n').filter(Boolean).map((l) => l.replace(/^ {2}\$ /, '')));
  }
  return out;
}

/** Commands in the README's code blocks: `$ …` lines (with `\` continuations) and bare `npm …` lines. */
async function readmeExamples(): Promise<string[]> {
  const text = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const block of text.matchAll(/```(?:bash)?\n([\s\S]*?)```/g)) {
    const lines = block[1].split('\n');
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i];
      if (!/^(\$ |npm |npx )/.test(line)) continue;
      while (line.endsWith('\\')) line = `${line.slice(0, -1).trimEnd()} ${lines[++i].trim()}`;
      out.push(line.replace(/^\$ /, ''));
    }
  }
  return out;
}

/** `a && b # note` → ['a', 'b'], with `npx stella` read as `stella`. */
function commands(example: string): string[] {
  return example.replace(/\s+#.*$/, '').split('&&').map((c) => c.trim().replace(/^npx stella\b/, 'stella')).filter(Boolean);
}

/** Splits `A=1 B=2 stella x y` into the environment and the words (no quoting is used in examples). */
function parse(cmd: string): { env: Record<string, string>; words: string[] } {
  const words = cmd.split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0])) {
    const [k, ...v] = words.shift()!.split('=');
    env[k] = v.join('=');
  }
  return { env, words };
}

/** Examples run in this order: what they make is what later ones read. */
const PHASES = [/^stella corpus\b/, /^stella ingest\b/, /^stella run\b(?!.*--resume)/, /--resume\b/, /^stella inspect\b/, /stella graph\b/];
const phase = (cmd: string) => { const i = PHASES.findIndex((r) => r.test(cmd)); return i < 0 ? PHASES.length : i; };

async function runStella(words: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let output = '';
  const write = (stream: NodeJS.WriteStream) => {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => { output += String(chunk); return original(chunk as string, ...(rest as [])); }) as typeof stream.write;
    return () => { stream.write = original; };
  };
  const restore = [write(process.stdout), write(process.stderr)];
  process.exitCode = undefined;
  let code = 0;
  try {
    await buildProgram().parseAsync(['node', ...words]);
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    code = e instanceof CommanderError ? e.exitCode : e instanceof InvalidArgumentError ? 2 : 1;
    output += `\n${(e as Error).message}`;
  } finally {
    restore.forEach((r) => r());
    process.env = saved;
    process.exitCode = undefined;
  }
  return { code, output };
}

const sandbox = (async () => {
  // <tmp>/clone holds the repository's files; <tmp>/shared is the sibling the README's ../shared names.
  const root = await mkdtemp(path.join(tmpdir(), 'stella-examples-'));
  const clone = path.join(root, 'clone');
  await mkdir(clone);
  for (const entry of ['bench', 'bin', 'docs', 'graphs', 'node_modules', 'package.json', 'plugins', 'scripts', 'src', 'tsconfig.json', '.cache']) {
    await symlink(path.join(REPO_ROOT, entry), path.join(clone, entry));
  }
  await symlink(path.resolve(REPO_ROOT, '../shared'), path.join(root, 'shared'));
  return clone;
})();

const all = [...new Set([...(await helpExamples()), ...(await readmeExamples())].flatMap(commands))];
const ordered = all.map((cmd, i) => ({ cmd, i })).sort((a, b) => phase(a.cmd) - phase(b.cmd) || a.i - b.i).map((e) => e.cmd);

test('the examples cover every command and the README tour', (t) => {
  for (const expected of ['stella corpus', 'stella ingest', 'stella run', 'stella inspect', 'stella graph run', 'stella graph check', 'stella doctor', 'stella verify-golden', 'stella bench step', 'npm run bench:ingest']) {
    t.true(ordered.some((c) => parse(c).words.join(' ').startsWith(expected)), `no example of '${expected}'`);
  }
  t.true(ordered.some((c) => c.includes('graphs/score-only.yaml')), 'score-only is shown');
});

for (const cmd of ordered) {
  if (isLong(cmd)) {
    test.serial(`(long, arguments only) ${cmd}`, (t) => {
      const { words } = parse(cmd);
      if (words[0] === 'stella' && words[1] === 'run') t.notThrows(() => parseRunSets(words.flatMap((w, i) => (words[i - 1] === '--set' ? [w] : [])).filter(Boolean)));
      t.log(`not run: ${longReason(cmd)}`);
      t.pass();
    });
    continue;
  }
  test.serial(`runs as printed: ${cmd}`, async (t) => {
    t.timeout(600_000); // minutes only on a loaded machine; seconds to a minute each otherwise
    const clone = await sandbox;
    const cwd = process.cwd();
    process.chdir(clone);
    try {
      const { env, words } = parse(cmd);
      // STELLA_BACKEND picks the process's tensor backend once: such examples get a process of their own.
      if (words[0] === 'stella' && env.STELLA_BACKEND) words.splice(0, 1, process.execPath, path.join(REPO_ROOT, 'bin/stella.js'));
      if (words[0] === 'stella') {
        const { code, output } = await runStella(words, env);
        t.is(code, 0, `${cmd}\n${output.slice(-3000)}`);
        // Exit 0 with failed clips is not "works as printed" (e.g. an evaluate node on a missing manifest).
        t.notRegex(output, /clip\(s\) failed|"errors":\s*[1-9]|manifest not found/, `${cmd}\n${output.slice(-3000)}`);
      } else {
        const r = spawnSync(words[0], words.slice(1), { cwd: clone, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 590_000 });
        t.is(r.status, 0, `${cmd}\n${(r.stdout + r.stderr).slice(-3000)}`);
      }
    } finally {
      process.chdir(cwd);
    }
  });
}
