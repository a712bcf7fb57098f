/**
 * Step-timing core shared by `stella bench step` and the selector benchmarks.
 *
 * A *step selector* is a named factory of one training step with its own model (`full` here = the
 * Mode-C finetune step: random masking, MAE audio + video + contrastive, all backbone parameters;
 * src/cli/bench.ts registers every strategy and plugin selector through StrategyTrainer). Register more
 * with `registerStepSelector(name, factory)`.
 *
 *   prepareBench(options)            builds the runner and runs `warmup` (default 2) untimed steps
 *   benchStep(options)               → BenchResult over `steps` timed steps
 *   benchSideBySide(variants, steps) → BenchResult[]: one step of each per round, order rotating
 *
 * BenchResult: median step ms, samples/s (current rows), achieved GFLOP/s (analytic forward + backward
 * FLOPs ≈ 3 × forward, where the selector gives a count), rows trained per step (current + replay),
 * peak tensor bytes (true high-water mark within a step via `measurePeakBytes`, net of other models
 * in the process), resident tensor bytes, replay-buffer bytes and process peak RSS.
 * Ref: DESIGN.md "Speed notes"; spec Appendix A; docs/benchmarks.md "Model step", "Selectors".
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';
import { tokenGrid } from '../core/config.ts';
import { assertTrainingFitsBackend } from '../core/backend-limits.ts';
import { Rng } from '../core/rng.ts';
import { ModelService } from './model-service.ts';

export interface StepContext {
  config: ModelConfig;
  batch: number;
  /** Draws for the runner's data and model (a fork per selector; the same seed gives the same runs). */
  rng: Rng;
  /** Plain tfjs matmuls instead of the fast path. */
  naive: boolean;
}

/** What one step trained on (rows = current + replay rows in the training forward). */
export interface StepInfo {
  rows: number;
  replayed: number;
  /** Analytic FLOPs of this step when they depend on the rows trained (overrides flopsPerStep). */
  flops?: number;
}

export interface StepRunner {
  /** One optimisation step. Every tensor it creates is gone when it returns, except resident state. */
  step(): StepInfo;
  /** Analytic FLOPs of one step (forward + backward); undefined when no count is written down. */
  flopsPerStep?: number;
  /** Why FLOPs are omitted (shown instead of GFLOP/s). */
  flopsNote?: string;
  /** Bytes of the replay buffer (typed arrays, outside tfjs), 0 without one. */
  bufferBytes(): number;
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

/** What `measurePeakBytes` saw while its function ran. */
export interface PeakBytes<T> {
  result: T;
  /** tf.memory().numBytes: every live tensor handle counted at its size (views and shared saves again). */
  peakBytes: number;
  startBytes: number;
  endBytes: number;
  /**
   * Bytes of distinct backing buffers (tfjs data ids), as rises above the start: a reshape, a shared
   * save or an incRef'd clone holds no memory of its own and is not counted again. The highest rise,
   * and the net change at the end.
   */
  heldRise: number;
  heldNet: number;
}

/**
 * High-water marks while `fn` runs, of `tf.memory().numBytes` and of the bytes of distinct buffers.
 * tfjs raises both only when it tracks a new tensor (engine.trackTensor; a buffer is new when its data
 * id is not yet known) and lowers the second when it drops a data id (engine.removeDataId), so hooks
 * there see every maximum, between kernels included, for one comparison per tensor. Nested calls are
 * refused.
 */
export function measurePeakBytes<T>(fn: () => T): PeakBytes<T> {
  type Info = { bytes: number; backend: unknown };
  const engine = tf.engine() as unknown as {
    trackTensor: (t: tf.Tensor, backend: unknown) => void;
    removeDataId: (dataId: object, backend: unknown) => void;
    state: { numBytes: number; tensorInfo: WeakMap<object, Info> };
  };
  const own = Object.prototype.hasOwnProperty.call(engine, 'trackTensor');
  if (own) throw new Error('measurePeakBytes: already measuring (nested calls are not supported)');
  const { trackTensor, removeDataId } = engine;
  const startBytes = engine.state.numBytes;
  let peakBytes = startBytes, held = 0, heldRise = 0;
  engine.trackTensor = function (this: typeof engine, t, backend) {
    const fresh = !this.state.tensorInfo.has(t.dataId);
    trackTensor.call(this, t, backend);
    if (this.state.numBytes > peakBytes) peakBytes = this.state.numBytes;
    if (fresh) {
      held += this.state.tensorInfo.get(t.dataId)?.bytes ?? 0;
      if (held > heldRise) heldRise = held;
    }
  };
  engine.removeDataId = function (this: typeof engine, dataId, backend) {
    const info = this.state.tensorInfo.get(dataId);
    if (info && info.backend === backend) held -= info.bytes;
    removeDataId.call(this, dataId, backend);
  };
  try {
    const result = fn();
    return { result, peakBytes, startBytes, endBytes: engine.state.numBytes, heldRise, heldNet: held };
  } finally {
    delete (engine as { trackTensor?: unknown }).trackTensor;
    delete (engine as { removeDataId?: unknown }).removeDataId;
  }
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
  assertTrainingFitsBackend(ctx.config);
  const g = tokenGrid(ctx.config);
  const b = ctx.batch;
  const service = new ModelService({ config: ctx.config, rng: ctx.rng.fork('model'), fastMatmul: !ctx.naive });
  const data = ctx.rng.fork('data');
  const video = tf.tensor3d(data.fillUniform(new Float32Array(b * g.videoTokens * g.videoPatchDim)), [b, g.videoTokens, g.videoPatchDim]);
  const audio = tf.tensor3d(data.fillUniform(new Float32Array(b * g.audioTokens * g.audioPatchDim)), [b, g.audioTokens, g.audioPatchDim]);
  const loss = () => {
    const f = service.backbone.maeRandom(video, audio);
    return tf.addN([f.maeAudioLoss, f.maeVideoLoss, f.contrastiveLoss]) as tf.Scalar;
  };
  return {
    step: () => { service.trainStep(loss, 'backbone'); return { rows: b, replayed: 0 }; },
    flopsPerStep: 3 * maeRandomForwardFlops(ctx.config, b),
    bufferBytes: () => 0,
    dispose: () => { video.dispose(); audio.dispose(); service.dispose(); },
  };
});

