/**
 * The retrieval/localisation test set: every test clip of every task, decoded and tokenised once.
 *
 * Behaviour: walks `manifest.tasks[*].test` in manifest order, decodes each clip in eval mode
 * (spec §9.2: 'middle' window, eval transforms, no noise), tokenises it, and reads its ground-truth
 * JSON when the manifest names one. At most `concurrency` clips are decoded at once. A clip that
 * fails to decode or tokenise is left out and reported in `errors` (`{path, stage, message}`); a bad
 * ground-truth file is reported (stage 'ground-truth') but the clip stays in for retrieval, without
 * ground truth. The result keeps manifest order whatever order decodes finish in.
 *
 * Inputs: a `Manifest` (loadManifest), the model config (token grid), options below.
 * Output: `{ clips: TestClip[], errors }`. `TestClip.videoPatches` is [Lv, 3·P·P], `audioPatches`
 * [La, P·P] (tokenize.ts layouts). `frames` ([T,3,S,S]) and `fbank` ([audioFrames, melBins]) are kept
 * only for the first `keepMediaPerTask` clips of each task (report pictures). `groundTruth.video`
 * [Lv] / `.audio` [La] hold 1 on the sounding-object patches (corpus.ts `*.gt.json`: `videoPatches`
 * token ids t·side² + row·side + col, `audioPatches` token ids t·F + f, `grid` {side, timePatches,
 * freqPatches}); a grid different from the config's is an error naming the file.
 * Options: `concurrency` (2), `keepMediaPerTask` (2), `cache` (false; `true` or a folder: decoded
 * clips are stored in the decoded cache and read back by later runs, bit for bit the same clips;
 * misses decode eight files per ffmpeg run; src/media/decoded-cache.ts `decodeEvalClips`), `signal`
 * (abort: rejects with the AbortError; nothing is collected as a clip error).
 * Ref: spec §9.2 (data), §5.2 (2) (what the ground truth is scored against).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { tokenGrid, type ModelConfig } from '../core/config.ts';
import { decodeClip, type DecodedClip } from '../media/decode.ts';
import { decodeEvalClips, WARM_BATCH } from '../media/decoded-cache.ts';
import { abortError } from '../media/media-error.ts';
import type { Manifest } from '../media/manifest.ts';
import { tokenizeClip } from '../media/tokenize.ts';

export interface ClipGroundTruth {
  /** [Lv]: 1 = patch covered by the sounding object. */
  video: Uint8Array;
  /** [La]: 1 = patch holding the sounding object's events. */
  audio: Uint8Array;
}

export interface TestClip {
  path: string;
  label: string;
  /** Task name (the retrieval category). */
  task: string;
  taskIndex: number;
  /** [Lv, 3·P·P] row-major. */
  videoPatches: Float32Array;
  /** [La, P·P] row-major. */
  audioPatches: Float32Array;
  /** [T, 3, S, S] ImageNet-normalised; only for the first clips of each task. */
  frames?: Float32Array;
  /** [audioFrames, melBins] normalised log-mel; only with `frames`. */
  fbank?: Float32Array;
  groundTruth?: ClipGroundTruth;
}

export interface TestSetError {
  path: string;
  stage: string;
  message: string;
}

export interface TestSet {
  clips: TestClip[];
  errors: TestSetError[];
}

export const testSetOptionsSchema = z.object({
  /** Decodes at once: clips without the cache (one ffmpeg process each), groups of WARM_BATCH clips with it. */
  concurrency: z.number().int().positive().default(2),
  /** The decoded cache: false, true (`.cache/decoded/`) or a folder. */
  cache: z.union([z.boolean(), z.string().min(1)]).default(false),
  /** Clips per task whose decoded frames and fbank are kept for pictures. */
  keepMediaPerTask: z.number().int().nonnegative().default(2),
});
export type TestSetOptions = z.input<typeof testSetOptionsSchema> & { signal?: AbortSignal };

const groundTruthSchema = z.looseObject({
  patchSize: z.number().int().positive().optional(),
  grid: z.object({ side: z.number().int(), timePatches: z.number().int(), freqPatches: z.number().int() }),
  frames: z.array(z.unknown()).optional(),
  videoPatches: z.array(z.number().int()),
  audioPatches: z.array(z.number().int()),
});

