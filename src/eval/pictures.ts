/**
 * Clip pictures: video frames and the spectrogram with patch importance as a heat overlay and the
 * selected patches outlined. Used by the report and by `stella inspect`.
 *
 * Inputs (`ClipPictureInput`):
 * - `frames` Float32Array [T, 3, H, W], ImageNet-normalised (un-normalised here for display);
 *   `frameShape` [T, H, W] (default: T = 4, square frames).
 * - `fbank` Float32Array [time, mel] (normalised log-mel); `fbankShape` [time, mel] (default mel = 128).
 * - `patch` patch side (16). Video token index t·(H/P)·(W/P) + row·(W/P) + col; audio token index
 *   t·(mel/P) + f (spec §2.1–2.3). With fewer temporal token slices than frames, frame k shows slice
 *   ⌊k·slices/T⌋.
 * - optional `videoImportance` [Lv], `audioImportance` [La] (heat overlay, min–max scaled per
 *   modality over the clip), `videoSelected`, `audioSelected` (token ids; the outline follows the
 *   border of the selected region, so neighbouring selected patches share one outline).
 * Output: PNG buffers. Each picture has a top panel with the plain input and, when importance or a
 * selection is given, a bottom panel with the heat overlay (opacity grows with importance) and the
 * outlines. Frames are laid out left to right; the spectrogram has time to the right and low
 * frequencies at the bottom. Small inputs are enlarged by an integer factor (nearest neighbour).
 */
import { PNG } from 'pngjs';

export interface ClipPictureInput {
  path: string;
  frames: Float32Array;
  frameShape?: [number, number, number];
  fbank: Float32Array;
  fbankShape?: [number, number];
  patch: number;
  videoImportance?: Float32Array;
  audioImportance?: Float32Array;
  videoSelected?: Int32Array;
  audioSelected?: Int32Array;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** Overlay opacity grows with importance so unimportant regions stay readable. */
const HEAT_ALPHA_MIN = 0.15;
const HEAT_ALPHA_MAX = 0.65;
const OUTLINE: Rgb = [0, 255, 90];
const FRAME_GAP = 6;

type Rgb = [number, number, number];

/** A plain RGBA raster with the few drawing operations the pictures need. */
export class Raster {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number, background: Rgb = [255, 255, 255]) {
    this.data = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) this.data.set([...background, 255], i * 4);
  }
  set(x: number, y: number, [r, g, b]: Rgb) {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set([r, g, b, 255], (y * this.width + x) * 4);
  }
  blend(x: number, y: number, [r, g, b]: Rgb, alpha: number) {
    const i = (y * this.width + x) * 4;
    this.data[i] = Math.round(this.data[i] * (1 - alpha) + r * alpha);
    this.data[i + 1] = Math.round(this.data[i + 1] * (1 - alpha) + g * alpha);
    this.data[i + 2] = Math.round(this.data[i + 2] * (1 - alpha) + b * alpha);
  }
  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
    return PNG.sync.write(png);
  }
}

/** Heat colour map (black → purple → red → orange → yellow → white), v in [0, 1]. */
const HEAT_STOPS: Rgb[] = [
  [0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164],
];
export function heatColor(v: number): Rgb {
  const x = Math.min(1, Math.max(0, v)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(HEAT_STOPS[i][c] * (1 - f) + HEAT_STOPS[i + 1][c] * f)) as Rgb;
}

function blendHeat(img: Raster, x: number, y: number, v: number) {
  img.blend(x, y, heatColor(v), HEAT_ALPHA_MIN + (HEAT_ALPHA_MAX - HEAT_ALPHA_MIN) * v);
}

function minMaxScaler(values: ArrayLike<number>): (v: number) => number {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const span = hi - lo;
  return span > 0 ? (v) => (v - lo) / span : () => 0.5;
}

/** Draws the border of the selected region on a patch grid: an edge wherever the neighbour is unselected. */
function outlineSelection(
  img: Raster,
  selected: (row: number, col: number) => boolean,
  rows: number,
  cols: number,
  cell: (row: number, col: number) => { x0: number; y0: number; x1: number; y1: number },
  thickness: number,
) {
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      if (!selected(r, c)) continue;
      const { x0, y0, x1, y1 } = cell(r, c);
      const edge = (xa: number, ya: number, xb: number, yb: number) => {
        for (let y = ya; y <= yb; y++) for (let x = xa; x <= xb; x++) img.set(x, y, OUTLINE);
      };
      if (r === 0 || !selected(r - 1, c)) edge(x0, y0, x1, y0 + thickness - 1);
      if (r === rows - 1 || !selected(r + 1, c)) edge(x0, y1 - thickness + 1, x1, y1);
      if (c === 0 || !selected(r, c - 1)) edge(x0, y0, x0 + thickness - 1, y1);
      if (c === cols - 1 || !selected(r, c + 1)) edge(x1 - thickness + 1, y0, x1, y1);
    }
}

function tokenSet(ids: Int32Array | undefined, count: number, what: string): Uint8Array | undefined {
  if (!ids) return undefined;
  const set = new Uint8Array(count);
  for (const id of ids) {
    if (id < 0 || id >= count) throw new RangeError(`${what}: token id ${id} outside [0, ${count})`);
    set[id] = 1;
  }
  return set;
}

