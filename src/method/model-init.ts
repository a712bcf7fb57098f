/**
 * Where a train node's model starts: the authors' protocol never starts continual pre-training from
 * scratch (spec §3.5 "Checkpoints", §4.5, §11 Q3), so a run names the weights it starts from.
 *
 *   init:    'shipped' (default): the weights shipped for the model config in models/
 *            (models/tiny-pretrained.safetensors for tiny); a config with none trains from scratch and
 *            says so;
 *            'none': from scratch (Linear N(0, 0.02²), spec §3.5);
 *            a path: a .safetensors file of ours, or the authors' .pth (src/model/read-weights.ts;
 *            preloadInitWeights reads it before the graph starts, since that read is asynchronous).
 *   avmInit: 'pretrained' (default; the spec's recommendation, §11 Q3): the AVM tensors of the same
 *            file (an error if it has none); 'random': the AVM keeps its N(0, 0.02²) init, as the
 *            authors' commands do (they never pass `avm_pretrain_path`).
 * The backbone load is strict: every parameter must be in the file with its shape; errors name the
 * file and each missing, unknown or wrong-shaped tensor.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { ModelConfig } from '../core/config.ts';
import type { NamedTensor } from '../core/safetensors.ts';
import { readSafetensors } from '../core/safetensors.ts';
import { AVM_PREFIX, splitBackboneAvm, type ModelService } from '../model/model-service.ts';
import { readWeights } from '../model/read-weights.ts';

export const MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

export const modelInitSchema = z.object({
  init: z.string().min(1).default('shipped'),
  avmInit: z.enum(['pretrained', 'random']).default('pretrained'),
});
export type ModelInit = z.input<typeof modelInitSchema>;

/** What a run started from, for results.json and the report. */
export interface ResolvedInit {
  /** Absolute path of the weights file, or 'none'. */
  backbone: string;
  /** 'pretrained' (from `backbone`'s file), 'random'. */
  avm: 'pretrained' | 'random';
  /** SHA-256 of the weights file (first 16 hex digits), so a report names the exact weights. */
  sha256?: string;
  /** Why the request resolved as it did (e.g. no shipped weights for this config). */
  note?: string;
}

/** The shipped weights of a model config, if there are any. */
export function shippedWeights(config: ModelConfig): string | undefined {
  const file = path.join(MODELS_DIR, `${config.name}-pretrained.safetensors`);
  return existsSync(file) ? file : undefined;
}

/** Resolves `init` to a file or 'none' without reading it. */
export function resolveInitFile(init: string, config: ModelConfig, cwd = process.cwd()): { file?: string; note?: string } {
  if (init === 'none') return {};
  if (init === 'shipped') {
    const file = shippedWeights(config);
    return file ? { file } : { note: `no shipped weights for config '${config.name}' in ${MODELS_DIR}: training from scratch` };
  }
  const file = path.resolve(cwd, init);
  if (!existsSync(file)) throw new Error(`init: weights file not found: ${file} (init takes 'shipped', 'none' or a .safetensors/.pth path)`);
  return { file };
}

export type WeightsReader = (file: string) => Map<string, NamedTensor>;

/** The authors' PyTorch checkpoints, read asynchronously by readWeights (not at model load). */
const isTorchCheckpoint = (file: string) => /\.(pth|pt)$/i.test(file);

const readSafetensorsTensors: WeightsReader = (file) => {
  if (isTorchCheckpoint(file)) throw new Error(`init: ${file} is a PyTorch checkpoint, read before a run starts: use \`stella run\`, or \`stella convert ${file} --out FILE.safetensors\` and init=FILE.safetensors`);
  return readSafetensors(file).tensors;
};

/**
 * A reader for the given inits: PyTorch checkpoints (`.pth`/`.pt`, read asynchronously through
 * readWeights, checked against `config`) are read now; any other file is read as safetensors when
 * a model loads it. Call it before the graph starts, with every train node's `init`.
 */
export async function preloadInitWeights(inits: readonly string[], config: ModelConfig, cwd = process.cwd()): Promise<WeightsReader> {
  const loaded = new Map<string, Map<string, NamedTensor>>();
  for (const init of new Set(inits)) {
    const { file } = resolveInitFile(init, config, cwd);
    if (file && isTorchCheckpoint(file) && !loaded.has(file)) loaded.set(file, (await readWeights(file, { config })).tensors);
  }
  return (file) => loaded.get(file) ?? readSafetensorsTensors(file);
}

/** Loads the chosen init into `model`; returns what was used. `read` reads a weights file's tensors. */
export function applyModelInit(model: ModelService, options: ModelInit, read: WeightsReader = readSafetensorsTensors): ResolvedInit {
  const { init, avmInit } = modelInitSchema.parse(options);
  const { file, note } = resolveInitFile(init, model.config);
  if (!file) return { backbone: 'none', avm: 'random', ...(note ? { note } : {}) };
  const tensors = read(file);
  const { avm } = splitBackboneAvm(tensors);
  if (avmInit === 'pretrained' && avm.size === 0) {
    throw new Error(`init: ${file} holds no AVM tensors (${AVM_PREFIX}*); set avmInit=random, or start from weights written by graphs/pretrain-avm.yaml`);
  }
  model.loadTensors(tensors, { source: file, parts: avmInit === 'pretrained' ? 'all' : 'backbone' });
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
  return { backbone: file, avm: avmInit, sha256 };
}
