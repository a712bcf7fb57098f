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

/**
 * G5: for every signal named in `config.files`, the centred waveform (abs 1e-6), the full
 * normalised spectrogram and the short variant (first `config.short_samples`, re-centred) within
 * abs 2e-3, except cells within 0.25 normalised units (≈1.1 nats) of the log floor, where float32
 * cancellation in the reference dominates (README: "a few cells near the log floor may need 1e-2"),
 * which get 1e-2.
 * Sizes (target frames, mel bins, short length) come from the case.
 */
export async function verifyG5(c: GoldenCase, dir: string): Promise<CaseResult> {
  const { readWav } = await import('./wav.ts');
  const { KaldiFbank, centreWaveform, spectrogramInput, FBANK_NORM_MEAN, FBANK_NORM_STD, LOG_FLOOR } = await import('./fbank.ts');
  const { compareClose } = await import('../core/golden.ts');
  const path = await import('node:path');
  const check = new CaseChecker();
  const files = c.config.files as Record<string, { wav: string }> | undefined;
  if (!files || typeof files !== 'object') {
    check.fail(`${path.basename(c.file)}: config.files is missing`);
    return check.result();
  }
  const fb = c.config.fbank ?? {};
  const norm = c.config.normalize ?? {};
  if ((norm.mean ?? FBANK_NORM_MEAN) !== FBANK_NORM_MEAN || (norm.std ?? FBANK_NORM_STD) !== FBANK_NORM_STD) {
    check.fail(`normalisation ${norm.mean}/${norm.std} differs from the implemented ${FBANK_NORM_MEAN}/${FBANK_NORM_STD}`);
  }
  const sampleRate = c.config.sample_rate ?? fb.sample_frequency ?? 16000;
  const firstSpec = c.get(`${Object.keys(files)[0]}.spec`).shape;
  const [target, mel] = firstSpec.slice(-2);
  const bank = new KaldiFbank({
    sampleRate,
    frameLength: Math.round(((fb.frame_length ?? 25) * sampleRate) / 1000),
    frameShift: Math.round(((fb.frame_shift ?? 10) * sampleRate) / 1000),
    melBins: mel,
    lowFreq: fb.low_freq ?? 20,
    highFreq: fb.high_freq ?? 0,
    preemphasis: fb.preemphasis_coefficient ?? 0.97,
  });
  const floorNorm = (Math.log(LOG_FLOOR) - FBANK_NORM_MEAN) / FBANK_NORM_STD;
  const compareSpec = (name: string, actual: Float32Array, expected: ArrayLike<number>) => {
    const tol = new Float32Array(actual.length);
    for (let i = 0; i < actual.length; i++) {
      const nearFloor = Math.min(Math.abs(expected[i] - floorNorm), Math.abs(actual[i] - floorNorm)) < 0.25;
      tol[i] = nearFloor ? 1e-2 : 2e-3;
    }
    let maxAbs = 0, worstExcess = -Infinity, worstIndex = -1;
    for (let i = 0; i < actual.length; i++) {
      const d = Math.abs(actual[i] - expected[i]);
      const excess = Number.isNaN(d) ? Infinity : d - tol[i];
      if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
      if (excess > worstExcess) { worstExcess = excess; worstIndex = i; }
    }
    if (actual.length !== expected.length) check.fail(`${name}: ${actual.length} values, expected ${expected.length}`);
    else check.close(name, { maxAbs, worstExcess, worstIndex, ok: worstExcess <= 0 });
  };
  for (const [name, entry] of Object.entries(files)) {
    const wav = readWav(path.join(dir, entry.wav));
    if (wav.sampleRate !== sampleRate) check.fail(`${entry.wav}: sample rate ${wav.sampleRate}, case says ${sampleRate}`);
    const centred = centreWaveform(wav.samples.slice());
    if (c.has(`${name}.waveform_centered`)) check.close(`${name}.waveform_centered`, compareClose(centred, c.get(`${name}.waveform_centered`).data, 1e-6));
    compareSpec(`${name}.spec`, spectrogramInput(centred, target, mel, bank), c.get(`${name}.spec`).data);
    if (c.has(`${name}.short_spec`)) {
      const shortSamples = c.config.short_samples ?? Math.floor(wav.samples.length / 2);
      const shortCentred = centreWaveform(wav.samples.slice(0, shortSamples));
      compareSpec(`${name}.short_spec`, spectrogramInput(shortCentred, target, mel, bank), c.get(`${name}.short_spec`).data);
    }
  }
  return check.result();
}
