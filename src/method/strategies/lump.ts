/**
 * `lump`: mixup of current and replay rows with λ ~ Beta(0.5, 0.5) per step; trains only on the mixed rows;
 * stores the un-mixed current patches; no penalty.
 * Ref: spec §8.
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createLump = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('lump', options);
