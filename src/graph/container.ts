/**
 * The run's inversify container.
 *
 * Load order (later ones see what earlier ones bound; a default is bound only where nothing is):
 *   1. area modules: every src/<area>/<area>-module.ts, areas in alphabetical order (each
 *      `export default` ContainerModule; STELLA's media, method and eval modules bind their roles and
 *      register their stages here, exactly as a plugin does),
 *   2. plugins: every plugins/*.ts (unless `autoloadPlugins: false`), then the graph's
 *      `plugins: [...]` (a file relative to the graph file, or an npm package name),
 *   3. `modules` given in code (tests inject fakes here),
 *   4. defaults, each only where nothing is bound: RunConfig from `config` (or the bound
 *      RunConfigPresets' `configName`), the `RoleDefault`s the modules above offered (STELLA's media
 *      decoder, tokenizer, manifest loader), then src/graph/graph-module.ts (no-op Checkpointer,
 *      Metrics, Rng from `seed`),
 *   5. `values`: role → instance pairs that replace any binding (the quickest way to inject a fake).
 *
 * A role token is a Symbol named like its interface (src/graph/roles.ts for the engine's). Stages
 * are an extension point: bind any number of `StageContribution`s (src/graph/stage.ts).
 *
 * ## Example
 * ```ts
 * const container = await createContainer({ config: modelConfig('tiny'), values: [[Metrics, myMetrics]] });
 * ```
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Container, ContainerModule, type ServiceIdentifier } from 'inversify';
import { graphModule, roleDefaultsModule } from './graph-module.ts';
import { REPO_ROOT } from './portable-path.ts';
import type { GraphMetrics } from './metrics.ts';
import { ContainerToken, RoleDefault, RunConfig, RunConfigPresets } from './roles.ts';

export { REPO_ROOT };
const SRC = path.join(REPO_ROOT, 'src');
export const PLUGINS_DIR = path.join(REPO_ROOT, 'plugins');

export interface ContainerSettings {
  /** The run's config itself (bound to RunConfig; opaque to the engine). */
  config?: unknown;
  /** Otherwise the name of one of the bound RunConfigPresets (default: the presets' default). */
  configName?: string;
  seed?: number | string;
  metrics?: GraphMetrics;
  /** Plugin specifiers from the graph file. */
  plugins?: string[];
  /** Directory relative plugin paths are resolved from (the graph file's). Default: cwd. */
  baseDir?: string;
  /** Load every plugins/*.ts. Default true. */
  autoloadPlugins?: boolean;
  /** Load src/<area>/<area>-module.ts where present. Default true. */
  loadAreaModules?: boolean;
  modules?: ContainerModule[];
  values?: Array<[ServiceIdentifier<unknown>, unknown]>;
}

export class PluginError extends Error {
  constructor(readonly specifier: string, message: string) {
    super(`plugin '${specifier}': ${message}`);
    this.name = 'PluginError';
  }
}

/** Where a plugin specifier points: an existing file, or an installed package. Throws PluginError. */
export function resolvePlugin(specifier: string, baseDir = process.cwd()): string {
  const looksLikeFile = /^\.{0,2}\//.test(specifier) || /\.(ts|js|mjs)$/.test(specifier);
  if (looksLikeFile) {
    const candidates = [path.resolve(baseDir, specifier), path.resolve(REPO_ROOT, specifier)];
    const found = candidates.find((c) => existsSync(c));
    if (!found) throw new PluginError(specifier, `no such file (looked in ${[...new Set(candidates)].join(', ')})`);
    return pathToFileURL(found).href;
  }
  try {
    return pathToFileURL(createRequire(path.join(baseDir, 'noop.js')).resolve(specifier)).href;
  } catch {
    throw new PluginError(specifier, `not an installed npm package and not a file (plugin files end in .ts/.js or start with ./)`);
  }
}

