/** Golden verifiers for the media cases: G4 (patch extraction) and G5 (log-mel filterbank). */
import type { GoldenCase } from '../core/golden.ts';
import { countMismatches } from '../core/golden.ts';
import { CaseChecker, type CaseResult } from '../core/golden-verify.ts';
import { gatherTokens, patchifyAudio, patchifyVideo, videoTargetsFromPatches } from './patchify.ts';

export async function verifyG4(c: GoldenCase): Promise<CaseResult> {
  const check = new CaseChecker();
  const video = c.get('video'), audio = c.get('audio');
  const [N, T, C, H, W] = video.shape;
  const [, , time, mel] = audio.shape;
  const avIds = c.get('att_av_ids'), vaIds = c.get('att_va_ids');
  const kv = c.get('core_video_patches').shape[1], ka = c.get('core_audio_patches').shape[1];
  const P = c.get('core_video_patches').shape[3];
  const Lv = avIds.shape[1], La = vaIds.shape[1];
  const vd = C * P * P, ad = P * P;
  for (let n = 0; n < N; n++) {
    const vt = patchifyVideo((video.data as Float32Array).subarray(n * T * C * H * W, (n + 1) * T * C * H * W), T, H, W, P, C);
    const vs = gatherTokens(vt, vd, avIds.data.subarray(n * Lv, (n + 1) * Lv), kv);
    check.exact(`core_video_patches[${n}]`, countMismatches(vs, c.get('core_video_patches').data.subarray(n * kv * vd, (n + 1) * kv * vd)));
    check.exact(`mae_target_video[${n}]`, countMismatches(videoTargetsFromPatches(vs, P, C), c.get('mae_target_video').data.subarray(n * kv * vd, (n + 1) * kv * vd)));
    const at = patchifyAudio((audio.data as Float32Array).subarray(n * time * mel, (n + 1) * time * mel), time, mel, P);
    const as = gatherTokens(at, ad, vaIds.data.subarray(n * La, (n + 1) * La), ka);
    check.exact(`core_audio_patches[${n}]`, countMismatches(as, c.get('core_audio_patches').data.subarray(n * ka * ad, (n + 1) * ka * ad)));
    check.exact(`mae_target_audio[${n}]`, countMismatches(as, c.get('mae_target_audio').data.subarray(n * ka * ad, (n + 1) * ka * ad)));
  }
  return check.result();
}
