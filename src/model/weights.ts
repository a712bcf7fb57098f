/**
 * Weight I/O by state_dict name for the backbone and the AVM.
 *
 * `loadStateDict(module, tensors)` strips the checkpoint prefixes `module.backbone.transformer.`,
 * `module.avmatching_module.` and `avmatching_module.`, then writes every tensor into the module's
 * parameter of that name (PyTorch layout). Unknown names, missing names (unless `strict: false`)
 * and wrong shapes are errors that name the tensor and both shapes.
 * `stateDict(module)` returns the tensors in the same layout; `save/loadWeightsFile` use safetensors.
 * Ref: spec §3.5 (checkpoint loading), §4.1 (AVM prefix).
 */
import type { NamedTensor } from '../core/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../core/safetensors.ts';
import type { ParamStore } from './layers.ts';

export const CHECKPOINT_PREFIXES = ['module.backbone.transformer.', 'module.avmatching_module.', 'avmatching_module.'] as const;

export interface HasParams {
  readonly params: ParamStore;
}

export interface LoadOptions {
  /** Require every parameter to be present (default true). */
  strict?: boolean;
  /** Skip names the module does not have instead of failing (default false). */
  ignoreUnknown?: boolean;
  /** Where the tensors came from, for error messages. */
  source?: string;
}

export function stripPrefix(name: string): string {
  for (const p of CHECKPOINT_PREFIXES) if (name.startsWith(p)) return name.slice(p.length);
  return name;
}

/** What a tensor must match: its shape and dtype (data is not looked at). */
export interface TensorShape {
  readonly shape: readonly number[];
  readonly dtype: string;
}

/**
 * The problems loading `tensors` (names already stripped) into a module of `expected` shapes would
 * meet: unknown names (unless `ignoreUnknown`), wrong shapes or dtypes, missing names (if `strict`).
 * One message per tensor; `owner` names the module ('CAV backbone', 'AVM').
 */
export function stateDictProblems(
  owner: string,
  expected: ReadonlyMap<string, readonly number[]>,
  tensors: ReadonlyMap<string, TensorShape>,
  { strict = true, ignoreUnknown = false }: Pick<LoadOptions, 'strict' | 'ignoreUnknown'> = {},
): string[] {
  const problems: string[] = [];
  for (const [name, t] of tensors) {
    const shape = expected.get(name);
    if (!shape) { if (!ignoreUnknown) problems.push(`unknown tensor '${name}' [${t.shape}] (no such ${owner} parameter)`); continue; }
    const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
    if (!same) problems.push(`tensor '${name}' has shape [${t.shape}] but the ${owner} parameter is [${shape}]`);
    if (t.dtype !== 'float32') problems.push(`tensor '${name}' is ${t.dtype}, expected float32`);
  }
  if (strict) for (const [name, shape] of expected) if (!tensors.has(name)) problems.push(`missing tensor '${name}' [${shape}]`);
  return problems;
}

/** Loads PyTorch-layout tensors into a module; returns the names written. */
export function loadStateDict(module: HasParams, tensors: Map<string, NamedTensor>, options: LoadOptions = {}): string[] {
  const { source = 'weights' } = options;
  const store = module.params;
  const byName = new Map<string, NamedTensor>();
  for (const [raw, t] of tensors) byName.set(stripPrefix(raw), t);
  const expected = new Map([...store.entries].map(([name, info]) => [name, info.torchShape]));
  const problems = stateDictProblems(store.owner, expected, byName, options);
  if (problems.length) throw new Error(`${source}: cannot load into the ${store.owner}: ${problems.join('; ')}`);
  const written: string[] = [];
  for (const [name, t] of byName) {
    if (!store.entries.has(name)) continue;
    store.write(name, t.shape, t.data as Float32Array);
    written.push(name);
  }
  return written;
}

/** The module's parameters in PyTorch layout, keyed by state_dict name (optionally prefixed). */
export function stateDict(module: HasParams, prefix = ''): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const name of module.params.entries.keys()) {
    const { shape, data } = module.params.read(name);
    out.set(prefix + name, { shape, dtype: 'float32', data });
  }
  return out;
}

export function loadWeightsFile(module: HasParams, file: string, options: Omit<LoadOptions, 'source'> = {}): string[] {
  return loadStateDict(module, readSafetensors(file).tensors, { ...options, source: file });
}

export function saveWeightsFile(module: HasParams, file: string, metadata?: Record<string, string>): void {
  writeSafetensors(file, stateDict(module), metadata);
}
