/**
 * `random` (paper ablation 'Random'): the same patch budget as STELLA (K_v, K_a) chosen uniformly at random
 * for current and replay rows (audio through the chunk rule with uniform chunk order), no AVM, no pruning;
 * Mode D, DER penalty (α 0.5) and the STELLA buffer layout (importance stored uniform, π 0, queries 0).
 * Ref: paper-results §3.3; spec §5.2 without steps (2)–(5).
 */
import { StellaFamilyStrategy, type StellaOptions } from './stella-family.ts';

export const createRandom = (options: StellaOptions = {}) =>
  new StellaFamilyStrategy({ name: 'random', importance: 'uniform', correlation: 'none' }, options);
