/**
 * `stella inspect CLIP --checkpoint DIR | --weights FILE`: what the model attends to in one clip.
 *
 * Behaviour: loads the model weights, decodes CLIP in eval mode (spec §9.2 transforms), computes the
 * localized patch importance I_v / I_a (Mode A → Mode B → AVM inferAttention, spec §5.2 (1)–(2)) and
 * STELLA's first-step selection (the K_v / K_a most important patches, spec §5.2 (4)), and writes
 *   OUT/<clip-name>.frames.png       the frames, then the same frames with the importance heat overlay
 *                                    and the selected patches outlined;
 *   OUT/<clip-name>.spectrogram.png  the log-mel spectrogram, likewise.
 * Prints the two paths (or, with --json, an object with the paths and the selection).
 *
 * Weights: `--checkpoint DIR` uses the newest valid checkpoint under DIR (core/checkpoint.ts); its
 * blob `weights.safetensors` holds the safetensors bytes of `ModelService.weights()` and its state's
 * `config.model` names the model config. `--weights FILE` reads a safetensors file directly (its
 * metadata `config`, as `ModelService.saveWeights` writes it, names the config). `--config tiny|base`
 * is the fallback when neither names one; it must agree when both do.
 * Errors: a missing clip (named), no valid checkpoint (names the directory and why), weights of the
 * wrong shape or missing tensors (the loader names each tensor), undecodable media (MediaError).
 * Ref: spec §5.2 (1)–(2), (4); src/eval/pictures.ts for the pictures.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { initBackend } from '../core/backend.ts';
import { loadLatest } from '../core/checkpoint.ts';
import { MODEL_CONFIGS, modelConfig, type ModelConfig } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import { parseSafetensors, readSafetensors, type NamedTensor } from '../core/safetensors.ts';
import { ContinualEvaluator } from '../eval/evaluator.ts';
import { renderClipPictures } from '../eval/pictures.ts';
import { decodeClip } from '../media/decode.ts';
import { tokenizeClip } from '../media/tokenize.ts';
import { ModelService } from '../model/model-service.ts';
import { helpFooter } from './help.ts';

/** The checkpoint blob that carries the model weights. */
export const WEIGHTS_BLOB = 'weights.safetensors';
const CONFIG_NAMES = Object.keys(MODEL_CONFIGS);

export const inspectOptionsSchema = z
  .object({
    clip: z.string().min(1),
    checkpoint: z.string().min(1).optional(),
    weights: z.string().min(1).optional(),
    config: z.enum(CONFIG_NAMES as [string, ...string[]]).optional(),
    /** Folder for the pictures (created if needed). */
    out: z.string().min(1).default('.'),
  })
  .refine((o) => Boolean(o.checkpoint) !== Boolean(o.weights), { message: 'give exactly one of --checkpoint DIR or --weights FILE' });
export type InspectOptions = z.input<typeof inspectOptionsSchema>;

export interface InspectResult {
  clip: string;
  config: string;
  /** Where the weights came from (the weights file, or the checkpoint's blob path). */
  weights: string;
  frames: string;
  spectrogram: string;
  /** The first-step selection, most important first. */
  selectedVideo: number[];
  selectedAudio: number[];
}

interface LoadedWeights {
  tensors: Map<string, NamedTensor>;
  source: string;
  /** Config named by the weights' origin, if any. */
  configName?: string;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** The config name a checkpoint state records: `config.model` as a name, or a config object's `name`. */
function configNameOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { name?: unknown }).name === 'string') return (value as { name: string }).name;
  return undefined;
}

