/**
 * The three ways to use the graph engine, as compiled code run by test/graph/docs-examples.test.ts.
 * docs/graph.md shows the parts between the Begin-example / End-example markers.
 */
import { lastValueFrom, toArray } from 'rxjs';
import { loadGraph, loadGraphSpec, runGraph, source, decode, tokenize, batch, train, Trainer, type RunResult, type StepResult } from '../../src/index.ts';

/** 1. A YAML file, with overrides, and a Trainer bound in code. */
export async function yamlUsage(file: string, trainer: Trainer): Promise<RunResult> {
  // Begin-example yaml
  const graph = await loadGraph(file, {
    overrides: ['nodes.batch.options.size=2'],
    container: { values: [[Trainer, trainer]] },
  });
  const result = await runGraph(graph, { display: { mode: 'quiet' } });
  // result.metrics is the snapshot to save; result.steps / result.evals come from the sinks
  // End-example
  return result;
}

/** 2. The same graph as an object in code: same schema, same checks, same runner. */
export async function codeUsage(manifest: string, trainer: Trainer): Promise<RunResult> {
  // Begin-example code
  const graph = await loadGraphSpec(
    {
      name: 'in-code',
      nodes: {
        source: { stage: 'source', options: { manifest } },
        decode: { stage: 'decode', options: { mode: 'eval' } },
        tokenize: { stage: 'tokenize' },
        batch: { stage: 'batch', options: { size: 2, dropLast: false } },
        train: { stage: 'train' },
      },
      edges: [
        { from: 'source', to: 'decode' },
        { from: 'decode', to: 'tokenize' },
        { from: 'tokenize', to: 'batch' },
        { from: 'batch', to: 'train' },
      ],
    },
    { container: { values: [[Trainer, trainer]] } },
  );
  const result = await runGraph(graph);
  // End-example
  return result;
}

/** 3. Plain RxJS: the operators without a graph, container or runner. */
export async function rxjsUsage(manifest: string, trainer: Trainer): Promise<StepResult[]> {
  // Begin-example rxjs
  const steps$ = source({ manifest }).pipe(
    decode({ mode: 'eval', concurrency: 2 }),
    tokenize(),
    batch({ size: 2, dropLast: false }),
    train({}, { trainer }),
  );
  const items = await lastValueFrom(steps$.pipe(toArray()));
  const steps = items.filter((i): i is StepResult => i.kind === 'step');
  // End-example
  return steps;
}
