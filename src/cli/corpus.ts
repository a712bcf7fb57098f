/**
 * `stella corpus --out DIR`: writes the deterministic synthetic audio-video corpus (MP4 clips,
 * manifest.json, ground truth for test clips). See src/media/corpus.ts for what the clips contain.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { generateCorpus } from '../media/corpus.ts';

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
    .option('--size <size>', 'tiny | base (frame size and ground-truth grid)', 'tiny')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ stella corpus --out data/synth --tasks 3 --classes 5')
    .action(async (opts: { out: string; seed: number; tasks: number; classes: number; train: number; test: number; size: string; json?: boolean }) => {
      if (opts.size !== 'tiny' && opts.size !== 'base') throw new InvalidArgumentError(`--size must be tiny or base, got '${opts.size}'`);
      const t0 = Date.now();
      const r = await generateCorpus({ out: opts.out, seed: opts.seed, tasks: opts.tasks, classes: opts.classes, train: opts.train, test: opts.test, size: opts.size });
      const clips = opts.tasks * opts.classes * (opts.train + opts.test);
      if (opts.json) process.stdout.write(JSON.stringify({ ...r, clips, seconds: (Date.now() - t0) / 1000 }, null, 2) + '\n');
      else process.stderr.write(`corpus: ${clips} clips in ${((Date.now() - t0) / 1000).toFixed(1)} s; manifest ${r.manifestPath}\n`);
    });
}
