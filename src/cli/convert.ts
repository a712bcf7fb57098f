/**
 * `stella convert FILE --out FILE.safetensors`: the authors' PyTorch checkpoints (or our own
 * safetensors) as a safetensors weights file under the project's names, with the model config in its
 * metadata, ready for `ModelService.loadWeights` and `--set init=`.
 *
 * Reads what src/model/read-weights.ts reads (training checkpoint, model_checkpoint state dict,
 * bare CAV state dict; no pickle code runs) and prints the format, the config (named or inferred,
 * with what was assumed), the tensor count with its backbone / AVM split, and the checkpoint entries
 * left out because they are no model parameters (optimizer state, epoch, …).
 *
 *   $ stella convert audioset_pretrained.pth --out models/audioset.safetensors
 *   convert: audioset_pretrained.pth (pth-training)
 *   config: base (the shapes match the named config)
 *   tensors: 280 (backbone 262, AVM 18)
 *   dropped (no model parameters): optimizer (560 tensors), epoch
 *   wrote models/audioset.safetensors
 */
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { modelConfig } from '../core/config.ts';
import { writeSafetensors } from '../core/safetensors.ts';
import { readWeights, type ReadWeightsOptions, type WeightsInfo } from '../model/read-weights.ts';
import { helpFooter } from './help.ts';

export interface ConvertSummary extends Omit<WeightsInfo, 'shapes'> {
  out: string;
  /** Tensors written (backbone + AVM). */
  tensors: number;
}

/** Reads `file`, writes `out` (safetensors) and says what was done; throws naming the file on any fault. */
export async function convertWeights(file: string, out: string, options: ReadWeightsOptions = {}): Promise<ConvertSummary> {
  if (path.resolve(file) === path.resolve(out)) throw new Error(`convert: --out ${out} would overwrite the input`);
  const w = await readWeights(file, options);
  writeSafetensors(out, w.tensors, { config: JSON.stringify(w.config), source: path.basename(file), format: w.format });
  const { tensors, shapes: _shapes, ...info } = w;
  return { ...info, out, tensors: tensors.size };
}

const CONFIG_SOURCE: Record<ConvertSummary['configSource'], string> = {
  tiny: 'the shapes match the named config',
  base: 'the shapes match the named config',
  custom: 'inferred from the shapes',
  metadata: "from the file's metadata",
  given: 'as given by --config',
};

export function formatConvertSummary(s: ConvertSummary): string {
  const lines = [
    `convert: ${s.file} (${s.format})`,
    `config: ${s.config.name} (${CONFIG_SOURCE[s.configSource]})`,
  ];
  if (s.configSource === 'custom') lines.push(`  ${JSON.stringify(s.config)}`);
  for (const note of s.notes) lines.push(`  assumed ${note}`);
  lines.push(`tensors: ${s.tensors} (backbone ${s.backboneTensors}, ${s.hasAvm ? `AVM ${s.avmTensors}` : 'no AVM: a model loading these keeps its own AVM init'})`);
  if (s.dropped.length) lines.push(`dropped (no model parameters): ${s.dropped.join(', ')}`);
  lines.push(`wrote ${s.out}`);
  return lines.join('\n');
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer >= 1, got '${v}'`);
  return n;
};

export function register(program: Command): void {
  program
    .command('convert')
    .description("convert the authors' PyTorch checkpoint (.pth) into a safetensors weights file (no pickle code runs)")
    .argument('<file>', '.pth (training checkpoint, model_checkpoint state dict or bare CAV state dict) or .safetensors')
    .requiredOption('--out <file>', 'the .safetensors file to write')
    .addOption(new Option('--config <name>', 'check the weights against this named config instead of inferring one').choices(['tiny', 'base']))
    .option('--frames <n>', 'frames per clip, when inferring a custom config (the video token count alone cannot tell)', positiveInt)
    .option('--json', 'print the summary as JSON: file, format, config, configSource, notes, hasAvm, tensors, backboneTensors, avmTensors, dropped, out')
    .addHelpText('after', helpFooter(
      [
        'stella convert audioset_pretrained.pth --out models/audioset.safetensors',
        'stella convert model_checkpoint_0007.pth --out runs/authors.safetensors --config base',
        'stella convert init_checkpoint.pth --out vitb-init.safetensors --json',
      ],
      '0 written, 1 the file cannot be read or does not fit the model (the message names the file and tensors), 2 usage error',
      [
        'Reads torch.save zip checkpoints (PyTorch >= 1.6); the legacy format is refused with how to re-save it.',
        'Only tensors are unpickled: any other Python global in the file (os.system, a training class) is refused by name.',
      ],
    ))
    .action(async (file: string, opts: { out: string; config?: 'tiny' | 'base'; frames?: number; json?: boolean }) => {
      if (!opts.out.endsWith('.safetensors')) throw new InvalidArgumentError(`--out must name a .safetensors file, got '${opts.out}'`);
      const summary = await convertWeights(file, opts.out, { config: opts.config ? modelConfig(opts.config) : undefined, numFrames: opts.frames });
      process.stdout.write((opts.json ? JSON.stringify(summary, null, 2) : formatConvertSummary(summary)) + '\n');
    });
}
