/** Public API of the graph engine (docs/graph.md). Knows no domain: STELLA's stages are in src/index.ts. */
export * from './items.ts';
export * from './roles.ts';
export { defineStage, loadStageRegistry, StageContribution, StageRegistry, type StageDefinition, type StageDeps, type WorkerTask, type WorkerTaskContext } from './stage.ts';
export { BoundedQueue, fromQueues, isPullable, pullable, requestFrom, type PullObservable } from './bounded-queue.ts';
export { mapConcurrent } from './concurrent-map.ts';
export { createContainer, getRole, importPlugin, type ContainerSettings } from './container.ts';
export { GraphConfigError, FatalStageError } from './errors.ts';
export { loadGraph, loadGraphSpec, loadGraphText, graphSchema, type LoadedGraph } from './loader.ts';
export { runGraph, type RunOptions, type RunResult } from './runner.ts';
export { DevicePool, WeightSync } from './device-pool.ts';
export { GraphMetrics, MetricsDisplay, type MetricsSnapshot } from './metrics.ts';
export { StopController } from './stop.ts';
export { tapMetrics } from './operators/tap-metrics.ts';
export { writeResults } from './operators/write-results.ts';
