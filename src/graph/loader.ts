/**
 * YAML graph files: parse, interpolate, override, validate. Every problem is reported before
 * any data flows, as `In '<file>':<line>:<col> at '<dotted.key>': <message>`, all at once.
 *
 * File layout (docs/graph.md has the full reference):
 * ```yaml
 * name: continual-pretrain          # required
 * config: tiny                      # a bound RunConfigPresets name (STELLA: the model size), default the presets' default
 * seed: 0                           # root of every Rng fork, default 0
 * plugins: [../plugins/x.ts, pkg]   # files relative to this file, or npm packages; default []
 * defaults: { queueSize: 4, device: cpu }
 * nodes:
 *   <id>: { stage: <type>, options: {…}, device: cpu|gpu:N|worker:N|redis, queueSize: N, syncEvery: K }
 * edges:
 *   - { from: <id>, to: <id>, queueSize: N }
 * ```
 * Checks: YAML syntax, unknown/mistyped top-level and node keys (with a "did you mean"),
 * unknown stage type (lists the known ones), each node's options against its stage's zod
 * schema (defaults filled in), unknown plugin, edges naming unknown nodes, cycles, kinds an
 * edge cannot carry (markers such as a task boundary travel on every edge; `'*'` takes or passes
 * anything), a node that needs input but has no edge into it, unbound roles, each stage's own
 * `check` of its options against the container (e.g. STELLA's unknown selector names), and a
 * model-reading node on another device with `syncEvery: 0`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Container } from 'inversify';
import { isMap, isScalar, LineCounter, parseDocument, stringify as stringifyYaml, type Document } from 'yaml';
import { z } from 'zod';
import { createContainer, resolvePlugin, type ContainerSettings } from './container.ts';
import { GraphConfigError, GraphFileError, messageOf, type ConfigProblem } from './errors.ts';
import { ANY_KIND, type ItemKind } from './items.ts';
import { applyOverrides, childSchema, closest, interpolateEnv, parseOverride } from './overrides.ts';
import { ModelService, RunConfigPresets } from './roles.ts';
import { loadStageRegistry, type StageDefinition, type StageRegistry } from './stage.ts';

export const GRAPH_DEFAULTS = { queueSize: 4, device: 'cpu', seed: 0 } as const;

export const deviceSchema = z.string().regex(/^(cpu|gpu:\d+|worker:\d+|redis)$/, "device must be 'cpu', 'gpu:N', 'worker:N' or 'redis'");

export const nodeSchema = z.strictObject({
  /** Stage type (the engine's src/graph/operators/<type>.ts, or one an area module or plugin registers). */
  stage: z.string().min(1),
  /** Stage options, checked against the stage's own schema. */
  options: z.record(z.string(), z.unknown()).default({}),
  /** Where the stage runs; default `defaults.device`. */
  device: deviceSchema.optional(),
  /** Capacity of this node's input queue(s); default `defaults.queueSize`. */
  queueSize: z.number().int().positive().optional(),
  /** For a model-reading node on another device: copy weights every K train steps (0 = strictly in step, same device only). */
  syncEvery: z.number().int().nonnegative().default(0),
});

export const edgeSchema = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  /** Capacity of this edge's queue; default the target node's queueSize. */
  queueSize: z.number().int().positive().optional(),
});

export const graphSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  /** Names one of the bound RunConfigPresets; filled with their default when absent. */
  config: z.string().optional(),
  seed: z.union([z.number(), z.string()]).default(GRAPH_DEFAULTS.seed),
  plugins: z.array(z.string()).default([]),
  defaults: z
    .strictObject({
      queueSize: z.number().int().positive().default(GRAPH_DEFAULTS.queueSize),
      device: deviceSchema.default(GRAPH_DEFAULTS.device),
    })
    .default({ queueSize: GRAPH_DEFAULTS.queueSize, device: GRAPH_DEFAULTS.device }),
  nodes: z.record(z.string().regex(/^[A-Za-z][\w-]*$/, 'node ids are letters, digits, - and _'), nodeSchema),
  edges: z.array(edgeSchema).default([]),
});
export type GraphSpec = z.infer<typeof graphSchema>;

export interface ValidatedNode {
  id: string;
  stage: StageDefinition;
  options: Record<string, unknown>;
  device: string;
  queueSize: number;
  syncEvery: number;
}
export interface ValidatedEdge { from: string; to: string; queueSize: number }

export interface LoadedGraph {
  file: string;
  spec: GraphSpec;
  nodes: Map<string, ValidatedNode>;
  edges: ValidatedEdge[];
  /** The config `spec.config` names (opaque to the engine; also bound to RunConfig). */
  config: unknown;
  container: Container;
  registry: StageRegistry;
  /** The document after interpolation and overrides, for `resolved.yaml`. */
  resolvedYaml: string;
  overrides: string[];
}