/** Reads one `*.gt.json` and turns its token ids into 0/1 masks at the config's grid. */
export async function readGroundTruth(file: string, config: ModelConfig): Promise<ClipGroundTruth> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read ground truth (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const parsed = groundTruthSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: not a ground-truth file: ${z.prettifyError(parsed.error)}`);
  const gt = parsed.data;
  const grid = tokenGrid(config);
  const want = { side: grid.side, timePatches: grid.timePatches, freqPatches: grid.freqPatches };
  const mismatch =
    gt.grid.side !== want.side || gt.grid.timePatches !== want.timePatches || gt.grid.freqPatches !== want.freqPatches ||
    (gt.patchSize !== undefined && gt.patchSize !== config.patchSize) ||
    (gt.frames !== undefined && gt.frames.length !== config.numFrames);
  if (mismatch) {
    throw new Error(
      `${file}: ground-truth grid (side ${gt.grid.side}, ${gt.grid.timePatches} time × ${gt.grid.freqPatches} freq patches` +
        `${gt.patchSize !== undefined ? `, patch ${gt.patchSize}` : ''}${gt.frames ? `, ${gt.frames.length} frames` : ''}) does not match the ` +
        `'${config.name}' config (side ${want.side}, ${want.timePatches} × ${want.freqPatches}, patch ${config.patchSize}, ${config.numFrames} frames); ` +
        `regenerate the corpus for this config`,
    );
  }
  const mask = (ids: number[], length: number, field: string) => {
    const out = new Uint8Array(length);
    for (const id of ids) {
      if (id < 0 || id >= length) throw new Error(`${file}: ${field} holds token id ${id}, outside [0, ${length})`);
      out[id] = 1;
    }
    return out;
  };
  return { video: mask(gt.videoPatches, grid.videoTokens, 'videoPatches'), audio: mask(gt.audioPatches, grid.audioTokens, 'audioPatches') };
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function loadTestSet(manifest: Manifest, config: ModelConfig, options: TestSetOptions = {}): Promise<TestSet> {
  const { concurrency, keepMediaPerTask, cache } = testSetOptionsSchema.parse(options);
  const { signal } = options;
  const entries = manifest.tasks.flatMap((task, taskIndex) =>
    task.test.map((clip, k) => ({ ...clip, task: task.name, taskIndex, keepMedia: k < keepMediaPerTask })),
  );
  const slots: (TestClip | undefined)[] = new Array(entries.length);
  const errorSlots: TestSetError[][] = entries.map(() => []);
  // Work goes out in groups: one clip per decode without the cache, WARM_BATCH (one ffmpeg run for the misses) with it.
  const group = cache ? WARM_BATCH : 1;
  const decodeGroup = async (indices: number[]): Promise<(DecodedClip | Error)[]> => {
    if (cache) return decodeEvalClips(indices.map((i) => entries[i].path), { config, cache }, signal);
    return [await decodeClip(entries[indices[0]].path, { config, mode: 'eval' }, signal).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))];
  };
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      if (signal?.aborted) throw abortError(signal);
      const indices = Array.from({ length: Math.min(group, entries.length - next) }, (_, k) => next + k);
      next += indices.length;
      const decodedGroup = await decodeGroup(indices);
      if (signal?.aborted) throw abortError(signal);
      for (const [k, index] of indices.entries()) await collect(index, decodedGroup[k]);
    }
  };
  const collect = async (index: number, decoded: DecodedClip | Error) => {
    const entry = entries[index];
    const fail = (stage: string, e: unknown) => errorSlots[index].push({ path: entry.path, stage, message: messageOf(e) });
    if (decoded instanceof Error) {
      fail('decode', decoded);
      return;
    }
    let patches;
    try {
      patches = tokenizeClip(decoded, config);
    } catch (e) {
      fail('tokenize', e);
      return;
    }
    let groundTruth: ClipGroundTruth | undefined;
    if (entry.groundTruth) {
      try {
        groundTruth = await readGroundTruth(entry.groundTruth, config);
      } catch (e) {
        fail('ground-truth', e);
      }
    }
    slots[index] = {
      path: entry.path,
      label: entry.label,
      task: entry.task,
      taskIndex: entry.taskIndex,
      videoPatches: patches.videoPatches,
      audioPatches: patches.audioPatches,
      ...(entry.keepMedia ? { frames: decoded.video, fbank: decoded.fbank } : {}),
      ...(groundTruth ? { groundTruth } : {}),
    };
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.ceil(entries.length / group)) }, worker));
  return { clips: slots.filter((c): c is TestClip => c !== undefined), errors: errorSlots.flat() };
}
