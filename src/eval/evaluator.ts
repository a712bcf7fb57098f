/**
 * ContinualEvaluator: the after-each-task evaluation of the continual run — zero-shot retrieval over
 * the whole test set and localisation quality of the model's own patch importance.
 *
 * Behaviour of `evaluate(model)`:
 *   - Retrieval (spec §9.2): Mode E embeddings (`backbone.embed`, full unmasked inputs, L2-normalised)
 *     of every test clip in batches of `batchSize`; cosine similarity over the WHOLE gallery (all
 *     tasks' test clips), audio→video and video→audio, R@1/5/10 in percent and MR, with one
 *     per-category row per task (category = the clip's task name; only the query rows are restricted).
 *   - Localisation (only when the model has an AVM and some clips carry ground truth): the scoring
 *     path of a STELLA step, spec §5.2 (1)–(2): Mode A → Mode B → `avm.inferAttention` → I_v, I_a
 *     (importance.ts), then per-clip ROC-AUC against the ground-truth patches (localization.ts).
 * `importanceFor(model, clips)` returns I_v, I_a and STELLA's first-step selection (the importance
 * argsort's first K_v / K_a ids, spec §5.2 (4) with an empty buffer) per clip, for pictures.
 * `finalize(stages, tasks)` turns one evaluation per task into results.json's `retrieval` matrices,
 * `summary` (A, F, F_authors) and the last stage's `localization`.
 * Everything runs under tf.tidy per batch: no tensor outlives a call.
 *
 * Options (`evaluatorOptionsSchema`): `batchSize` (8), `importance` (importance.ts options: τ 0.4,
 * ρ_v 0.5, ρ_a 0.5).
 * Ref: spec §9.1–§9.3, §5.2 (1)–(2) and (4), §11 Q10.
 *
 * ## Example
 * ```ts
 * const testSet = await loadTestSet(manifest, config);
 * const evaluator = new ContinualEvaluator({ config, testSet });
 * const stages = tasks.map(() => { train(); return evaluator.evaluate(model); });
 * const { retrieval, summary, localization } = finalize(stages, manifest.tasks.map((t) => t.name));
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { tokenGrid, type ModelConfig } from '../core/config.ts';
import { disposeImportance, importanceOptionsSchema, localizedPatchImportance } from '../method/importance.ts';
import type { AvmModule, CavBackbone, IntermediateCodes } from '../model/types.ts';
import { retrievalMatricesFromStages, summarizeRetrieval, type RetrievalMatrices, type RetrievalSummary } from './continual-metrics.ts';
import { localizationAuc, type LocalizationSummary } from './localization.ts';
import type { LocalizationResult } from './results.ts';
import { chanceLevels, retrievalMetrics, type ChanceLevels, type RetrievalResult } from './retrieval.ts';
import type { TestClip, TestSet } from './test-set.ts';

export const evaluatorOptionsSchema = z.object({
  /** Clips per forward pass. */
  batchSize: z.number().int().positive().default(8),
  importance: importanceOptionsSchema.default(importanceOptionsSchema.parse({})),
});

export interface EvaluableModel {
  backbone: Pick<CavBackbone, 'embed' | 'intermediate' | 'jointFromCodes' | 'embedFromCodes'>;
  avm?: Pick<AvmModule, 'inferAttention'>;
}

export interface Evaluation {
  retrieval: RetrievalResult;
  localization?: { video: LocalizationSummary; audio: LocalizationSummary };
}

export interface ClipImportance {
  path: string;
  /** I_v [Lv] and I_a [La]. */
  importanceV: Float32Array;
  importanceA: Float32Array;
  /** The first-step selection: the K_v / K_a most important token ids, most important first. */
  selectedV: Int32Array;
  selectedA: Int32Array;
}

export interface FinalResults {
  retrieval: RetrievalMatrices;
  summary: RetrievalSummary;
  localization: { video?: LocalizationResult; audio?: LocalizationResult };
  /** Chance R@K for the evaluation gallery (the largest any stage ranked against). */
  chance: ChanceLevels;
}

export class ContinualEvaluator {
  readonly config: ModelConfig;
  readonly clips: readonly TestClip[];
  private readonly batchSize: number;
  private readonly importanceOptions: z.output<typeof importanceOptionsSchema>;

