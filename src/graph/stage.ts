/**
 * The stage contract and the stage registry.
 *
 * A stage is data plus a factory (MediaPipe's GetContract/Open/Process/Close, collapsed into one
 * RxJS operator): it declares
 * - `type`: the name a graph node uses (`stage: decode`),
 * - `inputs` / `outputs`: the item kinds it consumes and emits (markers such as `task-end` that
 *   it only forwards need not be listed), checked on every edge before data flows,
 * - `optionsSchema`: a zod object with a default for every optional field, checked on load,
 * - `roles`: container tokens it needs (checked before the run, so a missing binding is one
 *   clear error instead of a failure at the first item),
 * - `create(deps, options)`: returns the `OperatorFunction`. Called once per run and node;
 *   state goes in the operator's closure, or in an injected service.
 *
 * Adding a stage is a one-file job: a file exporting `stage` (a `StageDefinition`) and the
 * plain-RxJS factory, bound to `StageContribution` by a ContainerModule: an area module
 * (STELLA's stages: src/media/stages, src/method/stages, src/eval/stages) or a plugin, the same way.
 * The engine's own generic stages (src/graph/operators/) are always registered.
 *
 * Ref: STYLE.md "What we take" §1–3; docs/graph.md "Writing a stage".
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainerModule, type Container, type ContainerModuleLoadOptions, type ServiceIdentifier } from 'inversify';
import type { Observer, OperatorFunction } from 'rxjs';
import { z } from 'zod';
import type { GraphItem, ItemKind, StageError } from './items.ts';
import type { GraphMetrics } from './metrics.ts';

// Worker tasks live in their own module, which a worker imports without the container or RxJS.
export { loadWorkerTask, type WorkerTask, type WorkerTaskContext } from './worker-task.ts';

/** What `create` gets besides its options. */
export interface StageDeps {
  /** Node id in the graph (`nodes.<id>`), also the stage name in StageErrors and metrics. */
  node: string;
  /** Resolves a role token. Throws a clear error when the role is not bound. */
  get<T>(token: ServiceIdentifier<T>): T;
  /** Per-item failures go here. */
  errors: Pick<Observer<StageError>, 'next'>;
  metrics: GraphMetrics;
  /** True once a graceful stop was requested. */
  stopRequested(): boolean;
  /** The run's container, for stages that need more than roles. */
  container: Container;
  /** The node's `device` and `syncEvery` (set by the runner; stages that place their own work read it). */
  placement?: { device: string; syncEvery: number; pool?: import('./device-pool.ts').DevicePool };
}

export interface StageDefinition<Options extends z.ZodObject = z.ZodObject, Item extends GraphItem = GraphItem> {
  readonly type: string;
  /** One line for `stella graph stages` and error messages. */
  readonly description: string;
  /** Kinds taken and emitted; `'*'` (ANY_KIND) for a stage that takes or passes on anything. */
  readonly inputs: readonly ItemKind[];
  readonly outputs: readonly ItemKind[];
  /**
   * In-band marker kinds this stage emits that every stage forwards (e.g. a task boundary): an edge
   * carries them whatever its producer lists, so a consumer may take only markers.
   */
  readonly markers?: readonly ItemKind[];
  readonly optionsSchema: Options;
  readonly roles: readonly symbol[];
  create(deps: StageDeps, options: z.infer<Options>): OperatorFunction<Item, Item>;
  /**
   * Checks options against the run's container when the graph loads (e.g. a name that must be
   * bound); each problem names the option. Runs after the roles are checked.
   */
  check?(options: z.infer<Options>, container: Container): Array<{ option: string; message: string }>;
  /**
   * How to run this stage on `device: worker:N` (or `gpu:N`): a module URL and the name of an
   * exported `WorkerTask`. Only 1:1 stages whose work is a pure function of the item can offer it.
   */
  readonly worker?: {
    module: string;
    export: string;
    /** Whether the task uses tensors, so the worker must initialise a tfjs backend first (default true). */
    backend?: boolean;
    /**
     * Fields of the input item that name a local file the task reads (decode: `path`). On a
     * remote device (`device: redis`) the file's bytes travel with the item and the task opens
     * `context.localPath(item[field])`; the item itself keeps the original path.
     */
    files?: readonly string[];
  };
  /** The stage places its own work on `device` (create gets `placement` with the pool) instead of a worker task per item. */
  readonly placesItself?: boolean;
  /**
   * Every item the node takes (forwarded markers included) comes out as exactly one output item or
   * one StageError. The runner then reserves an output-queue slot per item in flight, so the node's
   * output queues never hold more than their `queueSize` (runner.ts). Nodes on a worker device are
   * 1:1 by the worker contract and get the same treatment.
   */
  readonly oneToOne?: boolean;
}

