/**
 * `write-results`: a sink that writes a run's steps, evaluations and metrics to one JSON file.
 *
 * Behaviour: collects StepResults and EvalResults as they pass (everything passes on); when the
 * stream completes, writes `{ steps, evals, metrics }` to `path` (directories created, written
 * to a temporary file then renamed, so a reader never sees half a file). `metrics` is the
 * run's `GraphMetrics.snapshot()` at that moment. One node per results file: the A/B graph has
 * one per branch.
 *
 * Inputs:  any (`step` and `eval` are recorded, everything passes through). Outputs: the same items.
 * Options (defaults): path (required), label '' (stored as `label`, e.g. the selector name).
 * Roles: Metrics.
 *
 * Example node:
 *   results: { stage: write-results, options: { path: runs/stella/results.json } }
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { z } from 'zod';
import { requestFrom } from '../bounded-queue.ts';
import { ANY_KIND, isEvalResult, isStepResult, type EvalResult, type GraphItem, type StepResult } from '../items.ts';
import { GraphMetrics } from '../metrics.ts';
import { Metrics } from '../roles.ts';
import { defineStage } from '../stage.ts';

export const writeResultsOptionsSchema = z.object({
  path: z.string().min(1),
  label: z.string().default(''),
});

export function writeResults(options: z.input<typeof writeResultsOptionsSchema>, deps: { metrics?: GraphMetrics } = {}): MonoTypeOperatorFunction<GraphItem> {
  const { path: file, label } = writeResultsOptionsSchema.parse(options);
  return (input) =>
    new Observable<GraphItem>((subscriber) => {
      const steps: StepResult[] = [];
      const evals: EvalResult[] = [];
      const subscription = input.subscribe({
        next(item) {
          if (isStepResult(item)) steps.push(item);
          if (isEvalResult(item)) evals.push(item);
          subscriber.next(item);
          requestFrom(input, 1);
        },
        error: (e) => subscriber.error(e),
        complete() {
          const body = JSON.stringify({ label, steps, evals, metrics: deps.metrics?.snapshot() }, null, 2);
          const temporary = `${file}.tmp-${process.pid}`;
          mkdir(path.dirname(file), { recursive: true })
            .then(() => writeFile(temporary, body))
            .then(() => rename(temporary, file))
            .then(() => subscriber.complete(), (e) => subscriber.error(e));
        },
      });
      requestFrom(input, 1);
      return () => subscription.unsubscribe();
    });
}

export const stage = defineStage({
  type: 'write-results',
  description: 'sink: writes steps, evals and the metrics snapshot to a JSON file at the end',
  inputs: [ANY_KIND],
  outputs: [ANY_KIND],
  optionsSchema: writeResultsOptionsSchema,
  roles: [Metrics],
  create: (deps, options) => writeResults(options, { metrics: deps.get<GraphMetrics>(Metrics) }),
});
