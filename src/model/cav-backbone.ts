/**
 * The CAV backbone (spec §3): modality stems and blocks, shared blocks, one MAE decoder shared by
 * both modalities, and five forward modes behind `CavBackbone` (types.ts).
 *
 *   A `intermediate`   stems → blocks_a / blocks_v                       (STELLA's scoring codes)
 *   B `jointFromCodes` codes + inter_pos → blocks_u on [audio; video]    (AVM inputs, no final norm)
 *   C `maeRandom`      random MAE masking, MAE + contrastive losses     (finetune / baselines)
 *   D `maeSelected`    modality-guided masking of selected patches      (STELLA training)
 *   E `embed`          each modality alone through blocks_u + norm_{a,v}; L2-normalised means
 *
 * Inputs are patch tokens: video [B, Lv, 3·P·P] in (c, p, q) order, audio [B, La, P·P]. The patch
 * embedding is a matmul with the conv weight viewed as [C·P·P, D].
 * Options: `rng` (init + masking noise, forked as 'init' / 'masking'), `fastMatmul` (default true:
 * fast-path products of src/core/fast-matmul.ts; false = plain tfjs), `normPixLoss` (default true).
 * Masking noise is drawn audio first, then video, unless pinned through `noise`.
 * Ref: spec §3.1–§3.5, §7.1–§7.2; models/cav.py.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../core/config.ts';
import { tokenGrid } from '../core/config.ts';
import { addRowVector, asConstant, fastGatherRows, gatherRows, tensorOps, type TensorOps } from '../core/fast-matmul.ts';
import type { Rng } from '../core/rng.ts';
import type { CavBackbone, IntermediateCodes, JointEmbeddings, MaskingNoise, RetrievalEmbeddings, TrainForward } from './types.ts';
import { addBlock, addLayerNorm, addLinear, block, layerNorm, linear, NO_DRAWS, normalValues, ParamShapes, ParamStore, uniformValues, type NormalSource, type ParamSink } from './layers.ts';
import { CONTRASTIVE_TAU, CONTRASTIVE_WEIGHT, contrastiveLoss, maeLoss } from './losses.ts';
import { audioPosEmbed, videoPosEmbed } from './pos-embed.ts';

export interface CavBackboneOptions {
  rng: Rng;
  fastMatmul?: boolean;
  normPixLoss?: boolean;
  /** Weight of the contrastive term (spec §7.2: 0.1); pre-training the tiny model may raise it. */
  contrastiveWeight?: number;
}

/** A training forward plus what the golden checks and diagnostics look at. */
export interface TrainForwardDetails extends TrainForward {
  /** Decoder tokens after decoder_norm, before the MAE heads: [B, La, Dd] (C) or [B, Ka, Dd] (D). */
  decoderA: tf.Tensor3D;
  decoderV: tf.Tensor3D;
  /** 1 = masked (reconstructed), over the decoder positions. */
  inputMaskA: Int32Array;
  inputMaskV: Int32Array;
  /** The MAE losses with the other norm_pix setting. */
  maeAudioLossAlt: tf.Scalar;
  maeVideoLossAlt: tf.Scalar;
  contrastiveLogits: tf.Tensor2D;
}

export interface LatentEmbeddings {
  /** Mode E tokens before pooling: [B, La, D], [B, Lv, D]. */
  latentA: tf.Tensor3D;
  latentV: tf.Tensor3D;
}

/** Masking plan of one modality, all indices on the CPU. */
interface MaskPlan {
  /** [B·nVis] flat row indices into the embedded tokens [B·K, D]. */
  visibleRows: Int32Array;
  /** [B·nVis] patch ids of the visible tokens (for inter_pos_embed). */
  visiblePatches: Int32Array;
  /** [B·Ldec] flat rows into [B·(nVis+1), Dd]: visible token j or the mask token at nVis. */
  decoderSources: Int32Array;
  /** [B·Ldec] patch id of each decoder position (for decoder_pos_embed). */
  decoderPatches: Int32Array;
  /** [B·Ldec] 1 = masked / reconstructed. */
  inputMask: Int32Array;
  nVis: number;
  decoderLength: number;
}

