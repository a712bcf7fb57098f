/**
 * `finetune`: sequential Mode C (random 80% masking of full inputs), MAE + contrastive; no buffer, no AVM.
 * Ref: spec §8.
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createFinetune = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('finetune', options);
