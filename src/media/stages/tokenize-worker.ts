/**
 * The `tokenize` stage's per-clip work, shared by the in-thread operator (tokenize.ts) and the
 * worker task (`tokenizeTask`). A worker imports only this module, not the stage file, so its
 * start-up does not load the container or RxJS.
 *
 * Ref: tokenize.ts (behaviour), src/graph/worker-task.ts.
 */
import { tokenGrid, type ModelConfig } from '../../core/config.ts';
import type { WorkerTask } from '../../graph/worker-task.ts';
import { mediaTokenizer, preloadTokenizer } from '../default-roles.ts';
import { clipFields, type DecodedClip, type TokenizedClip } from '../items.ts';
import type { Tokenizer } from '../roles.ts';

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

/** Worker side: media's tokenizer, loaded in the worker. */
export const tokenizeTask: WorkerTask = async (item, _options, context) => {
  await preloadTokenizer();
  return tokenizeItem(item as DecodedClip, mediaTokenizer, context.config as ModelConfig);
};
