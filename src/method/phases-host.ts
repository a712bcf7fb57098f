/**
 * PhaseHost: what the graph's `score`, `replay-assess` and `sample` stages need to run STELLA's phases
 * (src/method/phases.ts) outside the `train` stage — the strategy, the model, the replay buffer, the
 * random stream, and whose turn it is.
 *
 * Two kinds:
 * - `trainerHost(trainer, selector?)`: the phases of a train node's StrategyTrainer. The strategy is the
 *   one the node trains with (fixed here, as its first step would). Only a STELLA-family strategy
 *   (stella, lpis-only, rca-only, random, a plugin PatchSelector) has phases; for any other
 *   (`phased()` false) the stages pass batches through untouched and `train` runs the fused step.
 *   Turns: a step's phases must see the weights and the stream the previous step left, so `score` takes
 *   the trainer's turn (`turn()`) before scoring and the turn passes on when that step's item is trained
 *   or dropped. Scoring draws on a copy of the trainer's stream (`streamCopy()`); the training phase
 *   writes it back (phases.ts), so results are those of the fused step, bit for bit.
 * - `modelHost(model, rng, strategy?)`: scoring with a ModelService that nothing trains (score-only
 *   graphs, heatmaps); no buffer, no turns, the stream is the host's own.
 *
 * `linkTrainNode(container, node, selector)` (called by the `train` stage) records which selector a
 * train node runs, so a `score` node naming that train node (option `trainer`) finds its trainer.
 * Ref: spec §5.2; docs/graph.md "STELLA as stages".
 */
import { Rng } from '../core/rng.ts';
import { cloneItem } from '../graph/items.ts';
import type { AnyPhaseItem, Batch, PhaseItem } from './items.ts';
import type { ModelService } from '../model/model-service.ts';
import { clonePhase, disposePhase, type PhaseContext, type StepPhase } from './phases.ts';
import type { RunSessionState } from './run-session.ts';
import { StellaFamilyStrategy } from './strategies/stella-family.ts';
import type { Strategy } from './strategy.ts';
import type { StrategyTrainer } from './strategy-trainer.ts';
import { createStrategy } from './strategy-registry.ts';

export interface PhaseHost {
  /** The STELLA-family strategy whose phases run here, or undefined: pass batches through. */
  phased(): StellaFamilyStrategy | undefined;
  /** Model, AVM, buffer and the live stream (read at call time: a resume replaces the stream). */
  context(): PhaseContext;
  /** A copy of the live stream for a step's draws; the train phase writes its state back. */
  streamCopy(): Rng;
  /** Steps the trainer has completed (0 for a model host), for messages. */
  steps(): number;
  /** Waits for this host's turn; resolves with its release, or undefined when `stopped()` turned true first. */
  turn(stopped?: () => boolean): Promise<(() => void) | undefined>;
  /** The train node's model and its matmul choice (trainer hosts only), for a scorer replica to copy. */
  trainedModel?(): { model: ModelService; fastMatmul: boolean };
}

/** One step at a time per trainer: FIFO waiters, released when the step's item is trained or dropped. */
class Turns {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  async take(stopped?: () => boolean): Promise<(() => void) | undefined> {
    while (this.busy) {
      if (stopped?.()) return undefined;
      // Poll the stop flag too: after a graceful stop the holder's item may never be trained.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 50);
        function done() { clearTimeout(timer); resolve(); }
        this.waiting.push(done);
      });
    }
    this.busy = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.busy = false;
      for (const wake of this.waiting.splice(0)) wake();
    };
  }
}

const turnsByTrainer = new WeakMap<StrategyTrainer, Turns>();

/** The phases of a train node's trainer; `selector` is the node's (a Strategy, PatchSelector or name). */
export function trainerHost(trainer: StrategyTrainer, selector?: unknown): PhaseHost {
  let turns = turnsByTrainer.get(trainer);
  if (!turns) turnsByTrainer.set(trainer, (turns = new Turns()));
  const t = turns;
  let strategy: Strategy | undefined;
  const fixed = () => (strategy ??= trainer.use(selector as Parameters<StrategyTrainer['use']>[0]));
  // The phases are the trainer's own step, split: they use its live buffer and stream.
  const live = () => ({ rng: trainer.randomStream, buffer: trainer.replayBuffer as PhaseContext['buffer'] });
  return {
    phased: () => {
      const s = fixed();
      return s instanceof StellaFamilyStrategy ? s : undefined;
    },
    context: () => {
      const s = fixed();
      return { model: trainer.model.backbone, avm: s.usesAvm ? trainer.model.avm : undefined, ...live() };
    },
    streamCopy: () => Rng.fromState(live().rng.state()),
    steps: () => trainer.stepsDone,
    turn: (stopped) => t.take(stopped),
    trainedModel: () => ({ model: trainer.model, fastMatmul: trainer.options.fastMatmul }),
  };
}