async function readWeights(o: z.output<typeof inspectOptionsSchema>): Promise<LoadedWeights> {
  if (o.weights) {
    if (!(await exists(o.weights))) throw new Error(`inspect: weights file not found: ${o.weights}`);
    const { tensors, metadata } = readSafetensors(o.weights);
    let configName: string | undefined;
    try {
      configName = metadata.config ? configNameOf(JSON.parse(metadata.config)) : undefined;
    } catch {
      configName = undefined; // metadata written by other tools need not be JSON
    }
    return { tensors, source: o.weights, configName };
  }
  const dir = o.checkpoint!;
  const ckpt = await loadLatest(dir, { onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
  const blob = ckpt.blobs[WEIGHTS_BLOB];
  const source = path.join(ckpt.path, WEIGHTS_BLOB);
  if (!blob) throw new Error(`inspect: checkpoint ${ckpt.path} has no '${WEIGHTS_BLOB}' blob (blobs: ${Object.keys(ckpt.blobs).join(', ') || 'none'})`);
  const state = ckpt.state.config as { model?: unknown } | undefined;
  return { tensors: parseSafetensors(blob, source).tensors, source, configName: configNameOf(state?.model) };
}

function resolveConfig(fromWeights: string | undefined, fromFlag: string | undefined, source: string): ModelConfig {
  if (fromWeights && fromFlag && fromWeights !== fromFlag) {
    throw new Error(`inspect: ${source} was saved with the '${fromWeights}' config but --config says '${fromFlag}'`);
  }
  const name = fromWeights ?? fromFlag;
  if (!name) throw new Error(`inspect: ${source} does not say which model config it holds; pass --config ${CONFIG_NAMES.join('|')}`);
  return modelConfig(name);
}

export async function inspectClip(options: InspectOptions): Promise<InspectResult> {
  const parsed = inspectOptionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(`inspect: ${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  if (!(await exists(o.clip))) throw new Error(`inspect: clip not found: ${o.clip}`);
  const weights = await readWeights(o);
  const config = resolveConfig(weights.configName, o.config, weights.source);
  await initBackend();
  const model = new ModelService({ config, rng: Rng.fromSeed('inspect') });
  try {
    model.loadTensors(weights.tensors, { source: weights.source });
    const decoded = await decodeClip(o.clip, { config, mode: 'eval' });
    const { videoPatches, audioPatches } = tokenizeClip(decoded, config);
    const clip = { path: o.clip, label: '', task: '', taskIndex: 0, videoPatches, audioPatches };
    const [scores] = new ContinualEvaluator({ config, testSet: [clip], batchSize: 1 }).importanceFor(model);
    const { framesPng, spectrogramPng } = renderClipPictures({
      path: o.clip,
      frames: decoded.video,
      frameShape: [config.numFrames, config.imageSize, config.imageSize],
      fbank: decoded.fbank,
      fbankShape: [config.audioFrames, config.melBins],
      patch: config.patchSize,
      videoImportance: scores.importanceV,
      audioImportance: scores.importanceA,
      videoSelected: scores.selectedV,
      audioSelected: scores.selectedA,
    });
    await mkdir(o.out, { recursive: true });
    const base = path.join(o.out, path.basename(o.clip, path.extname(o.clip)));
    const frames = `${base}.frames.png`, spectrogram = `${base}.spectrogram.png`;
    await writeFile(frames, framesPng);
    await writeFile(spectrogram, spectrogramPng);
    return {
      clip: o.clip, config: config.name, weights: weights.source, frames, spectrogram,
      selectedVideo: [...scores.selectedV], selectedAudio: [...scores.selectedA],
    };
  } finally {
    model.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what the model attends to in one clip: importance heat maps and the selected patches as PNGs')
    .argument('<clip>', 'media file (video with audio)')
    .option('--checkpoint <dir>', `a run folder or its checkpoints/ folder (newest valid checkpoint; blob ${WEIGHTS_BLOB})`)
    .option('--weights <file>', 'model weights as a .safetensors file (instead of --checkpoint)')
    .addOption(new Option('--config <name>', 'model config when the weights do not name one').choices(CONFIG_NAMES))
    .option('--out <dir>', 'folder for <clip-name>.frames.png and <clip-name>.spectrogram.png', '.')
    .option('--json', 'print { clip, config, weights, frames, spectrogram, selectedVideo, selectedAudio } as JSON')
    .addHelpText('after', helpFooter(
      ['stella inspect data/synth/task0/test/t0-square-0-0.mp4 --checkpoint runs/small --out pictures   # after the `stella run --help` examples',
        'stella inspect data/synth/task0/test/t0-circle-1-0.mp4 --weights runs/small/weights.safetensors --config tiny --json'],
      '0 pictures written, 1 the clip or weights could not be read, 2 usage error (e.g. both or neither of --checkpoint/--weights)',
    ))
    .action(async (clip: string, opts: { checkpoint?: string; weights?: string; config?: string; out: string; json?: boolean }) => {
      if (Boolean(opts.checkpoint) === Boolean(opts.weights)) throw new InvalidArgumentError('give exactly one of --checkpoint DIR or --weights FILE');
      const r = await inspectClip({ clip, checkpoint: opts.checkpoint, weights: opts.weights, config: opts.config, out: opts.out });
      if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else process.stdout.write(`${r.frames}\n${r.spectrogram}\n`);
    });
}
