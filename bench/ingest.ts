/**
 * Ingest throughput: decode + fbank + patches (decodeClip + tokenizeClip) against ffmpeg alone
 * producing the same frames and PCM (the identical ffmpeg command, output drained), side by side in
 * one run, sequential (one clip at a time) so the figures are per-core costs.
 * Usage: npm run bench:ingest [-- --clips 12 --runs 5 --size tiny --no-write]
 * Prints clips/s and writes the Ingest section of docs/benchmarks.md (between its markers).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelConfig } from '../src/core/config.ts';
import { generateCorpus } from '../src/media/corpus.ts';
import { decodeArgs, decodeClip, frameTimes } from '../src/media/decode.ts';
import { resolveFfmpeg } from '../src/media/ffmpeg.ts';
import { loadManifest, manifestClips } from '../src/media/manifest.ts';
import { probeMedia } from '../src/media/probe.ts';
import { tokenizeClip } from '../src/media/tokenize.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const clipsPerTask = Number(arg('clips', '12'));
const runs = Number(arg('runs', '5'));
const size = arg('size', 'tiny') as 'tiny' | 'base';
const write = !process.argv.includes('--no-write');

function drain(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
    child.stdout!.resume();
    (child.stdio[3] as NodeJS.ReadableStream).resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exit ${code}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stella-bench-ingest-'));
  try {
    const cfg = modelConfig(size);
    const { manifestPath } = await generateCorpus({ out: dir, tasks: 1, classes: 4, train: Math.ceil(clipsPerTask / 4), test: 0, size });
    const clips = manifestClips(await loadManifest(manifestPath)).map((c) => c.path);
    const ffmpeg = await resolveFfmpeg();
    // The exact ffmpeg work of one decode (probe facts fixed beforehand; not timed).
    const commands = await Promise.all(clips.map(async (file) => {
      const info = await probeMedia(file);
      return decodeArgs(file, info, frameTimes(info.durationSec, cfg.numFrames, 'eval'), cfg.imageSize, undefined, 10).args;
    }));
    const probeOnly = async () => { for (const f of clips) await probeMedia(f); };
    const ffmpegOnly = async () => { for (const a of commands) await drain(ffmpeg.path, a); };
    const full = async () => { for (const f of clips) tokenizeClip(await decodeClip(f, { config: cfg, mode: 'eval' }), cfg); };
    await full(); // warm caches
    const t = { ffmpeg: [] as number[], probe: [] as number[], full: [] as number[] };
    for (let r = 0; r < runs; r++) {
      // Interleaved so machine noise hits all three alike.
      for (const [k, fn] of [['ffmpeg', ffmpegOnly], ['probe', probeOnly], ['full', full]] as const) {
        const t0 = performance.now();
        await fn();
        t[k].push((performance.now() - t0) / 1000);
      }
    }
    const n = clips.length;
    const res = {
      clips: n,
      ffmpegClipsPerSec: n / median(t.ffmpeg),
      ffmpegPlusProbeClipsPerSec: n / (median(t.ffmpeg) + median(t.probe)),
      fullClipsPerSec: n / median(t.full),
      ratio: median(t.full) / median(t.ffmpeg),
      ratioWithProbe: median(t.full) / (median(t.ffmpeg) + median(t.probe)),
    };
    const machine = `${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, shared), Node ${process.version}, ffmpeg ${ffmpeg.version} (${ffmpeg.source})`;
    const date = new Date().toISOString().slice(0, 10);
    const lines = [
      `Measured ${date} on ${machine}. Synthetic corpus clips (${size}: ${size === 'tiny' ? '96×96' : '288×288'} H.264 + AAC, 4 s), decoded to the ${size} config (${cfg.numFrames}×${cfg.imageSize}² frames, ${cfg.audioFrames}×${cfg.melBins} fbank), one clip at a time, median of ${runs} runs over ${n} clips.`,
      '',
      '| pipeline | clips/s | time vs ffmpeg decode |',
      '| --- | --- | --- |',
      `| ffmpeg alone: the same decode command, output drained | ${res.ffmpegClipsPerSec.toFixed(1)} | 1.00× |`,
      `| ffmpeg alone: probe (\`ffmpeg -i\`) + decode | ${res.ffmpegPlusProbeClipsPerSec.toFixed(1)} | ${(1 / res.ffmpegPlusProbeClipsPerSec / (1 / res.ffmpegClipsPerSec)).toFixed(2)}× |`,
      `| decodeClip + tokenizeClip (probe, decode, fbank, normalise, patches) | ${res.fullClipsPerSec.toFixed(1)} | ${res.ratio.toFixed(2)}× |`,
      '',
      `Goal ≤ 1.3× ffmpeg's time: ${res.ratio <= 1.3 ? 'met' : 'not met'} against the decode command alone (${res.ratio.toFixed(2)}×); against probe + decode, i.e. all the ffmpeg work a decode needs, ${res.ratioWithProbe.toFixed(2)}×. Reproduce: \`npm run bench:ingest\`.`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (write) {
      const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/benchmarks.md');
      const begin = '<!-- ingest:begin -->', end = '<!-- ingest:end -->';
      const section = `## Ingest\n\n${begin}\n${lines.join('\n')}\n${end}\n`;
      let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
      const re = /## Ingest\n\n<!-- ingest:begin -->[\s\S]*?<!-- ingest:end -->\n/;
      doc = re.test(doc) ? doc.replace(re, section) : doc.trimEnd() + '\n\n' + section;
      writeFileSync(file, doc);
      process.stdout.write(`wrote ${file}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench:ingest: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
