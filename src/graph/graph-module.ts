/**
 * The engine's default bindings. Only binds (theia habit). Each role gets its default only if
 * nothing else (an area module, a plugin) bound it first: see container.ts for the order. Defaults
 * that area modules offer as `RoleDefault`s are bound here on the same terms.
 */
import { ContainerModule } from 'inversify';
import { Rng as SeededRng } from '../core/rng.ts';
import { GraphMetrics } from './metrics.ts';
import { Checkpointer, Metrics, Rng, type RoleDefault } from './roles.ts';

/** Used when nothing binds `Checkpointer`: nothing is written, and the stop message says so. */
export const noCheckpointer: Checkpointer = { async save() { return undefined; } };

export function graphModule(settings: { seed: number | string; metrics?: GraphMetrics }): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    const bindDefault = <T>(token: symbol, value: T) => { if (!isBound(token)) bind<T>(token).toConstantValue(value); };
    bindDefault(Checkpointer, noCheckpointer);
    bindDefault(Metrics, settings.metrics ?? new GraphMetrics());
    bindDefault(Rng, SeededRng.fromSeed(settings.seed));
  });
}

/** Binds each offered `RoleDefault` whose role is still unbound (the first offer for a role wins). */
export function roleDefaultsModule(defaults: readonly RoleDefault[]): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    for (const { token, value } of defaults) if (!isBound(token)) bind(token).toConstantValue(value);
  });
}
