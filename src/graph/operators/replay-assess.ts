/**
 * `replay-assess`: ScoredItem → AssessedItem — STELLA's replay draw and Replay-guided Correlation
 * Assessment (spec §5.2 (5)): N rows drawn from the train node's replay buffer, π_v, π_a of the current
 * candidates against the drawn rows' stored summary queries (zeros while the buffer is empty, or for
 * variants without RCA).
 *
 * Behaviour: one item at a time, drawing from the step's stream (see `score`). Items of other kinds
 * (`batch` passed through by `score` for strategies without phases, `task-end`) pass through untouched.
 * A failed item is disposed (batch, payload, the trainer's turn) and becomes a StageError; on
 * unsubscribe, a finished item not yet emitted is disposed.
 *
 * Inputs:  `scored`. Passes `batch` and `task-end` through in order.
 * Outputs: `assessed`.
 * Options (defaults): trainer '' (the graph's only train node: whose buffer is drawn from).
 * Roles: RunSession.
 *
 * Example node:
 *   assess: { stage: replay-assess }
 *
 * ## Example (plain RxJS)
 * ```ts
 * const host = trainerHost(strategyTrainer);
 * batches$.pipe(score({}, { host }), replayAssess({}, { host }), sample({}, { host }), train({}, { trainer }))
 * ```
 * Ref: spec §5.2 (5), §6, §11 Q14, Q20; src/method/phases.ts `assessPhase`.
 */
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { assessPhase } from '../../method/phases.ts';
import { hostForTrainNode, nextPhaseItem, type PhaseHost } from '../../method/phases-host.ts';
import { RunSession, type RunSessionState } from '../../method/run-session.ts';
import { mapConcurrent } from '../concurrent-map.ts';
import type { GraphItem, ScoredItem, StageError } from '../items.ts';
import { defineStage } from '../stage.ts';

export const replayAssessOptionsSchema = z.object({
  /** Train node whose replay buffer is drawn from; '' = the graph's only train node. */
  trainer: z.string().default(''),
});

export interface PhaseStageDeps {
  host: PhaseHost | (() => PhaseHost);
  errors?: { next(e: StageError): void };
  stage?: string;
}

export function replayAssess(_options: z.input<typeof replayAssessOptionsSchema>, deps: PhaseStageDeps): OperatorFunction<GraphItem, GraphItem> {
  let host: PhaseHost | undefined;
  return mapConcurrent<GraphItem, GraphItem>(
    (item) => {
      const scored = item as ScoredItem;
      try {
        host ??= typeof deps.host === 'function' ? deps.host() : deps.host;
        const strategy = host.phased();
        if (!strategy) throw new Error(`the train node's strategy has no phases; 'scored' items cannot be assessed`);
        return nextPhaseItem(scored, 'assessed', assessPhase(strategy, scored.phase, host.context()));
      } catch (error) {
        scored.dispose();
        throw error;
      }
    },
    {
      stage: deps.stage ?? 'replay-assess',
      concurrency: 1,
      errors: deps.errors,
      passThrough: (item) => item.kind !== 'scored',
      pathOf: (item) => (item as ScoredItem).batch?.clips?.[0]?.path ?? '',
    },
  );
}

export const stage = defineStage({
  type: 'replay-assess',
  description: "scored → assessed: replay draw from the train node's buffer and RCA π (spec §5.2 (5))",
  inputs: ['scored', 'batch'],
  outputs: ['assessed', 'batch'],
  optionsSchema: replayAssessOptionsSchema,
  roles: [RunSession],
  create: (deps, options) =>
    replayAssess(options, {
      host: () => hostForTrainNode(deps.container, deps.get<RunSessionState>(RunSession), options.trainer, deps.node).host,
      errors: deps.errors,
      stage: deps.node,
    }),
});
