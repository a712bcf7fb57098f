/**
 * Step-timing core shared by `stella bench step` and selector benchmarks.
 *
 * A *step selector* builds one training step over a ModelService (`full` = the Mode-C finetune step:
 * random masking, MAE audio + video + contrastive, all backbone parameters). Other selectors
 * register themselves by name with `registerStepSelector`. `benchStep` runs warm-up steps, then
 * times `steps` steps and reports the median, throughput, achieved GFLOP/s (analytic FLOPs of
 * forward + backward ≈ 3 × forward), peak tensor bytes and peak RSS.
 * Ref: DESIGN.md "Speed notes"; spec Appendix A.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';
import { tokenGrid } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import { ModelService } from './model-service.ts';

export interface StepContext {
  service: ModelService;
  config: ModelConfig;
  batch: number;
  rng: Rng;
  /** Call at the point of the step where activations peak (end of the forward). */
  notePeak(): void;
}

export interface StepRunner {
  /** One optimisation step; returns the loss. */
  step(): number;
  /** Analytic FLOPs of one step (forward + backward). */
  flopsPerStep: number;
  dispose(): void;
}

export type StepSelectorFactory = (ctx: StepContext) => StepRunner;

const selectors = new Map<string, StepSelectorFactory>();

export function registerStepSelector(name: string, factory: StepSelectorFactory): void {
  selectors.set(name, factory);
}

export function stepSelectorNames(): string[] {
  return [...selectors.keys()].sort();
}

/** Forward FLOPs of one pre-norm block on `tokens` tokens per row (linears + attention products). */
export function blockFlops(batch: number, tokens: number, dim: number, mlpRatio: number): number {
  const linears = 2 * batch * tokens * dim * dim * (4 + 2 * mlpRatio);
  const attention = 2 * 2 * batch * tokens * tokens * dim;
  return linears + attention;
}

/** Forward FLOPs of a Mode-C training forward (spec §3.4). */
export function maeRandomForwardFlops(c: ModelConfig, batch: number): number {
  const g = tokenGrid(c);
  const d = c.embedDim, dd = c.decoderDim, shared = c.depth - c.modalityDepth;
  const nA = g.visibleAudio, nV = g.visibleVideo;
  let f = 2 * batch * (g.audioTokens * g.audioPatchDim + g.videoTokens * g.videoPatchDim) * d;
  f += c.modalityDepth * (blockFlops(batch, nA, d, c.mlpRatio) + blockFlops(batch, nV, d, c.mlpRatio));
  f += shared * (blockFlops(batch, nA, d, c.mlpRatio) + blockFlops(batch, nV, d, c.mlpRatio) + blockFlops(batch, nA + nV, d, c.mlpRatio));
  f += 2 * batch * (nA + nV) * d * dd;
  f += c.decoderDepth * (blockFlops(batch, g.audioTokens, dd, c.mlpRatio) + blockFlops(batch, g.videoTokens, dd, c.mlpRatio));
  f += 2 * batch * (g.audioTokens * dd * g.audioPatchDim + g.videoTokens * dd * g.videoPatchDim);
  return f;
}

registerStepSelector('full', (ctx) => {
  const g = tokenGrid(ctx.config);
  const b = ctx.batch;
  const video = tf.tensor3d(ctx.rng.fillUniform(new Float32Array(b * g.videoTokens * g.videoPatchDim)), [b, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(ctx.rng.fillUniform(new Float32Array(b * g.audioTokens * g.audioPatchDim)), [b, g.audioTokens, g.audioPatchDim]);
  const loss = () => {
    const f = ctx.service.backbone.maeRandom(video, audio);
    ctx.notePeak();
    return tf.addN([f.maeAudioLoss, f.maeVideoLoss, f.contrastiveLoss]) as tf.Scalar;
  };
  return {
    step: () => ctx.service.trainStep(loss, 'backbone'),
    flopsPerStep: 3 * maeRandomForwardFlops(ctx.config, b),
    dispose: () => { video.dispose(); audio.dispose(); },
  };
});

export interface BenchOptions {
  config: ModelConfig;
  selector: string;
  steps: number;
  batch: number;
  naive: boolean;
  warmup?: number;
  seed?: number;
}

export interface BenchResult {
  config: string;
  selector: string;
  batch: number;
  naive: boolean;
  steps: number;
  stepMs: number[];
  medianMs: number;
  samplesPerSecond: number;
  gflops: number;
  flopsPerStep: number;
  peakTensorBytes: number;
  peakRssBytes: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A prepared benchmark: `run(n)` times n more steps (lets callers interleave variants). */
export function prepareBench(o: BenchOptions): { run(n: number): number[]; flopsPerStep: number; peakTensorBytes(): number; dispose(): void } {
  const factory = selectors.get(o.selector);
  if (!factory) throw new Error(`bench: unknown selector '${o.selector}' (known: ${stepSelectorNames().join(', ')})`);
  const rng = Rng.fromSeed(o.seed ?? 2021);
  const service = new ModelService({ config: o.config, rng: rng.fork('model'), fastMatmul: !o.naive });
  let peak = 0;
  const runner = factory({ service, config: o.config, batch: o.batch, rng: rng.fork('data'), notePeak: () => { peak = Math.max(peak, tf.memory().numBytes); } });
  for (let i = 0; i < (o.warmup ?? 1); i++) runner.step();
  return {
    run(n) {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        runner.step();
        times.push(performance.now() - t0);
      }
      return times;
    },
    flopsPerStep: runner.flopsPerStep,
    peakTensorBytes: () => peak,
    dispose() { runner.dispose(); service.dispose(); },
  };
}

export function summarize(o: BenchOptions, stepMs: number[], flopsPerStep: number, peakTensorBytes: number): BenchResult {
  const medianMs = median(stepMs);
  return {
    config: o.config.name, selector: o.selector, batch: o.batch, naive: o.naive, steps: stepMs.length, stepMs,
    medianMs, samplesPerSecond: (o.batch * 1000) / medianMs, gflops: flopsPerStep / medianMs / 1e6, flopsPerStep,
    peakTensorBytes, peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

export function benchStep(o: BenchOptions): BenchResult {
  const bench = prepareBench(o);
  try {
    const times = bench.run(o.steps);
    return summarize(o, times, bench.flopsPerStep, bench.peakTensorBytes());
  } finally {
    bench.dispose();
  }
}
