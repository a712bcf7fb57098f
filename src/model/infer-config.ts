/**
 * The model config a set of backbone weights was made for, read off their shapes.
 *
 * From the state dict (names as in spec §3.2, no prefix):
 *   embedDim, patchSize          patch_embed_v.proj.weight [D, 3, P, P]
 *   video tokens T·side²         pos_embed_v [1, Lv, D]
 *   audio tokens                 pos_embed_a [1, La, D]
 *   modalityDepth, depth         the blocks_v.N and blocks_u.N counts (depth = modality + shared)
 *   mlpRatio                     blocks_v.0.mlp.fc1.weight [D·r, D]
 *   decoderDim, decoderDepth     decoder_embed.weight [Dd, D], the decoder_blocks.N count
 * When these match a named config (tiny, base), that config is returned whole. Otherwise the result
 * is a 'custom' config, and what the shapes cannot tell is assumed and listed in `notes`: melBins 128
 * (both named configs), numFrames 4 when Lv/4 is a square (else the fewest frames that give a square
 * frame; `numFrames` overrides), encoder / decoder heads of the named config with the same width
 * (else head width 64 / 32 as ViT-B and its decoder), AVM heads 12 (spec §4.1) when they divide D,
 * maskRatio 0.8 and LayerNorm eps 1e-5.
 */
import { MODEL_CONFIGS, modelConfigSchema, tokenGrid, type ModelConfig } from '../core/config.ts';

export interface InferredConfig {
  config: ModelConfig;
  /** The named config the shapes match, or null for a custom one. */
  matched: keyof typeof MODEL_CONFIGS | null;
  /** What was assumed rather than read off a shape (empty for a named match). */
  notes: string[];
}

export interface InferOptions {
  /** Frames per clip for a custom config (the token count alone cannot separate frames and frame size). */
  numFrames?: number;
  /** Names the weights in errors. */
  source?: string;
}

const DEFAULT_MEL_BINS = 128;

