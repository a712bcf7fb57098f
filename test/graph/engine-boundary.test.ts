/**
 * The engine (src/graph) knows nothing of STELLA: it imports only itself, packages, and the generic
 * parts of src/core; STELLA's stages reach it through the container, registered by the area modules
 * exactly as a plugin registers its own.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createContainer } from '../../src/graph/container.ts';
import { builtInStages, loadStageRegistry, StageContribution, type StageDefinition } from '../../src/graph/stage.ts';
import { REPO_ROOT } from '../helpers.ts';

const ENGINE = path.join(REPO_ROOT, 'src/graph');
/** src/core modules the engine may use: the seeded generator (the run's Rng) and the tensor backend (worker threads). */
const GENERIC_CORE = ['src/core/rng.ts', 'src/core/backend.ts'];

/** Every module specifier in `text`: static and type imports, re-exports, `import()` and `new URL(…, import.meta.url)`. */
export function specifiers(text: string): string[] {
  const patterns = [/\bfrom\s+'([^']+)'/g, /\bimport\s*\(\s*'([^']+)'\s*\)/g, /\bimport\s+'([^']+)'/g, /new URL\(\s*'([^']+)'\s*,\s*import\.meta\.url/g];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]));
}

/** `file: import` for each relative import of an engine file that leaves src/graph other than for GENERIC_CORE. */
export function boundaryViolations(file: string, text: string): string[] {
  return specifiers(text)
    .filter((s) => s.startsWith('.'))
    .filter((s) => {
      const target = path.relative(REPO_ROOT, path.resolve(path.dirname(file), s));
      return !target.startsWith(`src${path.sep}graph${path.sep}`) && !GENERIC_CORE.includes(target);
    })
    .map((s) => `${path.relative(REPO_ROOT, file)}: ${s}`);
}

async function engineFiles(dir = ENGINE): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? engineFiles(path.join(dir, e.name)) : Promise.resolve(/\.(ts|js|cjs|mjs)$/.test(e.name) ? [path.join(dir, e.name)] : []))));
  return nested.flat();
}

test('no file of src/graph imports from outside the engine and the generic core modules', async (t) => {
  const files = await engineFiles();
  t.true(files.length > 10, `found ${files.length} engine files`);
  const violations = (await Promise.all(files.map(async (f) => boundaryViolations(f, await readFile(f, 'utf8'))))).flat();
  t.deepEqual(violations, [], `the engine must not import these (move the code to its area, or register it through the container):\n${violations.join('\n')}`);
});

test('the boundary check names the file and the import that cross it', (t) => {
  const file = path.join(ENGINE, 'runner.ts');
  const text = [
    "import { clonePhase } from '../method/phases.ts';",
    "import type { Batch } from '../method/items.ts';",
    "const m = await import('../media/decode.ts');",
    "const u = new URL('../eval/report.ts', import.meta.url);",
    "import { Rng } from '../core/rng.ts';",
    "import { BoundedQueue } from './bounded-queue.ts';",
    "import { z } from 'zod';",
  ].join('\n');
  t.deepEqual(boundaryViolations(file, text), [
    'src/graph/runner.ts: ../method/phases.ts',
    'src/graph/runner.ts: ../method/items.ts',
    'src/graph/runner.ts: ../media/decode.ts',
    'src/graph/runner.ts: ../eval/report.ts',
  ]);
  t.deepEqual(boundaryViolations(path.join(ENGINE, 'operators/tap-metrics.ts'), "import { Metrics } from '../roles.ts';"), []);
  t.deepEqual(boundaryViolations(path.join(ENGINE, 'operators/x.ts'), "import { score } from '../../method/stages/score.ts';"), ['src/graph/operators/x.ts: ../../method/stages/score.ts']);
});

const STELLA_STAGES = ['batch', 'decode', 'evaluate', 'replay-assess', 'sample', 'score', 'source', 'tokenize', 'train', 'write-heatmaps'];

test('a container without the STELLA modules knows only the engine\'s generic stages', async (t) => {
  const bare = await createContainer({ loadAreaModules: false, autoloadPlugins: false });
  t.deepEqual((await loadStageRegistry(bare)).types(), ['tap-metrics', 'write-results']);
  t.deepEqual((await builtInStages()).map((s) => s.type).sort(), ['tap-metrics', 'write-results']);
  t.false(bare.isBound(StageContribution));
});

test('the STELLA stages are registered through the container by their area modules', async (t) => {
  const container = await createContainer({ autoloadPlugins: false });
  const contributed = container.getAll<StageDefinition>(StageContribution).map((s) => s.type).sort();
  t.deepEqual(contributed, STELLA_STAGES);
  const registry = await loadStageRegistry(container);
  t.deepEqual(registry.types(), [...STELLA_STAGES, 'tap-metrics', 'write-results'].sort());
  // Worker tasks point at their area's files (the stage's worker module beside it), which export the task.
  for (const type of ['decode', 'tokenize']) {
    const worker = registry.get(type).worker!;
    t.regex(worker.module, new RegExp(`/src/media/stages/${type}-worker\\.ts$`));
    t.is(typeof ((await import(worker.module)) as Record<string, unknown>)[worker.export], 'function');
  }
});
