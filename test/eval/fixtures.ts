/**
 * Synthetic clip and results for the report tests. Frames: a blue-grey gradient with a red square
 * (the "sounding object") in frame patch rows 1–2, cols 2–3; the square moves one patch right per
 * frame. Spectrogram: a loud low-frequency band (mel 0–31) during time frames 64–127.
 * Importance peaks on those patches and the selected tokens are exactly them.
 */
import type { ClipPictureInput } from '../../src/eval/pictures.ts';
import type { Results } from '../../src/eval/results.ts';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

export function syntheticClip(T = 4, S = 64, time = 256, mel = 128, P = 16): ClipPictureInput {
  const frames = new Float32Array(T * 3 * S * S);
  const g = S / P;
  const objectPatches = (t: number) => [
    [1, 2 + (t % 2)],
    [1, 3 + (t % 2)],
    [2, 2 + (t % 2)],
    [2, 3 + (t % 2)],
  ].filter(([, c]) => c < g);
  for (let t = 0; t < T; t++) {
    const inObject = new Set(objectPatches(t).map(([r, c]) => r * g + c));
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const obj = inObject.has(Math.floor(y / P) * g + Math.floor(x / P));
        const rgb = obj ? [0.9, 0.1, 0.1] : [0.3 + (0.4 * x) / S, 0.4, 0.5 + (0.3 * y) / S];
        for (let c = 0; c < 3; c++) frames[((t * 3 + c) * S + y) * S + x] = (rgb[c] - MEAN[c]) / STD[c];
      }
  }
  const fbank = new Float32Array(time * mel);
  for (let t = 0; t < time; t++)
    for (let m = 0; m < mel; m++) {
      const loud = t >= 64 && t < 128 && m < 32;
      fbank[t * mel + m] = loud ? 2 - m / 32 : -1 - m / mel;
    }
  // Background importance rises left to right so the heat ramp is visible; the object is highest.
  const videoImportance = Float32Array.from({ length: T * g * g }, (_, i) => 0.01 + 0.02 * (i % g));
  const videoSelected: number[] = [];
  for (let t = 0; t < T; t++)
    for (const [r, c] of objectPatches(t)) {
      videoImportance[t * g * g + r * g + c] = 0.2;
      videoSelected.push(t * g * g + r * g + c);
    }
  const tp = time / P, fp = mel / P;
  const audioImportance = Float32Array.from({ length: tp * fp }, (_, i) => 0.001 + 0.0015 * (i % fp));
  const audioSelected: number[] = [];
  for (let t = 4; t < 8; t++)
    for (let f = 0; f < 2; f++) {
      audioImportance[t * fp + f] = 0.05;
      audioSelected.push(t * fp + f);
    }
  return {
    path: 'clips/dog-bark.mp4',
    frames,
    frameShape: [T, S, S],
    fbank,
    fbankShape: [time, mel],
    patch: P,
    videoImportance,
    audioImportance,
    videoSelected: Int32Array.from(videoSelected),
    audioSelected: Int32Array.from(audioSelected),
  };
}

export function syntheticResults(): Results {
  const tasks = ['sports', 'music', 'vehicle'];
  const m = (base: number) => tasks.map((_, t) => tasks.map((__, j) => Math.round((base + 3 * t - 2 * Math.abs(t - j) + j) * 100) / 100));
  const s = { A: 10, F: 2, F_authors: 1.5 };
  const dir = { R1: s, R5: s, R10: s, avg: s };
  return {
    backend: 'wasm',
    selector: 'stella',
    config: { model: 'tiny', seed: 2021 },
    tasks,
    retrieval: { a2v: { R1: m(5), R5: m(15), R10: m(25) }, v2a: { R1: m(4.5), R5: m(14.25), R10: m(24) } },
    summary: { a2v: dir, v2a: dir },
    localization: { video: { meanAuc: 0.71, clips: 10, skipped: 2 }, audio: { meanAuc: null, clips: 0, skipped: 3 } },
    memory: { bufferBytes: 12 * 1024 * 1024, peakTensorBytes: 300 * 1024 * 1024, peakRssBytes: 1.5 * 1024 ** 3 },
    timing: { wallSeconds: 123.4, stepMsMedian: 456.7 },
    errors: [{ path: 'clips/broken.mp4', stage: 'decode', message: 'ffmpeg exited with code 1 <moov atom not found>' }],
  };
}