/** How many `<prefix>.N.` groups the names hold (highest N + 1). */
function countBlocks(names: Iterable<string>, prefix: string): number {
  let count = 0;
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)\\.`);
  for (const name of names) {
    const m = re.exec(name);
    if (m) count = Math.max(count, Number(m[1]) + 1);
  }
  return count;
}

function frameChoices(videoTokens: number): number[] {
  const out: number[] = [];
  for (let t = 1; t <= videoTokens; t++) {
    if (videoTokens % t) continue;
    const side = Math.round(Math.sqrt(videoTokens / t));
    if (side * side === videoTokens / t) out.push(t);
  }
  return out;
}

/** Infers the config of backbone weights from their shapes; throws naming `source` when a key tensor is missing. */
export function inferModelConfig(shapes: ReadonlyMap<string, readonly number[]>, options: InferOptions = {}): InferredConfig {
  const source = options.source ?? 'weights';
  const need = (name: string, rank: number): readonly number[] => {
    const s = shapes.get(name);
    if (!s) throw new Error(`${source}: cannot infer the model config: no tensor '${name}' (is this a CAV backbone state dict?)`);
    if (s.length !== rank) throw new Error(`${source}: cannot infer the model config: '${name}' has shape [${s}], expected ${rank} dimensions`);
    return s;
  };
  const [embedDim, channels, patchSize, patchWidth] = need('patch_embed_v.proj.weight', 4);
  if (channels !== 3 || patchWidth !== patchSize) throw new Error(`${source}: cannot infer the model config: 'patch_embed_v.proj.weight' is [${shapes.get('patch_embed_v.proj.weight')}], expected [D, 3, P, P]`);
  const videoTokens = need('pos_embed_v', 3)[1];
  const audioTokens = need('pos_embed_a', 3)[1];
  const modalityDepth = countBlocks(shapes.keys(), 'blocks_v');
  const depth = modalityDepth + countBlocks(shapes.keys(), 'blocks_u');
  if (depth === 0) throw new Error(`${source}: cannot infer the model config: no blocks_v.N or blocks_u.N tensors`);
  const fc1 = shapes.get(modalityDepth ? 'blocks_v.0.mlp.fc1.weight' : 'blocks_u.0.mlp.fc1.weight');
  if (!fc1) throw new Error(`${source}: cannot infer the model config: no tensor '${modalityDepth ? 'blocks_v' : 'blocks_u'}.0.mlp.fc1.weight'`);
  const mlpRatio = fc1[0] / embedDim;
  const decoderDim = need('decoder_embed.weight', 2)[0];
  const decoderDepth = countBlocks(shapes.keys(), 'decoder_blocks');

  for (const [name, c] of Object.entries(MODEL_CONFIGS) as [keyof typeof MODEL_CONFIGS, ModelConfig][]) {
    const g = tokenGrid(c);
    if (
      c.embedDim === embedDim && c.patchSize === patchSize && c.depth === depth && c.modalityDepth === modalityDepth &&
      c.mlpRatio === mlpRatio && c.decoderDim === decoderDim && c.decoderDepth === decoderDepth &&
      g.videoTokens === videoTokens && g.audioTokens === audioTokens && (options.numFrames ?? c.numFrames) === c.numFrames
    ) {
      return { config: c, matched: name, notes: [] };
    }
  }

  const notes: string[] = [];
  const freqPatches = DEFAULT_MEL_BINS / patchSize;
  if (!Number.isInteger(freqPatches) || audioTokens % freqPatches) {
    throw new Error(`${source}: cannot infer the model config: pos_embed_a has ${audioTokens} tokens, not a multiple of the ${freqPatches} frequency patches of ${DEFAULT_MEL_BINS} mel bins`);
  }
  notes.push(`melBins ${DEFAULT_MEL_BINS} (both named configs; pos_embed_a's ${audioTokens} tokens = time × frequency patches)`);
  const choices = frameChoices(videoTokens);
  let numFrames = options.numFrames;
  if (numFrames !== undefined) {
    if (!choices.includes(numFrames)) throw new Error(`${source}: pos_embed_v's ${videoTokens} tokens are not ${numFrames} square frames (possible frame counts: ${choices.join(', ') || 'none'})`);
  } else {
    if (!choices.length) throw new Error(`${source}: cannot infer the model config: pos_embed_v's ${videoTokens} tokens are no whole number of square frames`);
    numFrames = choices.includes(4) ? 4 : choices[0];
    const others = choices.filter((t) => t !== numFrames);
    notes.push(`numFrames ${numFrames}${others.length ? ` (pos_embed_v's ${videoTokens} tokens also fit ${others.join(', ')} frames; set the frame count to choose)` : ''}`);
  }
  const side = Math.round(Math.sqrt(videoTokens / numFrames));
  const sameWidth = (key: 'embedDim' | 'decoderDim') => Object.values(MODEL_CONFIGS).find((c) => c[key] === (key === 'embedDim' ? embedDim : decoderDim));
  const heads = (width: number, named: ModelConfig | undefined, key: 'numHeads' | 'decoderHeads', headWidth: number, what: string): number => {
    if (named) { notes.push(`${key} ${named[key]} (the '${named.name}' config's, same ${what} width ${width})`); return named[key]; }
    const h = width % headWidth === 0 ? width / headWidth : 1;
    notes.push(`${key} ${h} (heads of width ${h === 1 ? width : headWidth}; heads leave no trace in the shapes)`);
    return h;
  };
  const numHeads = heads(embedDim, sameWidth('embedDim'), 'numHeads', 64, 'encoder');
  const decoderHeads = heads(decoderDim, sameWidth('decoderDim'), 'decoderHeads', 32, 'decoder');
  const avmHeads = embedDim % 12 === 0 ? 12 : numHeads;
  notes.push(`avmHeads ${avmHeads}${avmHeads === 12 ? ' (the AVM default, spec §4.1)' : ' (12 does not divide the width; the encoder heads)'}`, 'maskRatio 0.8 and layerNormEps 1e-5 (the named configs)');
  const parsed = modelConfigSchema.safeParse({
    name: 'custom', numFrames, imageSize: side * patchSize, audioFrames: (audioTokens / freqPatches) * patchSize, melBins: DEFAULT_MEL_BINS,
    patchSize, embedDim, numHeads, depth, modalityDepth, mlpRatio, decoderDim, decoderDepth, decoderHeads, maskRatio: 0.8, avmHeads, layerNormEps: 1e-5,
  });
  if (!parsed.success) throw new Error(`${source}: the shapes give no valid model config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { config: parsed.data, matched: null, notes };
}
