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
import { modelConfig, type ModelConfig } from '../../core/config.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import { mediaTokenizer, preloadTokenizer } from '../default-roles.ts';
import type { DecodedClip, TaskEnd, TokenizedClip } from '../items.ts';
import type { StageError } from '../../graph/items.ts';
import { RunConfig } from '../../graph/roles.ts';
import { Tokenizer } from '../roles.ts';
import { defineStage } from '../../graph/stage.ts';
import { tokenizeItem } from './tokenize-worker.ts';
import type { StellaItem } from '../../method/items.ts';

export const tokenizeOptionsSchema = z.object({});

export { tokenizeItem, tokenizeTask } from './tokenize-worker.ts';

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

export const stage = defineStage({
  type: 'tokenize',
  description: 'DecodedClip → TokenizedClip (raw video/audio patches)',
  inputs: ['decoded'],
  outputs: ['tokenized'],
  optionsSchema: tokenizeOptionsSchema,
  roles: [Tokenizer, RunConfig],
  worker: { module: new URL('./tokenize-worker.ts', import.meta.url).href, export: 'tokenizeTask', backend: false },
  oneToOne: true,
  create: (deps, options) =>
    tokenize(options, {
      tokenizer: deps.get<Tokenizer>(Tokenizer),
      config: deps.get<ModelConfig>(RunConfig),
      errors: deps.errors,
      stage: deps.node,
    }) as OperatorFunction<StellaItem, StellaItem>,
});
