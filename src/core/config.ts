/**
 * Model and input sizes. One code path serves every size; `tiny` is the configuration of the
 * golden cases (../shared/golden/README.md), `base` the paper's ViT-B (spec §3.1).
 */
import { z } from 'zod';

export const modelConfigSchema = z.object({
  name: z.string(),
  /** Video frames per clip (T). */
  numFrames: z.number().int().positive(),
  /** Square frame side in pixels after resize. */
  imageSize: z.number().int().positive(),
  /** Spectrogram time frames after pad/cut. */
  audioFrames: z.number().int().positive(),
  /** Mel bins. */
  melBins: z.number().int().positive(),
  patchSize: z.number().int().positive(),
  embedDim: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  /** Total encoder depth; the last `depth - modalityDepth` blocks are shared. */
  depth: z.number().int().positive(),
  /** Modality-specific blocks per modality (`mid_fusion_depth`). */
  modalityDepth: z.number().int().nonnegative(),
  mlpRatio: z.number().positive(),
  decoderDim: z.number().int().positive(),
  decoderDepth: z.number().int().positive(),
  decoderHeads: z.number().int().positive(),
  maskRatio: z.number().min(0).max(1),
  /** AVM cross-modal attention heads (the module's default 12). */
  avmHeads: z.number().int().positive(),
  layerNormEps: z.number().positive(),
});
export type ModelConfig = z.infer<typeof modelConfigSchema>;

export const MODEL_CONFIGS = {
  tiny: {
    name: 'tiny',
    numFrames: 4,
    imageSize: 64,
    audioFrames: 256,
    melBins: 128,
    patchSize: 16,
    embedDim: 96,
    numHeads: 4,
    depth: 3,
    modalityDepth: 2,
    mlpRatio: 4,
    decoderDim: 64,
    decoderDepth: 1,
    decoderHeads: 4,
    maskRatio: 0.8,
    avmHeads: 12,
    layerNormEps: 1e-5,
  },
  base: {
    name: 'base',
    numFrames: 4,
    imageSize: 224,
    audioFrames: 1024,
    melBins: 128,
    patchSize: 16,
    embedDim: 768,
    numHeads: 12,
    depth: 12,
    modalityDepth: 10,
    mlpRatio: 4,
    decoderDim: 512,
    decoderDepth: 8,
    decoderHeads: 16,
    maskRatio: 0.8,
    avmHeads: 12,
    layerNormEps: 1e-5,
  },
} as const satisfies Record<string, ModelConfig>;
export type ModelSize = keyof typeof MODEL_CONFIGS;

export function modelConfig(name: string): ModelConfig {
  const c = (MODEL_CONFIGS as Record<string, ModelConfig>)[name];
  if (!c) throw new Error(`unknown model config '${name}'; choose one of: ${Object.keys(MODEL_CONFIGS).join(', ')}`);
  return c;
}

/** Token-grid facts derived from a config (spec §2.5). */
export function tokenGrid(c: ModelConfig) {
  const side = c.imageSize / c.patchSize;
  const timePatches = c.audioFrames / c.patchSize;
  const freqPatches = c.melBins / c.patchSize;
  const videoTokens = c.numFrames * side * side;
  const audioTokens = timePatches * freqPatches;
  return {
    /** Patches per frame side. */
    side,
    timePatches,
    freqPatches,
    videoTokens,
    audioTokens,
    /** Visible tokens under MAE masking, float64 truncation as the reference (156/102, 12/25). */
    visibleVideo: Math.trunc(videoTokens * (1 - c.maskRatio)),
    visibleAudio: Math.trunc(audioTokens * (1 - c.maskRatio)),
    videoPatchDim: 3 * c.patchSize * c.patchSize,
    audioPatchDim: c.patchSize * c.patchSize,
  };
}