function argsortAscending(values: ArrayLike<number>, offset: number, n: number): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  idx.sort((x, y) => values[offset + x] - values[offset + y] || x - y);
  return idx;
}

/**
 * Plans masking for B rows. `ids` [B, L] is the full permutation whose first K entries name the K
 * embedded tokens (identity for full inputs); `noise` [B, K] shuffles those K; the first nVis stay.
 * Decoder positions follow `ids[:, :K]` (full inputs: all L positions in patch order).
 */
function planMasking(batch: number, ids: Int32Array, fullLength: number, k: number, noise: ArrayLike<number>, nVis: number): MaskPlan {
  const visibleRows = new Int32Array(batch * nVis);
  const visiblePatches = new Int32Array(batch * nVis);
  const decoderSources = new Int32Array(batch * k);
  const decoderPatches = new Int32Array(batch * k);
  const inputMask = new Int32Array(batch * k);
  for (let b = 0; b < batch; b++) {
    const order = argsortAscending(noise, b * k, k);
    const rank = new Int32Array(k);
    for (let i = 0; i < k; i++) rank[order[i]] = i;
    for (let i = 0; i < nVis; i++) {
      visibleRows[b * nVis + i] = b * k + order[i];
      visiblePatches[b * nVis + i] = ids[b * fullLength + order[i]];
    }
    for (let j = 0; j < k; j++) {
      const visible = rank[j] < nVis;
      decoderSources[b * k + j] = b * (nVis + 1) + (visible ? rank[j] : nVis);
      decoderPatches[b * k + j] = ids[b * fullLength + j];
      inputMask[b * k + j] = visible ? 0 : 1;
    }
  }
  return { visibleRows, visiblePatches, decoderSources, decoderPatches, inputMask, nVis, decoderLength: k };
}

export class CavBackboneModel implements CavBackbone {
  readonly params: ParamStore;
  readonly ops: TensorOps;
  readonly normPixLoss: boolean;
  readonly contrastiveWeight: number;
  /** Masking-noise stream; its state is part of a checkpoint (ModelService.rngState). */
  readonly maskingRng: Rng;
  private readonly grid: ReturnType<typeof tokenGrid>;

  constructor(readonly config: ModelConfig, options: CavBackboneOptions) {
    this.ops = tensorOps(options.fastMatmul ?? true);
    this.normPixLoss = options.normPixLoss ?? true;
    this.contrastiveWeight = options.contrastiveWeight ?? CONTRASTIVE_WEIGHT;
    this.maskingRng = options.rng.fork('masking');
    this.grid = tokenGrid(config);
    this.params = buildParams(config, options.rng.fork('init'));
  }

  get variables(): Map<string, tf.Variable> {
    return this.params.variables;
  }

  private p(name: string): tf.Variable {
    return this.params.get(name);
  }

  private checkTokens(what: string, x: tf.Tensor, tokens: number | undefined, dim: number): void {
    if (x.rank !== 3 || (tokens !== undefined && x.shape[1] !== tokens) || x.shape[2] !== dim) {
      throw new Error(`CAV backbone: ${what} must be [B, ${tokens ?? 'K'}, ${dim}] patch tokens, got [${x.shape}]`);
    }
  }

  /**
   * x [B, L, D] + a table [1, L, D] or token [1, 1, D]. Fast path: a row-vector add whose gradient is
   * a fast column sum (autodiff's broadcast gradient is wasm's slow non-last-axis Sum).
   */
  private addTable(x: tf.Tensor, table: tf.Tensor): tf.Tensor {
    if (!this.ops.fast) return tf.add(x, table);
    const [b, l, d] = x.shape;
    const flat: [number, number] = table.shape[1] === 1 ? [b * l, d] : [b, l * d];
    return tf.reshape(addRowVector(tf.reshape(x, flat) as tf.Tensor2D, tf.reshape(table, [flat[1]])), x.shape);
  }

  /** Differentiable row gather (fast path: heap-memcpy kernel). */
  private rows(x: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
    return this.ops.fast ? fastGatherRows(x, indices) : gatherRows(x, indices);
  }

