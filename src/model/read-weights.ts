/**
 * One entry point for starting weights: our safetensors files and the authors' PyTorch checkpoints.
 *
 * `readWeights(file)` accepts
 *   - `.safetensors` (ours: `ModelService.saveWeights`, `stella convert`), format 'safetensors';
 *   - a training checkpoint `{"model": state_dict, "optimizer": …, "epoch": …}` whose keys are
 *     `module.backbone.transformer.*` and `module.avmatching_module.*`, format 'pth-training';
 *   - `model_checkpoint_NNNN.pth`, that state_dict alone, format 'pth-state-dict';
 *   - the bare CAV state_dict of tools/adapt_imae_weights_to_vamae.py (`pos_embed_v`,
 *     `blocks_v.0.…`, no prefix, no AVM), format 'pth-cav';
 * and returns the tensors under the project's names (backbone names plain, AVM names under
 * `avmatching_module.`, as `ModelService.weights()` gives them), the model config and what was left
 * out. PyTorch files are read by src/model/torch-checkpoint.ts (no pickle code runs).
 *
 * The config is, in order: `options.config`; the `config` metadata of our safetensors files; or the
 * one inferred from the shapes (src/model/infer-config.ts, assumptions in `notes`). Every backbone
 * tensor must be present with that config's shape; the AVM is all there or absent (`hasAvm`).
 * Entries of the checkpoint outside the model (optimizer state, epoch, other `module.*` parts) are
 * dropped and listed in `dropped`. Errors name the file and every missing, unexpected and
 * wrong-shaped tensor.
 *
 * Example (the weights of any supported file into a fresh model):
 *   const w = await readWeights('audioset_pretrained.pth');
 *   const model = new ModelService({ config: w.config, rng });
 *   model.loadTensors(w.tensors, { source: w.file, parts: w.hasAvm ? 'all' : 'backbone' });
 */
import { readFileSync } from 'node:fs';
import { modelConfigSchema, type ModelConfig } from '../core/config.ts';
import { parseSafetensors, type NamedTensor } from '../core/safetensors.ts';
import { avmParamShapes } from './avm.ts';
import { backboneParamShapes } from './cav-backbone.ts';
import { inferModelConfig } from './infer-config.ts';
import { AVM_PREFIX, splitBackboneAvm } from './model-service.ts';
import { openTorchCheckpoint, TorchTensor } from './torch-checkpoint.ts';
import { CHECKPOINT_PREFIXES, stateDictProblems, type TensorShape } from './weights.ts';

export type WeightsFormat = 'safetensors' | 'pth-training' | 'pth-state-dict' | 'pth-cav';

export interface WeightsInfo {
  file: string;
  format: WeightsFormat;
  config: ModelConfig;
  /** Where `config` came from: a named config the shapes match, a custom inferred one, the file's metadata, or the caller. */
  configSource: 'tiny' | 'base' | 'custom' | 'metadata' | 'given';
  /** What the inference assumed (heads, frame count, …); empty when nothing was assumed. */
  notes: string[];
  hasAvm: boolean;
  /** Project name → PyTorch shape, backbone first, in the model's parameter order. */
  shapes: Map<string, number[]>;
  backboneTensors: number;
  avmTensors: number;
  /** Checkpoint entries that are not model parameters, e.g. 'optimizer (390 tensors)', 'epoch'. */
  dropped: string[];
}

export interface Weights extends WeightsInfo {
  /** Project name → float32 tensor in PyTorch layout, in `shapes`' order. */
  tensors: Map<string, NamedTensor>;
}

export interface ReadWeightsOptions {
  /** Check the weights against this config instead of inferring one. */
  config?: ModelConfig;
  /** Frames per clip when inferring a custom config (ambiguous from the shapes alone). */
  numFrames?: number;
}

const [BACKBONE_PREFIX, MODULE_AVM_PREFIX] = CHECKPOINT_PREFIXES;

/** A checkpoint key under the project's naming, or null for a part of the authors' wrapper that is no model parameter. */
export function projectName(key: string): string | null {
  if (key.startsWith(BACKBONE_PREFIX)) return key.slice(BACKBONE_PREFIX.length);
  if (key.startsWith(MODULE_AVM_PREFIX)) return AVM_PREFIX + key.slice(MODULE_AVM_PREFIX.length);
  if (key.startsWith('module.')) return null;
  return key;
}

/** Tensors under `value` (Maps, arrays), each counted once. */
function countTensors(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof TorchTensor) return 1;
  if (typeof value !== 'object' || value === null || seen.has(value)) return 0;
  seen.add(value);
  const children = value instanceof Map ? [...value.keys(), ...value.values()] : Array.isArray(value) ? value : [];
  return children.reduce((n: number, child) => n + countTensors(child, seen), 0);
}

function describeDropped(path: string, value: unknown): string {
  const n = countTensors(value);
  return n ? `${path} (${n} tensor${n === 1 ? '' : 's'})` : path;
}

/** Finds the state dict in an unpickled checkpoint and names its layout. */
function locateStateDict(root: unknown, file: string): { format: WeightsFormat; stateDict: Map<unknown, unknown>; dropped: string[] } {
  if (!(root instanceof Map)) {
    throw new Error(`${file}: data.pkl holds ${Array.isArray(root) ? 'a list' : typeof root}, not a state dict or {"model": state_dict}`);
  }
  const model = root.get('model');
  if (model instanceof Map) {
    const dropped = [...root].filter(([k]) => k !== 'model').map(([k, v]) => describeDropped(String(k), v));
    return { format: 'pth-training', stateDict: model, dropped };
  }
  const keys = [...root.keys()];
  if (!keys.some((k) => root.get(k) instanceof TorchTensor)) {
    throw new Error(`${file}: no state dict found: the top-level keys are ${keys.slice(0, 8).map((k) => `'${String(k)}'`).join(', ')}${keys.length > 8 ? ', …' : ''}; expected tensors or {"model": state_dict}`);
  }
  const prefixed = keys.some((k) => typeof k === 'string' && k.startsWith('module.'));
  return { format: prefixed ? 'pth-state-dict' : 'pth-cav', stateDict: root, dropped: [] };
}

