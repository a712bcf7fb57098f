/**
 * Distributed ingest throughput: `stella ingest --redis` with 1, 2 and 3 `stella worker` processes
 * (one clip at a time each) against a local `stella ingest`, on the same clips, with a real
 * redis-server on loopback. Rounds are interleaved (the order reversed every other round) and each
 * figure is the median over rounds; every run writes a fresh cache folder.
 * Usage: npm run bench:scale-ingest [-- --clips 24 --rounds 3 --write]
 * (--write: also rewrite the "Ingest throughput" section of docs/scale-out.md.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCorpus } from '../src/media/corpus.ts';
import { RedisServer } from '../test/scale/redis-server.ts';
import { writeBenchmarkSection } from './docs-section.ts';
import { arg } from './args.ts';
import { median } from '../src/model/step-bench.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STELLA = path.join(ROOT, 'bin/stella.js');
const clips = Number(arg('clips', '24'));
const rounds = Number(arg('rounds', '3'));
const write = process.argv.includes('--write');

function stella(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STELLA, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`stella ${args[0]} exited ${code}: ${err.slice(-500)}`))));
  });
}

/** Starts a worker and resolves once it announced itself (start-up is not part of the ingest's time). */
function startWorker(url: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STELLA, 'worker', '--redis', url, '--concurrency', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.on('data', (d) => { if (/ on redis:\/\//.test(String(d))) resolve(child); });
    child.on('exit', (code) => reject(new Error(`worker exited ${code} before it started`)));
  });
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-bench-scale-'));
  const server = await RedisServer.start();
  try {
    const { manifestPath } = await generateCorpus({ out: path.join(dir, 'corpus'), tasks: 1, classes: 4, train: Math.ceil(clips / 4), test: 0, seed: 11 });
    const n = Math.ceil(clips / 4) * 4;
    const variants = ['local', '1 worker', '2 workers', '3 workers'];
    const seconds: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
    const loadBefore = os.loadavg()[0];
    let run = 0;
    for (let round = 0; round < rounds; round++) {
      for (const variant of round % 2 ? [...variants].reverse() : variants) {
        const out = path.join(dir, `cache-${run++}`);
        const workers = variant === 'local' ? [] : await Promise.all(Array.from({ length: Number(variant[0]) }, () => startWorker(server.url)));
        try {
          const args = ['ingest', manifestPath, '--out', out, '--json', ...(workers.length ? ['--redis', server.url, '--concurrency', String(2 * workers.length)] : [])];
          const summary = JSON.parse(await stella(args)) as { processed: number; errors: number; seconds: number };
          const wall = summary.seconds;
          if (summary.processed !== n || summary.errors) throw new Error(`${variant}: processed ${summary.processed} of ${n} clips, ${summary.errors} errors`);
          seconds[variant].push(wall);
          process.stdout.write(`round ${round + 1} ${variant}: ${wall.toFixed(1)} s, ${(n / wall).toFixed(2)} clips/s\n`);
        } finally {
          for (const w of workers) w.kill('SIGKILL');
          await rm(out, { recursive: true, force: true });
        }
      }
    }
    const loadAfter = os.loadavg()[0];
    const rate = (v: string) => n / median(seconds[v]);
    const one = rate('1 worker');
    const rows = variants.map((v) => `| ${v} | ${median(seconds[v]).toFixed(1)} s | ${rate(v).toFixed(2)} | ${v === 'local' ? '–' : `${(rate(v) / one).toFixed(2)}×`} | ${seconds[v].map((s) => s.toFixed(1)).join(', ')} |`);
    const section = [
      '## Ingest throughput',
      '',
      '<!-- scale-ingest:begin -->',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, shared; 1-minute load ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after), Node ${process.version}. ` +
        `\`stella ingest\` of ${n} generated tiny clips (4 s, H.264 + AAC), each worker \`--concurrency 1\`, the ingest \`--concurrency\` 2 × workers; redis-server, the ingest process and all workers on this one machine. ${rounds} rounds, interleaved, medians of the ingest's own time (its \`seconds\`: from the first clip sent to the cache written; process and worker start-up excluded).`,
      '',
      '| ingest | median time | clips/s | vs 1 worker | per round |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '<!-- scale-ingest:end -->',
      '',
    ].join('\n');
    process.stdout.write(`\n${section}\n`);
    if (write) await writeBenchmarkSection('Ingest throughput', section, path.join(ROOT, 'docs/scale-out.md'));
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
