/**
 * The evaluation bindings (an area module, loaded as a plugin is): the stages `evaluate` and
 * `write-heatmaps` as stage contributions, and the continual task evaluator over the run session.
 */
import { ContainerModule } from 'inversify';
import type { ModelConfig } from '../core/config.ts';
import { Evaluator } from '../method/roles.ts';
import { RunConfig } from '../graph/roles.ts';
import { bindStages, type StageDefinition } from '../graph/stage.ts';
import { stage as evaluate } from './stages/evaluate.ts';
import { stage as writeHeatmaps } from './stages/write-heatmaps.ts';
import { RunSession, type RunSessionState } from '../method/run-session.ts';
import { TaskEvaluator } from './task-evaluator.ts';

export const EVAL_STAGES: readonly StageDefinition[] = [evaluate, writeHeatmaps];

export default new ContainerModule(({ bind }) => {
  bindStages(bind, EVAL_STAGES);
  bind<Evaluator>(Evaluator)
    .toDynamicValue((context) => new TaskEvaluator(context.get<RunSessionState>(RunSession), context.get<ModelConfig>(RunConfig)))
    .inSingletonScope();
});
