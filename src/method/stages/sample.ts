/**
 * `sample`: AssessedItem → SelectedItem — which patches of the current and replayed rows are trained on
 * (spec §5.2 (6)–(8)): Bernoulli pruning by π, the importance-weighted video permutation and the audio
 * chunk rule (`stellaSelection`; deterministic top-K at the first step), or, when the train node runs a
 * plugin PatchSelector (`selector: center-bias`), that selector's kept ids.
 *
 * Behaviour: one item at a time, drawing from the step's stream (see `score`). The selector is the train
 * node's (its `selector` option), so `train` trains exactly what was sampled here. Items of other kinds
 * pass through untouched. A failed item is disposed and becomes a StageError.
 *
 * Inputs:  `assessed`. Passes `batch` and `task-end` through in order.
 * Outputs: `selected`.
 * Options (defaults): trainer '' (the graph's only train node).
 * Roles: RunSession.
 *
 * Example node:
 *   sample: { stage: sample }
 *
 * ## Example (plain RxJS)
 * ```ts
 * const host = trainerHost(strategyTrainer, 'stella');
 * batches$.pipe(score({}, { host }), replayAssess({}, { host }), sample({}, { host }), train({}, { trainer }))
 * ```
 * Ref: spec §5.2 (6)–(8), §5.3, §11 Q10, Q12, Q19; src/method/phases.ts `samplePhase`.
 */
import type { OperatorFunction } from 'rxjs';
import type { z } from 'zod';
import { samplePhase } from '../phases.ts';
import { RunSession } from '../run-session.ts';
import { defineStage } from '../../graph/stage.ts';
import { phaseStageDeps, phaseStageOptionsSchema, phaseStep, type PhaseStageDeps } from './phase-step.ts';
import type { StellaItem } from '../items.ts';

export const sampleOptionsSchema = phaseStageOptionsSchema;

export function sample(_options: z.input<typeof sampleOptionsSchema>, deps: PhaseStageDeps): OperatorFunction<StellaItem, StellaItem> {
  return phaseStep('assessed', 'selected', samplePhase, deps, 'sample');
}

export const stage = defineStage({
  type: 'sample',
  description: "assessed → selected: STELLA's patch sampling or the train node's plugin selector (spec §5.2 (6)–(8))",
  inputs: ['assessed', 'batch'],
  outputs: ['selected', 'batch'],
  optionsSchema: sampleOptionsSchema,
  roles: [RunSession],
  create: (deps, options) => sample(options, phaseStageDeps(deps, options)),
});
