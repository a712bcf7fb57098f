/**
 * Small fakes for graph tests, injected through the container. Synthetic media encode their own
 * clip index (value = index + position / 1e6), so outputs can be checked by eye and by test.
 */
import * as tf from '@tensorflow/tfjs';
import { MODEL_CONFIGS, tokenGrid, type ModelConfig } from '../../src/core/config.ts';
import { patchifyAudio, patchifyVideo } from '../../src/media/patchify.ts';
import type { Batch } from '../../src/method/items.ts';
import type { TaskEnd } from '../../src/media/items.ts';
import type { Decoder, DecodedMedia, ManifestLoader, ManifestRow, Tokenizer } from '../../src/media/roles.ts';
import type { Evaluator, Trainer } from '../../src/method/roles.ts';
import { stagesModule } from '../../src/graph/stage.ts';
import mediaModule from '../../src/media/media-module.ts';
import { METHOD_STAGES } from '../../src/method/method-module.ts';
import { EVAL_STAGES } from '../../src/eval/eval-module.ts';

export const TINY: ModelConfig = MODEL_CONFIGS.tiny;

/**
 * STELLA's stages and the media roles' defaults, without the method's and eval's services (run
 * session, selectors, trainer, evaluator): with `loadAreaModules: false`, tests bind fakes for those.
 */
export const stellaStagesOnly = [mediaModule, stagesModule([...METHOD_STAGES, ...EVAL_STAGES])];

export function manifestRows(tasks: Record<string, number>, split = 'train'): ManifestRow[] {
  return Object.entries(tasks).flatMap(([task, n]) =>
    Array.from({ length: n }, (_, i) => ({ path: `/data/${task}/clip-${i}.mp4`, label: `${task}-label`, task, split })),
  );
}

export const fakeManifest = (rows: ManifestRow[]): ManifestLoader => ({ load: async () => rows });

/**
 * Decodes `/data/<task>/clip-<i>.mp4` into arrays that encode i; paths containing 'bad' fail.
 * Each decode takes `delayMs`; one whose path `held` accepts never finishes unless aborted.
 */
export class FakeDecoder implements Decoder {
  active = 0;
  maxActive = 0;
  aborted = 0;
  constructor(private readonly delayMs = 1, private readonly held: (path: string) => boolean = () => false) {}
  async decode(path: string, request: { config: ModelConfig }, signal?: AbortSignal): Promise<DecodedMedia> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = this.held(path) ? undefined : setTimeout(resolve, this.delayMs);
        signal?.addEventListener('abort', () => { clearTimeout(timer); this.aborted++; reject(new Error('aborted')); });
      });
      if (path.includes('bad')) throw new Error(`ffmpeg exited with code 1 for ${path}`);
      const c = request.config;
      const index = Number(/clip-(\d+)/.exec(path)?.[1] ?? 0);
      const video = new Float32Array(c.numFrames * 3 * c.imageSize * c.imageSize).map((_, k) => index + k / 1e6);
      const fbank = new Float32Array(c.audioFrames * c.melBins).map((_, k) => -index - k / 1e6);
      return { path, video, fbank, info: { index } };
    } finally {
      this.active--;
    }
  }
}

/** The real patch layout (src/media/patchify.ts), standing in for media's tokenizeClip. */
export const patchTokenizer: Tokenizer = {
  tokenize(decoded, c) {
    return {
      videoPatches: patchifyVideo(decoded.video, c.numFrames, c.imageSize, c.imageSize),
      audioPatches: patchifyAudio(decoded.fbank, c.audioFrames, c.melBins),
    };
  },
};

/** Records batches; loss = mean of the video tensor. Optional delay per step. */
export class FakeTrainer implements Trainer {
  readonly seen: Array<{ task: number; size: number; indices: number[]; selector?: string }> = [];
  inStep = 0;
  completedSteps = 0;
  constructor(private readonly delayMs = 0) {}
  async step(batch: Batch, context: { step: number; selector?: { name: string } }) {
    this.inStep++;
    const loss = tf.tidy(() => batch.video.mean().dataSync()[0]);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.seen.push({ task: batch.task, size: batch.clips.length, indices: batch.clips.map((c) => c.index), selector: context.selector?.name });
    this.inStep--;
    this.completedSteps++;
    return { losses: { total: loss } };
  }
}

export class FakeEvaluator implements Evaluator {
  readonly calls: Array<{ task: number; step: number }> = [];
  async evaluate(taskEnd: TaskEnd, context: { step: number }) {
    this.calls.push({ task: taskEnd.task, step: context.step });
    return { r1: 0.5 + taskEnd.task / 10 };
  }
}

export const grid = tokenGrid(TINY);
