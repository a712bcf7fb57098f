/**
 * Chance levels of R@K (src/eval/retrieval.ts `chanceLevels`) and where a reader meets them: the
 * printed tables, results.json `chance`, the report's summary table and a line on every R@K chart.
 * Also the accuracy-matrix heat maps keep their row labels inside the picture.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.ts';
import { chanceLevels, retrievalMetrics, type RetrievalResult } from '../../src/eval/retrieval.ts';
import { finalize } from '../../src/eval/evaluator.ts';
import { heatmapSvg, writeReport } from '../../src/eval/report.ts';
import { parseResults } from '../../src/eval/results.ts';
import { retrievalTable } from '../../src/cli/run.ts';
import { syntheticResults } from './fixtures.ts';

test('chance R@K is min(K, G) / G in percent', (t) => {
  const c = chanceLevels(40);
  t.deepEqual([c.gallery, c.R1, c.R5, c.R10], [40, 2.5, 12.5, 25]);
  t.is(c.avg, (2.5 + 12.5 + 25) / 3);
  t.regex(c.formula, /min\(K, G\) \/ G × 100/);
  const small = chanceLevels(6); // fewer clips than K: every query is found within the top 10
  t.deepEqual([small.R1, small.R5, small.R10], [100 / 6, 500 / 6, 100]);
  t.throws(() => chanceLevels(0), { message: /gallery of at least one clip, got 0/ });
});

test('random embeddings score the chance level on average (the formula matches the ranking)', (t) => {
  const rng = Rng.fromSeed('chance');
  const G = 30, dim = 8, draws = 200;
  const sum = { R1: 0, R5: 0, R10: 0 };
  for (let i = 0; i < draws; i++) {
    const audio = Float32Array.from({ length: G * dim }, () => rng.uniform() - 0.5);
    const video = Float32Array.from({ length: G * dim }, () => rng.uniform() - 0.5);
    const r = retrievalMetrics(audio, video, { dim });
    for (const k of ['R1', 'R5', 'R10'] as const) sum[k] += r.all.a2v[k] / draws;
  }
  const chance = chanceLevels(G);
  // Standard error of the mean over 200 draws of 30 queries: under 1 point for R@10 (≈ 33 %).
  t.true(Math.abs(sum.R1 - chance.R1) < 1, `R@1 ${sum.R1} vs ${chance.R1}`);
  t.true(Math.abs(sum.R5 - chance.R5) < 2, `R@5 ${sum.R5} vs ${chance.R5}`);
  t.true(Math.abs(sum.R10 - chance.R10) < 2.5, `R@10 ${sum.R10} vs ${chance.R10}`);
});

function stage(n: number, value: number): { retrieval: RetrievalResult } {
  const row = { R1: value, R5: value, R10: value, MR: 1 };
  return { retrieval: { n, all: { a2v: row, v2a: row }, perCategory: { a: { a2v: row, v2a: row }, b: { a2v: row, v2a: row } } } };
}

test('finalize puts the gallery\'s chance levels into results.json, which validates them', (t) => {
  const final = finalize([stage(20, 10), stage(20, 30)], ['a', 'b']);
  t.deepEqual(final.chance, chanceLevels(20));
  const results = { ...syntheticResults(), ...final, tasks: ['a', 'b'] };
  t.deepEqual(parseResults(results).chance, chanceLevels(20));
  t.throws(() => parseResults({ ...results, chance: { ...final.chance, gallery: 0 } }), { message: /chance\.gallery/ });
  const { chance: _, ...older } = results; // results.json written before the field existed still reads
  t.is(parseResults(older).chance, undefined);
});

test('the printed table ends with the chance row and names the arm when given', (t) => {
  const e = { task: 0, taskName: 'a', step: 2, trainer: 'train-b', trainedSteps: 2, evaluation: stage(8, 50) };
  const plain = retrievalTable(e, ['a', 'b']).split('\n');
  t.regex(plain[0], /^after task 1\/2 \(a, step 2\)/);
  t.regex(plain.at(-1)!, /^ {2}chance \(G=8\)\s+12\.5\s+62\.5\s+100\.0 │\s+12\.5\s+62\.5\s+100\.0$/);
  t.regex(retrievalTable(e, ['a', 'b'], 'train-b: random').split('\n')[0], /^\[train-b: random\] after task 1\/2/);
});

test('the report shows the chance column and a chance line on every R@K chart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stella-chance-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const results = { ...syntheticResults(), chance: chanceLevels(25) };
  const html = await readFile((await writeReport(dir, results)).htmlPath, 'utf8');
  const summary = html.slice(html.indexOf('data-table="summary"'), html.indexOf('</table>', html.indexOf('data-table="summary"')));
  t.regex(summary, /<th>A ↑<\/th><th>chance<\/th>/);
  t.regex(summary, /R@1<\/td><td>[\d.]+<\/td><td>4\.00<\/td>/);
  t.regex(summary, /R@10<\/td><td>[\d.]+<\/td><td>40\.00<\/td>/);
  t.regex(html, /min\(K, G\) \/ G × 100 \(one positive per query, gallery of G test clips\), G = 25/);
  const lines = [...html.matchAll(/<svg data-chart="curve-(\w+)-(R\d+)"[\s\S]*?<\/svg>/g)];
  t.is(lines.length, 6);
  for (const [svg, , k] of lines) {
    const want = chanceLevels(25)[k as 'R1' | 'R5' | 'R10'];
    t.regex(svg, new RegExp(`data-reference="chance ${want.toFixed(1)}"`), `${k} chart has its chance line`);
  }
});

test('heat-map row labels fit left of the cells, also for long task names', (t) => {
  const tasks = ['instruments', 'percussion', 'animals'];
  const svg = heatmapSvg([[1, 2, 3], [4, 5, 6], [7, 8, 9]], tasks, 'x', 'audio → video R@1 (%)');
  const labels = [...svg.matchAll(/<text x="([\d.]+)"[^>]*text-anchor="end">(after \d\. [^<]+)<\/text>/g)];
  t.deepEqual(labels.map((m) => m[2]), ['after 1. instruments', 'after 2. percussion', 'after 3. animals']);
  for (const [, x, label] of labels) {
    // 11 px system-ui runs ≈ 6.2 px per character; the label's left end must stay inside the picture.
    t.true(Number(x) - label.length * 6.2 >= 0, `'${label}' ends at x=${x} and needs ${label.length * 6.2} px`);
  }
});
