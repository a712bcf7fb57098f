/**
 * `stella` command line. Each subcommand lives in its own file under src/cli/ and exports
 * `register(program)`; this file only assembles them.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, type OutputConfiguration } from 'commander';
import { REPO_ROOT } from '../graph/container.ts';
import { register as registerDoctor } from './doctor.ts';
import { register as registerGraph } from './graph.ts';
import { register as registerIngest } from './ingest.ts';
import { register as registerCorpus } from './corpus.ts';
import { register as registerVerifyGolden } from './verify-golden.ts';
import { register as registerBench } from './bench.ts';
import { register as registerInspect } from './inspect.ts';
import { register as registerRun } from './run.ts';
import { register as registerConvert } from './convert.ts';
import { MAX_WASM_THREADS, WASM_THREADS_ENV } from '../core/wasm-threads.ts';
import { register as registerSweep } from './sweep.ts';
import { register as registerWorker } from './worker.ts';

export const EXIT_CODES = {
  ok: 0,
  /** The run could not start or failed as a whole (bad arguments, bad config, nothing could run). */
  failure: 1,
  /** Command-line usage error. */
  usage: 2,
} as const;

/**
 * The program. Commander's own exit is replaced (inherited by every subcommand): help and version
 * throw a CommanderError with exit code 0, usage errors (unknown option or command, missing or
 * invalid argument) one with EXIT_CODES.usage, after commander has printed the message. `output`
 * redirects what commander writes (tests capture it).
 */
export function buildProgram(output?: OutputConfiguration): Command {
  const program = new Command('stella')
    .description('STELLA continual audio-video pre-training as a reactive RxJS pipeline')
    .version(packageVersion(), '-V, --version', 'print the version (package.json) and exit')
    .exitOverride((error) => {
      throw error.exitCode === 0 ? error : new CommanderError(EXIT_CODES.usage, error.code, error.message);
    })
    .showHelpAfterError('(add --help for usage and examples)')
    .option('--wasm-threads <n>', `threads of the wasm backend, a count or 'all' (sets ${WASM_THREADS_ENV}; default 1, measured faster for the models wasm trains; at most ${MAX_WASM_THREADS})`, wasmThreadsArg)
    // Through the environment, so that worker threads and child processes of the run see it too.
    .hook('preAction', (command) => {
      const threads = command.opts().wasmThreads as string | undefined;
      if (threads !== undefined) process.env[WASM_THREADS_ENV] = threads;
    })
    .addHelpText(
      'after',
      `\nExamples:\n  $ stella run              # the main job on the generated corpus\n  $ stella doctor          # which tensor backend and ffmpeg\n  $ stella run --help      # every subcommand has --help with examples\n  $ stella --version\n` +
        `\nExit codes: 0 success, 1 the run failed as a whole, 2 usage error.\nEnvironment: STELLA_BACKEND (tensorflow-gpu|tensorflow|wasm|cpu), ${WASM_THREADS_ENV}, STELLA_FFMPEG / FFMPEG_PATH, STELLA_CACHE (generated corpora; default .cache/).`,
    );
  if (output) program.configureOutput(output);
  for (const register of [registerRun, registerSweep, registerWorker, registerDoctor, registerIngest, registerCorpus, registerVerifyGolden, registerBench, registerInspect, registerConvert, registerGraph]) register(program);
  return program;
}

function wasmThreadsArg(value: string): string {
  if (value !== 'all' && (!/^\d+$/.test(value) || Number(value) < 1)) throw new InvalidArgumentError("a whole number of threads, at least 1, or 'all'.");
  return value;
}

/** The version in package.json, the one place it is kept. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

const isMain = process.argv[1] && /(?:^|[\\/])(?:main\.ts|stella(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      if (e instanceof InvalidArgumentError) {
        // Thrown by an action checking its options: a usage error that commander has not printed.
        process.stderr.write(`stella: ${e.message}\n`);
        process.exitCode = EXIT_CODES.usage;
      } else if (e instanceof CommanderError) {
        process.exitCode = e.exitCode; // help (0) or a usage error commander has already printed (2)
      } else {
        process.stderr.write(`stella: ${(e as Error)?.message ?? e}\n`);
        process.exitCode = EXIT_CODES.failure;
      }
    });
}