/** The config to check against, and where it came from. */
function chooseConfig(backbone: Map<string, TensorShape>, file: string, options: ReadWeightsOptions, metadata?: string) {
  if (options.config) return { config: options.config, configSource: 'given' as const, notes: [] };
  if (metadata) {
    let parsed;
    try {
      parsed = modelConfigSchema.safeParse(JSON.parse(metadata));
    } catch {
      parsed = { success: false as const };
    }
    if (parsed.success) return { config: parsed.data, configSource: 'metadata' as const, notes: [] };
  }
  const shapes = new Map([...backbone].map(([k, t]) => [k, t.shape]));
  const inferred = inferModelConfig(shapes, { numFrames: options.numFrames, source: file });
  return { config: inferred.config, configSource: inferred.matched ?? ('custom' as const), notes: inferred.notes };
}

interface OpenedWeights {
  info: WeightsInfo;
  load(): Promise<Map<string, NamedTensor>>;
  close(): void;
}

/** Reads names and shapes, picks and checks the config; tensor data is read by `load`. */
async function openWeights(file: string, options: ReadWeightsOptions): Promise<OpenedWeights> {
  let format: WeightsFormat;
  let dropped: string[] = [];
  let metadata: string | undefined;
  const entries = new Map<string, TensorShape>();
  let load: (names: string[]) => Promise<Map<string, NamedTensor>>;
  let close = () => {};
  if (file.endsWith('.safetensors')) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`${file}: cannot read weights: ${(e as Error).message}`);
    }
    const parsed = parseSafetensors(bytes, file);
    format = 'safetensors';
    metadata = parsed.metadata.config;
    const byName = new Map<string, NamedTensor>();
    for (const [key, t] of parsed.tensors) {
      const name = projectName(key);
      if (name === null) { dropped.push(key); continue; }
      byName.set(name, t);
      entries.set(name, t);
    }
    load = async (names) => new Map(names.map((n) => [n, byName.get(n)!]));
  } else {
    const archive = await openTorchCheckpoint(file);
    close = () => archive.close();
    try {
      const located = locateStateDict(archive.root, file);
      format = located.format;
      dropped = located.dropped;
      const byName = new Map<string, TorchTensor>();
      for (const [key, value] of located.stateDict) {
        const name = typeof key === 'string' ? projectName(key) : null;
        if (name === null) { dropped.push(describeDropped(String(key), value)); continue; }
        if (!(value instanceof TorchTensor)) throw new Error(`${file}: state dict entry '${key}' is not a tensor`);
        byName.set(name, value);
        // Float storages of any width become float32; other dtypes are reported as they are.
        entries.set(name, { shape: [...value.shape], dtype: ['float32', 'float16', 'bfloat16', 'float64'].includes(value.dtype) ? 'float32' : value.dtype });
      }
      load = (names) => archive.readTensors(new Map(names.map((n) => [n, byName.get(n)!])));
    } catch (e) {
      close();
      throw e;
    }
  }
  try {
    const split = splitBackboneAvm(entries);
    const backbone = split.backbone, avm = new Map([...split.avm].map(([name, t]) => [name.slice(AVM_PREFIX.length), t]));
    const chosen = chooseConfig(backbone, file, options, metadata);
    const expectBackbone = backboneParamShapes(chosen.config);
    const expectAvm = avmParamShapes(chosen.config.embedDim);
    const problems = [
      ...stateDictProblems('CAV backbone', expectBackbone, backbone),
      ...(avm.size ? stateDictProblems('AVM', expectAvm, avm).map((p) => p.replace(/'([^']+)'/, `'${AVM_PREFIX}$1'`)) : []),
    ];
    if (problems.length) {
      const why = { given: 'as given', metadata: "from the file's metadata" }[chosen.configSource as string] ?? 'inferred from the shapes';
      throw new Error(`${file}: these ${format} weights do not fit the '${chosen.config.name}' model (config ${why}): ${problems.join('; ')}`);
    }
    const shapes = new Map<string, number[]>([...expectBackbone, ...(avm.size ? [...expectAvm].map(([n, s]): [string, number[]] => [AVM_PREFIX + n, s]) : [])]);
    const info: WeightsInfo = {
      file, format, ...chosen, hasAvm: avm.size > 0, shapes,
      backboneTensors: backbone.size, avmTensors: avm.size, dropped,
    };
    return { info, load: () => load([...shapes.keys()]), close };
  } catch (e) {
    close();
    throw e;
  }
}

/** Names, shapes, config and layout of a weights file, without reading the tensor data. */
export async function inspectWeights(file: string, options: ReadWeightsOptions = {}): Promise<WeightsInfo> {
  const opened = await openWeights(file, options);
  opened.close();
  return opened.info;
}

/**
 * Reads a `.safetensors` or PyTorch `.pth` weights file (layouts in the module note) into the
 * project's names as float32, with its config. Throws naming the file and the tensors at fault.
 */
export async function readWeights(file: string, options: ReadWeightsOptions = {}): Promise<Weights> {
  const opened = await openWeights(file, options);
  try {
    return { ...opened.info, tensors: await opened.load() };
  } finally {
    opened.close();
  }
}
