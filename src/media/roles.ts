/**
 * The media roles: decoding a file, tokenizing a decoded clip, reading a manifest. Bound by
 * src/media/media-module.ts as defaults (src/media/default-roles.ts); a plugin or a test binds its own.
 *
 * Ref: DESIGN.md "Swapping"; STYLE.md §8.
 */
import type { ModelConfig } from '../core/config.ts';
import type { Rng as SeededRng } from '../core/rng.ts';

/** What media's decodeClip returns (src/media/decode.ts). */
export interface DecodedMedia {
  path: string;
  video: Float32Array;
  fbank: Float32Array;
  info: Record<string, unknown>;
}

export interface DecodeRequest {
  config: ModelConfig;
  mode: 'eval' | 'train';
  rng?: SeededRng;
  /** The decoder's cache (`true`: its default folder): train mode decodes each file once and augments from it; eval mode stores the clip itself. */
  cache?: boolean | string;
}

/** Decodes one file; must kill its ffmpeg child when `signal` aborts. */
export interface Decoder {
  decode(path: string, request: DecodeRequest, signal?: AbortSignal): Promise<DecodedMedia>;
  /**
   * Optional: fill the request's cache for `paths` ahead of their requests, in order, in the
   * background (the decode stage's `warm` option). Per-file failures are left to `decode`.
   */
  warm?(paths: readonly string[], request: DecodeRequest & { cache: true | string }, signal?: AbortSignal): Promise<void>;
}
export const Decoder = Symbol('Decoder');

/** Raw patches of a decoded clip (src/media/tokenize.ts). */
export interface Tokenizer {
  tokenize(decoded: DecodedMedia, config: ModelConfig): { videoPatches: Float32Array; audioPatches: Float32Array };
}
export const Tokenizer = Symbol('Tokenizer');

/** One manifest row; `task` names the task the clip belongs to. */
export interface ManifestRow {
  path: string;
  label: string;
  task: string;
  split: string;
}
/** Reads a manifest file into rows, tasks in training order (src/media/manifest.ts). */
export interface ManifestLoader {
  load(path: string): Promise<ManifestRow[]>;
}
export const ManifestLoader = Symbol('ManifestLoader');
