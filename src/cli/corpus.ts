/**
 * `stella corpus --out DIR`: writes the deterministic synthetic audio-video corpus (MP4 clips,
 * manifest.json, ground truth for test clips). See src/media/corpus.ts for what the clips contain.
 * Prints one line when it starts and a summary on stderr (nothing with --quiet; the summary as JSON on
 * stdout with --json). No progress bar: the generator reports no per-clip progress.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { generateCorpus } from '../media/corpus.ts';
import { helpFooter } from './help.ts';

const int = (min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('corpus')
    .description('generate the deterministic synthetic audio-video corpus (MP4 + manifest.json + ground truth)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'seed', int(-(2 ** 31)), 2021)
    .option('--tasks <n>', 'tasks (disjoint classes)', int(1), 3)
    .option('--classes <n>', 'classes per task', int(2), 5)
    .option('--train <n>', 'training clips per class', int(0), 4)
    .option('--test <n>', 'test clips per class (with ground truth)', int(0), 2)
    .addOption(new Option('--size <size>', 'frame size and ground-truth grid').choices(['tiny', 'base']).default('tiny'))
    .option('--quiet', 'print nothing')
    .option('--json', 'print { dir, manifestPath, clips, seconds } as JSON')
    .addHelpText('after', helpFooter(
      ['stella corpus --out data/synth', 'stella corpus --out data/small --tasks 2 --classes 2 --train 2 --test 1 --json'],
      '0 written, 1 generation failed (e.g. no ffmpeg), 2 usage error',
    ))
    .action(async (opts: { out: string; seed: number; tasks: number; classes: number; train: number; test: number; size: 'tiny' | 'base'; quiet?: boolean; json?: boolean }) => {
      const t0 = Date.now();
      const clips = opts.tasks * opts.classes * (opts.train + opts.test);
      const chatty = !opts.quiet && !opts.json;
      if (chatty) process.stderr.write(`corpus: encoding ${clips} clips into ${opts.out} …\n`);
      const r = await generateCorpus({ out: opts.out, seed: opts.seed, tasks: opts.tasks, classes: opts.classes, train: opts.train, test: opts.test, size: opts.size });
      if (opts.json) process.stdout.write(JSON.stringify({ ...r, clips, seconds: (Date.now() - t0) / 1000 }, null, 2) + '\n');
      else if (chatty) process.stderr.write(`corpus: ${clips} clips in ${((Date.now() - t0) / 1000).toFixed(1)} s; manifest ${r.manifestPath}\n`);
    });
}
