/** The evaluation bindings (an area module): the continual task evaluator over the run session. */
import { ContainerModule } from 'inversify';
import type { ModelConfig } from '../core/config.ts';
import { Evaluator, RunConfig } from '../graph/roles.ts';
import { RunSession, type RunSessionState } from '../method/run-session.ts';
import { TaskEvaluator } from './task-evaluator.ts';

export default new ContainerModule(({ bind }) => {
  bind<Evaluator>(Evaluator)
    .toDynamicValue((context) => new TaskEvaluator(context.get<RunSessionState>(RunSession), context.get<ModelConfig>(RunConfig)))
    .inSingletonScope();
});
