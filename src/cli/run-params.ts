/**
 * `stella run` parameters: the friendly keys `--set` takes (`selector=der++`, `train.epochs=2`,
 * `data.manifest=PATH`), their types and defaults, and how they reach a graph. A graph reads them as
 * `${STELLA_…}` placeholders (e.g. `selector: ${STELLA_SELECTOR:-stella}`), so each graph file says
 * which parameters it honours. Keys under the graph's own schema (`nodes.…`, `seed`, `config`,
 * `defaults.…`, `plugins`) are passed to the graph loader as overrides instead.
 */
import { z } from 'zod';

export const runParamsSchema = z.strictObject({
  /** Strategy or plugin selector on the train node (arm A in A/B graphs). */
  selector: z.string().min(1).default('stella'),
  /** Arm B's selector in A/B graphs (graphs/ab-selectors.yaml). */
  selectorB: z.string().min(1).default('random'),
  /** Model size: tiny | base. */
  config: z.enum(['tiny', 'base']).default('tiny'),
  seed: z.number().int().nonnegative().default(2021),
  data: z.strictObject({
    /** A manifest (our format, a CAV-MAE datafile, or a folder of label folders); empty = the generated corpus. */
    manifest: z.string().default(''),
    /** Generated corpus shape (used when `manifest` is empty). */
    tasks: z.number().int().positive().default(3),
    classes: z.number().int().positive().default(5),
    train: z.number().int().positive().default(4),
    test: z.number().int().positive().default(6),
    /** Where generated corpora are kept (DIR/corpus/…); empty = $STELLA_CACHE, else the repository's .cache/. */
    cache: z.string().default(''),
  }).default({ manifest: '', tasks: 3, classes: 5, train: 4, test: 6, cache: '' }),
  /** Training keys; unset = the graph's own default (continual-pretrain: 4 epochs, batch 4, memory 64, lr 1e-4). */
  train: z.strictObject({
    epochs: z.number().int().positive().optional(),
    batchSize: z.number().int().positive().optional(),
    /** Replay memory in samples. */
    memory: z.number().int().positive().optional(),
    /** Adam learning rate (the spec's 1e-4 continues from pre-trained weights). */
    lr: z.number().positive().optional(),
  }).default({}),
  /**
   * Weights the model starts from: 'shipped' (models/<config>-pretrained.safetensors, the continual
   * graphs' default), 'none' (from scratch), or a .safetensors / .pth file. Unset = the graph's default.
   */
  init: z.string().min(1).optional(),
  /** The AVM's start: 'pretrained' (from init's file; spec §11 Q3) or 'random' (N(0, 0.02²), the authors' commands). */
  avmInit: z.enum(['pretrained', 'random']).optional(),
  checkpoint: z.strictObject({
    /** Save every N steps (also at each task end and on a graceful stop). */
    every: z.number().int().nonnegative().default(10),
    keep: z.number().int().positive().default(3),
  }).default({ every: 10, keep: 3 }),
  report: z.strictObject({
    /** Test clips drawn with their importance and selection in report.html. */
    clips: z.number().int().nonnegative().default(3),
  }).default({ clips: 3 }),
});
export type RunParams = z.output<typeof runParamsSchema>;

/** Environment placeholders the shipped graphs read. */
export function graphEnv(p: RunParams, manifest: string, out: string): Record<string, string> {
  return {
    STELLA_SELECTOR: p.selector,
    STELLA_SELECTOR_B: p.selectorB,
    STELLA_CONFIG: p.config,
    STELLA_SEED: String(p.seed),
    STELLA_MANIFEST: manifest,
    STELLA_EVAL_MANIFEST: manifest,
    STELLA_OUT: out,
    // Unset keys stay unset, so the graph's own default applies (a pre-training graph has other defaults).
    ...defined({
      STELLA_EPOCHS: p.train.epochs, STELLA_BATCH: p.train.batchSize, STELLA_MEMORY: p.train.memory, STELLA_LR: p.train.lr,
      STELLA_INIT: p.init, STELLA_AVM_INIT: p.avmInit,
    }),
  };
}

function defined(values: Record<string, string | number | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
}

/** The run key behind each placeholder of graphEnv, to name the `--set` a bad graph value came from. */
export const RUN_KEY_PLACEHOLDERS: Record<string, string> = {
  selector: 'STELLA_SELECTOR', selectorB: 'STELLA_SELECTOR_B', config: 'STELLA_CONFIG', seed: 'STELLA_SEED',
  'data.manifest': 'STELLA_MANIFEST', 'train.epochs': 'STELLA_EPOCHS', 'train.batchSize': 'STELLA_BATCH',
  'train.memory': 'STELLA_MEMORY', 'train.lr': 'STELLA_LR', init: 'STELLA_INIT', avmInit: 'STELLA_AVM_INIT',
};

const GRAPH_KEYS = /^\+?(nodes|edges|defaults|plugins|name|seed|config)(\.|=)/;

/**
 * Splits `--set` values into run parameters and graph overrides; run parameters are typed by the
 * schema (numbers and booleans parsed), unknown keys refused naming the valid ones.
 */
export function parseRunSets(sets: readonly string[], base: unknown = {}): { params: RunParams; graphOverrides: string[] } {
  const graphOverrides: string[] = [];
  const raw: Record<string, any> = structuredClone(base ?? {}) as Record<string, any>;
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new RunParamError(`--set '${set}': expected key=value`);
    const key = set.slice(0, eq).trim(), value = set.slice(eq + 1);
    if (GRAPH_KEYS.test(`${key}=`) && !(key in RUN_TOP_LEVEL)) { graphOverrides.push(set); continue; }
    const path = key.split('.');
    if (!knownPath(path)) throw new RunParamError(`--set '${key}': unknown key; run keys are ${listKeys().join(', ')}; graph keys start with nodes., defaults., plugins`);
    let target = raw;
    for (const part of path.slice(0, -1)) target = target[part] ??= {};
    target[path[path.length - 1]] = coerce(value);
  }
  const parsed = runParamsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RunParamError(`--set '${issue.path.join('.')}': ${issue.message}`);
  }
  return { params: parsed.data, graphOverrides };
}

export class RunParamError extends Error {}

const RUN_TOP_LEVEL: Record<string, true> = { seed: true, config: true };


function coerce(value: string): unknown {
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return Number(value);
  if (value === 'true' || value === 'false') return value === 'true';
  return value;
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let s: any = schema;
  while (s?.def?.innerType) s = s.def.innerType;
  return s?.def?.shape;
}

function knownPath(path: string[]): boolean {
  let shape = shapeOf(runParamsSchema);
  for (const [i, part] of path.entries()) {
    const child = shape?.[part];
    if (!child) return false;
    if (i < path.length - 1) shape = shapeOf(child);
    else return shapeOf(child) === undefined;
  }
  return false;
}

export function listKeys(shape = shapeOf(runParamsSchema), prefix = ''): string[] {
  return Object.entries(shape ?? {}).flatMap(([k, v]) => (shapeOf(v) ? listKeys(shapeOf(v), `${prefix}${k}.`) : [`${prefix}${k}`]));
}
