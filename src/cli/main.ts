/**
 * `stella` command line. Each subcommand lives in its own file under src/cli/ and exports
 * `register(program)`; this file only assembles them.
 */
import 'reflect-metadata';
import { Command } from 'commander';
import { register as registerDoctor } from './doctor.ts';
import { register as registerGraph } from '../graph/cli.ts';
import { register as registerIngest } from './ingest.ts';
import { register as registerCorpus } from './corpus.ts';
import { register as registerVerifyGolden } from './verify-golden.ts';
import { register as registerBench } from './bench.ts';
import { register as registerInspect } from './inspect.ts';
import { register as registerRun } from './run.ts';

export const EXIT_CODES = {
  ok: 0,
  /** The run could not start or failed as a whole (bad arguments, bad config, nothing could run). */
  failure: 1,
  /** Command-line usage error. */
  usage: 2,
} as const;

export function buildProgram(): Command {
  const program = new Command('stella')
    .description('STELLA continual audio-video pre-training as a reactive RxJS pipeline')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `\nExit codes: 0 success, 1 the run failed as a whole, 2 usage error.\nEnvironment: STELLA_BACKEND (tensorflow-gpu|tensorflow|wasm|cpu), STELLA_FFMPEG / FFMPEG_PATH.`,
    );
  for (const register of [registerRun, registerDoctor, registerIngest, registerCorpus, registerVerifyGolden, registerBench, registerInspect, registerGraph]) register(program);
  return program;
}

const isMain = process.argv[1] && /(?:^|[\\/])(?:main\.ts|stella(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`stella: ${(e as Error)?.message ?? e}\n`);
      process.exitCode = EXIT_CODES.failure;
    });
}
