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

/** Loads PyTorch-layout tensors into a module; returns the names written. */
export function loadStateDict(module: HasParams, tensors: Map<string, NamedTensor>, options: LoadOptions = {}): string[] {
  const { strict = true, ignoreUnknown = false, source = 'weights' } = options;
  const store = module.params;
  const byName = new Map<string, NamedTensor>();
  for (const [raw, t] of tensors) byName.set(stripPrefix(raw), t);
  const problems: string[] = [];
  for (const [name, t] of byName) {
    const info = store.entries.get(name);
    if (!info) { if (!ignoreUnknown) problems.push(`unknown tensor '${name}' [${t.shape}] (no such ${store.owner} parameter)`); continue; }
    const same = t.shape.length === info.torchShape.length && t.shape.every((d, i) => d === info.torchShape[i]);
    if (!same) problems.push(`tensor '${name}' has shape [${t.shape}] but the ${store.owner} parameter is [${info.torchShape}]`);
    if (t.dtype !== 'float32') problems.push(`tensor '${name}' is ${t.dtype}, expected float32`);
  }
  if (strict) for (const [name, info] of store.entries) if (!byName.has(name)) problems.push(`missing tensor '${name}' [${info.torchShape}]`);
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
