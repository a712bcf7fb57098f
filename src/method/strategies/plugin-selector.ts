/**
 * A plugin PatchSelector as a training strategy: the STELLA step with the selector's kept patches
 * (Mode D on current + replay rows, DER penalty α 0.5, STELLA buffer layout). The AVM runs only when
 * the selector asks for importance (`needsImportance`), and then its matching loss trains it as in STELLA.
 * Ref: spec §5.2 steps (9)–(12); src/method/patch-selector.ts.
 */
import type { PatchSelector } from '../patch-selector.ts';
import { StellaFamilyStrategy, type StellaOptions } from './stella-family.ts';

export const createSelectorStrategy = (selector: PatchSelector, options: StellaOptions = {}) =>
  new StellaFamilyStrategy({ name: selector.name, importance: selector.needsImportance ? 'lpis' : 'uniform', correlation: 'none', selector }, options);