  constructor(options: { config: ModelConfig; testSet: TestSet | readonly TestClip[] } & z.input<typeof evaluatorOptionsSchema>) {
    const parsed = evaluatorOptionsSchema.safeParse({ batchSize: options.batchSize, importance: options.importance });
    if (!parsed.success) throw new RangeError(`ContinualEvaluator: bad options: ${z.prettifyError(parsed.error)}`);
    const { batchSize, importance } = parsed.data;
    this.config = options.config;
    this.clips = Array.isArray(options.testSet) ? options.testSet : (options.testSet as TestSet).clips;
    this.batchSize = batchSize;
    this.importanceOptions = importance;
    checkClips(this.clips, this.config);
  }

  evaluate(model: EvaluableModel): Evaluation {
    if (this.clips.length === 0) throw new RangeError('ContinualEvaluator: the test set has no clips (every test clip failed to load?)');
    const withTruth = this.clips.filter((c) => c.groundTruth);
    const localize = model.avm !== undefined && withTruth.length > 0;
    // Every clip localised, and a backbone that embeds from codes: one pass of the modality layers serves both.
    const together = localize && withTruth.length === this.clips.length && model.backbone.embedFromCodes !== undefined;
    const { audio, video, dim, importance } = this.pass(model, together);
    const retrieval = retrievalMetrics(audio, video, { dim, categories: this.clips.map((c) => c.task) });
    if (!localize) return { retrieval };
    const scores = importance ?? this.importanceFor(model, withTruth);
    const videoAuc = localizationAuc(scores.map((s, i) => ({ scores: s.importanceV, labels: withTruth[i].groundTruth!.video, path: s.path })));
    const audioAuc = localizationAuc(scores.map((s, i) => ({ scores: s.importanceA, labels: withTruth[i].groundTruth!.audio, path: s.path })));
    return { retrieval, localization: { video: videoAuc, audio: audioAuc } };
  }

  /** Mode E embeddings of every clip: flat [n·D] audio and video rows, clip order. */
  embeddings(model: EvaluableModel): { audio: Float32Array; video: Float32Array; dim: number } {
    const { audio, video, dim } = this.pass(model, false);
    return { audio, video, dim };
  }

  /** I_v, I_a and the first-step top-K selection for each clip (needs the model's AVM). */
  importanceFor(model: EvaluableModel, clips: readonly TestClip[] = this.clips): ClipImportance[] {
    if (!model.avm) throw new Error('ContinualEvaluator.importanceFor: the model has no AVM, so there is no patch importance');
    checkClips(clips, this.config);
    const out: ClipImportance[] = [];
    for (let start = 0; start < clips.length; start += this.batchSize) {
      const batch = clips.slice(start, start + this.batchSize);
      tf.tidy(() => {
        const { v, a } = this.inputs(batch);
        this.collectImportance(model, model.backbone.intermediate(v, a), batch, out);
      });
    }
    return out;
  }

  /**
   * Every clip's Mode E embeddings, batch by batch; with `withImportance` (needs `embedFromCodes` and
   * the AVM) each batch's Mode A codes also give its importance, as `importanceFor` computes it.
   */
  private pass(model: EvaluableModel, withImportance: boolean): { audio: Float32Array; video: Float32Array; dim: number; importance?: ClipImportance[] } {
    const dim = this.config.embedDim;
    const n = this.clips.length;
    const audio = new Float32Array(n * dim), video = new Float32Array(n * dim);
    const importance: ClipImportance[] = [];
    for (let start = 0; start < n; start += this.batchSize) {
      const batch = this.clips.slice(start, start + this.batchSize);
      tf.tidy(() => {
        const { v, a } = this.inputs(batch);
        let e;
        if (withImportance) {
          const codes = model.backbone.intermediate(v, a);
          e = model.backbone.embedFromCodes!(codes);
          this.collectImportance(model, codes, batch, importance);
        } else {
          e = model.backbone.embed(v, a);
        }
        if (e.a.shape[1] !== dim) throw new RangeError(`ContinualEvaluator: embeddings are [${e.a.shape}], expected width ${dim} (config '${this.config.name}')`);
        audio.set(e.a.dataSync(), start * dim);
        video.set(e.v.dataSync(), start * dim);
      });
    }
    return { audio, video, dim, ...(withImportance ? { importance } : {}) };
  }

