/**
 * `tap-metrics`: counts items by kind and records step losses as gauges; passes everything on.
 *
 * Behaviour: for every item, `metrics.stage('<name>').received++`; per kind a gauge
 * `<name>.<kind>` with the running count; for a StepResult each loss as `<name>.loss.<key>` and
 * the time since the previous step as latency. No buffering, no change to the stream.
 *
 * Inputs:  any. Outputs: the same items.
 * Options (defaults): name '' (the node id).
 * Roles: Metrics.
 *
 * Example node:
 *   watch: { stage: tap-metrics, options: { name: steps } }
 *
 * ## Example (plain RxJS)
 * ```ts
 * steps$.pipe(tapMetrics({ name: 'steps' }, { metrics }))
 * ```
 */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { z } from 'zod';
import { ANY_KIND, isStepResult, type GraphItem } from '../items.ts';
import { GraphMetrics } from '../metrics.ts';
import { Metrics } from '../roles.ts';
import { defineStage } from '../stage.ts';

export const tapMetricsOptionsSchema = z.object({ name: z.string().default('') });

export function tapMetrics(options: z.input<typeof tapMetricsOptionsSchema>, deps: { metrics: GraphMetrics }): MonoTypeOperatorFunction<GraphItem> {
  const name = tapMetricsOptionsSchema.parse(options).name || 'tap';
  return (input) => {
    const counts = new Map<string, number>();
    let lastStepAt: number | undefined;
    const counters = deps.metrics.stage(name);
    return input.pipe(
      tap((item) => {
        counters.received++;
        counters.emitted++;
        const count = (counts.get(item.kind) ?? 0) + 1;
        counts.set(item.kind, count);
        deps.metrics.gauge(`${name}.${item.kind}`, count);
        if (isStepResult(item)) {
          for (const [key, value] of Object.entries(item.losses)) deps.metrics.gauge(`${name}.loss.${key}`, value);
          const now = performance.now();
          if (lastStepAt !== undefined) counters.observeLatency(now - lastStepAt);
          lastStepAt = now;
        }
      }),
    );
  };
}

export const stage = defineStage({
  type: 'tap-metrics',
  description: 'counts items by kind, records losses as gauges; passes everything on',
  inputs: [ANY_KIND],
  outputs: [ANY_KIND],
  optionsSchema: tapMetricsOptionsSchema,
  roles: [Metrics],
  create: (deps, options) => tapMetrics({ name: options.name || deps.node }, { metrics: deps.get<GraphMetrics>(Metrics) }),
});