/** Imports a plugin and checks that its default export is a ContainerModule. */
export async function importPlugin(specifier: string, baseDir?: string): Promise<ContainerModule> {
  const url = resolvePlugin(specifier, baseDir);
  const module = (await import(url)) as { default?: unknown };
  const candidate = module.default;
  if (!(candidate instanceof ContainerModule) && typeof (candidate as ContainerModule)?.load !== 'function') {
    throw new PluginError(specifier, `its default export must be a ContainerModule (got ${typeof candidate})`);
  }
  return candidate as ContainerModule;
}

/** Every src/<area>/<area>-module.ts, areas in alphabetical order (the engine's own folder has none). */
export async function areaModuleFiles(): Promise<string[]> {
  const engine = path.basename(path.dirname(fileURLToPath(import.meta.url)));
  const areas = (await readdir(SRC, { withFileTypes: true })).filter((d) => d.isDirectory() && d.name !== engine).map((d) => d.name).sort();
  return areas.map((area) => path.join(SRC, area, `${area}-module.ts`)).filter((file) => existsSync(file));
}

export async function pluginFiles(): Promise<string[]> {
  if (!existsSync(PLUGINS_DIR)) return [];
  return (await readdir(PLUGINS_DIR)).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort().map((f) => path.join(PLUGINS_DIR, f));
}

export async function createContainer(settings: ContainerSettings = {}): Promise<Container> {
  const container = new Container();
  container.bind(ContainerToken).toConstantValue(container);
  const loaded = new Set<string>();
  const load = async (module: ContainerModule, key: string) => {
    if (loaded.has(key)) return;
    loaded.add(key);
    await container.loadAsync(module);
  };
  if (settings.loadAreaModules ?? true) {
    for (const file of await areaModuleFiles()) await load(await importPlugin(file), pathToFileURL(file).href);
  }
  const specifiers = [...((settings.autoloadPlugins ?? true) ? await pluginFiles() : []), ...(settings.plugins ?? [])];
  for (const specifier of specifiers) {
    await load(await importPlugin(specifier, settings.baseDir), resolvePlugin(specifier, settings.baseDir));
  }
  for (const [i, module] of (settings.modules ?? []).entries()) await load(module, `modules[${i}]`);
  const offered = container.isBound(RoleDefault) ? container.getAll<RoleDefault>(RoleDefault) : [];
  // The graph's own `config:` comes before any area's default for it.
  const config = settings.config ?? presetConfig(container, settings.configName);
  const defaults = config === undefined ? offered : [{ token: RunConfig, value: config }, ...offered];
  await load(roleDefaultsModule(defaults), 'role-defaults');
  await load(graphModule({ seed: settings.seed ?? 0, metrics: settings.metrics }), 'graph-module');
  for (const [token, value] of settings.values ?? []) {
    if (container.isBound(token)) container.unbind(token);
    container.bind(token).toConstantValue(value);
  }
  return container;
}

/**
 * The bound preset named `name`, else the presets' default (an unknown name is the loader's to
 * report; the run's roles still resolve meanwhile); undefined without presets.
 */
export function presetConfig(container: Container, name?: string): unknown {
  if (!container.isBound(RunConfigPresets)) return undefined;
  const presets = container.get<RunConfigPresets>(RunConfigPresets);
  return (name !== undefined && Object.hasOwn(presets.configs, name) ? presets.configs[name] : undefined) ?? presets.configs[presets.default];
}

/** A role from the container, or an error naming the role and how to bind it. */
export function getRole<T>(container: Container, token: ServiceIdentifier<T>, node?: string): T {
  if (!container.isBound(token)) {
    const name = typeof token === 'symbol' ? token.description : String((token as { name?: string }).name ?? token);
    throw new Error(`${node ? `node '${node}': ` : ''}role '${name}' is not bound; bind it in an area module or a plugin (see docs/plugins.md)`);
  }
  return container.get<T>(token);
}
