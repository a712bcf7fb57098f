/**
 * The engine's roles: what the runner and its generic stages need from the container. One Symbol
 * token per role, named like its interface (theia habit), bound in src/graph/graph-module.ts
 * (defaults), in an area's `*-module.ts` or by a plugin's ContainerModule. Stages never construct
 * their collaborators. A domain's own roles live with the domain (STELLA's: src/media/roles.ts,
 * src/method/roles.ts).
 *
 * Ref: DESIGN.md "Swapping", "Where state lives", "Two rooms"; STYLE.md §5, §8.
 */

/** The run's container itself (for registries that collect contributions, e.g. a selector registry). */
export const ContainerToken = Symbol('Container');

/**
 * A default for a role, bound at the end of container creation only if nothing bound the role
 * (an area module offers its defaults this way, so a plugin or a test can still `bind` the role).
 */
export interface RoleDefault {
  readonly token: symbol;
  readonly value: unknown;
}
export const RoleDefault = Symbol('RoleDefault');

/**
 * Whatever holds weights that one node updates and another reads. The engine only needs the weight
 * hooks, for a model-reading node on another device (`syncEvery: K`, see device-pool.ts).
 */
export interface ModelService {
  exportWeights?(): Promise<Map<string, Float32Array>> | Map<string, Float32Array>;
  importWeights?(weights: Map<string, Float32Array>): Promise<void> | void;
}
export const ModelService = Symbol('ModelService');

/** The run's root generator (src/core/rng.ts); stages fork it by node id. */
export const Rng = Symbol('Rng');

/** Where a run stands, enough to resume. */
export interface StreamPosition {
  step: number;
  /** Last task that was entered, and clips of it already trained on. */
  task: number;
  clipsSeen: number;
  reason: 'stop' | 'task-end' | 'end';
}

/** Writes whatever makes the run resumable, atomically, on a graceful stop; returns where. */
export interface Checkpointer {
  save(position: StreamPosition): Promise<string | undefined>;
  /**
   * The command that continues from `checkpoint` (printed after a graceful stop). The graph cannot
   * know it: only the tool that can restore this Checkpointer's files can. Without it the stop
   * message names the checkpoint only.
   */
  resumeCommand?(checkpoint: string): string | undefined;
}
export const Checkpointer = Symbol('Checkpointer');

/** The run's metrics (src/graph/metrics.ts `GraphMetrics`). */
export const Metrics = Symbol('Metrics');

/** The graph's resolved `config:` (opaque to the engine; STELLA's is a ModelConfig, src/core/config.ts). */
export const RunConfig = Symbol('RunConfig');

/**
 * The configs a graph's `config:` key may name, and the one a graph that names none gets
 * (STELLA's: the model sizes, bound by src/method/method-module.ts). Unbound: graphs name no config.
 */
export interface RunConfigPresets {
  /** What a config is, for messages (e.g. 'model config'). */
  readonly what: string;
  readonly default: string;
  readonly configs: Readonly<Record<string, unknown>>;
}
export const RunConfigPresets = Symbol('RunConfigPresets');
