/**
 * Ingest throughput: decode + fbank + patches (decodeClip + tokenizeClip) against ffmpeg alone
 * producing the same frames and PCM — the identical ffmpeg command (decodeArgs with the same stream
 * facts and frame times decodeClip uses), spawned per clip the same way (stdout, stderr and fd 3
 * piped) and read to the end of every pipe — side by side in one run, interleaved, sequential (one
 * clip at a time) so the figures are per-core costs. Also timed: `ffmpeg -i` probe + decode (what a
 * decode cost when every clip was probed first) and the JS work alone (header read, pipe sinks fed
 * the captured bytes, patches) to show its share.
 * Usage: npm run bench:ingest [-- --clips 12 --runs 7 --size tiny --write]  (--write: also update docs/benchmarks.md)
 * Also the full pipeline forced onto each ffmpeg the resolver considered (a system ffmpeg on PATH
 * beside the static build), to show what choosing by measured start-up is worth.
 * Prints clips/s; with --write also rewrites the Ingest section of docs/benchmarks.md (between its markers).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelConfig } from '../src/core/config.ts';
import { generateCorpus } from '../src/media/corpus.ts';
import { decodeArgs, decodeClip, decodeClipsTogether, frameTimes } from '../src/media/decode.ts';
import { INGEST_BATCH } from '../src/media/ingest.ts';
import { AudioSink, FrameSink } from '../src/media/decode-sinks.ts';
import { resetFfmpegCache, resolveFfmpeg } from '../src/media/ffmpeg.ts';
import { loadManifest, manifestClips } from '../src/media/manifest.ts';
import { readMp4Header } from '../src/media/mp4-header.ts';
import { mediaInfo, probeMedia } from '../src/media/probe.ts';
import { tokenizeClip } from '../src/media/tokenize.ts';
import { arg } from './args.ts';

const clipsPerTask = Number(arg('clips', '12'));
const runs = Number(arg('runs', '7'));
const size = arg('size', 'tiny') as 'tiny' | 'base';
// Tables go to docs/benchmarks.md only when asked (--write): a plain run must not touch tracked docs.
const write = process.argv.includes('--write');

/** Runs one decode command the way decodeClip does (all three pipes read to the end); keeps the bytes when asked. */
function run(bin: string, args: string[], keep = false): Promise<{ rgb: Buffer[]; pcm: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const rgb: Buffer[] = [], pcm: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => { if (keep) rgb.push(c); });
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => { if (keep) pcm.push(c); });
    child.stderr!.on('data', () => {});
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ rgb, pcm }) : reject(new Error(`ffmpeg exit ${code}`))));
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
    // The exact ffmpeg work of one decode: same stream facts (header or probe, as decodeClip), same args.
    const plans = await Promise.all(clips.map(async (file) => {
      const { info, source } = await mediaInfo(file);
      const { args, channels } = decodeArgs(file, info, frameTimes(info.durationSec, cfg.numFrames, 'eval'), cfg.imageSize, undefined, 10);
      return { file, args, channels, source };
    }));
    const fromHeader = plans.filter((p) => p.source === 'header').length;
    // Captured output of each command, for the JS-only timing and a check that it is what decodeClip gets.
    const captured: (typeof plans[number] & { rgb: Buffer[]; pcm: Buffer[] })[] = [];
    for (const p of plans) {
      const out = await run(ffmpeg.path, p.args, true);
      const rgbBytes = out.rgb.reduce((a, b) => a + b.length, 0);
      if (rgbBytes !== cfg.numFrames * cfg.imageSize ** 2 * 3) throw new Error(`${p.file}: baseline gave ${rgbBytes} frame bytes`);
      captured.push({ ...p, ...out });
    }
    const probeOnly = async () => { for (const f of clips) await probeMedia(f); };
    const ffmpegOnly = async () => { for (const p of plans) await run(ffmpeg.path, p.args); };
    const full = async () => { for (const f of clips) tokenizeClip(await decodeClip(f, { config: cfg, mode: 'eval' }), cfg); };
    // What `stella ingest` runs: INGEST_BATCH files per ffmpeg run, each file's output its own run's.
    const together = async () => {
      for (let i = 0; i < clips.length; i += INGEST_BATCH) {
        for (const d of await decodeClipsTogether(clips.slice(i, i + INGEST_BATCH), { config: cfg })) {
          if (d instanceof Error) throw d;
          tokenizeClip(d, cfg);
        }
      }
    };
    const jsOnly = async () => {
      for (const c of captured) {
        readMp4Header(c.file);
        const frames = new FrameSink(cfg.numFrames, cfg.imageSize);
        const audio = new AudioSink(c.channels, cfg.audioFrames, cfg.melBins, 10);
        for (const b of c.rgb) frames.push(b);
        for (const b of c.pcm) audio.push(b);
        tokenizeClip({ video: frames.finish(), fbank: audio.finish() }, cfg);
      }
    };
    // The same pipeline forced onto each binary the resolver considered (e.g. Debian's ffmpeg on PATH
    // and the static build), to show what the choice is worth; the resolver's own pick is `full`.
    const forced = ffmpeg.candidates.filter((c) => !c.error && ffmpeg.source !== 'env');
    const withBinary = (binary: string) => async () => {
      const saved = process.env.STELLA_FFMPEG;
      process.env.STELLA_FFMPEG = binary;
      resetFfmpegCache();
      try { await full(); } finally {
        if (saved === undefined) delete process.env.STELLA_FFMPEG; else process.env.STELLA_FFMPEG = saved;
        resetFfmpegCache();
      }
    };
    await full(); // warm caches
    await jsOnly();
    const loadBefore = os.loadavg()[0];
    const t: Record<string, number[]> = { ffmpeg: [], probe: [], full: [], together: [], js: [] };
    const timed: [string, () => Promise<void>][] = [['ffmpeg', ffmpegOnly], ['probe', probeOnly], ['full', full], ['together', together], ['js', jsOnly]];
    for (const c of forced) { t[c.path] = []; timed.push([c.path, withBinary(c.path)]); }
    for (let r = 0; r < runs; r++) {
      // Interleaved so machine noise hits all of them alike.
      for (const [k, fn] of timed) {
        const t0 = performance.now();
        await fn();
        t[k].push((performance.now() - t0) / 1000);
      }
    }
    const loadAfter = os.loadavg()[0];
    const n = clips.length;
    const ms = (k: string) => (1000 * median(t[k])) / n;
    const base = ms('ffmpeg');
    const ratio = ms('full') / base, ratioWithProbe = ms('full') / (base + ms('probe'));
    const machine = `${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores, shared), Node ${process.version}, ffmpeg ${ffmpeg.version} (${ffmpeg.source})`;
    const date = new Date().toISOString().slice(0, 10);
    const row = (name: string, msPerClip: number) => `| ${name} | ${msPerClip.toFixed(1)} | ${(1000 / msPerClip).toFixed(1)} | ${(msPerClip / base).toFixed(2)}× |`;
    const lines = [
      `Measured ${date} on ${machine}; 1-minute load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after (other work shares the machine). Synthetic corpus clips (${size}: ${size === 'tiny' ? '96×96' : '288×288'} H.264 + AAC, 4 s), decoded to the ${size} config (${cfg.numFrames}×${cfg.imageSize}² frames, ${cfg.audioFrames}×${cfg.melBins} fbank), one clip at a time; each figure is the median of ${runs} interleaved runs over the same ${n} clips (stream facts from the MP4 header for ${fromHeader} of ${n}).`,
      '',
      '| pipeline | ms/clip | clips/s | time vs ffmpeg decode |',
      '| --- | --- | --- | --- |',
      row('ffmpeg alone: the same decode command, spawned per clip, every pipe read to the end', base),
      row('ffmpeg alone: probe (`ffmpeg -i`) + that decode', base + ms('probe')),
      row('decodeClip + tokenizeClip (header read, decode, streamed normalise/mixdown/fbank, patches)', ms('full')),
      row('of which JS work alone (header read, sinks fed the captured bytes, patches), no ffmpeg', ms('js')),
      row(`decodeClipsTogether + tokenizeClip, ${INGEST_BATCH} files per ffmpeg run (what \`stella ingest\` runs)`, ms('together')),
      ...forced.map((c) => row(`decodeClip + tokenizeClip forced onto ${c.source === 'path' ? 'the PATH ffmpeg' : c.source} (\`${c.path}\`, ${c.version}, start-up ${c.startupMs.toFixed(0)} ms)`, ms(c.path))),
      '',
      `Ingest: **${(1000 / ms('full')).toFixed(1)} clips/s** (${ms('full').toFixed(1)} ms/clip, one clip at a time) with the resolver's choice, ${ffmpeg.path} (${ffmpeg.source}): ${ffmpeg.reason}. Goal ≤ 1.3× ffmpeg's time: ${ratio <= 1.3 ? 'met' : 'not met'} against the decode command alone (${ratio.toFixed(2)}×); against probe + decode ${ratioWithProbe.toFixed(2)}×.`,
      `\`stella ingest\` decodes ${INGEST_BATCH} files per ffmpeg run: **${(1000 / ms('together')).toFixed(1)} clips/s**, ${(ms('full') / ms('together')).toFixed(2)}× the one-file runs and ${(base / ms('together')).toFixed(2)}× ffmpeg's own one-file decode.`,
      ...(forced.length > 1 ? [`Each binary forced (\`STELLA_FFMPEG\`): ${forced.map((c) => `${c.source} ${(1000 / ms(c.path)).toFixed(1)} clips/s`).join(', ')}; the resolver's choice runs at ${(ms(forced.reduce((a, c) => (ms(c.path) < ms(a.path) ? c : a)).path) / ms('full')).toFixed(2)}× the fastest one's clips/s.`] : []),
      'Reproduce: `npm run bench:ingest`.',
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
