/**
 * The shared shell of the middle STELLA stages (`replay-assess`, `sample`): take one phase item of kind
 * `from`, run the train node's next phase on it, emit the item of kind `to`. Other kinds pass through in
 * order. A failed item is disposed (batch, payload, the trainer's turn) and becomes a StageError.
 * Not a stage itself (no `stage` export): each stage file defines its own contract with it.
 */
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import type { StellaFamilyStrategy } from '../strategies/stella-family.ts';
import { hostForTrainNode, nextPhaseItem, type PhaseHost } from '../phases-host.ts';
import type { PhaseContext } from '../phases.ts';
import { RunSession, type RunSessionState } from '../run-session.ts';
import { mapConcurrent } from '../../graph/concurrent-map.ts';
import type { AnyPhaseItem, StellaItem } from '../items.ts';
import type { StageError } from '../../graph/items.ts';
import type { StageDeps } from '../../graph/stage.ts';

export const phaseStageOptionsSchema = z.object({
  /** Train node whose strategy, buffer and stream this stage uses; '' = the graph's only train node. */
  trainer: z.string().default(''),
});

export interface PhaseStageDeps {
  host: PhaseHost | (() => PhaseHost);
  errors?: { next(e: StageError): void };
  stage?: string;
}

type PhaseKind = AnyPhaseItem['kind'];

export function phaseStep<From extends PhaseKind, To extends PhaseKind>(
  from: From,
  to: To,
  run: (strategy: StellaFamilyStrategy, phase: any, ctx: PhaseContext) => unknown,
  deps: PhaseStageDeps,
  stage: string,
): OperatorFunction<StellaItem, StellaItem> {
  let host: PhaseHost | undefined;
  return mapConcurrent<StellaItem, StellaItem>(
    (item) => {
      const current = item as Extract<AnyPhaseItem, { kind: From }>;
      try {
        host ??= typeof deps.host === 'function' ? deps.host() : deps.host;
        const strategy = host.phased();
        if (!strategy) throw new Error(`the train node's strategy has no phases; '${from}' items cannot become '${to}'`);
        return nextPhaseItem(current, to as never, run(strategy, current.phase, host.context()) as never);
      } catch (error) {
        current.dispose();
        throw error;
      }
    },
    {
      stage: deps.stage ?? stage,
      concurrency: 1,
      errors: deps.errors,
      passThrough: (item) => item.kind !== from,
      pathOf: (item) => (item as AnyPhaseItem).batch?.clips?.[0]?.path ?? '',
    },
  );
}

/** The graph wiring both stages share: the host of the train node named in `trainer`. */
export function phaseStageDeps(deps: StageDeps, options: z.infer<typeof phaseStageOptionsSchema>): PhaseStageDeps {
  return {
    host: () => hostForTrainNode(deps.container, deps.get<RunSessionState>(RunSession), options.trainer, deps.node).host,
    errors: deps.errors,
    stage: deps.node,
  };
}