/** Scoring with a model nothing trains (heatmaps): stella's scoring by default, the host's own stream. */
export function modelHost(model: ModelService, rng: Rng, strategy: string | StellaFamilyStrategy = 'stella'): PhaseHost {
  const s = typeof strategy === 'string' ? createStrategy(strategy) : strategy;
  if (!(s instanceof StellaFamilyStrategy)) throw new Error(`score: strategy '${s.name}' has no scoring phase; use stella, lpis-only, rca-only or random`);
  return {
    phased: () => s,
    context: () => ({ model: model.backbone, avm: model.avm, rng }),
    streamCopy: () => rng,
    steps: () => 0,
    turn: async () => () => {},
  };
}

/** Selector of each train node, by container, so `score`/`replay-assess`/`sample` nodes find their trainer. */
const trainNodes = new WeakMap<object, Map<string, { selector: unknown }>>();

export function linkTrainNode(container: object, node: string, selector: unknown): void {
  let nodes = trainNodes.get(container);
  if (!nodes) trainNodes.set(container, (nodes = new Map()));
  nodes.set(node, { selector });
}

/** The host of train node `node` (or the only train node when empty) in this run. */
export function hostForTrainNode(container: object, session: RunSessionState, node: string, asking: string): { host: PhaseHost; node: string } {
  const nodes = trainNodes.get(container) ?? new Map<string, { selector: unknown }>();
  let id = node;
  if (!id) {
    if (nodes.size !== 1) throw new Error(`'${asking}' needs option 'trainer' to pick one of the train nodes: ${[...nodes.keys()].join(', ') || '(none in this graph)'}`);
    id = [...nodes.keys()][0];
  }
  const link = nodes.get(id);
  if (!link) throw new Error(`'${asking}': no train node '${id}' in this graph (train nodes: ${[...nodes.keys()].join(', ') || 'none'})`);
  const trainer = session.trainers.get(id);
  if (!trainer) throw new Error(`'${asking}': train node '${id}' has no method trainer (its Trainer role is not the method's TrainerRole)`);
  return { host: trainerHost(trainer, link.selector), node: id };
}

/** Batches train node `node` skips on resume (already trained before the checkpoint); the stages skip them too. */
export function resumeSkip(session: RunSessionState, node: string): number {
  return session.restored?.trainers[node] ? session.restored.steps : 0;
}

/** The turn an in-flight step holds, by item (clones hold none). */
const turnOf = new WeakMap<object, () => void>();

/**
 * A phase item over `batch`: owns the batch, the payload and the trainer's turn; `dispose()` frees all
 * three (idempotent). `clone()` (a second fan-out branch) copies the batch's tensors and the payload,
 * random stream included, but not the turn.
 */
export function phaseItem<K extends AnyPhaseItem['kind'], P extends StepPhase>(kind: K, batch: Batch, phase: P, release: () => void): PhaseItem<K, P> {
  let disposed = false;
  const item: PhaseItem<K, P> = {
    kind, task: batch.task, taskName: batch.taskName, batch, phase,
    dispose() {
      if (disposed) return;
      disposed = true;
      try {
        batch.dispose();
        disposePhase(phase);
      } finally {
        turnOf.get(item)?.();
      }
    },
    clone: () => phaseItem(kind, cloneItem(batch), clonePhase(phase), () => {}),
  };
  turnOf.set(item, release);
  return item;
}

/** The next phase's item: the batch and the turn move over from `item` (which must not be disposed after). */
export function nextPhaseItem<K extends AnyPhaseItem['kind'], P extends StepPhase>(item: AnyPhaseItem, kind: K, phase: P): PhaseItem<K, P> {
  const release = turnOf.get(item) ?? (() => {});
  turnOf.delete(item);
  return phaseItem(kind, item.batch, phase, release);
}
