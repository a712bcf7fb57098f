/**
 * Kaldi-compatible log-mel filterbank and the model's spectrogram input.
 *
 * Behaviour (spec §1.4, golden README G5): 400-sample frames every 160 samples (whole frames only,
 * `1 + ⌊(n − 400)/160⌋`); per frame remove the frame mean, pre-emphasis 0.97 (first sample uses itself
 * as predecessor), symmetric Hann window `0.5 − 0.5·cos(2πn/399)`, zero-pad to 512, power spectrum;
 * 128 Kaldi mel triangles (mel = 1127·ln(1 + f/700), 20 Hz..8 kHz, Nyquist bin unweighted); natural
 * log with floor 1.1920929e-07. No dither, no energy term, samples NOT scaled by 32768.
 * `spectrogramInput` then pads with log-domain zeros (before normalisation) or cuts to the target
 * frame count and normalises `(x + 5.081) / 4.4849`.
 * Inputs: mono float samples at 16 kHz (already DC-centred by the caller, see `centreWaveform`).
 * Outputs: Float32Array [frames, melBins], time-major.
 * Window, FFT tables and the (sparse) mel bank are computed once per `KaldiFbank` instance;
 * `defaultFbank()` shares one for the standard settings.
 * Ref: spec §1.4 steps 1, 2, 4; torchaudio.compliance.kaldi.fbank semantics.
 */
import FFT from 'fft.js';
import { z } from 'zod';

export const FBANK_NORM_MEAN = -5.081;
export const FBANK_NORM_STD = 4.4849;
/** float32 epsilon, Kaldi's log floor. */
export const LOG_FLOOR = 1.1920929e-7;

export const fbankOptionsSchema = z.object({
  sampleRate: z.number().positive().default(16000),
  /** Window length in samples (25 ms). */
  frameLength: z.number().int().positive().default(400),
  /** Hop in samples (10 ms). */
  frameShift: z.number().int().positive().default(160),
  melBins: z.number().int().positive().default(128),
  lowFreq: z.number().nonnegative().default(20),
  /** 0 means Nyquist (Kaldi convention). */
  highFreq: z.number().default(0),
  preemphasis: z.number().min(0).max(1).default(0.97),
});
export type FbankOptions = z.input<typeof fbankOptionsSchema>;

const melScale = (f: number) => 1127 * Math.log(1 + f / 700);

export class KaldiFbank {
  readonly options: z.output<typeof fbankOptionsSchema>;
  readonly fftSize: number;
  private readonly window: Float64Array;
  private readonly fft: FFT;
  /** Sparse mel bank: for mel m, FFT bins [start[m], start[m] + weights[m].length). */
  private readonly bankStart: Int32Array;
  private readonly bankWeights: Float64Array[];
  // Scratch buffers reused across frames.
  private readonly frame: Float64Array;
  private readonly spectrum: number[];
  private readonly power: Float64Array;

  constructor(options: FbankOptions = {}) {
    const o = (this.options = fbankOptionsSchema.parse(options));
    this.fftSize = 1 << Math.ceil(Math.log2(o.frameLength));
    const N = o.frameLength;
    this.window = new Float64Array(N);
    for (let n = 0; n < N; n++) this.window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / (N - 1));
    this.fft = new FFT(this.fftSize);
    this.frame = new Float64Array(this.fftSize);
    this.spectrum = this.fft.createComplexArray();
    const half = this.fftSize / 2;
    this.power = new Float64Array(half + 1);

