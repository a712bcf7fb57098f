/**
 * decode-sinks: consume the decode's ffmpeg pipes while ffmpeg is still running, so the JS work
 * (frame normalisation, mono mixdown, fbank) overlaps ffmpeg's instead of following it.
 *
 * `FrameSink(T, S)`: rgb24 bytes [n, S, S, 3] in any chunking → `finish()` [T, 3, S, S]
 *   ImageNet-normalised; frames past the T-th are ignored, missing ones repeat the last (a source
 *   that ends early). Only one frame of raw bytes is held.
 * `AudioSink(channels, audioFrames, melBins, audioSeconds)`: interleaved f32le PCM in any chunking
 *   (a float may straddle two chunks) → mono (mean over channels), mean|x| over all channels, and
 *   the fbank rows [audioFrames, melBins] normalised, each computed as soon as its 400 samples are in.
 *   `audioSeconds` sizes the buffer (ffmpeg's `-t` on the audio input does the cutting).
 * Why no whole-waveform mean removal first (spec §1.2 step 5): Kaldi's per-frame mean removal
 *   (spec §1.4) cancels any constant offset exactly, so the rows equal those of the centred waveform
 *   up to float32 rounding (measured ≤ 2e-4 in normalised units, G5 allows 2e-3), and need no wait
 *   for the last sample.
 * Ref: spec §1.2, §1.4; fbank.ts for the filterbank itself.
 */
import { defaultFbank, FBANK_NORM_MEAN, FBANK_NORM_STD, type KaldiFbank } from './fbank.ts';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
export const AUDIO_SAMPLE_RATE = 16000;

export class FrameSink {
  /** Frames received whole (may exceed T; only the first T are kept). */
  frames = 0;
  private readonly out: Float32Array;
  private readonly pending: Uint8Array;
  private filled = 0;
  private readonly plane: number;
  private readonly scale = IMAGENET_STD.map((s) => 1 / (255 * s));
  private readonly shift = IMAGENET_MEAN.map((m, c) => m / IMAGENET_STD[c]);

  constructor(readonly T: number, readonly S: number) {
    this.plane = S * S;
    this.out = new Float32Array(T * 3 * this.plane);
    this.pending = new Uint8Array(3 * this.plane);
  }

  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, this.pending.length - this.filled);
      if (this.frames < this.T) this.pending.set(chunk.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.pending.length) {
        if (this.frames < this.T) this.normalise(this.frames);
        this.frames++;
        this.filled = 0;
      }
    }
  }

  private normalise(t: number): void {
    const { pending: rgb, out, plane } = this;
    for (let c = 0; c < 3; c++) {
      const o = (t * 3 + c) * plane, k = this.scale[c], b = this.shift[c];
      for (let p = 0, q = c; p < plane; p++, q += 3) out[o + p] = rgb[q] * k - b;
    }
  }

  /** [T, 3, S, S]; frames after the last received repeat it. Needs at least one frame. */
  finish(): Float32Array {
    const have = Math.min(this.frames, this.T), size = 3 * this.plane;
    for (let t = have; t < this.T && have > 0; t++) this.out.copyWithin(t * size, (have - 1) * size, have * size);
    return this.out;
  }
}

export class AudioSink {
  /** Mean |x| numerator over every received sample of every channel. */
  absSum = 0;
  /** Interleaved samples received (all channels). */
  samples = 0;
  private interleaved: Float32Array;
  private bytes: Uint8Array;
  private byteCount = 0;
  private mono: Float32Array;
  private monoCount = 0;
  private rows = 0;
  private readonly fbankOut: Float32Array;

  constructor(
    readonly channels: number,
    readonly audioFrames: number,
    readonly melBins: number,
    audioSeconds: number,
    private readonly fbank: KaldiFbank = defaultFbank(melBins),
  ) {
    // Room for the whole span up front (plus resampler slack) so no chunk triggers a regrow.
    const spanSamples = Math.ceil(audioSeconds * AUDIO_SAMPLE_RATE) + 1024;
    const capacity = spanSamples * channels;
    this.interleaved = new Float32Array(capacity);
    this.bytes = new Uint8Array(this.interleaved.buffer);
    this.mono = channels === 1 ? this.interleaved : new Float32Array(spanSamples);
    this.fbankOut = new Float32Array(audioFrames * melBins);
  }

  push(chunk: Uint8Array): void {
    if (this.byteCount + chunk.length > this.bytes.length) this.grow(this.byteCount + chunk.length);
    this.bytes.set(chunk, this.byteCount); // the one copy out of the pipe; floats straddling chunks join here
    this.byteCount += chunk.length;
    const total = this.byteCount >> 2;
    const x = this.interleaved;
    let abs = this.absSum;
    for (let i = this.samples; i < total; i++) abs += Math.abs(x[i]);
    this.absSum = abs;
    this.samples = total;
    this.mixdown();
    this.computeRows(false);
  }

  private grow(minBytes: number): void {
    const next = new Float32Array(Math.max(Math.ceil(minBytes / 4), 2 * this.interleaved.length));
    const bytes = new Uint8Array(next.buffer);
    bytes.set(this.bytes.subarray(0, this.byteCount)); // a partial float at the end comes along
    if (this.mono === this.interleaved) this.mono = next;
    else {
      const mono = new Float32Array(Math.ceil(next.length / this.channels));
      mono.set(this.mono.subarray(0, this.monoCount));
      this.mono = mono;
    }
    this.interleaved = next;
    this.bytes = bytes;
  }

  private mixdown(): void {
    const C = this.channels, frames = Math.floor(this.samples / C);
    if (C === 1) { this.monoCount = frames; return; }
    const x = this.interleaved, mono = this.mono;
    for (let i = this.monoCount; i < frames; i++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[i * C + c];
      mono[i] = s / C;
    }
    this.monoCount = frames;
  }

  /** Fbank rows whose 400 samples are in (all remaining ones at the end), normalised in place. */
  private computeRows(final: boolean): void {
    const { frameShift, frameLength } = this.fbank.options;
    const ready = Math.min(this.audioFrames, this.fbank.frameCount(this.monoCount));
    if (ready <= this.rows || (!final && ready - this.rows < 16)) return; // batch small chunks
    const start = this.rows * frameShift;
    const { data, frames } = this.fbank.compute(this.mono.subarray(start, start + (ready - this.rows - 1) * frameShift + frameLength));
    const out = this.fbankOut, offset = this.rows * this.melBins;
    for (let i = 0; i < frames * this.melBins; i++) out[offset + i] = (data[i] - FBANK_NORM_MEAN) / FBANK_NORM_STD;
    this.rows += frames;
  }

  /** Mono samples received. */
  get monoSamples(): number { return this.monoCount; }

  /** [audioFrames, melBins] normalised; rows past the audio are log-domain zeros (spec §1.4). */
  finish(): Float32Array {
    this.computeRows(true);
    const pad = -FBANK_NORM_MEAN / FBANK_NORM_STD;
    this.fbankOut.fill(pad, this.rows * this.melBins);
    return this.fbankOut;
  }
}
