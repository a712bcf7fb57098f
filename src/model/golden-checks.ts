/**
 * Golden verifiers for the model cases (README tolerances):
 * - G1 (AVM): projections, raw cross-attention and matching logits within abs 1e-5 + rel 1e-4;
 *   importance `n_pos_*` = softmax(S/0.4) averaged over heads and query rows within abs 1e-7;
 *   their descending argsorts exact.
 * - G6 (backbone): Modes A/B/E, the random-masking (`rm.*`) and selected-patch (`gm.*`) training
 *   forwards and the same after perturbing every 1-D parameter (`pert.*`); embeddings / decoder
 *   tokens abs 1e-4 + rel 1e-4, losses rel 1e-4, retrieval vectors abs 1e-5, masks exact.
 * Sizes come from each case's tensors and `config`, never from constants; G6 reads the safetensors
 * named by `config.weights` beside the case file.
 * Ref: golden/README.md G1, G6.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../core/backend.ts';
import type { ModelConfig } from '../core/config.ts';
import { compareClose, countMismatches, type GoldenCase } from '../core/golden.ts';
import { CaseChecker, type CaseResult } from '../core/golden-verify.ts';
import { Rng } from '../core/rng.ts';
import { readSafetensors, type NamedTensor } from '../core/safetensors.ts';
import { gatherTokens, patchifyAudio, patchifyVideo } from '../media/patchify.ts';
import { createAvm } from './avm.ts';
import { createCavBackbone, type CavBackboneModel } from './cav-backbone.ts';
import { loadStateDict } from './weights.ts';

const EMB = { abs: 1e-4, rel: 1e-4 };
const LOSS = { abs: 0, rel: 1e-4 };
const RETRIEVAL = { abs: 1e-5, rel: 0 };
const AVM_TOL = { abs: 1e-5, rel: 1e-4 };
const IMPORTANCE_ABS = 1e-7;

/** The backbone configuration a golden case was made with (`config.backbone`). */
export function configFromCase(c: GoldenCase): ModelConfig {
  const b = c.config.backbone;
  if (!b) throw new Error(`${path.basename(c.file)}: config.backbone is missing`);
  return {
    name: `golden-${c.config.case}`,
    numFrames: b.num_frames,
    imageSize: b.img_size,
    audioFrames: b.audio_size,
    melBins: b.frequency_size,
    patchSize: b.patch_size,
    embedDim: b.encoder_embed_dim,
    numHeads: b.encoder_num_heads,
    depth: b.encoder_depth,
    modalityDepth: b.mid_fusion_depth,
    mlpRatio: b.mlp_ratio,
    decoderDim: b.decoder_embed_dim,
    decoderDepth: b.decoder_depth,
    decoderHeads: b.decoder_num_heads,
    maskRatio: b.mask_ratio_v,
    avmHeads: c.config.derived?.avm_num_heads ?? c.config.avm_num_heads ?? 12,
    layerNormEps: c.config.layer_norm_eps ?? 1e-5,
  };
}

function closeCheck(check: CaseChecker, name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { abs: number; rel: number }) {
  check.close(name, compareClose(actual, expected, tol.abs, tol.rel));
}