export interface LoadOptions {
  /** `a.b=v` / `+a.b=v` overrides, in order. */
  overrides?: string[];
  env?: Record<string, string | undefined>;
  /**
   * Where environment variables came from, for messages: a problem at a key whose value a
   * `${VAR}` placeholder filled names `origins[VAR]` (e.g. `--set selector=stela` for STELLA_SELECTOR).
   */
  origins?: Record<string, string>;
  /** Container settings (tests inject fakes with `values`); plugins and baseDir come from the file. */
  container?: Omit<ContainerSettings, 'plugins' | 'baseDir' | 'config' | 'seed'>;
}

export async function loadGraph(file: string, options: LoadOptions = {}): Promise<LoadedGraph> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new GraphFileError(file, `cannot read the graph file (${messageOf(error)})`);
  }
  return loadGraphText(text, file, options);
}

/** Same as loadGraph for YAML text; `file` is used in messages and to resolve plugin paths. */
export async function loadGraphText(text: string, file: string, options: LoadOptions = {}): Promise<LoadedGraph> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  // Keys filled from the environment, so a bad value names where it was set, not only the YAML line.
  const filled = new Map<string, string[]>();
  const fail = (problems: ConfigProblem[]) => { throw new GraphConfigError(file, problems.map((p) => withOrigin(p, filled, options.origins))); };
  if (doc.errors.length) {
    fail(doc.errors.map((e) => ({ key: '', message: e.message.split('\n')[0], line: e.linePos?.[0].line, column: e.linePos?.[0].col })));
  }
  const problems: ConfigProblem[] = [];
  problems.push(...interpolateEnv(doc, options.env ?? process.env, lines, filled));

  // Stage types are needed to type overrides of options; plugins may add stages, so build the
  // container from the file's plugin list first (read before overrides touch it).
  const rawPlugins = (doc.toJS() as { plugins?: unknown })?.plugins;
  const baseDir = path.dirname(path.resolve(file));
  const pluginProblems: ConfigProblem[] = [];
  const plugins = Array.isArray(rawPlugins) ? rawPlugins.map(String) : [];
  plugins.forEach((p, i) => {
    try { resolvePlugin(p, baseDir); } catch (error) {
      pluginProblems.push({ key: `plugins.${i}`, message: messageOf(error), ...locate(doc, lines, ['plugins', i]) });
    }
  });
  if (pluginProblems.length) fail([...problems, ...pluginProblems]);
  const rawConfig = (doc.toJS() as { config?: unknown })?.config;
  const container = await createContainer({
    ...options.container,
    plugins,
    baseDir,
    configName: rawConfig === undefined || rawConfig === null ? undefined : String(rawConfig),
    seed: (doc.toJS() as { seed?: number | string })?.seed ?? GRAPH_DEFAULTS.seed,
  });
  const registry = await loadStageRegistry(container);

  const typeAt = (keys: string[]): z.ZodType | undefined => {
    if (keys[0] === 'nodes' && keys.length >= 3) {
      const nodeType = doc.getIn(['nodes', keys[1], 'stage']);
      if (keys[2] === 'options' && keys.length >= 4 && typeof nodeType === 'string' && registry.has(nodeType)) {
        let s: z.ZodType | undefined = registry.get(nodeType).optionsSchema;
        for (const k of keys.slice(3)) s = childSchema(s, k);
        return s;
      }
      return keys.length === 3 ? childSchema(nodeSchema, keys[2]) : undefined;
    }
    let s: z.ZodType | undefined = graphSchema;
    for (const k of keys) s = childSchema(s, k);
    return s;
  };
  const overrides = options.overrides ?? [];
  const parsedOverrides = [];
  for (const o of overrides) {
    try { parsedOverrides.push(parseOverride(o, typeAt)); } catch (error) { problems.push({ key: '', message: messageOf(error) }); }
  }
  problems.push(
    ...applyOverrides(doc, parsedOverrides, (keys) => typeAt(keys) !== undefined, (keys) => {
      const here = doc.getIn(keys, true);
      const present = isMap(here) ? here.items.map((p) => String(isScalar(p.key) ? p.key.value : p.key)) : [];
      const schema = keys.length ? typeAt(keys) : graphSchema;
      const unwrapped = (schema as unknown as { def?: { innerType?: z.ZodType } })?.def?.innerType ?? schema;
      const fromSchema = unwrapped instanceof z.ZodObject ? Object.keys(unwrapped.shape) : [];
      return [...new Set([...present, ...fromSchema])];
    }),
  );
  const overridden = new Map(parsedOverrides.map((o) => [o.path.join('.'), o.text]));
  const note = (key: string) => {
    for (const [k, text] of overridden) if (key === k || key.startsWith(`${k}.`)) return ` (value from --set ${text})`;
    return '';
  };
  if (problems.length) fail(problems);

  // Structure.
  const structure = graphSchema.safeParse(doc.toJS());
  if (!structure.success) {
    fail(structure.error.issues.flatMap((issue) => issueProblems(issue, [], doc, lines, note)));
  }
  const spec = structure.data!;
  const presets = container.isBound(RunConfigPresets) ? container.get<RunConfigPresets>(RunConfigPresets) : undefined;
  spec.config ??= presets?.default;
  if (spec.config !== undefined && !(presets && Object.hasOwn(presets.configs, spec.config))) {
    const message = presets
      ? `unknown ${presets.what} '${spec.config}'; known: ${Object.keys(presets.configs).join(', ')}`
      : `config '${spec.config}' names a preset, but nothing binds RunConfigPresets (load the module that defines them)`;
    problems.push({ key: 'config', message, ...locate(doc, lines, ['config']) });
  }

  // Nodes: stage types and options.
  const nodes = new Map<string, ValidatedNode>();
  for (const [id, node] of Object.entries(spec.nodes)) {
    if (!registry.has(node.stage)) {
      const hint = closest(node.stage, registry.types());
      problems.push({
        key: `nodes.${id}.stage`,
        message: `unknown stage type '${node.stage}'${hint ? ` (did you mean '${hint}'?)` : ''}; known types: ${registry.types().join(', ')}`,
        ...locate(doc, lines, ['nodes', id, 'stage']),
      });
      continue;
    }
    const stage = registry.get(node.stage);
    const parsed = stage.optionsSchema.strict().safeParse(node.options);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, ['nodes', id, 'options'], doc, lines, note, stage));
      continue;
    }
    nodes.set(id, {
      id,
      stage,
      options: parsed.data as Record<string, unknown>,
      device: node.device ?? spec.defaults.device,
      queueSize: node.queueSize ?? spec.defaults.queueSize,
      syncEvery: node.syncEvery,
    });
  }

  // Edges: dangling, kinds.
  const ids = Object.keys(spec.nodes);
  // In-band markers (a task boundary) that any registered stage declares travel on every edge.
  const markers = [...new Set(registry.all().flatMap((s) => s.markers ?? []))];
  const edges: ValidatedEdge[] = [];
  spec.edges.forEach((edge, i) => {
    let ok = true;
    for (const end of ['from', 'to'] as const) {
      if (!ids.includes(edge[end])) {
        ok = false;
        const hint = closest(edge[end], ids);
        problems.push({
          key: `edges.${i}.${end}`,
          message: `edge ${end} unknown node '${edge[end]}'${hint ? ` (did you mean '${hint}'?)` : ''}; nodes: ${ids.join(', ')}`,
          ...locate(doc, lines, ['edges', i, end]),
        });
      }
    }
    const from = nodes.get(edge.from);
    const to = nodes.get(edge.to);
    if (ok && from && to) {
      const carried: ItemKind[] = [...from.stage.outputs, ...markers];
      const open = carried.includes(ANY_KIND) || to.stage.inputs.includes(ANY_KIND);
      if (!open && !to.stage.inputs.some((k) => carried.includes(k))) {
        problems.push({
          key: `edges.${i}`,
          message: `'${edge.from}' (${from.stage.type}) emits [${from.stage.outputs.join(', ')}] but '${edge.to}' (${to.stage.type}) takes [${to.stage.inputs.join(', ') || 'nothing: it is a source'}]`,
          ...locate(doc, lines, ['edges', i]),
        });
      }
    }
    if (ok) edges.push({ from: edge.from, to: edge.to, queueSize: edge.queueSize ?? spec.nodes[edge.to].queueSize ?? spec.defaults.queueSize });
  });
  for (const [id, node] of nodes) {
    if (node.stage.inputs.length && !edges.some((e) => e.to === id)) {
      problems.push({ key: `nodes.${id}`, message: `node '${id}' (${node.stage.type}) takes [${node.stage.inputs.join(', ')}] but no edge leads to it`, ...locate(doc, lines, ['nodes', id]) });
    }
    if (!node.stage.inputs.length && edges.some((e) => e.to === id)) {
      problems.push({ key: `nodes.${id}`, message: `node '${id}' (${node.stage.type}) is a source and cannot have an edge into it`, ...locate(doc, lines, ['nodes', id]) });
    }
  }
  const cycle = findCycle(ids, edges);
  if (cycle) {
    const index = spec.edges.findIndex((e) => e.from === cycle[0] && e.to === cycle[1]);
    problems.push({ key: `edges.${index}`, message: `cycle: ${cycle.join(' → ')}; graphs must be acyclic`, ...locate(doc, lines, ['edges', index]) });
  }

  // Roles, stage checks, devices.
  for (const [id, node] of nodes) {
    for (const role of node.stage.roles) {
      if (!container.isBound(role)) {
        problems.push({ key: `nodes.${id}`, message: `stage '${node.stage.type}' needs role '${String((role as symbol).description ?? role)}', which nothing binds (see docs/plugins.md)`, ...locate(doc, lines, ['nodes', id, 'stage']) });
      }
    }
    for (const { option, message } of node.stage.check?.(node.options, container) ?? []) {
      const key = `nodes.${id}.options.${option}`;
      problems.push({ key, message: `${message}${note(key)}`, ...locate(doc, lines, ['nodes', id, 'options', option]) });
    }
    const readsModel = node.stage.roles.includes(ModelService);
    const trainDevice = [...nodes.values()].find((n) => n.stage.type === 'train')?.device;
    if (node.device === 'redis' && (readsModel || !node.stage.worker || node.stage.placesItself)) {
      const why = readsModel ? 'it reads the model, whose weights do not travel to Redis workers' : `stage '${node.stage.type}' offers no worker task`;
      problems.push({ key: `nodes.${id}.device`, message: `node '${id}' cannot run on device redis: ${why}; use cpu or worker:N`, ...locate(doc, lines, ['nodes', id, 'device']) });
    } else if (readsModel && trainDevice && node.device !== trainDevice && node.syncEvery === 0) {
      problems.push({ key: `nodes.${id}.syncEvery`, message: `node '${id}' reads the model on ${node.device} while train runs on ${trainDevice}: set syncEvery ≥ 1 (0 means strictly in step, which needs the same device)`, ...locate(doc, lines, ['nodes', id]) });
    }
  }
  if (problems.length) fail(problems);

  return {
    file,
    spec,
    nodes,
    edges,
    config: spec.config === undefined ? undefined : presets?.configs[spec.config],
    container,
    registry,
    resolvedYaml: doc.toString(),
    overrides,
  };
}

