/**
 * Built-in bindings of the graph. Only binds (theia habit). Each role gets its default only if
 * nothing else (an area module, a plugin) bound it first: see container.ts for the order.
 */
import { ContainerModule } from 'inversify';
import type { ModelConfig } from '../core/config.ts';
import { Rng as SeededRng } from '../core/rng.ts';
import { mediaDecoder, mediaManifestLoader, mediaTokenizer, noCheckpointer } from './defaults.ts';
import { GraphMetrics } from './metrics.ts';
import { Checkpointer, Decoder, ManifestLoader, Metrics, Rng, RunConfig, Tokenizer } from './roles.ts';
import { SelectorRegistry } from './selector-registry.ts';

export function graphModule(settings: { config: ModelConfig; seed: number | string; metrics?: GraphMetrics }): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    const bindDefault = <T>(token: symbol, value: T) => { if (!isBound(token)) bind<T>(token).toConstantValue(value); };
    bindDefault(Decoder, mediaDecoder);
    bindDefault(Tokenizer, mediaTokenizer);
    bindDefault(ManifestLoader, mediaManifestLoader);
    bindDefault(Checkpointer, noCheckpointer);
    bindDefault(Metrics, settings.metrics ?? new GraphMetrics());
    bindDefault(Rng, SeededRng.fromSeed(settings.seed));
    bindDefault(RunConfig, settings.config);
    if (!isBound(SelectorRegistry)) bind(SelectorRegistry).toSelf().inSingletonScope();
  });
}