    const nyquist = o.sampleRate / 2;
    const high = o.highFreq <= 0 ? nyquist + o.highFreq : o.highFreq;
    if (!(o.lowFreq < high && high <= nyquist)) throw new RangeError(`fbank: need 0 <= lowFreq < highFreq <= ${nyquist}, got ${o.lowFreq}..${high}`);
    const mLow = melScale(o.lowFreq), mHigh = melScale(high);
    const delta = (mHigh - mLow) / (o.melBins + 1);
    const binWidth = o.sampleRate / this.fftSize;
    this.bankStart = new Int32Array(o.melBins);
    this.bankWeights = [];
    for (let m = 0; m < o.melBins; m++) {
      const left = mLow + m * delta, centre = left + delta, right = centre + delta;
      const w = new Float64Array(half); // the Nyquist bin (index `half`) keeps weight 0
      let first = -1, last = -1;
      for (let k = 0; k < half; k++) {
        const mk = melScale(binWidth * k);
        const v = Math.max(0, Math.min((mk - left) / (centre - left), (right - mk) / (right - centre)));
        w[k] = v;
        if (v > 0) { if (first < 0) first = k; last = k; }
      }
      this.bankStart[m] = first < 0 ? 0 : first;
      this.bankWeights.push(first < 0 ? new Float64Array(0) : w.slice(first, last + 1));
    }
  }

  frameCount(samples: number): number {
    const { frameLength, frameShift } = this.options;
    return samples < frameLength ? 0 : 1 + Math.floor((samples - frameLength) / frameShift);
  }

  /** Log-mel energies [frames, melBins] of `wave` (whole frames only). */
  compute(wave: Float32Array, maxFrames = Infinity): { frames: number; data: Float32Array } {
    const { frameLength: N, frameShift, melBins, preemphasis } = this.options;
    const frames = Math.min(this.frameCount(wave.length), maxFrames);
    const out = new Float32Array(frames * melBins);
    const frame = this.frame, spectrum = this.spectrum, power = this.power, win = this.window;
    const half = this.fftSize / 2;
    for (let r = 0; r < frames; r++) {
      const start = r * frameShift;
      let mean = 0;
      for (let n = 0; n < N; n++) mean += wave[start + n];
      mean /= N;
      // Pre-emphasis runs backwards so each sample still sees its un-emphasised predecessor.
      for (let n = N - 1; n > 0; n--) {
        frame[n] = ((wave[start + n] - mean) - preemphasis * (wave[start + n - 1] - mean)) * win[n];
      }
      const x0 = wave[start] - mean;
      frame[0] = (x0 - preemphasis * x0) * win[0];
      frame.fill(0, N);
      this.fft.realTransform(spectrum, frame);
      for (let k = 0; k <= half; k++) {
        const re = spectrum[2 * k], im = spectrum[2 * k + 1];
        power[k] = re * re + im * im;
      }
      const row = r * melBins;
      for (let m = 0; m < melBins; m++) {
        const w = this.bankWeights[m], s = this.bankStart[m];
        let e = 0;
        for (let j = 0; j < w.length; j++) e += w[j] * power[s + j];
        out[row + m] = Math.log(Math.max(e, LOG_FLOOR));
      }
    }
    return { frames, data: out };
  }
}

let shared: KaldiFbank | undefined;
/** The standard 16 kHz / 128-bin filterbank, built once. */
export function defaultFbank(melBins = 128): KaldiFbank {
  if (melBins !== 128) return new KaldiFbank({ melBins });
  return (shared ??= new KaldiFbank());
}

/** Subtracts the mean in place (waveform DC removal, spec §1.2 step 5) and returns the array. */
export function centreWaveform(wave: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < wave.length; i++) sum += wave[i];
  const mean = wave.length ? sum / wave.length : 0;
  for (let i = 0; i < wave.length; i++) wave[i] -= mean;
  return wave;
}

/**
 * Normalised model input [targetFrames, melBins] from a centred waveform: fbank, zero-pad
 * (log domain, before normalisation) or cut, then `(x − mean) / std`.
 */
export function spectrogramInput(centred: Float32Array, targetFrames: number, melBins = 128, fbank = defaultFbank(melBins)): Float32Array {
  if (fbank.options.melBins !== melBins) throw new RangeError(`fbank has ${fbank.options.melBins} mel bins, expected ${melBins}`);
  const { data, frames } = fbank.compute(centred, targetFrames);
  const out = new Float32Array(targetFrames * melBins);
  out.set(data.subarray(0, frames * melBins));
  for (let i = 0; i < out.length; i++) out[i] = (out[i] - FBANK_NORM_MEAN) / FBANK_NORM_STD;
  return out;
}
