/**
 * The graph with the real media module: a generated corpus through source → decode (ffmpeg) →
 * tokenize, in-thread and with decode/tokenize on a worker thread; identical patches.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { generateCorpus } from '../../src/media/corpus.ts';
import { loadGraphText } from '../../src/graph/loader.ts';
import { runGraph } from '../../src/graph/runner.ts';
import testStages, { probe } from './fixtures/test-stages.ts';

test.before(async () => { await initBackend(); });

test.serial('a generated corpus decodes and tokenizes with the media module, same patches on cpu and on worker:0', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'graph-media-'));
  try {
    const { manifestPath } = await generateCorpus({ out: dir, tasks: 2, classes: 2, train: 1, test: 0, seed: 3, durationSec: 2 });
    const sums: number[][] = [];
    for (const device of ['cpu', 'worker:0']) {
      const graph = await loadGraphText(
        `name: ingest-real
nodes:
  source: { stage: source, options: { manifest: ${manifestPath} } }
  decode: { stage: decode, device: ${device}, options: { mode: eval } }
  tokenize: { stage: tokenize, device: ${device} }
  sums: { stage: checksum }
  results: { stage: write-results, options: { path: ${dir}/${device.replace(':', '-')}/results.json } }
edges:
  - { from: source, to: decode }
  - { from: decode, to: tokenize }
  - { from: tokenize, to: sums }
  - { from: sums, to: results }
`,
        path.join(dir, 'g.yaml'),
        { container: { modules: [testStages], autoloadPlugins: false } },
      );
      const result = await runGraph(graph, { signals: null });
      t.deepEqual(result.errors, [], device);
      t.is(result.metrics.stages.tokenize.emitted, 4 + 2, `${device}: 4 clips and 2 task ends`);
      const saved = JSON.parse(await readFile(path.join(dir, device.replace(':', '-'), 'results.json'), 'utf8'));
      t.is(saved.metrics.stages.decode.received, 6);
      sums.push(probe.checksum.splice(0));
    }
    t.is(sums[0].length, 4);
    t.true(sums[0].every(Number.isFinite));
    t.deepEqual(sums[0], sums[1]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
