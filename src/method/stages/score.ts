/**
 * `score`: Batch → ScoredItem — STELLA's no-gradient scoring (spec §5.2 (1)–(4)): AVM matching pairs,
 * Mode A → Mode B → AVM attention → localized patch importance I_v, I_a, orders, summary queries.
 *
 * Behaviour: one batch at a time (concurrency 1), with the model of
 * - the train node named in `trainer` (default: the graph's only train node). The step then continues
 *   in `replay-assess` → `sample` → `train`, and a batch is scored only once the previous step of that
 *   trainer is trained or dropped, so every phase sees the weights and random stream the fused step
 *   would (bit-identical results). When the train node's strategy has no phases (finetune, er, der++,
 *   lump, multitask, stella-plus) batches pass through untouched and `train` runs its fused step; on a
 *   resumed run the batches the train node skips pass through untouched too;
 * - or a model loaded from `checkpoint` (newest valid checkpoint in a folder; blob weights.safetensors)
 *   or `weights` (a .safetensors file): scoring only, e.g. for `write-heatmaps` (graphs/score-only.yaml).
 * A failed batch is disposed and becomes a StageError; on unsubscribe the batch being scored is freed.
 *
 * Inputs:  `batch`. Passes `task-end` through in order.
 * Outputs: `scored` (and `batch` when passed through).
 * Options (defaults): trainer '' (the only train node), checkpoint '' and weights '' (score with a
 *   loaded model instead of a trainer; at most one), strategy 'stella' (scoring variant for a loaded
 *   model: stella | lpis-only | rca-only | random).
 * Node keys: `syncEvery` K (0): K ≥ 1 scores with a replica of the trainer's backbone + AVM copied
 *   before the first step and after every K-th (src/method/scorer-replica.ts; gauge `<node>.weightSyncs`).
 *   `device` (cpu): worker:N / gpu:N puts that replica in the pool device (score-worker.ts), where
 *   K = 0 copies before every step (bit for bit the in-thread run). The stage itself stays in the main
 *   thread (`placesItself`). A pool device with `checkpoint`/`weights` is refused.
 * Roles: RunSession, RunConfig, Rng.
 *
 * Example node:
 *   score: { stage: score, options: { trainer: train } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * const host = trainerHost(strategyTrainer);           // or modelHost(modelService, rng)
 * batches$.pipe(score({}, { host }), replayAssess({}, { host }), sample({}, { host }), train({}, { trainer }))
 * ```
 * Ref: spec §5.2 (1)–(4), §4.4; src/method/phases.ts.
 */
