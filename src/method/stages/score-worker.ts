/**
 * The `score` stage's work on `device: worker:N` (or `gpu:N`): STELLA's no-gradient scoring
 * (Mode A → Mode B → AVM inferAttention → LPIS, and Mode B on the matching pairs' re-paired codes,
 * spec §5.2 (1)–(4)) with a replica of the train node's backbone + AVM that lives in the worker.
 *
 * Not a stage of its own (it exports no `stage`): `score` posts a `score-request` per batch through
 * the device pool, after the replica's weights (WeightSync, `syncEvery`) when a copy is due. The
 * worker loads the newest weights it was sent (worker-host passes them with a version), scores, and
 * returns typed arrays only — tensors cannot cross threads; `scoredFromArrays` rebuilds on the main
 * thread the tensors the later phases use (importance bundle and AVM keys for RCA, the matching
 * embeddings for the AVM loss).
 *
 * Request: { kind: 'score-request', video, audio (Float32Array), videoShape, audioShape, videoIndex
 *   (Int32Array), temperature, coreVideoRatio, coreAudioRatio, fastMatmul }.
 * Result:  { kind: 'score-result', <one typed array per tensor>, shapes, kV, kA } or
 *   { kind: 'score-result', nonFinite: true } when the importance is not finite.
 * Ref: spec §5.2 (1)–(4); src/method/scoring.ts, src/method/scorer-replica.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../../core/config.ts';
import { Rng } from '../../core/rng.ts';
import type { Importance } from '../importance.ts';
import { importModelWeights } from '../scorer-replica.ts';
import { scoreBatch, type ScoredBatch } from '../scoring.ts';
import { NonFiniteLossError } from '../strategy.ts';
import { ModelService } from '../../model/model-service.ts';
import type { WorkerTaskContext } from '../../graph/worker-task.ts';
import type { GraphItem } from '../../graph/items.ts';

export interface ScoreRequest {
  kind: 'score-request';
  video: Float32Array;
  audio: Float32Array;
  videoShape: [number, number, number];
  audioShape: [number, number, number];
  videoIndex: Int32Array;
  temperature: number;
  coreVideoRatio: number;
  coreAudioRatio: number;
  fastMatmul: boolean;
}

/** The tensors of a ScoredBatch, by name (importance fields, keys, matching embeddings). */
const TENSORS = ['importanceV', 'importanceA', 'orderV', 'orderA', 'candidateMaskV', 'candidateMaskA', 'queryV', 'queryA', 'keysV', 'keysA', 'embA', 'embV'] as const;
type TensorName = (typeof TENSORS)[number];

export type ScoreResult = { kind: 'score-result'; nonFinite?: boolean; kV: number; kA: number; shapes: Record<TensorName, number[]> } & Record<TensorName, Float32Array | Int32Array>;

function tensorsOf(s: ScoredBatch): Record<TensorName, tf.Tensor> {
  const i = s.importance;
  return {
    importanceV: i.importanceV, importanceA: i.importanceA, orderV: i.orderV, orderA: i.orderA,
    candidateMaskV: i.candidateMaskV, candidateMaskA: i.candidateMaskA, queryV: i.queryV, queryA: i.queryA,
    keysV: s.keysV, keysA: s.keysA, embA: s.matching.embA, embV: s.matching.embV,
  };
}

/** The replica of this worker (one scorer per worker) and the weight version it holds. */
let replica: { model: ModelService; version: number | undefined; fastMatmul: boolean } | undefined;

/** WorkerTask: scores one request with the replica (weights from the latest sync). */
export async function scoreOnWorker(item: GraphItem, _options: Record<string, unknown>, context: WorkerTaskContext): Promise<GraphItem> {
  const request = item as unknown as ScoreRequest;
  if (request.kind !== 'score-request') throw new Error(`score worker: expected a 'score-request', got '${(item as { kind?: string }).kind}'`);
  if (!context.weights) throw new Error('score worker: no weights were synced before the first request');
  if (!replica || replica.fastMatmul !== request.fastMatmul) {
    replica?.model.dispose();
    replica = { model: new ModelService({ config: context.config as ModelConfig, rng: Rng.fromSeed('scorer-replica'), fastMatmul: request.fastMatmul }), version: undefined, fastMatmul: request.fastMatmul };
  }
  if (replica.version !== context.weightsVersion) {
    importModelWeights(replica.model, context.weights, `weights sync ${context.weightsVersion}`);
    replica.version = context.weightsVersion;
  }
  const video = tf.tensor3d(request.video, request.videoShape), audio = tf.tensor3d(request.audio, request.audioShape);
  let scored: ScoredBatch;
  try {
    scored = scoreBatch(replica.model.backbone, replica.model.avm, video, audio, request.videoIndex, {
      temperature: request.temperature, coreVideoRatio: request.coreVideoRatio, coreAudioRatio: request.coreAudioRatio,
    });
  } catch (error) {
    if (error instanceof NonFiniteLossError) return { kind: 'score-result', nonFinite: true } as unknown as GraphItem;
    throw error;
  } finally {
    tf.dispose([video, audio]);
  }
  const tensors = tensorsOf(scored);
  try {
    const out = { kind: 'score-result', kV: scored.importance.kV, kA: scored.importance.kA, shapes: {} as Record<TensorName, number[]> } as ScoreResult;
    for (const name of TENSORS) {
      // A copy that owns its buffer, so it moves (transfers) to the main thread.
      out[name] = tensors[name].dataSync().slice() as Float32Array | Int32Array;
      out.shapes[name] = tensors[name].shape.slice();
    }
    return out as unknown as GraphItem;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** Main thread: the ScoredBatch tensors rebuilt from a worker's result (caller-owned). */
export function scoredFromArrays(result: ScoreResult): ScoredBatch {
  if (result.nonFinite) throw new NonFiniteLossError('importance', NaN, 'value');
  const t = Object.fromEntries(TENSORS.map((name) => {
    const values = result[name];
    return [name, tf.tensor(values, result.shapes[name], values instanceof Int32Array ? 'int32' : 'float32')];
  })) as Record<TensorName, tf.Tensor>;
  const importance = {
    importanceV: t.importanceV, importanceA: t.importanceA, orderV: t.orderV, orderA: t.orderA, kV: result.kV, kA: result.kA,
    candidateMaskV: t.candidateMaskV, candidateMaskA: t.candidateMaskA, queryV: t.queryV, queryA: t.queryA,
  } as Importance;
  return { importance, keysV: t.keysV as tf.Tensor4D, keysA: t.keysA as tf.Tensor4D, matching: { embA: t.embA as tf.Tensor3D, embV: t.embV as tf.Tensor3D } };
}