/** Where area modules and plugins bind their stages (any number; `loadStageRegistry` collects them). */
export const StageContribution = Symbol('StageContribution');

/** Binds each stage to `StageContribution` (for use inside a ContainerModule). */
export function bindStages(bind: ContainerModuleLoadOptions['bind'], stages: readonly StageDefinition[]): void {
  for (const stage of stages) bind<StageDefinition>(StageContribution).toConstantValue(stage);
}

/** A ContainerModule that registers `stages` and binds nothing else. */
export function stagesModule(stages: readonly StageDefinition[]): ContainerModule {
  return new ContainerModule(({ bind }) => bindStages(bind, stages));
}

/**
 * Type-checked helper so each stage file can write `export const stage = defineStage({...})`.
 * `Item` is the domain's item union the operator works on (default: any GraphItem).
 */
export function defineStage<Options extends z.ZodObject, Item extends GraphItem = GraphItem>(definition: StageDefinition<Options, Item>): StageDefinition<Options> {
  // The operator's input is whatever the loader checked against `inputs`, so narrowing to Item is safe.
  return definition as unknown as StageDefinition<Options>;
}

export class StageRegistry {
  private readonly stages = new Map<string, StageDefinition>();

  register(definition: StageDefinition): this {
    if (this.stages.has(definition.type)) {
      throw new Error(`stage type '${definition.type}' is registered twice`);
    }
    this.stages.set(definition.type, definition);
    return this;
  }
  has(type: string): boolean { return this.stages.has(type); }
  get(type: string): StageDefinition {
    const definition = this.stages.get(type);
    if (!definition) throw new Error(`unknown stage type '${type}'; known types: ${this.types().join(', ')}`);
    return definition;
  }
  types(): string[] { return [...this.stages.keys()].sort(); }
  all(): StageDefinition[] { return this.types().map((t) => this.stages.get(t)!); }
}

const OPERATORS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'operators');
let builtIn: Promise<StageDefinition[]> | undefined;

/** The engine's generic stages: every `stage` exported by a file in src/graph/operators/, loaded once. */
export function builtInStages(): Promise<StageDefinition[]> {
  builtIn ??= (async () => {
    const files = (await readdir(OPERATORS_DIR)).filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')).sort();
    const definitions: StageDefinition[] = [];
    for (const file of files) {
      const module = (await import(path.join(OPERATORS_DIR, file))) as { stage?: StageDefinition };
      if (module.stage?.type) definitions.push(module.stage);
    }
    return definitions;
  })();
  return builtIn;
}

/** The engine's generic stages plus every stage bound to `StageContribution` in `container` (area modules, plugins). */
export async function loadStageRegistry(container?: Container): Promise<StageRegistry> {
  const registry = new StageRegistry();
  for (const definition of await builtInStages()) registry.register(definition);
  if (container?.isBound(StageContribution)) {
    for (const definition of container.getAll<StageDefinition>(StageContribution)) registry.register(definition);
  }
  return registry;
}

/** The node id a stage's StageErrors and metrics carry when it runs outside a graph. */
export const STANDALONE = 'standalone';

export const zodKeys = (schema: z.ZodObject): string[] => Object.keys(schema.shape);