import { finalize, type OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { loadLatest } from '../../core/checkpoint.ts';
import type { ModelConfig } from '../../core/config.ts';
import { Rng as SeededRng } from '../../core/rng.ts';
import { parseSafetensors, readSafetensors, type NamedTensor } from '../../core/safetensors.ts';
import { ModelService } from '../../model/model-service.ts';
import { scorePhase, type PhaseContext } from '../phases.ts';
import { exportModelWeights, ScorerReplica, SyncSchedule } from '../scorer-replica.ts';
import { matchingPairs } from '../avm-matching.ts';
import type { StellaFamilyStrategy } from '../strategies/stella-family.ts';
import type { TrainBatch } from '../strategy.ts';
import { WeightSync, type DevicePool } from '../../graph/device-pool.ts';
import { scoredFromArrays, type ScoreRequest, type ScoreResult } from './score-worker.ts';
import { hostForTrainNode, modelHost, phaseItem, resumeSkip, type PhaseHost } from '../phases-host.ts';
import { RunSession, type RunSessionState } from '../run-session.ts';
import { NonFiniteLossError } from '../strategy.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { FatalStageError } from '../../graph/errors.ts';
import type { Batch, StellaItem } from '../items.ts';
import type { GraphItem, StageError } from '../../graph/items.ts';
import { Rng, RunConfig } from '../../graph/roles.ts';
import { defineStage } from '../../graph/stage.ts';

export const scoreOptionsSchema = z.object({
  /** Train node whose model, buffer and stream the step uses; '' = the graph's only train node. */
  trainer: z.string().default(''),
  /** Score with the newest valid checkpoint in this folder (a run folder or its checkpoints/) instead of a trainer. */
  checkpoint: z.string().default(''),
  /** Score with this .safetensors file instead of a trainer. */
  weights: z.string().default(''),
  /** Scoring variant for a loaded model. */
  strategy: z.enum(['stella', 'lpis-only', 'rca-only', 'random']).default('stella'),
}).refine((o) => !(o.checkpoint && o.weights), { message: "give at most one of 'checkpoint' and 'weights'" });

export interface ScoreDeps {
  /** The host, or how to find it at the first batch (stages are created before the trainers). */
  host: PhaseHost | (() => PhaseHost | Promise<PhaseHost>);
  /** Batches to pass through unscored first (a resumed train node skips them). */
  skip?: number | (() => number);
  errors?: { next(e: StageError): void };
  stage?: string;
  stopRequested?: () => boolean;
  /**
   * The node's `syncEvery`: 0 (default) scores with the trainer's live model; K ≥ 1 scores with a
   * replica whose weights are copied before the first step and after every K-th (src/method/scorer-replica.ts).
   */
  syncEvery?: number;
  /** Called with the running count after each weight copy to the replica. */
  onSync?: (syncs: number) => void;
  /**
   * Where the replica lives: 'cpu' (default: in this thread) or a pool device ('worker:N', 'gpu:N'),
   * where it is synced before every step when syncEvery is 0 (strictly in step) and every K-th otherwise.
   */
  device?: string;
  pool?: DevicePool;
}

/** The worker task that scores with the replica on a pool device. */
const SCORE_WORKER = { module: new URL('./score-worker.ts', import.meta.url).href, export: 'scoreOnWorker' };

export function score(_options: z.input<typeof scoreOptionsSchema>, deps: ScoreDeps): OperatorFunction<StellaItem, StellaItem> {
  let host: Promise<PhaseHost> | undefined;
  let skip: number | undefined;
  const syncEvery = deps.syncEvery ?? 0;
  if (!Number.isInteger(syncEvery) || syncEvery < 0) throw new RangeError(`${deps.stage ?? 'score'}: syncEvery must be an integer ≥ 0, got ${syncEvery}`);
  let replica: ScorerReplica | undefined;
  /** K ≥ 1: the trainer's context with the replica's backbone and AVM, refreshed when the schedule says so. */
  const replicaContext = (h: PhaseHost, ctx: PhaseContext): PhaseContext => {
    const source = h.trainedModel?.();
    if (!source) throw new Error(`${deps.stage ?? 'score'}: syncEvery ${syncEvery} needs a train node's model to copy (not 'checkpoint' or 'weights')`);
    replica ??= new ScorerReplica(source.model.config, { syncEvery, fastMatmul: source.fastMatmul });
    if (replica.syncFrom(source.model, h.steps())) deps.onSync?.(replica.schedule.syncs);
    return { ...ctx, model: replica.model.backbone, avm: ctx.avm ? replica.model.avm : undefined };
  };
  const device = deps.device ?? 'cpu';
  if (device !== 'cpu' && !deps.pool) throw new Error(`${deps.stage ?? 'score'}: device '${device}' needs the run's device pool`);
  let remote: { run(item: GraphItem): Promise<GraphItem>; schedule: SyncSchedule; sync: WeightSync } | undefined;
  /** Scores on the pool device: weights pushed when due, then one request; the tensors come back as arrays. */
  const scoreRemotely = async (h: PhaseHost, strategy: StellaFamilyStrategy, batch: TrainBatch, ctx: PhaseContext) => {
    if (!strategy.usesAvm) return scorePhase(strategy, batch, ctx); // no model is read
    const source = h.trainedModel?.();
    if (!source) throw new Error(`${deps.stage ?? 'score'}: device '${device}' needs a train node's model to copy (not 'checkpoint' or 'weights')`);
    remote ??= {
      ...deps.pool!.task(deps.stage ?? 'score', device, SCORE_WORKER),
      schedule: new SyncSchedule(syncEvery),
      // The schedule decides when; WeightSync exports and posts (buffers transferred) and counts.
      sync: new WeightSync({ exportWeights: () => exportModelWeights(source.model) }, 1, (w) => deps.pool!.pushWeights(device, w, true)),
    };
    if (remote.schedule.due(h.steps())) {
      await remote.sync.afterStep(h.steps());
      deps.onSync?.(remote.sync.syncs);
    }
    // The pairs scorePhase will draw (a copy of the stream at the same state draws the same ones).
    const pairs = matchingPairs(batch.video.shape[0], SeededRng.fromState(ctx.rng.state()));
    const o = strategy.options;
    const request: ScoreRequest = {
      kind: 'score-request', video: batch.video.dataSync().slice() as Float32Array, audio: batch.audio.dataSync().slice() as Float32Array,
      videoShape: batch.video.shape, audioShape: batch.audio.shape, videoIndex: pairs.videoIndex.slice(), // moved there; kept here for the check
      temperature: o.temperature, coreVideoRatio: o.coreVideoRatio, coreAudioRatio: o.coreAudioRatio, fastMatmul: source.fastMatmul,
    };
    const result = (await remote.run(request as unknown as GraphItem)) as unknown as ScoreResult;
    return scorePhase(strategy, batch, ctx, (_model, _avm, _video, _audio, videoIndex) => {
      if (videoIndex.length !== pairs.videoIndex.length || videoIndex.some((v, i) => v !== pairs.videoIndex[i])) {
        throw new Error(`${deps.stage ?? 'score'}: the matching pairs drawn differ from those scored on ${device}`);
      }
      return scoredFromArrays(result);
    });
  };
  const scoring = mapConcurrent<StellaItem, StellaItem>(
    async (item, signal) => {
      const batch = item as Batch;
      let release: (() => void) | undefined;
      try {
        const h = await (host ??= Promise.resolve(typeof deps.host === 'function' ? deps.host() : deps.host));
        skip ??= typeof deps.skip === 'function' ? deps.skip() : deps.skip ?? 0;
        if (skip > 0) { skip--; return batch; }
        const strategy = h.phased();
        if (!strategy) return batch;
        release = await h.turn(() => signal.aborted || (deps.stopRequested?.() ?? false));
        // Stopped while waiting: nothing downstream will train it; it stays queued and is freed at teardown.
        if (!release) return batch;
        const ctx: PhaseContext = { ...h.context(), rng: h.streamCopy() };
        const scored = device !== 'cpu'
          ? await scoreRemotely(h, strategy, batch, ctx)
          : scorePhase(strategy, batch, syncEvery > 0 ? replicaContext(h, ctx) : ctx);
        return phaseItem('scored', batch, scored, release);
      } catch (error) {
        batch.dispose();
        release?.();
        // As in the fused step (TrainerRole): a non-finite score means the model is broken; the run stops.
        if (error instanceof NonFiniteLossError) {
          const step = (await host!).steps() + 1;
          throw new FatalStageError(deps.stage ?? 'score', `${error.message} (step ${step}, task '${batch.taskName}'); the run stops and its last checkpoint stays the newest good one`);
        }
        throw error;
      }
    },
    {
      stage: deps.stage ?? 'score',
      concurrency: 1,
      errors: deps.errors,
      passThrough: (item) => item.kind !== 'batch',
      pathOf: (item) => (item as Batch).clips?.[0]?.path ?? '',
    },
  );
  return (source) => scoring(source).pipe(finalize(() => { replica?.dispose(); replica = undefined; }));
}

/** A ModelService with the weights of a checkpoint folder or a safetensors file (strict: every tensor). */
export async function loadScoringModel(source: { checkpoint?: string; weights?: string }, config: ModelConfig, rng: SeededRng): Promise<ModelService> {
  let tensors: Map<string, NamedTensor>, from: string, configName: string | undefined;
  if (source.weights) {
    const file = readSafetensors(source.weights);
    tensors = file.tensors;
    from = source.weights;
    try {
      configName = file.metadata.config ? (JSON.parse(file.metadata.config) as { name?: string }).name : undefined;
    } catch {
      configName = undefined; // metadata written by other tools need not be JSON
    }
  } else {
    const ckpt = await loadLatest(source.checkpoint!);
    const blob = ckpt.blobs['weights.safetensors'];
    from = `${ckpt.path}/weights.safetensors`;
    if (!blob) throw new Error(`score: checkpoint ${ckpt.path} has no 'weights.safetensors' blob (blobs: ${Object.keys(ckpt.blobs).join(', ') || 'none'})`);
    tensors = parseSafetensors(blob, from).tensors;
    configName = (ckpt.state.config as { model?: string } | undefined)?.model;
  }
  if (configName && configName !== config.name) throw new Error(`score: ${from} holds a '${configName}' model but the graph's config is '${config.name}'`);
  const model = new ModelService({ config, rng });
  try {
    model.loadTensors(tensors, { source: from });
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

export const stage = defineStage({
  type: 'score',
  description: "Batch → scored: LPIS importance with a train node's model (or a checkpoint's); pass-through for strategies without phases",
  inputs: ['batch'],
  outputs: ['scored', 'batch'],
  optionsSchema: scoreOptionsSchema,
  roles: [RunSession, RunConfig, Rng],
  // On worker:N / gpu:N the stage stays here (turns, stream, buffer) and sends only the scoring there.
  placesItself: true,
  create: (deps, options) => {
    const session = deps.get<RunSessionState>(RunSession);
    const loaded = options.checkpoint || options.weights;
    const device = deps.placement?.device ?? 'cpu';
    if (loaded && device !== 'cpu') throw new Error(`node '${deps.node}': device '${device}' scores with a replica of a train node's model; with 'checkpoint' or 'weights' use device: cpu`);
    let node = options.trainer;
    return score(options, {
      host: loaded
        ? async () => {
            const rng = deps.get<SeededRng>(Rng).fork(deps.node);
            return modelHost(await loadScoringModel(options, deps.get<ModelConfig>(RunConfig), rng.fork('model')), rng.fork('pairs'), options.strategy);
          }
        : () => {
            const found = hostForTrainNode(deps.container, session, options.trainer, deps.node);
            node = found.node;
            return found.host;
          },
      skip: () => (loaded ? 0 : resumeSkip(session, node)),
      errors: deps.errors,
      stage: deps.node,
      stopRequested: deps.stopRequested,
      syncEvery: deps.placement?.syncEvery ?? 0,
      device: deps.placement?.device ?? 'cpu',
      pool: deps.placement?.pool,
      onSync: (syncs) => deps.metrics.gauge(`${deps.node}.weightSyncs`, syncs),
    });
  },
});