function f32(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/** Golden [N, T, C, H, W] video and [N, 1, time, mel] audio → patch-token tensors. */
export function goldenTokens(c: GoldenCase, cfg: ModelConfig, videoName = 'video', audioName = 'audio'): { video: tf.Tensor3D; audio: tf.Tensor3D } {
  const v = c.get(videoName), a = c.get(audioName);
  const [n, t, ch, h, w] = v.shape;
  const [, , time, mel] = a.shape;
  const p = cfg.patchSize;
  const vTok = (t * h * w) / (p * p), aTok = (time * mel) / (p * p);
  const video = new Float32Array(n * vTok * ch * p * p);
  const audio = new Float32Array(n * aTok * p * p);
  for (let i = 0; i < n; i++) {
    video.set(patchifyVideo((v.data as Float32Array).subarray(i * t * ch * h * w, (i + 1) * t * ch * h * w), t, h, w, p, ch), i * vTok * ch * p * p);
    audio.set(patchifyAudio((a.data as Float32Array).subarray(i * time * mel, (i + 1) * time * mel), time, mel, p), i * aTok * p * p);
  }
  return { video: tf.tensor3d(video, [n, vTok, ch * p * p]), audio: tf.tensor3d(audio, [n, aTok, p * p]) };
}

function checkG6Paths(check: CaseChecker, c: GoldenCase, model: CavBackboneModel, video: tf.Tensor3D, audio: tf.Tensor3D, prefix: string): void {
  const want = (name: string) => c.get(prefix + name).data;
  tf.tidy(() => {
    const codes = model.intermediate(video, audio);
    closeCheck(check, `${prefix}inter_c_a`, f32(codes.interA), want('inter_c_a'), EMB);
    closeCheck(check, `${prefix}inter_c_v`, f32(codes.interV), want('inter_c_v'), EMB);
    const joint = model.jointFromCodes(codes);
    closeCheck(check, `${prefix}embedding_a`, f32(joint.embA), want('embedding_a'), EMB);
    closeCheck(check, `${prefix}embedding_v`, f32(joint.embV), want('embedding_v'), EMB);
    if (c.has(`${prefix}latent_c_a`)) {
      const lat = model.latent(video, audio);
      closeCheck(check, `${prefix}latent_c_a`, f32(lat.latentA), want('latent_c_a'), EMB);
      closeCheck(check, `${prefix}latent_c_v`, f32(lat.latentV), want('latent_c_v'), EMB);
    }
    const ret = model.embed(video, audio);
    closeCheck(check, `${prefix}retrieval_a`, f32(ret.a), want('retrieval_a'), RETRIEVAL);
    closeCheck(check, `${prefix}retrieval_v`, f32(ret.v), want('retrieval_v'), RETRIEVAL);

    const rm = model.maeRandomDetailed(video, audio, {
      audio: c.get('rm.noise_a').data as Float32Array,
      video: c.get('rm.noise_v').data as Float32Array,
    });
    // The perturbed-weights variant repeats only the losses and outputs of the random-masking forward.
    checkTrainForward(check, c, `${prefix}rm.`, rm, !prefix);
  });
}

/** One training forward (`rm.` random masking or `gm.` selected patches) against its golden tensors. */
function checkTrainForward(check: CaseChecker, c: GoldenCase, p: string, f: ReturnType<CavBackboneModel['maeRandomDetailed']>, full: boolean): void {
  closeCheck(check, `${p}mae_audio_loss`, f32(f.maeAudioLoss), c.get(`${p}mae_audio_loss`).data, LOSS);
  closeCheck(check, `${p}mae_frame_loss`, f32(f.maeVideoLoss), c.get(`${p}mae_frame_loss`).data, LOSS);
  closeCheck(check, `${p}contrastive_loss`, f32(f.contrastiveLoss), c.get(`${p}contrastive_loss`).data, LOSS);
  closeCheck(check, `${p}audio_output`, f32(f.audioOutput), c.get(`${p}audio_output`).data, EMB);
  closeCheck(check, `${p}video_output`, f32(f.videoOutput), c.get(`${p}video_output`).data, EMB);
  if (!full) return;
  closeCheck(check, `${p}mae_audio_loss_no_norm_pix`, f32(f.maeAudioLossAlt), c.get(`${p}mae_audio_loss_no_norm_pix`).data, LOSS);
  closeCheck(check, `${p}mae_frame_loss_no_norm_pix`, f32(f.maeVideoLossAlt), c.get(`${p}mae_frame_loss_no_norm_pix`).data, LOSS);
  closeCheck(check, `${p}contrastive_logits`, f32(f.contrastiveLogits), c.get(`${p}contrastive_logits`).data, EMB);
  closeCheck(check, `${p}decoder_a`, f32(f.decoderA), c.get(`${p}decoder_a`).data, EMB);
  closeCheck(check, `${p}decoder_v`, f32(f.decoderV), c.get(`${p}decoder_v`).data, EMB);
  check.exact(`${p}input_mask_a`, countMismatches(f.inputMaskA, c.get(`${p}input_mask_a`).data));
  check.exact(`${p}input_mask_v`, countMismatches(f.inputMaskV, c.get(`${p}input_mask_v`).data));
}

function checkG6Selected(check: CaseChecker, c: GoldenCase, model: CavBackboneModel, video: tf.Tensor3D, audio: tf.Tensor3D): void {
  tf.tidy(() => {
    const cv = c.get('gm.core_video_patches'), ca = c.get('gm.core_audio_patches');
    const avIds = c.get('gm.att_av_ids'), vaIds = c.get('gm.att_va_ids');
    const [n, kv] = cv.shape, ka = ca.shape[1];
    const vd = cv.shape.slice(2).reduce((x, y) => x * y, 1), ad = ca.shape.slice(2).reduce((x, y) => x * y, 1);
    const lv = avIds.shape[1], la = vaIds.shape[1];
    // The selected patches must be the G4-style extraction at the ids.
    const vTok = video.dataSync() as Float32Array, aTok = audio.dataSync() as Float32Array;
    let mismatches = 0;
    for (let i = 0; i < n; i++) {
      mismatches += countMismatches(gatherTokens(vTok.subarray(i * lv * vd, (i + 1) * lv * vd), vd, avIds.data.subarray(i * lv, (i + 1) * lv), kv), cv.data.subarray(i * kv * vd, (i + 1) * kv * vd));
      mismatches += countMismatches(gatherTokens(aTok.subarray(i * la * ad, (i + 1) * la * ad), ad, vaIds.data.subarray(i * la, (i + 1) * la), ka), ca.data.subarray(i * ka * ad, (i + 1) * ka * ad));
    }
    check.exact('gm.core_*_patches (extraction at the ids)', mismatches);
    const gm = model.maeSelectedDetailed(
      tf.tensor3d(cv.data as Float32Array, [n, kv, vd]),
      tf.tensor3d(ca.data as Float32Array, [n, ka, ad]),
      tf.tensor2d(avIds.data as Int32Array, [n, lv], 'int32'),
      tf.tensor2d(vaIds.data as Int32Array, [n, la], 'int32'),
      { audio: c.get('gm.noise_a').data as Float32Array, video: c.get('gm.noise_v').data as Float32Array },
    );
    checkTrainForward(check, c, 'gm.', gm, true);
    check.exact('gm.target_mask_a', countMismatches(gm.inputMaskA.map((m) => 1 - m), c.get('gm.target_mask_a').data));
    check.exact('gm.target_mask_v', countMismatches(gm.inputMaskV.map((m) => 1 - m), c.get('gm.target_mask_v').data));
  });
}

export async function verifyG6(c: GoldenCase, dir: string): Promise<CaseResult> {
  await initBackend();
  const check = new CaseChecker();
  const cfg = configFromCase(c);
  const weightsFile = path.join(dir, String(c.config.weights ?? 'g6_backbone.safetensors'));
  const weights = readSafetensors(weightsFile).tensors;
  const model = createCavBackbone(cfg, { rng: Rng.fromSeed(`golden-${c.config.seed ?? 0}`), normPixLoss: c.config.criterion?.norm_pix_loss ?? true });
  const { video, audio } = goldenTokens(c, cfg);
  try {
    loadStateDict(model, weights, { source: weightsFile });
    checkG6Paths(check, c, model, video, audio, '');
    checkG6Selected(check, c, model, video, audio);
    const perturbed = new Map<string, NamedTensor>();
    for (const [name, t] of c.tensors) if (name.startsWith('pert_param.')) perturbed.set(name.slice('pert_param.'.length), t as NamedTensor);
    if (perturbed.size) {
      loadStateDict(model, perturbed, { strict: false, source: `${path.basename(c.file)} pert_param.*` });
      checkG6Paths(check, c, model, video, audio, 'pert.');
    }
  } finally {
    video.dispose();
    audio.dispose();
    model.dispose();
  }
  return check.result();
}

/** Importance of each key: softmax(S/τ) over keys, mean over heads and query rows (float64). */
export function importanceFromLogits(s: Float32Array, [n, h, rows, cols]: number[], temperature: number): Float64Array {
  const out = new Float64Array(n * cols);
  const e = new Float64Array(cols);
  for (let b = 0; b < n; b++)
    for (let head = 0; head < h; head++)
      for (let r = 0; r < rows; r++) {
        const base = ((b * h + head) * rows + r) * cols;
        let max = -Infinity;
        for (let j = 0; j < cols; j++) max = Math.max(max, s[base + j] / temperature);
        let sum = 0;
        for (let j = 0; j < cols; j++) { e[j] = Math.exp(s[base + j] / temperature - max); sum += e[j]; }
        for (let j = 0; j < cols; j++) out[b * cols + j] += e[j] / sum / (h * rows);
      }
  return out;
}

function argsortDescending(values: ArrayLike<number>, n: number, cols: number): Int32Array {
  const out = new Int32Array(n * cols);
  for (let b = 0; b < n; b++) {
    const idx = Array.from({ length: cols }, (_, i) => i);
    idx.sort((x, y) => values[b * cols + y] - values[b * cols + x]);
    out.set(idx, b * cols);
  }
  return out;
}

export async function verifyG1(c: GoldenCase, _dir: string): Promise<CaseResult> {
  await initBackend();
  const check = new CaseChecker();
  const xa = c.get('x_a'), xv = c.get('x_v');
  const dim = xa.shape[2];
  const heads = c.get('cross_attn_av').shape[1];
  const temperature = c.config.att_temperature ?? c.config.stella?.att_temperature ?? 0.4;
  const avm = createAvm(dim, heads, { rng: Rng.fromSeed('golden-g1') });
  const weights = new Map<string, NamedTensor>();
  for (const [name, t] of c.tensors) if (name.startsWith('avm.')) weights.set(name.slice(4), t as NamedTensor);
  try {
    loadStateDict(avm, weights, { source: `${path.basename(c.file)} avm.*` });
    tf.tidy(() => {
      const za = tf.tensor3d(xa.data as Float32Array, xa.shape as [number, number, number]);
      const zv = tf.tensor3d(xv.data as Float32Array, xv.shape as [number, number, number]);
      const att = avm.inferAttention(za, zv);
      closeCheck(check, 'cross_attn_av', f32(att.sAV), c.get('cross_attn_av').data, AVM_TOL);
      closeCheck(check, 'cross_attn_va', f32(att.sVA), c.get('cross_attn_va').data, AVM_TOL);
      closeCheck(check, 'v_q', f32(att.qV), c.get('v_q').data, AVM_TOL);
      closeCheck(check, 'v_k', f32(att.kV), c.get('v_k').data, AVM_TOL);
      closeCheck(check, 'a_q', f32(att.qA), c.get('a_q').data, AVM_TOL);
      closeCheck(check, 'a_k', f32(att.kA), c.get('a_k').data, AVM_TOL);
      closeCheck(check, 'logits', f32(avm.forward(za, zv)), c.get('logits').data, AVM_TOL);
      for (const [scores, logits] of [['n_pos_cross_attn_av', att.sAV], ['n_pos_cross_attn_va', att.sVA]] as const) {
        const importance = importanceFromLogits(f32(logits), logits.shape, temperature);
        closeCheck(check, scores, importance, c.get(scores).data, { abs: IMPORTANCE_ABS, rel: 0 });
        const [n, cols] = c.get(scores).shape;
        const ids = scores === 'n_pos_cross_attn_av' ? 'att_av_ids' : 'att_va_ids';
        check.exact(ids, countMismatches(argsortDescending(importance, n, cols), c.get(ids).data));
      }
    });
  } finally {
    avm.dispose();
  }
  return check.result();
}
