/**
 * `stella graph …`: run, check and list graphs.
 *
 *   stella graph run graphs/continual-pretrain.yaml --set nodes.batch.options.size=4 [--quiet] [--out runs/x]
 *   stella graph check graphs/ab-selectors.yaml     validates and prints the resolved graph
 *   stella graph stages                              lists stage types with their inputs/outputs
 *
 * Exit codes: 0 done (also after a graceful stop, which prints how to resume), 1 the graph
 * failed or is invalid, 130 a second SIGINT during a stop.
 */
import type { Command } from 'commander';
import { GraphConfigError } from './errors.ts';
import { loadGraph } from './loader.ts';
import { runGraph } from './runner.ts';
import { loadStageRegistry } from './stage.ts';
import { createContainer } from './container.ts';
import { StopController } from './stop.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  const graph = program.command('graph').description('run, check and list YAML pipeline graphs (docs/graph.md)');
  graph
    .command('run <file>')
    .description('run a graph; SIGINT/SIGTERM stop after the current step and checkpoint')
    .option('--set <key=value>', 'override a key (repeatable; +key=value adds one)', collect, [])
    .option('--out <dir>', 'write resolved.yaml and overrides.yaml here')
    .option('--quiet', 'no live display')
    .action(async (file: string, options: { set: string[]; out?: string; quiet?: boolean }) => {
      const loaded = await loadGraph(file, { overrides: options.set }).catch(report);
      if (!loaded) return;
      const stop = new StopController();
      const unlisten = stop.listen(process, () => { process.stderr.write('stella: second signal, exiting now\n'); process.exit(130); });
      try {
        const result = await runGraph(loaded, { stop, signals: null, outDir: options.out, display: { mode: options.quiet ? 'quiet' : undefined } });
        process.stdout.write(`${JSON.stringify({ steps: result.steps.length, evals: result.evals.length, errors: result.errors.length, metrics: result.metrics.stages })}\n`);
        for (const e of result.errors.slice(0, 20)) process.stderr.write(`[${e.stage}] ${e.path}: ${e.message}\n`);
        if (result.message) process.stderr.write(`${result.message}\n`);
        process.exitCode = 0;
      } finally {
        unlisten();
      }
    });
  graph
    .command('check <file>')
    .description('validate a graph and print it resolved')
    .option('--set <key=value>', 'override a key (repeatable)', collect, [])
    .action(async (file: string, options: { set: string[] }) => {
      const loaded = await loadGraph(file, { overrides: options.set }).catch(report);
      if (loaded) process.stdout.write(loaded.resolvedYaml);
    });
  graph
    .command('stages')
    .description('list stage types')
    .action(async () => {
      const registry = await loadStageRegistry(await createContainer());
      for (const s of registry.all()) process.stdout.write(`${s.type.padEnd(14)} [${s.inputs.join(', ')}] → [${s.outputs.join(', ')}]  ${s.description}\n`);
    });
}

function report(error: unknown): undefined {
  if (error instanceof GraphConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
  throw error;
}
