/**
 * Synthetic audio-video corpus: deterministic (seeded) MP4 clips (H.264 + AAC) plus `manifest.json`
 * (format (a) of manifest.ts) and, for test clips, ground-truth localisation JSON.
 *
 * Each clip (default 4 s, square frames of `frameSize` px — 96 for tiny, 288 for base, so decode
 * really resizes) shows one sounding object of the clip's class that pulses (brighter, 25 % larger) on
 * each of its sound onsets, plus 1–2 silent, still distractors of other classes of the same task.
 * A class has its own look (shape × hue) and its own sound (fundamental, number of harmonics, onset
 * interval). Tasks have disjoint classes. The sounding object jumps to a new place at every half
 * second mark (k + 0.5 s), so each decoded frame (taken near whole seconds, decode.ts) sees one
 * well-defined position.
 *
 * Ground truth (test clips, `<clip>.gt.json`), at the chosen config's grid:
 *   frames[t] = { timeSec, box (source px, the object's pulsed extent), decodedBox (S px),
 *                 videoPatches: token ids t·side² + row·side + col of patches overlapping the box by
 *                 ≥ 10 % of the patch area };
 *   audioEvents = [{ onsetSec, durationSec }], audioPatches = token ids t·F + f of the fbank time rows
 *   (16 frames each, 10 ms hop, 25 ms window) overlapping an event × the frequency rows holding the
 *   class's harmonics (mel bin of each harmonic ± 1 bin).
 * Frames are generated in JS and piped raw to ffmpeg (video on stdin, PCM on fd 3); at most
 * `concurrency` (default 2) encoders run at once. Per-clip randomness comes from
 * `Rng.fromSeed(seed).fork(clip id)`, so output does not depend on scheduling; encoders run single
 * threaded with bitexact flags, so the files are byte-identical across runs.
 * Ref: DESIGN.md (embedded default corpus); spec §1 for the timings the ground truth follows.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { modelConfig, tokenGrid, type ModelConfig } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import { frameTimes } from './decode.ts';
import { resolveFfmpeg } from './ffmpeg.ts';

/** Bumped whenever the same options give different clips; part of the corpus cache key. */
export const CORPUS_VERSION = 2;

export const corpusOptionsSchema = z.object({
  out: z.string().min(1),
  /**
   * `continual`: `tasks` tasks of `classes` classes each (the continual protocol's data).
   * `pretrain`: one task of `classes` pre-training classes that share no class with the continual
   * corpus, on textured backgrounds (the backbone and AVM pre-training stages' data).
   */
  kind: z.enum(['continual', 'pretrain']).default('continual'),
  seed: z.number().int().default(2021),
  tasks: z.number().int().positive().default(3),
  /** Classes per task (disjoint across tasks). */
  classes: z.number().int().min(2).default(5),
  /** Training clips per class. */
  train: z.number().int().nonnegative().default(4),
  /** Test clips per class (each with ground truth). */
  test: z.number().int().nonnegative().default(6),
  size: z.enum(['tiny', 'base']).default('tiny'),
  durationSec: z.number().min(1).max(30).default(4),
  fps: z.number().int().min(4).max(30).default(10),
  /** Source frame side; default 96 (tiny) / 288 (base). */
  frameSize: z.number().int().min(32).optional(),
  concurrency: z.number().int().positive().default(2),
});
export type CorpusOptions = z.input<typeof corpusOptionsSchema>;

const SAMPLE_RATE = 16000;
const SHAPES = ['square', 'circle', 'triangle', 'diamond', 'cross'] as const;
type Shape = (typeof SHAPES)[number];
/** Hue steps of the attribute world (a class's hue index picks its colour and its pitch). */
export const WORLD_HUES = 24;

interface ClassSpec {
  name: string;
  shape: Shape;
  /** Hue index in [0, WORLD_HUES). */
  hue: number;
  rgb: [number, number, number];
  f0: number;
  harmonics: number;
  /** Seconds between onsets. */
  interval: number;
  eventSec: number;
}

