/** `stella doctor`: reports the tensor backend (with its thread count on wasm) and ffmpeg this machine resolves to, and why that ffmpeg (ffmpeg.ts). */
import type { Command } from 'commander';
import { describeBackend, initBackend } from '../core/backend.ts';
import { WASM_THREADS_ENV } from '../core/wasm-threads.ts';
import { helpFooter } from './help.ts';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('show which tensor backend and ffmpeg binary would be used')
    .option('--json', 'print as JSON: { backend: { name, detail, threads?: { count, source } }, ffmpeg: { path, source, version, startupMs, reason, candidates } | { error } }')
    .addHelpText('after', helpFooter(
      ['stella doctor', 'STELLA_BACKEND=cpu stella doctor --json'],
      '0 printed (a missing ffmpeg is reported, not an error), 1 no tensor backend could start, 2 usage error',
    ))
    .action(async (opts: { json?: boolean }) => {
      const backend = await initBackend();
      const report: Record<string, unknown> = { backend };
      try {
        const { resolveFfmpeg } = await import('../media/ffmpeg.ts');
        report.ffmpeg = await resolveFfmpeg();
      } catch (e) {
        report.ffmpeg = { error: (e as Error).message };
      }
      if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        process.stdout.write(describeBackend(backend) + '\n');
        if (backend.threads) process.stdout.write(`threads: ${backend.threads.count} (${backend.threads.source}; set with --wasm-threads or ${WASM_THREADS_ENV})\n`);
        const f = report.ffmpeg as any;
        process.stdout.write(f.error ? `ffmpeg: ${f.error}\n` : `ffmpeg: ${f.path} (${f.source}, ${f.version}, start-up ${f.startupMs.toFixed(0)} ms)\n  why: ${f.reason}\n`);
      }
    });
}
