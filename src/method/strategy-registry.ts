/**
 * Strategy registry: `createStrategy(name, options)` builds a continual-learning strategy by name and
 * refuses unknown names (and unknown options) with the valid choices.
 * Names: stella, stella-plus, finetune, multitask, er, der++, lump, random, lpis-only, rca-only, and the
 * pre-training stages cav-pretrain (backbone) and avm-pretrain (AVM, backbone frozen).
 * Ref: spec §5, §8; paper-results §3.3.
 */
import type { Strategy } from './strategy.ts';
import { createStella } from './strategies/stella.ts';
import { createLpisOnly } from './strategies/lpis-only.ts';
import { createRcaOnly } from './strategies/rca-only.ts';
import { createRandom } from './strategies/random.ts';
import { StellaPlusStrategy } from './strategies/stella-plus.ts';
import { createFinetune } from './strategies/finetune.ts';
import { createMultitask } from './strategies/multitask.ts';
import { createEr } from './strategies/er.ts';
import { createDerPlusPlus } from './strategies/der-pp.ts';
import { createLump } from './strategies/lump.ts';
import { createCavPretrain } from './strategies/cav-pretrain.ts';
import { createAvmPretrain } from './strategies/avm-pretrain.ts';

const FACTORIES: Readonly<Record<string, (options: Record<string, unknown>) => Strategy>> = Object.freeze({
  stella: (o) => createStella(o),
  'stella-plus': (o) => new StellaPlusStrategy(o),
  finetune: (o) => createFinetune(o),
  multitask: (o) => createMultitask(o),
  er: (o) => createEr(o),
  'der++': (o) => createDerPlusPlus(o),
  lump: (o) => createLump(o),
  random: (o) => createRandom(o),
  'lpis-only': (o) => createLpisOnly(o),
  'rca-only': (o) => createRcaOnly(o),
  'cav-pretrain': (o) => createCavPretrain(o),
  'avm-pretrain': (o) => { if (Object.keys(o).length) throw new Error(`takes no options, got ${Object.keys(o).join(', ')}`); return createAvmPretrain(); },
});

export const STRATEGY_NAMES: readonly string[] = Object.keys(FACTORIES);
/** The pre-training stages: strategies, but not continual-learning methods to compare. */
export const PRETRAIN_STRATEGY_NAMES: readonly string[] = ['cav-pretrain', 'avm-pretrain'];
/** The continual-learning methods (what the quality benchmark compares). */
export const CONTINUAL_STRATEGY_NAMES: readonly string[] = STRATEGY_NAMES.filter((n) => !PRETRAIN_STRATEGY_NAMES.includes(n));

export function createStrategy(name: string, options: Record<string, unknown> = {}): Strategy {
  const make = FACTORIES[name];
  if (!make) throw new Error(`unknown strategy '${name}'; choose one of: ${STRATEGY_NAMES.join(', ')}`);
  try {
    return make(options);
  } catch (e) {
    throw new Error(`strategy '${name}': invalid options: ${(e as Error).message}`);
  }
}