interface Box { x: number; y: number; w: number; h: number }

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6), f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/**
 * The attribute world both corpus kinds draw their classes from. A class is a (shape, hue) pair and
 * its sound follows from it by fixed rules: pitch from hue (3 octaves over the hue circle), timbre
 * (number of harmonics) and rhythm (onset interval, event length) from shape. Because the rules are
 * shared, what a model learns on the pre-training classes carries over to the continual classes it has
 * never seen, as a pre-trained checkpoint's knowledge carries over to new VGGSound categories.
 */
export function worldClass(name: string, shapeIndex: number, hue: number): ClassSpec {
  const shape = SHAPES[shapeIndex % SHAPES.length];
  const s = SHAPES.indexOf(shape);
  return {
    name,
    shape,
    hue,
    rgb: hsvToRgb(hue / WORLD_HUES, 0.85, 0.95),
    f0: 150 * Math.pow(2, (3 * hue) / WORLD_HUES),
    harmonics: 1 + s,
    interval: 0.3 + 0.1 * s,
    eventSec: 0.12 + 0.02 * (s % 3),
  };
}

/** Hue of continual class g: spread so that classes of one task are far apart on the hue circle. */
const continualHue = (g: number) => (g * 5) % WORLD_HUES;

/** The continual tasks' classes: `tasks` × `classes`, disjoint across tasks. */
export function classSpecs(tasks: number, classes: number): ClassSpec[][] {
  return Array.from({ length: tasks }, (_, task) =>
    Array.from({ length: classes }, (_, k) => {
      const g = task * classes + k;
      return worldClass(`t${task}-${SHAPES[g % SHAPES.length]}-${g}`, g % SHAPES.length, continualHue(g));
    }),
  );
}

/**
 * Pre-training classes: `count` (shape, hue) pairs of the world that no continual class of the
 * default corpus (3 tasks × 5 classes, and any layout up to `reserved` classes) uses, spread over all
 * hues and shapes so the pitch and timbre rules are seen over their whole range.
 */
export function pretrainClassSpecs(count: number, reserved = 15): ClassSpec[] {
  const taken = new Set(Array.from({ length: reserved }, (_, g) => `${g % SHAPES.length}/${continualHue(g)}`));
  const free: Array<[number, number]> = [];
  for (let hue = 0; hue < WORLD_HUES; hue++)
    for (let s = 0; s < SHAPES.length; s++) if (!taken.has(`${s}/${hue}`)) free.push([s, hue]);
  if (count > free.length) throw new RangeError(`pretraining corpus: at most ${free.length} classes are free of the continual classes, asked for ${count}`);
  // Stride through the free pairs so any prefix covers hues and shapes evenly; a stride coprime with
  // their count visits each pair once.
  let stride = 11;
  while (gcd(stride, free.length) !== 1) stride++;
  return Array.from({ length: count }, (_, k) => {
    const [s, hue] = free[(k * stride) % free.length];
    return worldClass(`p-${SHAPES[s]}-h${hue}`, s, hue);
  });
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function inside(shape: Shape, u: number, v: number): boolean {
  // u, v in [-1, 1] relative to the box centre.
  switch (shape) {
    case 'square': return true;
    case 'circle': return u * u + v * v <= 1;
    case 'triangle': return v >= -1 && Math.abs(u) <= (v + 1) / 2;
    case 'diamond': return Math.abs(u) + Math.abs(v) <= 1;
    case 'cross': return Math.abs(u) <= 0.35 || Math.abs(v) <= 0.35;
  }
}

function drawShape(frame: Buffer, side: number, shape: Shape, box: Box, rgb: readonly number[]) {
  const x0 = Math.max(0, Math.floor(box.x)), y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(side, Math.ceil(box.x + box.w)), y1 = Math.min(side, Math.ceil(box.y + box.h));
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      const u = ((x + 0.5 - box.x) / box.w) * 2 - 1, v = ((y + 0.5 - box.y) / box.h) * 2 - 1;
      if (u < -1 || u > 1 || v < -1 || v > 1 || !inside(shape, u, v)) continue;
      const o = (y * side + x) * 3;
      frame[o] = rgb[0]; frame[o + 1] = rgb[1]; frame[o + 2] = rgb[2];
    }
}

const overlaps = (a: Box, b: Box, margin = 0) =>
  a.x < b.x + b.w + margin && b.x < a.x + a.w + margin && a.y < b.y + b.h + margin && b.y < a.y + a.h + margin;

