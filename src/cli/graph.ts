/**
 * `stella graph …`: run, check and list graphs.
 *
 *   stella graph run graphs/continual-pretrain.yaml --set nodes.batch.options.size=4 [--quiet] [--out runs/x]
 *     (--out DIR also sets STELLA_OUT, so the graph's own files land in DIR)
 *   stella graph check graphs/ab-selectors.yaml [--json]   validates and prints the resolved graph
 *   stella graph stages [--json]                            lists stage types with their inputs/outputs
 *
 * Exit codes: `graph run` 0 done (also after a graceful stop, which prints the checkpoint and the
 * Checkpointer's resume command, if it gives one), 1 the graph failed while running, 2 usage error or
 * an invalid graph file (as `stella run`), 130 a second SIGINT during a stop; `graph check` 0 valid,
 * 1 invalid (the verdict), 2 usage error or a missing file.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { GraphConfigError, GraphFileError } from '../graph/errors.ts';
import { loadGraph } from '../graph/loader.ts';
import { runGraph } from '../graph/runner.ts';
import { loadStageRegistry } from '../graph/stage.ts';
import { createContainer } from '../graph/container.ts';
import { StopController } from '../graph/stop.ts';
import { helpFooter } from './help.ts';
import { describeBackend, initBackend } from '../core/backend.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  const graph = program
    .command('graph')
    .description('run, check and list YAML pipeline graphs (docs/graph.md)')
    .addHelpText('after', helpFooter(
      ['stella graph stages', 'stella graph check graphs/continual-pretrain.yaml',
        'stella corpus --out data/synth --tasks 2 --classes 2 --train 2 --test 1   # the clips the shipped graphs train on',
        'STELLA_MANIFEST=data/synth/manifest.json stella graph run graphs/continual-pretrain.yaml --quiet --out runs/g'],
      '0 the subcommand succeeded, otherwise see its --help; 2 usage error',
    ));
  graph
    .command('run <file>')
    .description('run a graph as it is (no run keys, results.json or report: that is `stella run`); SIGINT/SIGTERM stop after the current step')
    .option('--set <key=value>', 'override a key (repeatable; +key=value adds one)', collect, [])
    .option('--out <dir>', 'write everything the run writes here: resolved.yaml, overrides.yaml and the graph\'s ${STELLA_OUT} files (steps.json)')
    .option('--redis <url>', 'Redis for nodes on device: redis, run by `stella worker` processes (default $STELLA_REDIS)')
    .option('--quiet', 'no live display')
    .addHelpText('after', helpFooter(
      ['stella corpus --out data/synth --tasks 2 --classes 2 --train 2 --test 1   # clips for the graphs below',
        'STELLA_MANIFEST=data/synth/manifest.json stella graph run graphs/continual-pretrain.yaml --set nodes.batch.options.size=2 --set nodes.source.options.epochs=1',
        'STELLA_MANIFEST=data/synth/manifest.json stella graph run graphs/continual-pretrain.yaml --quiet --out runs/g',
        'STELLA_MANIFEST=data/synth/manifest.json STELLA_EPOCHS=1 stella graph run graphs/ab-selectors.yaml --out runs/ab   # two selectors on the same batches'],
      '0 done (also after a graceful stop), 1 the graph failed while running, 2 usage error or an invalid graph, 130 a second SIGINT during a stop',
      ['Prints one JSON line at the end: { steps, evals, errors, metrics } (per-clip errors also on stderr).',
        'The shipped graphs read ${STELLA_MANIFEST} (default data/corpus/manifest.json), ${STELLA_OUT} and the other',
        'run parameters from the environment (docs/graph.md); --out DIR sets STELLA_OUT=DIR.'],
    ))
    .action(async (file: string, options: { set: string[]; out?: string; quiet?: boolean; redis?: string }) => {
      // --out holds everything: the graphs write their own files under ${STELLA_OUT}.
      const env = options.out ? { ...process.env, STELLA_OUT: path.resolve(options.out) } : undefined;
      const loaded = await loadGraph(file, { overrides: options.set, env }).catch((e) => report(e, 2));
      if (!loaded) return;
      // The same resolution as `stella run` (tfjs would otherwise pick its plain JS backend), printed.
      process.stderr.write(`${describeBackend(await initBackend())}\n`);
      const stop = new StopController();
      const unlisten = stop.listen(process, () => { process.stderr.write('stella: second signal, exiting now\n'); process.exit(130); });
      try {
        const result = await runGraph(loaded, { stop, signals: null, outDir: options.out, redis: options.redis, display: { mode: options.quiet ? 'quiet' : undefined } });
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
    .description('validate a graph and print it resolved (interpolated, overrides applied, defaults filled in)')
    .option('--set <key=value>', 'override a key (repeatable)', collect, [])
    .option('--json', 'print the resolved graph as JSON instead of YAML')
    .addHelpText('after', helpFooter(
      ['stella graph check graphs/ab-selectors.yaml', 'stella graph check graphs/continual-pretrain.yaml --set nodes.batch.options.size=2 --json'],
      '0 valid, 1 invalid (every problem is listed with its file:line:col), 2 usage error (also a missing graph file)',
    ))
    .action(async (file: string, options: { set: string[]; json?: boolean }) => {
      // A missing or unreadable file is a usage error (2), as in `run` and `graph run`; an invalid graph is the verdict (1).
      const loaded = await loadGraph(file, { overrides: options.set }).catch((e) => report(e, e instanceof GraphFileError ? 2 : 1));
      if (loaded) process.stdout.write(options.json ? JSON.stringify(loaded.spec, null, 2) + '\n' : loaded.resolvedYaml);
    });
  graph
    .command('stages')
    .description('list stage types with the item kinds they take and emit')
    .option('--json', 'print [{ type, inputs, outputs, description }] as JSON')
    .addHelpText('after', helpFooter(['stella graph stages', 'stella graph stages --json'], '0 listed, 1 a stage or plugin failed to load, 2 usage error'))
    .action(async (options: { json?: boolean }) => {
      const registry = await loadStageRegistry(await createContainer());
      if (options.json) {
        const stages = registry.all().map((s) => ({ type: s.type, inputs: s.inputs, outputs: s.outputs, description: s.description }));
        process.stdout.write(JSON.stringify(stages, null, 2) + '\n');
      } else {
        for (const s of registry.all()) process.stdout.write(`${s.type.padEnd(14)} [${s.inputs.join(', ')}] → [${s.outputs.join(', ')}]  ${s.description}\n`);
      }
    });
}

/** A GraphConfigError is printed and sets `exitCode`; anything else is rethrown. */
function report(error: unknown, exitCode: number): undefined {
  if (error instanceof GraphConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = exitCode;
    return undefined;
  }
  throw error;
}