export function renderFrames(clip: ClipPictureInput): Buffer {
  const [T, H, W] = clip.frameShape ?? inferFrameShape(clip.frames.length, clip.path);
  if (clip.frames.length !== T * 3 * H * W) {
    throw new RangeError(`${clip.path}: frames have ${clip.frames.length} values, expected T·3·H·W = ${T}·3·${H}·${W}`);
  }
  const P = clip.patch;
  if (H % P || W % P) throw new RangeError(`${clip.path}: frame ${H}×${W} is not a multiple of the patch size ${P}`);
  const gh = H / P, gw = W / P;
  const L = clip.videoImportance?.length ?? T * gh * gw;
  if (L % (gh * gw)) throw new RangeError(`${clip.path}: ${L} video importance scores is not a multiple of ${gh}·${gw} patches per frame`);
  const slices = L / (gh * gw);
  const scale = Math.max(1, Math.floor(192 / H));
  const importance = clip.videoImportance;
  const toUnit = importance ? minMaxScaler(importance) : undefined;
  const selected = tokenSet(clip.videoSelected, L, `${clip.path}: videoSelected`);
  const annotated = Boolean(importance || selected);
  const panelHeight = H * scale;
  // Top row: the frames as decoded; bottom row (when there is something to show): overlay + outlines.
  const img = new Raster(T * W * scale + (T - 1) * FRAME_GAP, annotated ? 2 * panelHeight + FRAME_GAP : panelHeight);
  for (let k = 0; k < T; k++) {
    const slice = Math.floor((k * slices) / T);
    const left = k * (W * scale + FRAME_GAP);
    for (let y = 0; y < panelHeight; y++)
      for (let x = 0; x < W * scale; x++) {
        const sy = Math.floor(y / scale), sx = Math.floor(x / scale);
        const rgb = [0, 1, 2].map((c) => {
          const v = clip.frames[((k * 3 + c) * H + sy) * W + sx] * IMAGENET_STD[c] + IMAGENET_MEAN[c];
          return Math.round(255 * Math.min(1, Math.max(0, v)));
        }) as Rgb;
        img.set(left + x, y, rgb);
        if (!annotated) continue;
        const y2 = y + panelHeight + FRAME_GAP;
        img.set(left + x, y2, rgb);
        if (importance && toUnit) {
          const token = slice * gh * gw + Math.floor(sy / P) * gw + Math.floor(sx / P);
          blendHeat(img, left + x, y2, toUnit(importance[token]));
        }
      }
    if (selected) {
      const cellPx = P * scale;
      const top = panelHeight + FRAME_GAP;
      outlineSelection(
        img,
        (r, c) => selected[slice * gh * gw + r * gw + c] === 1,
        gh,
        gw,
        (r, c) => ({ x0: left + c * cellPx, y0: top + r * cellPx, x1: left + (c + 1) * cellPx - 1, y1: top + (r + 1) * cellPx - 1 }),
        Math.max(1, scale),
      );
    }
  }
  return img.toPng();
}

export function renderSpectrogram(clip: ClipPictureInput): Buffer {
  const [time, mel] = clip.fbankShape ?? [clip.fbank.length / 128, 128];
  if (!Number.isInteger(time) || clip.fbank.length !== time * mel) {
    throw new RangeError(`${clip.path}: fbank has ${clip.fbank.length} values, not [time, ${mel}]; pass fbankShape`);
  }
  const P = clip.patch;
  if (time % P || mel % P) throw new RangeError(`${clip.path}: fbank ${time}×${mel} is not a multiple of the patch size ${P}`);
  const tp = time / P, fp = mel / P;
  const sx = Math.max(1, Math.floor(512 / time)), sy = Math.max(1, Math.floor(256 / mel));
  const importance = clip.audioImportance;
  if (importance && importance.length !== tp * fp) {
    throw new RangeError(`${clip.path}: ${importance.length} audio importance scores, expected ${tp}·${fp} = ${tp * fp}`);
  }
  const toUnit = importance ? minMaxScaler(importance) : undefined;
  const selected = tokenSet(clip.audioSelected, tp * fp, `${clip.path}: audioSelected`);
  const annotated = Boolean(importance || selected);
  const panelHeight = mel * sy;
  const top2 = panelHeight + FRAME_GAP;
  const img = new Raster(time * sx, annotated ? 2 * panelHeight + FRAME_GAP : panelHeight);
  const toUnitValue = minMaxScaler(clip.fbank);
  for (let y = 0; y < panelHeight; y++) {
    // Row 0 of the image is the highest mel bin: low frequencies at the bottom.
    const m = mel - 1 - Math.floor(y / sy);
    for (let x = 0; x < time * sx; x++) {
      const t = Math.floor(x / sx);
      const g = Math.round(255 * toUnitValue(clip.fbank[t * mel + m]));
      img.set(x, y, [g, g, g]);
      if (!annotated) continue;
      img.set(x, y + top2, [g, g, g]);
      if (importance && toUnit) blendHeat(img, x, y + top2, toUnit(importance[Math.floor(t / P) * fp + Math.floor(m / P)]));
    }
  }
  if (selected) {
    // Grid rows run top to bottom = frequency patches from high to low; columns = time patches.
    outlineSelection(
      img,
      (r, c) => selected[c * fp + (fp - 1 - r)] === 1,
      fp,
      tp,
      (r, c) => ({ x0: c * P * sx, y0: top2 + r * P * sy, x1: (c + 1) * P * sx - 1, y1: top2 + (r + 1) * P * sy - 1 }),
      Math.max(1, Math.min(sx, sy)),
    );
  }
  return img.toPng();
}

/** Both pictures of one clip, as PNG bytes. */
export function renderClipPictures(clip: ClipPictureInput): { framesPng: Buffer; spectrogramPng: Buffer } {
  return { framesPng: renderFrames(clip), spectrogramPng: renderSpectrogram(clip) };
}

function inferFrameShape(length: number, path: string): [number, number, number] {
  const T = 4;
  const side = Math.sqrt(length / (3 * T));
  if (!Number.isInteger(side)) throw new RangeError(`${path}: cannot infer [T, H, W] from ${length} frame values; pass frameShape`);
  return [T, side, side];
}
