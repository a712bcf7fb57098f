/**
 * `stella`: the full method — localized patch importance (LPIS) + replay-guided correlation (RCA) pruning,
 * importance-weighted selection over current + replay rows, AVM matching loss, DER penalty (α 0.5).
 * Ref: spec §5.2; the step itself lives in stella-family.ts.
 */
import { StellaFamilyStrategy, type StellaOptions } from './stella-family.ts';

export const createStella = (options: StellaOptions = {}) =>
  new StellaFamilyStrategy({ name: 'stella', importance: 'lpis', correlation: 'rca' }, options);