function placeBox(rng: Rng, side: number, size: number, avoid: Box[]): Box {
  for (let attempt = 0; attempt < 50; attempt++) {
    const box = { x: rng.int(side - size), y: rng.int(side - size), w: size, h: size };
    if (!avoid.some((b) => overlaps(box, b, 2))) return box;
  }
  return { x: rng.int(side - size), y: rng.int(side - size), w: size, h: size };
}

const pulsed = (b: Box): Box => ({ x: b.x - b.w / 8, y: b.y - b.h / 8, w: b.w * 1.25, h: b.h * 1.25 });

interface ClipPlan {
  id: string;
  file: string;
  label: string;
  split: 'train' | 'test';
  cls: ClassSpec;
  distractors: { cls: ClassSpec; box: Box }[];
  /** Sounding object's box per position segment (segment j covers [j − 0.5, j + 0.5) s). */
  segments: Box[];
  onsets: number[];
  background: [number, number, number];
  /** Low-contrast stripes over the background (pre-training kind): spatial frequency, angle, phase, amplitude. */
  texture?: { cycles: number; angle: number; phase: number; amplitude: number };
  noiseSeed: number;
}

function planClip(rng: Rng, id: string, file: string, split: 'train' | 'test', cls: ClassSpec, others: ClassSpec[], o: ResolvedCorpusOptions, textured = false): ClipPlan {
  const side = o.frameSize;
  const size = Math.round(side * (0.2 + 0.06 * rng.uniform()));
  const nDistractors = 1 + rng.int(2);
  const pool = others.slice();
  const distractors: ClipPlan['distractors'] = [];
  for (let i = 0; i < nDistractors && pool.length; i++) {
    const dcls = pool.splice(rng.int(pool.length), 1)[0];
    distractors.push({ cls: dcls, box: placeBox(rng, side, Math.round(side * 0.2), distractors.map((d) => d.box)) });
  }
  const segments: Box[] = [];
  for (let j = 0; j <= Math.ceil(o.durationSec); j++) segments.push(placeBox(rng, Math.floor(side - size / 4), size, distractors.map((d) => d.box)));
  for (const s of segments) { s.x += size / 8; s.y += size / 8; } // room for the pulse
  const onsets: number[] = [];
  for (let t = 0.05 + rng.uniform() * 0.2; t < o.durationSec - cls.eventSec; t += cls.interval * (0.9 + 0.2 * rng.uniform())) onsets.push(t);
  const shade = 20 + rng.int(30);
  const plan: ClipPlan = { id, file, label: cls.name, split, cls, distractors, segments, onsets, background: [shade, shade, shade + 10], noiseSeed: rng.nextUint32() };
  if (textured) plan.texture = { cycles: 2 + rng.uniform() * 6, angle: rng.uniform() * Math.PI, phase: rng.uniform() * 2 * Math.PI, amplitude: 6 + rng.int(14) };
  return plan;
}

const segmentAt = (t: number) => Math.floor(t + 0.5);
const pulsing = (plan: ClipPlan, t: number) => plan.onsets.some((on) => t >= on && t < on + plan.cls.eventSec);

function renderVideo(plan: ClipPlan, o: ResolvedCorpusOptions): Buffer {
  const side = o.frameSize, n = Math.round(o.durationSec * o.fps), bytes = side * side * 3;
  const out = Buffer.alloc(n * bytes);
  const background = Buffer.alloc(bytes);
  for (let y = 0, p = 0; y < side; y++)
    for (let x = 0; x < side; x++, p++) {
      let d = 0;
      if (plan.texture) {
        const { cycles, angle, phase, amplitude } = plan.texture;
        d = amplitude * Math.sin((2 * Math.PI * cycles * (x * Math.cos(angle) + y * Math.sin(angle))) / side + phase);
      }
      for (let c = 0; c < 3; c++) background[p * 3 + c] = Math.max(0, Math.min(255, Math.round(plan.background[c] + d)));
    }
  for (let f = 0; f < n; f++) {
    const frame = out.subarray(f * bytes, (f + 1) * bytes);
    background.copy(frame);
    for (const d of plan.distractors) drawShape(frame, side, d.cls.shape, d.box, d.cls.rgb);
    const t = f / o.fps;
    const box = plan.segments[segmentAt(t)];
    if (pulsing(plan, t)) drawShape(frame, side, plan.cls.shape, pulsed(box), plan.cls.rgb.map((c) => Math.round(c + (255 - c) * 0.6)));
    else drawShape(frame, side, plan.cls.shape, box, plan.cls.rgb);
  }
  return out;
}