  /** Patch embedding + modality embedding. */
  private stem(m: 'a' | 'v', x: tf.Tensor3D): tf.Tensor {
    // Patches are data: no gradient is wanted for them.
    const proj = this.ops.linearOfData(x, this.params.get(`patch_embed_${m}.proj.weight`), this.params.get(`patch_embed_${m}.proj.bias`));
    return this.addTable(proj, this.p(`modality_${m}`));
  }

  private blocks(prefix: string, count: number, x: tf.Tensor, heads: number, modality?: 'a' | 'v'): tf.Tensor {
    for (let i = 0; i < count; i++) {
      const next = block(this.ops, this.params, `${prefix}.${i}`, x, heads, this.config.layerNormEps, modality);
      // A previous block's output: what its gradient needs, the tape has saved.
      if (i > 0) x.dispose();
      x = next;
    }
    return x;
  }

  private get sharedDepth(): number {
    return this.config.depth - this.config.modalityDepth;
  }

  private modalityPath(m: 'a' | 'v', x: tf.Tensor3D): tf.Tensor {
    const withPos = tf.add(this.stem(m, x), this.p(`pos_embed_${m}`));
    return this.blocks(`blocks_${m}`, this.config.modalityDepth, withPos, this.config.numHeads);
  }

  intermediate(video: tf.Tensor3D, audio: tf.Tensor3D): IntermediateCodes {
    this.checkTokens('video', video, this.grid.videoTokens, this.grid.videoPatchDim);
    this.checkTokens('audio', audio, this.grid.audioTokens, this.grid.audioPatchDim);
    return tf.tidy(() => ({
      interA: this.modalityPath('a', audio) as tf.Tensor3D,
      interV: this.modalityPath('v', video) as tf.Tensor3D,
    }));
  }

  jointFromCodes(codes: IntermediateCodes): JointEmbeddings {
    return tf.tidy(() => {
      const la = codes.interA.shape[1];
      const xa = tf.add(codes.interA, this.p('inter_pos_embed_a'));
      const xv = tf.add(codes.interV, this.p('inter_pos_embed_v'));
      const x = this.blocks('blocks_u', this.sharedDepth, tf.concat([xa, xv], 1), this.config.numHeads);
      const [embA, embV] = tf.split(x, [la, codes.interV.shape[1]], 1) as tf.Tensor3D[];
      return { embA, embV };
    });
  }

  /** Mode E before pooling. */
  latent(video: tf.Tensor3D, audio: tf.Tensor3D): LatentEmbeddings {
    this.checkTokens('video', video, this.grid.videoTokens, this.grid.videoPatchDim);
    this.checkTokens('audio', audio, this.grid.audioTokens, this.grid.audioPatchDim);
    return tf.tidy(() => ({ latentA: this.latentOf('a', this.modalityPath('a', audio)), latentV: this.latentOf('v', this.modalityPath('v', video)) }));
  }

  embed(video: tf.Tensor3D, audio: tf.Tensor3D): RetrievalEmbeddings {
    return tf.tidy(() => pooled(this.latent(video, audio)));
  }

  /**
   * Mode E from Mode A's codes: `embed` without running the modality-specific layers again, for a
   * caller that has the codes already (evaluation runs both modes on the same clips). Same ops, same values.
   */
  embedFromCodes(codes: IntermediateCodes): RetrievalEmbeddings {
    return tf.tidy(() => pooled({ latentA: this.latentOf('a', codes.interA), latentV: this.latentOf('v', codes.interV) }));
  }

  /** One modality's Mode E latent from its intermediate codes: joint layers alone, then its norm. */
  private latentOf(m: 'a' | 'v', inter: tf.Tensor): tf.Tensor3D {
    const codes = tf.add(inter, this.p(`inter_pos_embed_${m}`));
    return layerNorm(this.params, `norm_${m}`, this.blocks('blocks_u', this.sharedDepth, codes, this.config.numHeads, m), this.config.layerNormEps, this.ops) as tf.Tensor3D;
  }

  /** Mode C; the training step needs only the losses and outputs, so the diagnostics are skipped. */
  maeRandom(video: tf.Tensor3D, audio: tf.Tensor3D, noise?: MaskingNoise): TrainForward {
    return this.randomForward(video, audio, noise, false);
  }

