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
import type { z } from 'zod';
import { assessPhase } from '../phases.ts';
import { RunSession } from '../run-session.ts';
import { defineStage } from '../../graph/stage.ts';
import { phaseStageDeps, phaseStageOptionsSchema, phaseStep, type PhaseStageDeps } from './phase-step.ts';
import type { StellaItem } from '../items.ts';

export const replayAssessOptionsSchema = phaseStageOptionsSchema;

export function replayAssess(_options: z.input<typeof replayAssessOptionsSchema>, deps: PhaseStageDeps): OperatorFunction<StellaItem, StellaItem> {
  return phaseStep('scored', 'assessed', assessPhase, deps, 'replay-assess');
}

export const stage = defineStage({
  type: 'replay-assess',
  description: "scored → assessed: replay draw from the train node's buffer and RCA π (spec §5.2 (5))",
  inputs: ['scored', 'batch'],
  outputs: ['assessed', 'batch'],
  optionsSchema: replayAssessOptionsSchema,
  roles: [RunSession],
  create: (deps, options) => replayAssess(options, phaseStageDeps(deps, options)),
});