/** A graph written in code: the same schema as the YAML file, validated the same way. */
export function loadGraphSpec(spec: z.input<typeof graphSchema>, options: LoadOptions & { file?: string } = {}): Promise<LoadedGraph> {
  return loadGraphText(stringifyYaml(spec), options.file ?? '<code>', options);
}

/** Line and column of the deepest existing node on `keys` (or of its key, for a missing one). */
export function locate(doc: Document, lines: LineCounter, keys: (string | number)[]): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let best: [number, number, number] | undefined = (node as { range?: [number, number, number] })?.range;
  for (const key of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      best = (pair.key as { range?: [number, number, number] }).range ?? best;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node && typeof key === 'number') {
      node = (node as { items: unknown[] }).items[key];
      best = (node as { range?: [number, number, number] })?.range ?? best;
    } else break;
  }
  if (!best) return {};
  const { line, col } = lines.linePos(best[0]);
  return { line, column: col };
}

function issueProblems(
  issue: z.core.$ZodIssue,
  prefix: (string | number)[],
  doc: Document,
  lines: LineCounter,
  note: (key: string) => string,
  stage?: StageDefinition,
): ConfigProblem[] {
  const at = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  if (issue.code === 'unrecognized_keys') {
    const parentSchema = stage && at.length === 3 ? stage.optionsSchema : undefined;
    const known = parentSchema ? Object.keys(parentSchema.shape) : [];
    return issue.keys.map((k) => {
      const hint = closest(k, known);
      return {
        key: [...at, k].join('.'),
        message: `unknown key '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}${known.length ? `; known: ${known.join(', ')}` : ''}`,
        ...locate(doc, lines, [...at, k]),
      };
    });
  }
  const key = at.join('.');
  const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
  const what = stage ? ` (stage '${stage.type}')` : '';
  return [{ key, message: `${missing ? 'missing required key' : issue.message}${what}${note(key)}`, ...locate(doc, lines, at) }];
}

function findCycle(ids: string[], edges: ValidatedEdge[]): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    state.set(id, 'visiting');
    stack.push(id);
    for (const e of edges.filter((e) => e.from === id)) {
      if (state.get(e.to) === 'visiting') return [...stack.slice(stack.indexOf(e.to)), e.to];
      if (!state.has(e.to)) {
        const found = visit(e.to);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of ids) {
    if (!state.has(id)) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return undefined;
}

/** Appends "(value from …)" to a problem whose key a placeholder with a known origin filled. */
function withOrigin(problem: ConfigProblem, filled: Map<string, string[]>, origins: Record<string, string> = {}): ConfigProblem {
  const from = (filled.get(problem.key) ?? []).map((name) => origins[name]).filter(Boolean);
  return from.length ? { ...problem, message: `${problem.message} (value from ${from.join(', ')})` } : problem;
}