  /** Mode D, without the diagnostics (see `maeRandom`). */
  maeSelected(videoSel: tf.Tensor3D, audioSel: tf.Tensor3D, avIds: tf.Tensor2D, vaIds: tf.Tensor2D, noise?: MaskingNoise): TrainForward {
    return this.selectedForward(videoSel, audioSel, avIds, vaIds, noise, false);
  }

  maeRandomDetailed(video: tf.Tensor3D, audio: tf.Tensor3D, noise?: MaskingNoise): TrainForwardDetails {
    return this.randomForward(video, audio, noise, true) as TrainForwardDetails;
  }

  maeSelectedDetailed(videoSel: tf.Tensor3D, audioSel: tf.Tensor3D, avIds: tf.Tensor2D, vaIds: tf.Tensor2D, noise?: MaskingNoise): TrainForwardDetails {
    return this.selectedForward(videoSel, audioSel, avIds, vaIds, noise, true) as TrainForwardDetails;
  }

  private randomForward(video: tf.Tensor3D, audio: tf.Tensor3D, noise: MaskingNoise | undefined, details: boolean): TrainForward | TrainForwardDetails {
    const { videoTokens: lv, audioTokens: la, videoPatchDim, audioPatchDim } = this.grid;
    this.checkTokens('video', video, lv, videoPatchDim);
    this.checkTokens('audio', audio, la, audioPatchDim);
    const batch = video.shape[0];
    if (audio.shape[0] !== batch) throw new Error(`CAV backbone: video batch ${batch} and audio batch ${audio.shape[0]} differ`);
    const noiseA = this.noise('audio', noise?.audio, batch, la);
    const noiseV = this.noise('video', noise?.video, batch, lv);
    const identity = (l: number) => { const ids = new Int32Array(batch * l); for (let i = 0; i < ids.length; i++) ids[i] = i % l; return ids; };
    const planA = planMasking(batch, identity(la), la, la, noiseA, this.visible(la));
    const planV = planMasking(batch, identity(lv), lv, lv, noiseV, this.visible(lv));
    return this.trainForward(video, audio, planV, planA, null, details);
  }

  private selectedForward(videoSel: tf.Tensor3D, audioSel: tf.Tensor3D, avIds: tf.Tensor2D, vaIds: tf.Tensor2D, noise: MaskingNoise | undefined, details: boolean): TrainForward | TrainForwardDetails {
    const { videoTokens: lv, audioTokens: la, videoPatchDim, audioPatchDim } = this.grid;
    this.checkTokens('selected video', videoSel, undefined, videoPatchDim);
    this.checkTokens('selected audio', audioSel, undefined, audioPatchDim);
    const batch = videoSel.shape[0];
    const kv = videoSel.shape[1], ka = audioSel.shape[1];
    for (const [what, ids, l, k] of [['avIds', avIds, lv, kv], ['vaIds', vaIds, la, ka]] as const) {
      if (ids.rank !== 2 || ids.shape[0] !== batch || ids.shape[1] !== l) throw new Error(`CAV backbone: ${what} must be [${batch}, ${l}] id permutations, got [${ids.shape}]`);
      if (ids.dtype !== 'int32') throw new Error(`CAV backbone: ${what} must be int32, got ${ids.dtype}`);
      if (k > l) throw new Error(`CAV backbone: ${k} selected tokens exceed the ${l} of ${what}`);
    }
    const idsA = vaIds.dataSync() as Int32Array, idsV = avIds.dataSync() as Int32Array;
    const nVisA = this.visible(la), nVisV = this.visible(lv);
    if (nVisA > ka || nVisV > kv) throw new Error(`CAV backbone: selection keeps ${ka} audio / ${kv} video tokens, fewer than the ${nVisA} / ${nVisV} visible ones`);
    const noiseA = this.noise('audio', noise?.audio, batch, ka);
    const noiseV = this.noise('video', noise?.video, batch, kv);
    const planA = planMasking(batch, idsA, la, ka, noiseA, nVisA);
    const planV = planMasking(batch, idsV, lv, kv, noiseV, nVisV);
    return this.trainForward(videoSel, audioSel, planV, planA, { idsA, idsV }, details);
  }

