/**
 * Public API of stella-pipeline: the graph engine (src/graph) and STELLA's stages, items and roles,
 * which register into the engine through their area modules (src/media, src/method, src/eval).
 */
export * from './graph/index.ts';
export * from './method/items.ts';
export * from './media/roles.ts';
export * from './method/roles.ts';
export { SelectorRegistry } from './method/selector-registry.ts';
export { source } from './media/stages/source.ts';
export { decode } from './media/stages/decode.ts';
export { tokenize } from './media/stages/tokenize.ts';
export { batch } from './method/stages/batch.ts';
export { score } from './method/stages/score.ts';
export { replayAssess } from './method/stages/replay-assess.ts';
export { sample } from './method/stages/sample.ts';
export { train } from './method/stages/train.ts';
export { evaluate } from './eval/stages/evaluate.ts';
export { writeHeatmaps } from './eval/stages/write-heatmaps.ts';
