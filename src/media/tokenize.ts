/**
 * tokenize: a decoded clip → raw patch tokens (spec §2.1, §2.2), the math in patchify.ts.
 * Input: `DecodedClip` (video [T,3,S,S], fbank [audioFrames, melBins]) and the model config.
 * Output: `{ videoPatches [Lv, 3·P·P] (token t·h·w, patch (c,p,q)), audioPatches [La, P·P] (token t·f,
 * patch (time, freq)) }`. Shape mismatches throw a RangeError naming the quantity.
 * Ref: spec §2.1–§2.3, golden G4.
 */
import type { ModelConfig } from '../core/config.ts';
import type { DecodedClip } from './decode.ts';
import { patchifyAudio, patchifyVideo } from './patchify.ts';

export interface TokenizedPatches {
  videoPatches: Float32Array;
  audioPatches: Float32Array;
}

export function tokenizeClip(decoded: Pick<DecodedClip, 'video' | 'fbank'>, config: ModelConfig): TokenizedPatches {
  const { numFrames: T, imageSize: S, audioFrames, melBins, patchSize: P } = config;
  return {
    videoPatches: patchifyVideo(decoded.video, T, S, S, P),
    audioPatches: patchifyAudio(decoded.fbank, audioFrames, melBins, P),
  };
}