export interface BenchOptions {
  config: ModelConfig;
  selector: string;
  steps: number;
  batch: number;
  naive: boolean;
  /** Untimed steps first (JIT, wasm heap growth, and a warm replay buffer). Default 2. */
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
  /** Current rows per second (batch / median step). */
  samplesPerSecond: number;
  /** Achieved GFLOP/s from the analytic count; undefined when the selector has none (see flopsNote). */
  gflops?: number;
  flopsPerStep?: number;
  flopsNote?: string;
  /** Rows in the training forward of the timed steps (current + replay) and how many were replayed. */
  rows: number;
  replayed: number;
  /**
   * Step peak: the high-water mark of tf.memory().numBytes within a step, minus what other models in
   * the process hold (so side-by-side selectors do not see each other): resident bytes of this
   * selector (weights, Adam moments, fixed inputs) + the largest rise within any timed step.
   */
  peakTensorBytes: number;
  /** This selector's resident tensor bytes between steps (weights, optimiser state, fixed inputs). */
  residentTensorBytes: number;
  /**
   * The same peak in bytes of distinct buffers (`measurePeakBytes`' heldRise): what the step holds in
   * memory, as a framework that counts storage (PyTorch's max_memory_allocated) reports it; a
   * reshaped view or a shared save is not counted again.
   */
  peakHeldBytes: number;
  residentHeldBytes: number;
  /** Tensor bytes the timed steps left behind (0 unless the selector leaks or grows state). */
  leakedTensorBytes: number;
  /** Replay buffer bytes (typed arrays outside tfjs). */
  bufferBytes: number;
  /** Process peak RSS (getrusage maxRSS) after these steps: process-wide, shared by side-by-side selectors. */
  peakRssBytes: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface PreparedBench {
  /** Times n more steps (lets callers interleave selectors). */
  run(n: number): number[];
  summary(stepMs: number[]): BenchResult;
  dispose(): void;
}

/** Builds the selector's runner and runs the warm-up steps; `run(n)` then times steps. */
export function prepareBench(o: BenchOptions): PreparedBench {
  const factory = selectors.get(o.selector);
  if (!factory) throw new Error(`bench: unknown selector '${o.selector}' (known: ${stepSelectorNames().join(', ')})`);
  let last: StepInfo = { rows: 0, replayed: 0 };
  const setup = measurePeakBytes(() => {
    const made = factory({ config: o.config, batch: o.batch, rng: Rng.fromSeed(o.seed ?? 2021), naive: o.naive });
    for (let i = 0; i < (o.warmup ?? 2); i++) last = made.step();
    return made;
  });
  const runner = setup.result;
  // Weights, Adam moments (made on the first step) and fixed inputs: everything this selector keeps.
  const resident = setup.endBytes - setup.startBytes, residentHeld = setup.heldNet;
  let rise = 0, heldRise = 0, leaked = 0;
  return {
    run(n) {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const m = measurePeakBytes(() => runner.step());
        times.push(performance.now() - t0);
        rise = Math.max(rise, m.peakBytes - m.startBytes);
        heldRise = Math.max(heldRise, m.heldRise);
        leaked += m.endBytes - m.startBytes;
        last = m.result;
      }
      return times;
    },
    summary(stepMs) {
      const medianMs = median(stepMs);
      const flops = last.flops ?? runner.flopsPerStep;
      return {
        config: o.config.name, selector: o.selector, batch: o.batch, naive: o.naive, steps: stepMs.length, stepMs,
        medianMs, samplesPerSecond: (o.batch * 1000) / medianMs,
        gflops: flops === undefined ? undefined : flops / medianMs / 1e6, flopsPerStep: flops, flopsNote: runner.flopsNote,
        rows: last.rows, replayed: last.replayed,
        peakTensorBytes: resident + rise, residentTensorBytes: resident, leakedTensorBytes: leaked, bufferBytes: runner.bufferBytes(),
        peakHeldBytes: residentHeld + heldRise, residentHeldBytes: residentHeld,
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
      };
    },
    dispose() { runner.dispose(); },
  };
}

export function benchStep(o: BenchOptions): BenchResult {
  const bench = prepareBench(o);
  try {
    return bench.summary(bench.run(o.steps));
  } finally {
    bench.dispose();
  }
}

/**
 * Several selectors side by side in one process: all prepared first, then `steps` rounds in which
 * each selector takes one step (the order rotates per round), so they share the machine's load.
 */
export function benchSideBySide(variants: BenchOptions[], steps: number): BenchResult[] {
  const prepared: PreparedBench[] = [];
  try {
    for (const v of variants) prepared.push(prepareBench(v));
    const times = variants.map(() => [] as number[]);
    for (let round = 0; round < steps; round++) {
      for (let j = 0; j < prepared.length; j++) {
        const k = (j + round) % prepared.length;
        times[k].push(...prepared[k].run(1));
      }
    }
    return prepared.map((p, k) => p.summary(times[k]));
  } finally {
    for (const p of prepared) p.dispose();
  }
}
