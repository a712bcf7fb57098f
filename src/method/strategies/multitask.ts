/**
 * `multitask` (upper bound): the finetune step; the runner feeds all tasks jointly as one task.
 * Ref: spec §8.
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createMultitask = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('multitask', options);
