/**
 * The method's bindings (an area module: src/graph/container.ts loads it into every run's container,
 * as it loads a plugin). Only binds: STELLA's stages (`batch`, `score`, `replay-assess`, `sample`,
 * `train`) as stage contributions, the selector registry and every built-in strategy as a selector
 * contribution (`selector: der++` on a train node), the run session, one TrainerRole per train node
 * (transient: each node trains its own model), the graph's Checkpointer as a hand-off to the
 * session's checkpoint policy (set by `stella run`).
 */
import { ContainerModule } from 'inversify';
import type { ModelConfig } from '../core/config.ts';
import type { Rng as SeededRng } from '../core/rng.ts';
import { Checkpointer, Rng, RunConfig } from '../graph/roles.ts';
import { bindStages, type StageDefinition } from '../graph/stage.ts';
import { SelectorContribution, Trainer } from './roles.ts';
import { SelectorRegistry } from './selector-registry.ts';
import { stage as batch } from './stages/batch.ts';
import { stage as replayAssess } from './stages/replay-assess.ts';
import { stage as sample } from './stages/sample.ts';
import { stage as score } from './stages/score.ts';
import { stage as train } from './stages/train.ts';
import { RunSession, RunSessionState } from './run-session.ts';
import { createStrategy, STRATEGY_NAMES } from './strategy-registry.ts';
import { TrainerRole } from './trainer-role.ts';

const DESCRIPTIONS: Record<string, string> = {
  stella: 'STELLA: localized patch importance + replay-guided correlation, selected-patch training (spec §5)',
  'stella-plus': 'STELLA+: the buffer stores only the selected patches (spec §5.5)',
  finetune: 'sequential fine-tuning, full patches, no replay',
  multitask: 'joint training on all tasks (upper bound)',
  er: 'experience replay, full patches',
  'der++': 'DER++: replay + logit penalty, full patches',
  lump: 'LUMP: mixup of current and replayed clips',
  random: 'STELLA budget, patches chosen uniformly',
  'lpis-only': 'ablation: importance-weighted selection without RCA pruning',
  'rca-only': 'ablation: RCA pruning with uniform sampling',
};

export const METHOD_STAGES: readonly StageDefinition[] = [batch, score, replayAssess, sample, train];

export default new ContainerModule(({ bind }) => {
  bindStages(bind, METHOD_STAGES);
  bind(SelectorRegistry).toSelf().inSingletonScope();
  for (const name of STRATEGY_NAMES) {
    bind<SelectorContribution>(SelectorContribution).toConstantValue({
      name,
      description: DESCRIPTIONS[name],
      create: (options) => createStrategy(name, options),
    });
  }
  const session = new RunSessionState();
  bind(RunSession).toConstantValue(session);
  bind<Checkpointer>(Checkpointer).toConstantValue({
    save: async (position) => session.checkpoints?.save('stop', position.step),
    resumeCommand: (checkpoint) => session.checkpoints?.resumeCommand?.(checkpoint),
  });
  bind<Trainer>(Trainer)
    .toDynamicValue((context) => new TrainerRole(context.get<RunSessionState>(RunSession), context.get<ModelConfig>(RunConfig), context.get<SeededRng>(Rng)))
    .inTransientScope();
});
