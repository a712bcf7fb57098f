/**
 * CLI manners: every command's --help carries examples and its exit codes; usage errors (unknown
 * option or command, a bad option value, a missing argument) exit 2 with a message naming the fault.
 */
import test from 'ava';
import { CommanderError, type Command } from 'commander';
import { buildProgram, EXIT_CODES } from '../../src/cli/main.ts';

interface Outcome { code: number | undefined; out: string; err: string }

/** Parses `args` with output captured; commander throws (exitOverride) instead of exiting. */
async function parse(args: string[]): Promise<Outcome> {
  let out = '', err = '';
  const program = buildProgram({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; }, outputError: (s, write) => write(s) });
  try {
    await program.parseAsync(['node', 'stella', ...args]);
    return { code: undefined, out, err };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, out, err };
  }
}

/** Every command path below the program, e.g. ['run'], ['graph', 'check']. */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((c) => [[...prefix, c.name()], ...commandPaths(c, [...prefix, c.name()])]);
}

const paths = commandPaths(buildProgram());

test('the program knows the documented subcommands', (t) => {
  const names = paths.map((p) => p.join(' '));
  for (const expected of ['run', 'sweep', 'worker', 'doctor', 'ingest', 'corpus', 'verify-golden', 'bench', 'bench step', 'inspect', 'convert', 'graph', 'graph run', 'graph check', 'graph stages']) {
    t.true(names.includes(expected), `missing '${expected}' in ${names.join(', ')}`);
  }
});

for (const path of [[], ...paths]) {
  test(`stella ${path.join(' ') || '(top level)'} --help has examples and exit codes`, async (t) => {
    const { code, out } = await parse([...path, '--help']);
    t.is(code, 0);
    t.regex(out, new RegExp(`^Usage: stella ${path.join(' ')}`.trimEnd(), 'm'));
    t.regex(out, /\nExamples:\n {2}\$ stella |\nExamples:\n {2}\$ npm /);
    t.regex(out, /\nExit codes: .*\b0\b.*/);
    t.regex(out, /\b2 usage error|2 bad arguments|; 2 usage/);
  });
}

test('commands whose output is data offer --json; commands with progress offer --quiet', async (t) => {
  for (const path of [['doctor'], ['verify-golden'], ['inspect'], ['convert'], ['ingest'], ['corpus'], ['bench', 'step'], ['run'], ['graph', 'stages'], ['graph', 'check']]) {
    t.regex((await parse([...path, '--help'])).out, /--json\b/, path.join(' '));
  }
  for (const path of [['ingest'], ['corpus'], ['run'], ['graph', 'run']]) {
    t.regex((await parse([...path, '--help'])).out, /--quiet\b/, path.join(' '));
  }
});

test('an unknown option exits 2 with a message naming it', async (t) => {
  const { code, err } = await parse(['run', '--bogus-flag']);
  t.is(code, EXIT_CODES.usage);
  t.regex(err, /unknown option '--bogus-flag'/);
  t.regex(err, /--help/);
});

test('an unknown option of a nested command exits 2, suggesting the near one', async (t) => {
  const { code, err } = await parse(['bench', 'step', '--compar']);
  t.is(code, 2);
  t.regex(err, /unknown option '--compar'[\s\S]*--compare/);
});

test('an unknown command exits 2 naming it', async (t) => {
  const { code, err } = await parse(['trian']);
  t.is(code, 2);
  t.regex(err, /unknown command 'trian'/);
});

test('a bad option value exits 2 naming the option and the value', async (t) => {
  const size = await parse(['corpus', '--out', '/nonexistent/never-written', '--size', 'huge']);
  t.is(size.code, 2);
  t.regex(size.err, /--size <size>.*'huge'.*tiny, base/);
  const steps = await parse(['bench', 'step', '--steps', '0']);
  t.is(steps.code, 2);
  t.regex(steps.err, /--steps <n>.*expected a positive integer, got '0'/);
  const concurrency = await parse(['ingest', 'm.json', '--out', '/nonexistent/never-written', '--concurrency', 'two']);
  t.is(concurrency.code, 2);
  t.regex(concurrency.err, /--concurrency <n>.*'two'/);
});

test('a missing argument or required option exits 2 naming it', async (t) => {
  const missingArg = await parse(['verify-golden']);
  t.is(missingArg.code, 2);
  t.regex(missingArg.err, /missing required argument 'dir'/);
  const missingOption = await parse(['ingest', 'm.json']);
  t.is(missingOption.code, 2);
  t.regex(missingOption.err, /required option '--out <dir>' not specified/);
});

test('no command prints the help and exits 2', async (t) => {
  const { code, out, err } = await parse([]);
  t.is(code, 2);
  t.regex(out + err, /Usage: stella/);
});