function renderAudio(plan: ClipPlan, o: ResolvedCorpusOptions): Float32Array {
  const n = Math.round(o.durationSec * SAMPLE_RATE);
  const pcm = new Float32Array(n);
  const noise = Rng.fromSeed(plan.noiseSeed);
  for (let i = 0; i < n; i++) pcm[i] = (noise.uniform() - 0.5) * 0.004;
  const { f0, harmonics, eventSec } = plan.cls;
  for (const on of plan.onsets) {
    const start = Math.round(on * SAMPLE_RATE), len = Math.round(eventSec * SAMPLE_RATE);
    for (let i = 0; i < len && start + i < n; i++) {
      const t = i / SAMPLE_RATE;
      const env = Math.min(1, i / 80) * Math.exp(-t / (eventSec / 3));
      let s = 0;
      for (let h = 1; h <= harmonics; h++) if (h * f0 < SAMPLE_RATE / 2) s += Math.sin(2 * Math.PI * h * f0 * t) / h;
      pcm[start + i] += 0.4 * env * s;
    }
  }
  return pcm;
}

const melOf = (f: number) => 1127 * Math.log(1 + f / 700);

function groundTruth(plan: ClipPlan, o: ResolvedCorpusOptions, cfg: ModelConfig) {
  const grid = tokenGrid(cfg), P = cfg.patchSize, S = cfg.imageSize, scale = S / o.frameSize;
  const times = frameTimes(o.durationSec, cfg.numFrames, 'eval');
  const frames = times.map((timeSec, t) => {
    const box = pulsed(plan.segments[segmentAt(timeSec)]);
    const d = { x: box.x * scale, y: box.y * scale, w: box.w * scale, h: box.h * scale };
    const videoPatches: number[] = [];
    for (let r = 0; r < grid.side; r++)
      for (let c = 0; c < grid.side; c++) {
        const ox = Math.max(0, Math.min(d.x + d.w, (c + 1) * P) - Math.max(d.x, c * P));
        const oy = Math.max(0, Math.min(d.y + d.h, (r + 1) * P) - Math.max(d.y, r * P));
        if (ox * oy >= 0.1 * P * P) videoPatches.push(t * grid.side * grid.side + r * grid.side + c);
      }
    return { index: t, timeSec, box, decodedBox: d, videoPatches };
  });
  // Audio: fbank frame r covers samples [160 r, 160 r + 400).
  const timeRows = new Set<number>();
  for (const on of plan.onsets) {
    const a = on * SAMPLE_RATE, b = (on + plan.cls.eventSec) * SAMPLE_RATE;
    for (let r = Math.max(0, Math.floor((a - 400) / 160)); r * 160 < b && r < cfg.audioFrames; r++) {
      if (r * 160 + 400 > a) timeRows.add(Math.floor(r / P));
    }
  }
  const mLow = melOf(20), delta = (melOf(8000) - mLow) / (cfg.melBins + 1);
  const freqRows = new Set<number>();
  for (let h = 1; h <= plan.cls.harmonics; h++) {
    const f = h * plan.cls.f0;
    if (f >= 8000) break;
    const bin = Math.round((melOf(f) - mLow) / delta - 1);
    for (const b of [bin - 1, bin, bin + 1]) if (b >= 0 && b < cfg.melBins) freqRows.add(Math.floor(b / P));
  }
  const audioPatches: number[] = [];
  for (const t of [...timeRows].sort((x, y) => x - y)) for (const f of [...freqRows].sort((x, y) => x - y)) audioPatches.push(t * grid.freqPatches + f);
  return {
    label: plan.label,
    config: cfg.name,
    imageSize: S,
    sourceSize: o.frameSize,
    patchSize: P,
    grid: { side: grid.side, timePatches: grid.timePatches, freqPatches: grid.freqPatches },
    frames,
    videoPatches: frames.flatMap((f) => f.videoPatches),
    audioEvents: plan.onsets.map((onsetSec) => ({ onsetSec, durationSec: plan.cls.eventSec })),
    audioPatches,
  };
}

