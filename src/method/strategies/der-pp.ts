/**
 * `der++`: ER plus α·MSE(stored logits, current outputs of the replay rows) per modality (α 0.5); the
 * stored logits are the un-normalised token means of the insertion step's Mode-C forward.
 * Ref: spec §8, §7.4.
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createDerPlusPlus = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('der++', options);
