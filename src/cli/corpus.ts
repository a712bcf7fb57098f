/**
 * `stella corpus --out DIR`: writes the deterministic synthetic audio-video corpus (MP4 clips,
 * manifest.json, ground truth for test clips). See src/media/corpus.ts for what the clips contain.
 * `--kind pretrain` writes the pre-training corpus instead: one task of many classes that share none
 * with the continual corpus (defaults 32 classes × 100 train + 4 held-out test clips).
 * Prints one line when it starts, a bar with ETA on a TTY, and a summary on stderr (nothing with
 * --quiet; the summary as JSON on stdout with --json).
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
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
    .requiredOption('--out <dir>', 'output folder (required)')
    .addOption(new Option('--kind <kind>', 'continual tasks, or the pre-training corpus (one task, classes disjoint from the continual ones)').choices(['continual', 'pretrain']).default('continual'))
    .option('--seed <n>', 'seed', int(-(2 ** 31)), 2021)
    .option('--tasks <n>', 'tasks (disjoint classes; continual only) (default: 3)', int(1))
    .option('--classes <n>', 'classes per task (default: 5, pretrain 32)', int(2))
    .option('--train <n>', 'training clips per class (default: 4, pretrain 100)', int(0))
    .option('--test <n>', 'test clips per class, with ground truth (default: 6, pretrain 4)', int(0))
    .addOption(new Option('--size <size>', 'frame size and ground-truth grid').choices(['tiny', 'base']).default('tiny'))
    .option('--quiet', 'print nothing')
    .option('--json', 'print { dir, manifestPath, clips, seconds } as JSON')
    .addHelpText('after', helpFooter(
      ['stella corpus --out data/synth --tasks 2 --classes 2 --train 2 --test 1',
        'stella corpus --out data/small --tasks 2 --classes 2 --train 1 --test 1 --seed 7 --json',
        'stella corpus --kind pretrain --out data/pretrain          # thousands of clips: 32 classes × 104'],
      '0 written, 1 generation failed (e.g. no ffmpeg), 2 usage error',
    ))
    .action(async (opts: { out: string; kind: 'continual' | 'pretrain'; seed: number; tasks?: number; classes?: number; train?: number; test?: number; size: 'tiny' | 'base'; quiet?: boolean; json?: boolean }) => {
      const t0 = Date.now();
      const pretrain = opts.kind === 'pretrain';
      if (pretrain && opts.tasks !== undefined && opts.tasks !== 1) throw new InvalidArgumentError(`--tasks: the pre-training corpus is one task, got ${opts.tasks}`);
      const shape = pretrain
        ? { tasks: 1, classes: opts.classes ?? 32, train: opts.train ?? 100, test: opts.test ?? 4 }
        : { tasks: opts.tasks ?? 3, classes: opts.classes ?? 5, train: opts.train ?? 4, test: opts.test ?? 6 };
      const clips = shape.tasks * shape.classes * (shape.train + shape.test);
      const chatty = !opts.quiet && !opts.json;
      if (chatty) process.stderr.write(`corpus: encoding ${clips} clips into ${opts.out} …\n`);
      const bar = chatty && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'corpus [{bar}] {value}/{total} | ETA {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
      bar?.start(clips, 0);
      const r = await generateCorpus({ out: opts.out, kind: opts.kind, seed: opts.seed, ...shape, size: opts.size }, (done) => bar?.update(done))
        .finally(() => bar?.stop());
      if (opts.json) process.stdout.write(JSON.stringify({ ...r, clips, seconds: (Date.now() - t0) / 1000 }, null, 2) + '\n');
      else if (chatty) process.stderr.write(`corpus: ${clips} clips in ${((Date.now() - t0) / 1000).toFixed(1)} s; manifest ${r.manifestPath}\n`);
    });
}