async function encodeClip(ffmpegPath: string, plan: ClipPlan, o: ResolvedCorpusOptions): Promise<void> {
  const video = renderVideo(plan, o), audio = renderAudio(plan, o);
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${o.frameSize}x${o.frameSize}`, '-r', String(o.fps), '-i', 'pipe:0',
    '-f', 'f32le', '-ar', String(SAMPLE_RATE), '-ac', '1', '-i', 'pipe:3',
    '-map', '0:v', '-map', '1:a', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-flags:a', '+bitexact',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', '-pix_fmt', 'yuv420p', '-threads', '1',
    '-c:a', 'aac', '-b:a', '96k', '-movflags', '+faststart', plan.file,
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const ignoreEpipe = (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') reject(e); };
    child.stdin!.on('error', ignoreEpipe);
    const pcmPipe = child.stdio[3] as import('node:stream').Writable;
    pcmPipe.on('error', ignoreEpipe);
    child.stdin!.end(video);
    pcmPipe.end(Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength));
    child.on('error', reject);
    child.on('close', (code) => code === 0 ? resolve() : reject(new Error(`ffmpeg failed encoding ${plan.file}: ${stderr.trim() || `exit ${code}`}`)));
  });
}

type ResolvedCorpusOptions = z.output<typeof corpusOptionsSchema> & { frameSize: number };

/** Writes the corpus under `options.out`; returns the folder and the manifest path. */
export async function generateCorpus(options: CorpusOptions, onProgress?: (done: number, total: number) => void): Promise<{ dir: string; manifestPath: string }> {
  const parsed = corpusOptionsSchema.parse(options);
  const pretrain = parsed.kind === 'pretrain';
  if (pretrain && parsed.tasks !== 1 && options.tasks !== undefined) throw new RangeError(`pretraining corpus: it is one task of ${parsed.classes} classes; 'tasks' must be 1, got ${parsed.tasks}`);
  const o: ResolvedCorpusOptions = { ...parsed, frameSize: parsed.frameSize ?? (parsed.size === 'tiny' ? 96 : 288) };
  const cfg = modelConfig(o.size);
  const dir = path.resolve(o.out);
  const root = Rng.fromSeed(o.seed);
  const specs = pretrain ? [pretrainClassSpecs(o.classes)] : classSpecs(o.tasks, o.classes);
  const plans: ClipPlan[] = [];
  const manifest = { seed: o.seed, source: pretrain ? 'synthetic-pretrain' : 'synthetic', tasks: [] as unknown[] };
  for (let task = 0; task < specs.length; task++) {
    const name = pretrain ? 'pretrain' : `task${task}`;
    await mkdir(path.join(dir, name, 'train'), { recursive: true });
    await mkdir(path.join(dir, name, 'test'), { recursive: true });
    const entry = { name, classes: specs[task].map((c) => c.name), train: [] as unknown[], test: [] as unknown[] };
    for (const split of ['train', 'test'] as const) {
      for (const [k, cls] of specs[task].entries()) {
        for (let i = 0; i < (split === 'train' ? o.train : o.test); i++) {
          const id = `${name}/${split}/${cls.name}-${i}`;
          const rel = `${id}.mp4`;
          const plan = planClip(root.fork(id), id, path.join(dir, rel), split, cls, specs[task].filter((_, j) => j !== k), o, pretrain);
          plans.push(plan);
          if (split === 'train') entry.train.push({ path: rel, label: cls.name });
          else entry.test.push({ path: rel, label: cls.name, groundTruth: `${id}.gt.json` });
        }
      }
    }
    manifest.tasks.push(entry);
  }
  const { path: ffmpegPath } = await resolveFfmpeg();
  let next = 0, done = 0;
  const worker = async () => {
    while (next < plans.length) {
      const plan = plans[next++];
      await encodeClip(ffmpegPath, plan, o);
      onProgress?.(++done, plans.length);
      if (plan.split === 'test') {
        await writeFile(path.join(dir, `${plan.id}.gt.json`), JSON.stringify(groundTruth(plan, o, cfg), null, 1) + '\n');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, plans.length) }, worker));
  const manifestPath = path.join(dir, 'manifest.json');
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return { dir, manifestPath };
}
