/**
 * `stella ingest MANIFEST --out DIR`: decode + tokenize every clip into a resumable on-disk cache.
 * Progress bar with ETA on a TTY, plain lines otherwise; `--json` prints the summary as JSON.
 * Exit 0 when the run completed (even with per-clip errors, listed in DIR/ingest-report.json);
 * 1 when nothing could run (unreadable manifest, incompatible cache).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import cliProgress from 'cli-progress';
import { runIngest, type IngestProgress } from '../media/ingest.ts';
import { helpFooter, positiveInt } from './help.ts';


export function register(program: Command): void {
  program
    .command('ingest')
    .description('decode and tokenize every clip of a manifest into an on-disk cache (resumable)')
    .argument('<manifest>', 'manifest JSON (our format or a CAV-MAE datafile) or a folder of label subfolders')
    .requiredOption('--out <dir>', 'cache folder (required): index.json, shard-*.bin, ingest-report.json')
    .addOption(new Option('--config <size>', 'model config').choices(['tiny', 'base']).default('tiny'))
    .option('--concurrency <n>', 'ffmpeg runs in flight (8 clips each)', positiveInt, 2)
    .option('--allow-outside', 'accept clip paths outside the manifest folder')
    .option('--redis <url>', 'decode and tokenize on `stella worker` processes through this Redis (--concurrency = clips in flight); this process writes the cache')
    .option('--quiet', 'no progress output and no summary')
    .option('--json', 'print { processed, cached, errors, seconds, report } as JSON (no progress)')
    .addHelpText('after', helpFooter(
      ['stella corpus --out data/synth --tasks 2 --classes 2 --train 2 --test 1 && stella ingest data/synth/manifest.json --out cache/synth',
        'stella ingest data/synth/manifest.json --out cache/synth --concurrency 4 --json   # again: every clip is already cached',
        'stella ingest data/synth/manifest.json --out cache/synth --redis redis://127.0.0.1:6379 --concurrency 16   # decode on stella worker processes'],
      '0 completed (also with per-clip errors, listed in DIR/ingest-report.json), 1 nothing could run (unreadable manifest, incompatible cache), 2 usage error',
      ['MANIFEST: our manifest.json, a CAV-MAE datafile, or a folder of label subfolders (docs/media.md).',
        'Progress: a bar with ETA on a TTY (stderr), one line per clip otherwise. Run it again to resume.'],
    ))
    .action(async (manifest: string, opts: { out: string; config: 'tiny' | 'base'; concurrency: number; allowOutside?: boolean; quiet?: boolean; json?: boolean; redis?: string }) => {
      const tty = !opts.quiet && !opts.json && process.stderr.isTTY;
      const bar = tty ? new cliProgress.SingleBar({ format: 'ingest [{bar}] {value}/{total} | ETA {eta_formatted} | {errors} errors', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
      let started = false, errors = 0;
      const onProgress = (p: IngestProgress) => {
        if (!p.ok) errors++;
        if (bar) {
          if (!started) { bar.start(p.total, 0, { errors: 0 }); started = true; }
          bar.update(p.done, { errors });
        } else if (!opts.quiet && !opts.json) {
          process.stderr.write(`[${p.done}/${p.total}] ${p.ok ? (p.cached ? 'cached' : 'ok') : 'error'} ${p.ok ? p.path : p.message}\n`);
        }
      };
      const t0 = Date.now();
      const ac = new AbortController();
      const onSigint = () => ac.abort();
      process.once('SIGINT', onSigint);
      // Loaded only with --redis, so a local ingest never loads the Redis client.
      const remote = opts.redis ? (await import('../scale/redis-ingest.ts')).redisClipProcessor(opts.redis) : undefined;
      try {
        const r = await runIngest({ manifest, out: opts.out, config: opts.config, concurrency: opts.concurrency, allowOutside: !!opts.allowOutside, onProgress, signal: ac.signal, processClip: remote?.processClip });
        bar?.stop();
        const summary = {
          processed: r.processed.length,
          cached: r.processed.filter((p) => p.cached).length,
          errors: r.errors.length,
          seconds: (Date.now() - t0) / 1000,
          report: r.reportPath,
        };
        if (opts.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        else if (!opts.quiet) {
          process.stderr.write(`ingest: ${summary.processed} clips (${summary.cached} already cached), ${summary.errors} errors in ${summary.seconds.toFixed(1)} s; report ${summary.report}\n`);
          for (const e of r.errors.slice(0, 20)) process.stderr.write(`  error: ${e.message}\n`);
        }
      } finally {
        await remote?.close();
        bar?.stop();
        process.off('SIGINT', onSigint);
      }
    });
}
