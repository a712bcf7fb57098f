/**
 * `er`: experience replay — Mode C on [current ; min(N, held) reservoir rows]; stores the current patches.
 * Ref: spec §8.
 */
import { ReplayBaselineStrategy, type ReplayBaselineOptions } from './replay-baseline.ts';

export const createEr = (options: ReplayBaselineOptions = {}) => new ReplayBaselineStrategy('er', options);