  private visible(l: number): number {
    return Math.trunc(l * (1 - this.config.maskRatio));
  }

  private noise(what: string, given: Float32Array | undefined, batch: number, k: number): ArrayLike<number> {
    if (given) {
      if (given.length !== batch * k) throw new Error(`CAV backbone: pinned ${what} noise has ${given.length} values, expected [${batch}, ${k}]`);
      return given;
    }
    return this.maskingRng.fillUniform(new Float32Array(batch * k));
  }

  /** Shared tail of Modes C and D given the two masking plans; `details` adds the diagnostics. */
  private trainForward(video: tf.Tensor3D, audio: tf.Tensor3D, planV: MaskPlan, planA: MaskPlan, selected: { idsA: Int32Array; idsV: Int32Array } | null, details: boolean): TrainForward | TrainForwardDetails {
    const c = this.config;
    const batch = video.shape[0];
    return tf.tidy(() => {
      // encode, the shared middle and decode each run in their own scope, so that their intermediates
      // (token sums, gathered rows, streams already consumed) are freed as each returns; what a
      // gradient needs, its op has saved.
      const encode = (m: 'a' | 'v', x: tf.Tensor3D, plan: MaskPlan, ids: Int32Array | null) => tf.tidy(() => {
        const [, k, ] = x.shape;
        const l = m === 'a' ? this.grid.audioTokens : this.grid.videoTokens;
        let tokens = this.stem(m, x);
        const pos = this.p(`pos_embed_${m}`);
        if (ids) {
          // Selected tokens carry the pos-embed of the patch they came from.
          const firstK = new Int32Array(batch * k);
          for (let b = 0; b < batch; b++) firstK.set(ids.subarray(b * l, b * l + k), b * k);
          tokens = tf.add(tokens, tf.reshape(this.rows(tf.reshape(pos, [l, -1]) as tf.Tensor2D, tf.tensor1d(firstK, 'int32')), [batch, k, -1]));
        } else {
          tokens = this.addTable(tokens, pos);
        }
        const flat = tf.reshape(tokens, [batch * k, -1]) as tf.Tensor2D;
        const visible = tf.reshape(this.rows(flat, tf.tensor1d(plan.visibleRows, 'int32')), [batch, plan.nVis, -1]);
        const encoded = this.blocks(`blocks_${m}`, c.modalityDepth, visible, c.numHeads);
        const interPos = this.rows(tf.reshape(this.p(`inter_pos_embed_${m}`), [l, -1]) as tf.Tensor2D, tf.tensor1d(plan.visiblePatches, 'int32'));
        return tf.add(encoded, tf.reshape(interPos, [batch, plan.nVis, -1]));
      });
      const { audioOutput, videoOutput, contrastiveLoss: contrastiveValue, contrastiveLogits, ya, yv } = tf.tidy(() => {
        const xa = encode('a', audio, planA, selected?.idsA ?? null);
        const xv = encode('v', video, planV, selected?.idsV ?? null);
        const ca = layerNorm(this.params, 'norm_a', this.blocks('blocks_u', this.sharedDepth, xa, c.numHeads, 'a'), c.layerNormEps, this.ops);
        const cv = layerNorm(this.params, 'norm_v', this.blocks('blocks_u', this.sharedDepth, xv, c.numHeads, 'v'), c.layerNormEps, this.ops);
        const audioOutput = tf.mean(ca, 1) as tf.Tensor2D;
        const videoOutput = tf.mean(cv, 1) as tf.Tensor2D;
        const contrastive = contrastiveLoss(audioOutput, videoOutput, CONTRASTIVE_TAU, this.contrastiveWeight);
        const joint = this.blocks('blocks_u', this.sharedDepth, tf.concat([xa, xv], 1), c.numHeads);
        const y = linear(this.ops, this.params, 'decoder_embed', layerNorm(this.params, 'norm', joint, c.layerNormEps, this.ops));
        const [ya, yv] = tf.split(y, [planA.nVis, planV.nVis], 1);
        return { audioOutput, videoOutput, contrastiveLoss: contrastive.loss, contrastiveLogits: contrastive.logits, ya, yv };
      }) as { audioOutput: tf.Tensor2D; videoOutput: tf.Tensor2D; contrastiveLoss: tf.Scalar; contrastiveLogits: tf.Tensor2D; ya: tf.Tensor; yv: tf.Tensor };

      const decode = (m: 'a' | 'v', ym: tf.Tensor, plan: MaskPlan) => tf.tidy(() => {
        const l = m === 'a' ? this.grid.audioTokens : this.grid.videoTokens;
        const withMask = tf.concat([ym, tf.tile(this.p(`mask_token_${m}`), [batch, 1, 1])], 1);
        const sources = this.rows(tf.reshape(withMask, [batch * (plan.nVis + 1), -1]) as tf.Tensor2D, tf.tensor1d(plan.decoderSources, 'int32'));
        const table = this.p(`decoder_pos_embed_${m}`);
        let z: tf.Tensor;
        if (this.ops.fast && plan.decoderLength === l && isRowIdentity(plan.decoderPatches, l)) {
          // Full inputs (Mode C): every row holds all patches in order, so the table adds as is
          // (fast path only; the plain model keeps its gather).
          z = this.addTable(tf.reshape(sources, [batch, l, -1]), table);
        } else {
          const pos = this.rows(tf.reshape(table, [l, -1]) as tf.Tensor2D, tf.tensor1d(plan.decoderPatches, 'int32'));
          z = tf.reshape(tf.add(sources, pos), [batch, plan.decoderLength, -1]);
        }
        z = this.addTable(z, this.p(`decoder_modality_${m}`));
        z = this.blocks('decoder_blocks', c.decoderDepth, z, c.decoderHeads);
        return layerNorm(this.params, 'decoder_norm', z, c.layerNormEps, this.ops) as tf.Tensor3D;
      });
      const decoderA = decode('a', ya, planA);
      const decoderV = decode('v', yv, planV);

      const targetA = audio;
      const targetV = asConstant(video, (v) => videoTargetLayout(v as tf.Tensor3D, c.patchSize));
      const predA = linear(this.ops, this.params, 'mae_score_audio.decoder', decoderA);
      const predV = linear(this.ops, this.params, 'mae_score_video.decoder', decoderV);
      const maskA = tf.tensor2d(Float32Array.from(planA.inputMask), [batch, planA.decoderLength]);
      const maskV = tf.tensor2d(Float32Array.from(planV.inputMask), [batch, planV.decoderLength]);
      const main = {
        maeAudioLoss: maeLoss(predA, targetA, maskA, this.normPixLoss),
        maeVideoLoss: maeLoss(predV, targetV, maskV, this.normPixLoss),
        contrastiveLoss: contrastiveValue,
        audioOutput,
        videoOutput,
      };
      if (!details) return main;
      return {
        ...main,
        maeAudioLossAlt: maeLoss(predA, targetA, maskA, !this.normPixLoss),
        maeVideoLossAlt: maeLoss(predV, targetV, maskV, !this.normPixLoss),
        contrastiveLogits,
        decoderA,
        decoderV,
        inputMaskA: planA.inputMask,
        inputMaskV: planV.inputMask,
      };
    });
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** True when `ids` [B·L] is 0..L−1 in every row. */
function isRowIdentity(ids: Int32Array, l: number): boolean {
  for (let i = 0; i < ids.length; i++) if (ids[i] !== i % l) return false;
  return true;
}

/** (c, p, q) conv-order patches → the MAE target order (p, q, c) (spec §2.3). */
export function videoTargetLayout(video: tf.Tensor3D, patchSize: number): tf.Tensor3D {
  const [b, l, d] = video.shape;
  const channels = d / (patchSize * patchSize);
  return tf.reshape(tf.transpose(tf.reshape(video, [b, l, channels, patchSize * patchSize]), [0, 1, 3, 2]), [b, l, d]);
}

/** Mode E's retrieval embeddings from its latents: mean over tokens, then unit length. */
function pooled({ latentA, latentV }: LatentEmbeddings): { a: tf.Tensor2D; v: tf.Tensor2D } {
  return { a: l2normalize(tf.mean(latentA, 1)) as tf.Tensor2D, v: l2normalize(tf.mean(latentV, 1)) as tf.Tensor2D };
}

function l2normalize(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), 1e-12));
}