  /** A batch's importance from its Mode A codes, appended to `out` (inside the caller's tidy). */
  private collectImportance(model: EvaluableModel, codes: IntermediateCodes, batch: readonly TestClip[], out: ClipImportance[]): void {
    // spec §5.2 (1)–(2): codes, joint embeddings of the matching pairs, raw AVM logits.
    const joint = model.backbone.jointFromCodes(codes);
    const attention = model.avm!.inferAttention(joint.embA, joint.embV);
    const imp = localizedPatchImportance(attention, this.importanceOptions);
    const [Lv, La] = [imp.importanceV.shape[1], imp.importanceA.shape[1]];
    const iv = imp.importanceV.dataSync(), ia = imp.importanceA.dataSync();
    const ov = imp.orderV.dataSync(), oa = imp.orderA.dataSync();
    batch.forEach((clip, b) => {
      out.push({
        path: clip.path,
        importanceV: Float32Array.from(iv.subarray(b * Lv, (b + 1) * Lv)),
        importanceA: Float32Array.from(ia.subarray(b * La, (b + 1) * La)),
        selectedV: Int32Array.from(ov.subarray(b * Lv, b * Lv + imp.kV)),
        selectedA: Int32Array.from(oa.subarray(b * La, b * La + imp.kA)),
      });
    });
    disposeImportance(imp);
  }

  /** Stacks a batch's patch tokens into [B, Lv, 3·P·P] and [B, La, P·P]. */
  private inputs(batch: readonly TestClip[]): { v: tf.Tensor3D; a: tf.Tensor3D } {
    const g = tokenGrid(this.config);
    const v = new Float32Array(batch.length * g.videoTokens * g.videoPatchDim);
    const a = new Float32Array(batch.length * g.audioTokens * g.audioPatchDim);
    batch.forEach((clip, b) => {
      v.set(clip.videoPatches, b * g.videoTokens * g.videoPatchDim);
      a.set(clip.audioPatches, b * g.audioTokens * g.audioPatchDim);
    });
    return {
      v: tf.tensor3d(v, [batch.length, g.videoTokens, g.videoPatchDim]),
      a: tf.tensor3d(a, [batch.length, g.audioTokens, g.audioPatchDim]),
    };
  }
}

function checkClips(clips: readonly TestClip[], config: ModelConfig): void {
  const g = tokenGrid(config);
  for (const clip of clips) {
    const want: [string, ArrayLike<number> | undefined, number][] = [
      ['videoPatches', clip.videoPatches, g.videoTokens * g.videoPatchDim],
      ['audioPatches', clip.audioPatches, g.audioTokens * g.audioPatchDim],
      ['groundTruth.video', clip.groundTruth?.video, g.videoTokens],
      ['groundTruth.audio', clip.groundTruth?.audio, g.audioTokens],
    ];
    for (const [field, values, n] of want) {
      if (values && values.length !== n) {
        throw new RangeError(`ContinualEvaluator: ${clip.path}: ${field} has ${values.length} values, expected ${n} for the '${config.name}' config`);
      }
    }
  }
}

const jsonLocalization = (s: LocalizationSummary): LocalizationResult => ({
  meanAuc: Number.isFinite(s.meanAuc) ? s.meanAuc : null,
  clips: s.clips,
  skipped: s.skipped,
});

/**
 * results.json's `retrieval` (T×T matrices: row = after task t, column = task j), `summary` and
 * `localization` (of the last stage) from one evaluation per task, in training order.
 */
export function finalize(stages: readonly Evaluation[], tasks: readonly string[]): FinalResults {
  const retrieval = retrievalMatricesFromStages(stages.map((s) => s.retrieval), [...tasks]);
  const last = stages[stages.length - 1]?.localization;
  return {
    retrieval,
    summary: summarizeRetrieval(retrieval),
    localization: last ? { video: jsonLocalization(last.video), audio: jsonLocalization(last.audio) } : {},
    chance: chanceLevels(Math.max(...stages.map((s) => s.retrieval.n))),
  };
}
