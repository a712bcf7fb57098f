/**
 * SelectorRegistry: `selector: <name>` in a graph → a Selector instance.
 *
 * Theia-style extension point: every `SelectorContribution` bound in the container (by
 * src/method's module, by plugins/*.ts, by npm plugins) is collected once; an empty list when
 * none is bound, never an error. An unknown name is refused with the list of known ones.
 *
 * ## Example
 * ```ts
 * container.get<SelectorRegistry>(SelectorRegistry).create('center-bias', {})
 * ```
 */
import { inject, injectable, type Container } from 'inversify';
import { ContainerToken } from '../graph/roles.ts';
import { SelectorContribution, type Selector } from './roles.ts';

@injectable()
export class SelectorRegistry {
  private cached: Map<string, SelectorContribution> | undefined;

  constructor(@inject(ContainerToken) private readonly container: Container) {}

  private contributions(): Map<string, SelectorContribution> {
    if (!this.cached) {
      const all = this.container.isBound(SelectorContribution) ? this.container.getAll<SelectorContribution>(SelectorContribution) : [];
      this.cached = new Map();
      for (const c of all) {
        if (this.cached.has(c.name)) throw new Error(`two selectors are bound under the name '${c.name}'`);
        this.cached.set(c.name, c);
      }
    }
    return this.cached;
  }

  names(): string[] { return [...this.contributions().keys()].sort(); }
  has(name: string): boolean { return this.contributions().has(name); }

  create(name: string, options: Record<string, unknown> = {}): Selector {
    const contribution = this.contributions().get(name);
    if (!contribution) {
      const known = this.names();
      throw new Error(`unknown selector '${name}'; known selectors: ${known.length ? known.join(', ') : '(none bound: load src/method or a plugin)'}`);
    }
    return contribution.create(options);
  }
}

/** The container's registry, or one over its contributions when nothing bound the registry (a container without src/method). */
export function selectorRegistryOf(container: Container): SelectorRegistry {
  return container.isBound(SelectorRegistry) ? container.get<SelectorRegistry>(SelectorRegistry) : new SelectorRegistry(container);
}
