/**
 * Crop + resize of rgb24 frames in JS, as the spec's GroupMultiScaleCrop does it (spec §1.3:
 * `img.crop(box).resize((S, S), PIL bilinear)`): PIL's resampling, i.e. a triangle filter whose
 * support widens by the downscale factor (antialiased), separable, horizontal pass first, each
 * pass rounded to 8 bits. Coefficients are computed in float64 (PIL uses fixed point, so a value
 * may differ from PIL's by one level) and depend only on (box size, output size), so they are kept.
 * Input: `src` [H, W, 3] uint8; `box` inside it. Output: [S, S, 3] uint8.
 */
import type { CropBox } from './decode.ts';

interface Taps { start: Int32Array; count: Int32Array; weights: Float64Array; width: number }
const tapCache = new Map<string, Taps>();

/** For each output index: the first input index (relative to the box), the tap count and the weights. */
function taps(inSize: number, outSize: number): Taps {
  const key = `${inSize}:${outSize}`;
  const hit = tapCache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1, widened when shrinking
  const width = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize), count = new Int32Array(outSize), weights = new Float64Array(outSize * width);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const d = Math.abs((x - center + 0.5) / filterScale);
      const w = d < 1 ? 1 - d : 0;
      weights[o * width + x - lo] = w;
      sum += w;
    }
    for (let x = lo; x < hi; x++) weights[o * width + x - lo] /= sum;
    start[o] = lo;
    count[o] = hi - lo;
  }
  const t = { start, count, weights, width };
  tapCache.set(key, t);
  return t;
}

const clip8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

export function cropResizeRgb(src: Uint8Array, srcWidth: number, box: CropBox, size: number, out = new Uint8Array(size * size * 3)): Uint8Array {
  const h = taps(box.w, size), v = taps(box.h, size);
  // Horizontal pass over the box's rows: [box.h, size, 3].
  const mid = new Uint8Array(box.h * size * 3);
  for (let y = 0; y < box.h; y++) {
    const row = ((box.y + y) * srcWidth + box.x) * 3;
    for (let o = 0; o < size; o++) {
      let r = 0, g = 0, b = 0;
      const base = o * h.width, first = h.start[o];
      for (let k = 0; k < h.count[o]; k++) {
        const w = h.weights[base + k], p = row + (first + k) * 3;
        r += w * src[p]; g += w * src[p + 1]; b += w * src[p + 2];
      }
      const q = (y * size + o) * 3;
      mid[q] = clip8(r); mid[q + 1] = clip8(g); mid[q + 2] = clip8(b);
    }
  }
  // Vertical pass: [size, size, 3].
  for (let o = 0; o < size; o++) {
    const base = o * v.width, first = v.start[o];
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < v.count[o]; k++) {
        const w = v.weights[base + k], p = ((first + k) * size + x) * 3;
        r += w * mid[p]; g += w * mid[p + 1]; b += w * mid[p + 2];
      }
      const q = (o * size + x) * 3;
      out[q] = clip8(r); out[q + 1] = clip8(g); out[q + 2] = clip8(b);
    }
  }
  return out;
}
