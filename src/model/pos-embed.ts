/**
 * Sin-cos positional tables (spec §2.4), used to initialise `pos_embed_*`, `inter_pos_embed_*` and
 * `decoder_pos_embed_*` when no checkpoint is loaded.
 *
 * E1(n, pos) = [sin(pos·ω_0..ω_{n/2-1}), cos(pos·ω_0..)] with ω_i = 1/10000^(i/(n/2)).
 * E2(D, gh, gw)[k] = [E1(D/2, k mod gw), E1(D/2, ⌊k/gw⌋)].
 * Video: E2(D, side, side) tiled over the frames (no time code).
 * Audio (quirk kept for checkpoint compatibility, §11 Q4): the table is built over (freq, time) =
 * (F, Tp) and reshaped, so audio token k = t·F + f gets [E1(k mod Tp), E1(⌊k/Tp⌋)].
 * Ref: spec §2.4; golden README "Audio position embedding quirk".
 */

/** E1 for one position into `out` at `offset` (n values). */
function sinCos1d(n: number, pos: number, out: Float32Array, offset: number): void {
  const half = n / 2;
  for (let i = 0; i < half; i++) {
    const omega = 1 / Math.pow(10000, i / half);
    out[offset + i] = Math.sin(pos * omega);
    out[offset + half + i] = Math.cos(pos * omega);
  }
}

/** E2(D, gh, gw) as a flat [gh·gw, D] array. */
export function sinCos2d(dim: number, gh: number, gw: number): Float32Array {
  if (dim % 4 !== 0) throw new RangeError(`sin-cos embedding width ${dim} must be a multiple of 4`);
  const out = new Float32Array(gh * gw * dim);
  for (let k = 0; k < gh * gw; k++) {
    sinCos1d(dim / 2, k % gw, out, k * dim);
    sinCos1d(dim / 2, Math.floor(k / gw), out, k * dim + dim / 2);
  }
  return out;
}

/** Video table [frames·side·side, D]: the spatial code repeated per frame. */
export function videoPosEmbed(dim: number, frames: number, side: number): Float32Array {
  const frame = sinCos2d(dim, side, side);
  const out = new Float32Array(frames * frame.length);
  for (let t = 0; t < frames; t++) out.set(frame, t * frame.length);
  return out;
}

/** Audio table [timePatches·freqPatches, D] with the reference's reshape quirk. */
export function audioPosEmbed(dim: number, timePatches: number, freqPatches: number): Float32Array {
  return sinCos2d(dim, freqPatches, timePatches);
}
