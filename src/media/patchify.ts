/**
 * Patch extraction (the tokenize stage's math), spec §2.
 *
 * Video: frames [T, 3, H, W] → tokens [T·(H/P)·(W/P), 3·P·P], token `t·h·w` order
 * (index t·hw + row·w + col), each patch flattened (c, p, q) as the conv patch embedding reads it.
 * Audio: fbank [time, mel] → tokens [(time/P)·(mel/P), P·P], token index t·F + f, patch (p = time, q = freq).
 * MAE targets use (p, q, c) inside a patch (channel last): `videoTargetsFromPatches`.
 * Ref: models/cav.py patch embeddings, patchify_frame / patchify_audio (G4).
 */

export const PATCH = 16;

function assertDivisible(what: string, size: number, patch: number) {
  if (!Number.isInteger(size / patch)) throw new RangeError(`${what} ${size} is not a multiple of the patch size ${patch}`);
}

/**
 * Where each token value comes from: `index[i]` is the offset in the [T, C, H, W] frames of the i-th
 * value of the video token matrix. One map serves patchify (gather) and its inverse (scatter); cached
 * per shape because a run uses one.
 */
const videoIndexCache = new Map<string, Int32Array>();
function videoPatchIndex(T: number, H: number, W: number, P: number, C: number): Int32Array {
  const key = `${T}x${C}x${H}x${W}/${P}`;
  let index = videoIndexCache.get(key);
  if (!index) {
    const gh = H / P, gw = W / P;
    index = new Int32Array(T * C * H * W);
    let o = 0;
    for (let t = 0; t < T; t++)
      for (let h = 0; h < gh; h++)
        for (let w = 0; w < gw; w++)
          for (let c = 0; c < C; c++) {
            const plane = (t * C + c) * H * W;
            for (let p = 0; p < P; p++) {
              const row = plane + (h * P + p) * W + w * P;
              for (let q = 0; q < P; q++) index[o++] = row + q;
            }
          }
    videoIndexCache.set(key, index);
  }
  return index;
}

/** The same for audio: offsets in the [time, mel] fbank of each value of the token matrix. */
const audioIndexCache = new Map<string, Int32Array>();
function audioPatchIndex(time: number, mel: number, P: number): Int32Array {
  const key = `${time}x${mel}/${P}`;
  let index = audioIndexCache.get(key);
  if (!index) {
    const gt = time / P, gf = mel / P;
    index = new Int32Array(time * mel);
    let o = 0;
    for (let t = 0; t < gt; t++)
      for (let f = 0; f < gf; f++)
        for (let p = 0; p < P; p++) {
          const row = (t * P + p) * mel + f * P;
          for (let q = 0; q < P; q++) index[o++] = row + q;
        }
    audioIndexCache.set(key, index);
  }
  return index;
}

function checkVideo(what: string, length: number, T: number, H: number, W: number, P: number, C: number): void {
  assertDivisible('frame height', H, P);
  assertDivisible('frame width', W, P);
  if (length !== T * C * H * W) {
    throw new RangeError(`${what} has ${length} values, expected T·C·H·W = ${T}·${C}·${H}·${W} = ${T * C * H * W}`);
  }
}

function checkAudio(what: string, length: number, time: number, mel: number, P: number): void {
  assertDivisible('spectrogram length', time, P);
  assertDivisible('mel bins', mel, P);
  if (length !== time * mel) throw new RangeError(`${what} has ${length} values, expected ${time}·${mel}`);
}

/** [T, 3, H, W] → [T·(H/P)·(W/P), 3·P·P] in (c, p, q) order. */
export function patchifyVideo(frames: Float32Array, T: number, H: number, W: number, P = PATCH, C = 3): Float32Array {
  checkVideo('video', frames.length, T, H, W, P, C);
  const index = videoPatchIndex(T, H, W, P, C);
  const out = new Float32Array(index.length);
  for (let i = 0; i < index.length; i++) out[i] = frames[index[i]];
  return out;
}

/** Video tokens [T·(H/P)·(W/P), 3·P·P] → frames [T, 3, H, W] (inverse of patchifyVideo). */
export function unpatchifyVideo(tokens: Float32Array, T: number, H: number, W: number, P = PATCH, C = 3): Float32Array {
  checkVideo('video tokens', tokens.length, T, H, W, P, C);
  const index = videoPatchIndex(T, H, W, P, C);
  const frames = new Float32Array(index.length);
  for (let i = 0; i < index.length; i++) frames[index[i]] = tokens[i];
  return frames;
}

/** [time, mel] → [(time/P)·(mel/P), P·P] in (p = time, q = freq) order. */
export function patchifyAudio(fbank: Float32Array, time: number, mel: number, P = PATCH): Float32Array {
  checkAudio('fbank', fbank.length, time, mel, P);
  const index = audioPatchIndex(time, mel, P);
  const out = new Float32Array(index.length);
  for (let i = 0; i < index.length; i++) out[i] = fbank[index[i]];
  return out;
}

/** Audio tokens → fbank [time, mel] (inverse of patchifyAudio). */
export function unpatchifyAudio(tokens: Float32Array, time: number, mel: number, P = PATCH): Float32Array {
  checkAudio('audio tokens', tokens.length, time, mel, P);
  const index = audioPatchIndex(time, mel, P);
  const fbank = new Float32Array(index.length);
  for (let i = 0; i < index.length; i++) fbank[index[i]] = tokens[i];
  return fbank;
}

/** Rows `ids[0..k)` of a [L, D] token matrix, in the order given. */
export function gatherTokens(tokens: Float32Array, D: number, ids: ArrayLike<number>, k = ids.length): Float32Array {
  const L = tokens.length / D;
  const out = new Float32Array(k * D);
  for (let j = 0; j < k; j++) {
    const id = ids[j];
    if (!(id >= 0 && id < L)) throw new RangeError(`token id ${id} at position ${j} is outside 0..${L - 1}`);
    out.set(tokens.subarray(id * D, (id + 1) * D), j * D);
  }
  return out;
}

/** (c, p, q) patches [K, C·P·P] → MAE target layout (p, q, c) [K, P·P·C]. */
export function videoTargetsFromPatches(patches: Float32Array, P = PATCH, C = 3): Float32Array {
  const D = C * P * P, K = patches.length / D;
  const out = new Float32Array(patches.length);
  for (let k = 0; k < K; k++) {
    const base = k * D;
    for (let c = 0; c < C; c++)
      for (let pq = 0; pq < P * P; pq++) out[base + pq * C + c] = patches[base + c * P * P + pq];
  }
  return out;
}