/** Defines the backbone's parameters in `store` (values drawn from `rng` only when the sink asks). */
function defineParams(c: ModelConfig, rng: NormalSource, store: ParamSink): void {
  const g = tokenGrid(c);
  const d = c.embedDim, dd = c.decoderDim, p2 = c.patchSize * c.patchSize;
  const table = (data: () => Float32Array, l: number, width: number): [number[], 'plain', () => Float32Array] => [[1, l, width], 'plain', data];
  const tokens = (name: string, width: number) => store.add(name, [1, 1, width], 'plain', () => normalValues(rng, width, 0.02));
  // Positional tables (sin-cos), modality embeddings and mask tokens.
  for (const name of ['pos_embed_v', 'inter_pos_embed_v']) store.add(name, ...table(() => videoPosEmbed(d, c.numFrames, g.side), g.videoTokens, d));
  tokens('modality_v', d);
  for (const name of ['pos_embed_a', 'inter_pos_embed_a']) store.add(name, ...table(() => audioPosEmbed(d, g.timePatches, g.freqPatches), g.audioTokens, d));
  tokens('modality_a', d);
  tokens('mask_token_v', dd);
  store.add('decoder_pos_embed_v', ...table(() => videoPosEmbed(dd, c.numFrames, g.side), g.videoTokens, dd));
  tokens('decoder_modality_v', dd);
  tokens('mask_token_a', dd);
  store.add('decoder_pos_embed_a', ...table(() => audioPosEmbed(dd, g.timePatches, g.freqPatches), g.audioTokens, dd));
  tokens('decoder_modality_a', dd);
  // Patch embeddings: Xavier-uniform on the [D, C·P·P] view, PyTorch-default bias.
  for (const [m, channels] of [['v', 3], ['a', 1]] as const) {
    const fanIn = channels * p2;
    store.add(`patch_embed_${m}.proj.weight`, [d, channels, c.patchSize, c.patchSize], 'conv', () => uniformValues(rng, d * fanIn, Math.sqrt(6 / (fanIn + d))));
    store.add(`patch_embed_${m}.proj.bias`, [d], 'plain', () => uniformValues(rng, d, 1 / Math.sqrt(fanIn)));
    addLayerNorm(store, `norm_${m}`, d);
  }
  addLayerNorm(store, 'norm', d);
  addLinear(store, rng, 'decoder_embed', d, dd);
  addLayerNorm(store, 'decoder_norm', dd);
  for (let i = 0; i < c.modalityDepth; i++) addBlock(store, rng, `blocks_v.${i}`, d, c.mlpRatio, false);
  for (let i = 0; i < c.modalityDepth; i++) addBlock(store, rng, `blocks_a.${i}`, d, c.mlpRatio, false);
  for (let i = 0; i < c.depth - c.modalityDepth; i++) addBlock(store, rng, `blocks_u.${i}`, d, c.mlpRatio, true);
  for (let i = 0; i < c.decoderDepth; i++) addBlock(store, rng, `decoder_blocks.${i}`, dd, c.mlpRatio, false);
  addLinear(store, rng, 'mae_score_audio.decoder', dd, p2);
  addLinear(store, rng, 'mae_score_video.decoder', dd, 3 * p2);
}

function buildParams(c: ModelConfig, rng: Rng): ParamStore {
  const store = new ParamStore('CAV backbone');
  defineParams(c, rng, store);
  return store;
}

/** The backbone's state_dict names and PyTorch shapes for `config`, without building it. */
export function backboneParamShapes(config: ModelConfig): Map<string, number[]> {
  const shapes = new ParamShapes('CAV backbone');
  defineParams(config, NO_DRAWS, shapes);
  return shapes.shapes;
}

export function createCavBackbone(config: ModelConfig, options: CavBackboneOptions): CavBackboneModel {
  return new CavBackboneModel(config, options);
}
