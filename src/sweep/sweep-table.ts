/**
 * The selector × seed table of a sweep: per selector, 𝒜 and ℱ (R@1/5/10 and their average, both
 * retrieval directions) as mean ± population std over its seeds, as in docs/results.md.
 * Ref: spec §9.2–9.3 (𝒜, ℱ); docs/results.md §1 (ℱ = F_authors, F = textbook).
 */
import { meanStd } from '../eval/continual-metrics.ts';
import type { Results } from '../eval/results.ts';

/** What the table needs of one finished run. */
export interface FinishedRun { selector: string; seed: number; results: Results; wallSeconds: number }

const DIRECTIONS = [['a2v', 'A→V'], ['v2a', 'V→A']] as const;
const METRICS = [['R1', 'R@1'], ['R5', 'R@5'], ['R10', 'R@10'], ['avg', 'Avg']] as const;
type Score = 'A' | 'F' | 'F_authors';
type MeanStd = { mean: number; std: number };

export interface SelectorAggregate {
  selector: string;
  seeds: number[];
  /** [direction][metric][score] → mean ± std over seeds. */
  summary: Record<string, Record<string, Record<Score, MeanStd>>>;
  stepMsMedian: MeanStd;
  peakTensorBytes: MeanStd;
  bufferBytes: number;
  /** The runs' own wall time, summed. */
  wallSeconds: number;
}

/** One aggregate per selector with at least one finished run, in `selectors` order. */
export function aggregate(done: readonly FinishedRun[], selectors: readonly string[]): SelectorAggregate[] {
  const out: SelectorAggregate[] = [];
  for (const selector of selectors) {
    const runs = done.filter((d) => d.selector === selector).sort((a, b) => a.seed - b.seed);
    if (runs.length === 0) continue;
    const summary: SelectorAggregate['summary'] = {};
    for (const [d] of DIRECTIONS) {
      summary[d] = {};
      for (const [m] of METRICS) {
        const pick = (s: Score) => meanStd(runs.map((r) => r.results.summary[d][m][s]));
        summary[d][m] = { A: pick('A'), F: pick('F'), F_authors: pick('F_authors') };
      }
    }
    out.push({
      selector, seeds: runs.map((r) => r.seed), summary,
      stepMsMedian: meanStd(runs.map((r) => r.results.timing.stepMsMedian)),
      peakTensorBytes: meanStd(runs.map((r) => r.results.memory.peakTensorBytes)),
      bufferBytes: runs[0].results.memory.bufferBytes,
      wallSeconds: runs.reduce((s, r) => s + r.wallSeconds, 0),
    });
  }
  return out;
}

const pm = (x: MeanStd) => `${x.mean.toFixed(2)} ± ${x.std.toFixed(2)}`;

/** Markdown: one Avg table (𝒜, ℱ_authors, textbook F) and one per-recall table per direction. */
export function tables(aggs: readonly SelectorAggregate[]): string {
  const lines: string[] = [];
  lines.push('| Selector | seeds | A→V 𝒜 ↑ | A→V ℱ ↓ | A→V F | V→A 𝒜 ↑ | V→A ℱ ↓ | V→A F | median step | peak tensors |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const a of aggs) {
    const s = a.summary;
    lines.push(`| ${a.selector} | ${a.seeds.length} | ${pm(s.a2v.avg.A)} | ${pm(s.a2v.avg.F_authors)} | ${pm(s.a2v.avg.F)} | ${pm(s.v2a.avg.A)} | ${pm(s.v2a.avg.F_authors)} | ${pm(s.v2a.avg.F)} | ${a.stepMsMedian.mean.toFixed(0)} ms | ${(a.peakTensorBytes.mean / 2 ** 20).toFixed(1)} MiB |`);
  }
  for (const [d, label] of DIRECTIONS) {
    lines.push('', `${label}, per recall (𝒜 / ℱ = F_authors):`, '', '| Selector | R@1 𝒜 | R@1 ℱ | R@5 𝒜 | R@5 ℱ | R@10 𝒜 | R@10 ℱ |', '|---|---|---|---|---|---|---|');
    for (const a of aggs) {
      const s = a.summary[d];
      lines.push(`| ${a.selector} | ${pm(s.R1.A)} | ${pm(s.R1.F_authors)} | ${pm(s.R5.A)} | ${pm(s.R5.F_authors)} | ${pm(s.R10.A)} | ${pm(s.R10.F_authors)} |`);
    }
  }
  return lines.join('\n');
}
