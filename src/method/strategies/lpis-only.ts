/**
 * `lpis-only` (paper ablation 'LPIS ✓ RCA –'): STELLA without replay-guided pruning. π = 0 for every row
 * (current rows never pruned; stored π are 0 too), so video = importance-weighted permutation and audio =
 * the chunk rule on importance without pruning; first step importance top-K. AVM, matching loss, DER
 * penalty and buffer as STELLA.
 * Ref: paper-results §3.3; spec §5.2 with step (5) skipped.
 */
import { StellaFamilyStrategy, type StellaOptions } from './stella-family.ts';

export const createLpisOnly = (options: StellaOptions = {}) =>
  new StellaFamilyStrategy({ name: 'lpis-only', importance: 'lpis', correlation: 'none' }, options);
