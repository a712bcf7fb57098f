/**
 * Minimal RIFF WAVE reader: 16-bit PCM (any channel count), enough for the G5 signals and tests.
 * Output: mono float samples `int16 / 32768` (channels averaged) and the sample rate.
 * Errors name the file and what is wrong (not RIFF/WAVE, not PCM 16-bit, missing chunk).
 */
import { readFileSync } from 'node:fs';

export interface WavData {
  sampleRate: number;
  channels: number;
  /** Mono samples in [-1, 1): int16 / 32768, channels averaged. */
  samples: Float32Array;
}

export function parseWav(bytes: Buffer, file = '<buffer>'): WavData {
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${file}: not a RIFF WAVE file`);
  }
  let offset = 12;
  let format: { audioFormat: number; channels: number; sampleRate: number; bits: number } | undefined;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        audioFormat: bytes.readUInt16LE(body),
        channels: bytes.readUInt16LE(body + 2),
        sampleRate: bytes.readUInt32LE(body + 4),
        bits: bytes.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!format) throw new Error(`${file}: 'data' chunk before 'fmt ' chunk`);
      // 0xFFFE is WAVE_FORMAT_EXTENSIBLE; accepted when it carries 16-bit samples.
      if ((format.audioFormat !== 1 && format.audioFormat !== 0xfffe) || format.bits !== 16) {
        throw new Error(`${file}: only 16-bit PCM is supported (format ${format.audioFormat}, ${format.bits} bits)`);
      }
      const end = Math.min(bytes.length, body + size);
      const frames = Math.floor((end - body) / (2 * format.channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let ch = 0; ch < format.channels; ch++) sum += bytes.readInt16LE(body + 2 * (i * format.channels + ch)) / 32768;
        samples[i] = sum / format.channels;
      }
      return { sampleRate: format.sampleRate, channels: format.channels, samples };
    }
    offset = body + size + (size & 1);
  }
  throw new Error(`${file}: no 'data' chunk`);
}

export function readWav(file: string): WavData {
  return parseWav(readFileSync(file), file);
}
