/**
 * `tokenize`: DecodedClip → TokenizedClip via the `Tokenizer` role (src/media/tokenize.ts).
 *
 * Behaviour: raw video patches `[Lv, 768]` (t·h·w order) and audio patches `[La, 256]` (t·f
 * order); the decoded frames are dropped, so only patches travel on. A clip whose arrays do not
 * match the config becomes a StageError; the stream goes on. Pure function of the item, so it
 * can run on `device: worker:N` (`tokenizeTask`).
 *
 * Inputs:  `decoded`. Passes `task-end` through in order.
 * Outputs: `tokenized`.
 * Options: none.
 * Roles: Tokenizer, RunConfig.
 *
 * Example node:
 *   tokenize: { stage: tokenize, device: worker:0 }
 *
 * ## Example (plain RxJS)
 * ```ts
 * decoded$.pipe(tokenize({}, { tokenizer, config }))
 * ```
 * Ref: spec §2.1–2.3 (patch layout).
 */
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { modelConfig, tokenGrid, type ModelConfig } from '../../core/config.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { mediaTokenizer, preloadTokenizer } from '../default-roles.ts';
import { clipFields, type DecodedClip, type TaskEnd, type TokenizedClip } from '../items.ts';
import type { StageError } from '../../graph/items.ts';
import { RunConfig } from '../../graph/roles.ts';
import { Tokenizer } from '../roles.ts';
import { defineStage, type WorkerTask } from '../../graph/stage.ts';
import type { StellaItem } from '../../method/items.ts';

export const tokenizeOptionsSchema = z.object({});

/** The per-item work, shared by the in-thread operator and the worker task. */
export function tokenizeItem(item: DecodedClip, tokenizer: Tokenizer, config: ModelConfig): TokenizedClip {
  const { videoPatches, audioPatches } = tokenizer.tokenize(item, config);
  const grid = tokenGrid(config);
  if (videoPatches.length !== grid.videoTokens * grid.videoPatchDim) {
    throw new Error(`videoPatches has ${videoPatches.length} values, expected [${grid.videoTokens}, ${grid.videoPatchDim}] for config '${config.name}'`);
  }
  if (audioPatches.length !== grid.audioTokens * grid.audioPatchDim) {
    throw new Error(`audioPatches has ${audioPatches.length} values, expected [${grid.audioTokens}, ${grid.audioPatchDim}] for config '${config.name}'`);
  }
  return { kind: 'tokenized', ...clipFields(item), videoPatches, audioPatches };
}

export function tokenize(
  _options: z.input<typeof tokenizeOptionsSchema> = {},
  deps: { tokenizer?: Tokenizer; config?: ModelConfig; errors?: { next(e: StageError): void }; stage?: string } = {},
): OperatorFunction<DecodedClip | TaskEnd, TokenizedClip | TaskEnd> {
  const config = deps.config ?? modelConfig('tiny');
  const tokenizer = deps.tokenizer ?? mediaTokenizer;
  const ready = tokenizer === mediaTokenizer ? preloadTokenizer() : undefined;
  return mapConcurrent<DecodedClip | TaskEnd, TokenizedClip>(
    async (item) => {
      if (ready) await ready;
      return tokenizeItem(item as DecodedClip, tokenizer, config);
    },
    { stage: deps.stage ?? 'tokenize', concurrency: 1, errors: deps.errors, passThrough: (item) => item.kind !== 'decoded' },
  ) as OperatorFunction<DecodedClip | TaskEnd, TokenizedClip | TaskEnd>;
}

/** Worker side: media's tokenizer, loaded in the worker. */
export const tokenizeTask: WorkerTask = async (item, _options, context) => {
  await preloadTokenizer();
  return tokenizeItem(item as DecodedClip, mediaTokenizer, context.config as ModelConfig);
};

export const stage = defineStage({
  type: 'tokenize',
  description: 'DecodedClip → TokenizedClip (raw video/audio patches)',
  inputs: ['decoded'],
  outputs: ['tokenized'],
  optionsSchema: tokenizeOptionsSchema,
  roles: [Tokenizer, RunConfig],
  worker: { module: import.meta.url, export: 'tokenizeTask', backend: false },
  oneToOne: true,
  create: (deps, options) =>
    tokenize(options, {
      tokenizer: deps.get<Tokenizer>(Tokenizer),
      config: deps.get<ModelConfig>(RunConfig),
      errors: deps.errors,
      stage: deps.node,
    }) as OperatorFunction<StellaItem, StellaItem>,
});
