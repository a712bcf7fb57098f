/**
 * `rca-only` (paper ablation 'LPIS – RCA ✓'): RCA pruning kept, importance weighting removed. The AVM
 * still scores (RCA is defined on its keys, the top-K candidate sets and the importance-weighted summary
 * queries), but sampling weights are uniform: video = uniform random permutation of the non-pruned patches,
 * audio = chunk rule with uniform chunk order; stored importance is uniform; the first step samples uniformly
 * too (a top-K of equal weights would be arbitrary). This reading of the paper's row is ours (paper-results
 * §1.7: 'presumably samples without importance weighting').
 * Ref: paper-results §3.3; spec §5.2.
 */
import { StellaFamilyStrategy, type StellaOptions } from './stella-family.ts';

export const createRcaOnly = (options: StellaOptions = {}) =>
  new StellaFamilyStrategy({ name: 'rca-only', importance: 'uniform', correlation: 'rca' }, options);
