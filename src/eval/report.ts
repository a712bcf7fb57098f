/**
 * The run report: one self-contained HTML page (`DIR/report.html`) plus the clip pictures as PNG
 * files (`DIR/pictures/`).
 *
 * The page opens offline: CSS is inline, charts are inline SVG, pictures are PNG data URIs, and
 * nothing refers to another file or URL. It shows:
 * - the summary (A, F, F_authors per direction and R@K, and their average),
 * - the accuracy matrices (a2v/v2a × R1/R5/R10) as heatmaps with the numbers in the cells,
 * - R@K on each task after each stage (line charts),
 * - loss curves per loss term, with task boundaries marked,
 * - localisation AUC, memory and timing tables, errors, the resolved config,
 * - for each given clip, the frames and the spectrogram with the importance heat overlay and the
 *   selected patches outlined (src/eval/pictures.ts).
 *
 * Inputs: `results` (results.json, validated with src/eval/results.ts), `extras.losses`
 * ({step, task, values}), `extras.clips` (ClipPictureInput). Output: paths written.
 * Ref: spec §9.2–9.3 (what the matrices mean).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseResults, type Results } from './results.ts';
import { renderClipPictures, type ClipPictureInput } from './pictures.ts';
import { writeFileAtomic } from '../core/atomic-write.ts';

export interface LossRecord {
  step: number;
  task: string;
  values: Record<string, number>;
}
export interface ReportExtras {
  losses?: LossRecord[];
  clips?: ClipPictureInput[];
  /** Page title; default "STELLA run report". */
  title?: string;
}
export interface ReportOutput {
  htmlPath: string;
  pictures: string[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DIRECTION_LABEL = { a2v: 'audio → video', v2a: 'video → audio' } as const;
const METRICS = ['R1', 'R5', 'R10'] as const;

export async function writeReport(dir: string, results: unknown, extras: ReportExtras = {}): Promise<ReportOutput> {
  const r = parseResults(results);
  await mkdir(join(dir, 'pictures'), { recursive: true });
  const pictures: string[] = [];
  const clipSections: string[] = [];
  for (const [i, clip] of (extras.clips ?? []).entries()) {
    const { framesPng, spectrogramPng } = renderClipPictures(clip);
    const stem = `clip-${String(i).padStart(2, '0')}-${safeStem(clip.path)}`;
    for (const [suffix, png] of [['frames', framesPng], ['spectrogram', spectrogramPng]] as const) {
      const file = join(dir, 'pictures', `${stem}-${suffix}.png`);
      await writeFile(file, png);
      pictures.push(file);
    }
    clipSections.push(clipSection(clip, framesPng, spectrogramPng));
  }
  const html = renderHtml(r, extras, clipSections);
  const htmlPath = join(dir, 'report.html');
  await writeFileAtomic(htmlPath, html);
  return { htmlPath, pictures };
}

function renderHtml(r: Results, extras: ReportExtras, clipSections: string[]): string {
  const title = extras.title ?? 'STELLA run report';
  const heatmaps = (['a2v', 'v2a'] as const)
    .map(
      (d) =>
        `<h3>${DIRECTION_LABEL[d]}</h3><div class="grid">${METRICS.map((k) =>
          heatmapSvg(r.retrieval[d][k], r.tasks, `${d}-${k}`, `${DIRECTION_LABEL[d]} R@${k.slice(1)} (%)`),
        ).join('')}</div>`,
    )
    .join('');
  const overTime = (['a2v', 'v2a'] as const)
    .map(
      (d) =>
        `<h3>${DIRECTION_LABEL[d]}</h3><div class="grid">${METRICS.map((k) =>
          lineChartSvg({
            id: `curve-${d}-${k}`,
            title: `${DIRECTION_LABEL[d]} R@${k.slice(1)} (%) per task`,
            xLabel: 'after training task',
            xTicks: r.tasks.map((name, t) => ({ x: t, label: `${t + 1}` })),
            series: r.tasks.map((name, j) => ({ name, points: r.retrieval[d][k].map((row, t) => [t, row[j]] as [number, number]) })),
            reference: r.chance ? { y: r.chance[k], label: `chance ${fmt(r.chance[k], 1)}` } : undefined,
          }),
        ).join('')}</div>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${CSS}</style></head><body>
<h1>${esc(title)}</h1>
<p class="meta">selector <b>${esc(r.selector)}</b> · backend <b>${esc(r.backend)}</b> · ${r.tasks.length} tasks: ${r.tasks.map(esc).join(', ')}</p>
${initLine(r)}
<h2>Summary</h2>${summaryTable(r)}
<p class="note">A = mean of the last row; F = textbook forgetting; F<sub>authors</sub> = the reference scripts' variant (all tasks, pre-learning stages, no clamp). Avg = mean over R@1/5/10.${chanceNote(r)}</p>
<h2>Accuracy matrices</h2><p class="note">Row = evaluated after training task t, column = retrieval queries of task j (gallery = all clips). Percent.${r.chance ? ` Chance: R@1 ${fmt(r.chance.R1)}, R@5 ${fmt(r.chance.R5)}, R@10 ${fmt(r.chance.R10)}.` : ''}</p>${heatmaps}
<h2>R@K per task over time</h2>${overTime}
<h2>Losses</h2>${lossCharts(extras.losses ?? [])}
<h2>Localisation</h2>${localizationTable(r)}
<h2>Memory and timing</h2>${memoryTimingTables(r)}
<h2>Errors (${r.errors.length})</h2>${errorsTable(r)}
<h2>Clips</h2>${clipSections.length ? clipSections.join('') : '<p class="note">No clips given.</p>'}
<h2>Configuration</h2><details><summary>resolved config</summary><pre>${esc(JSON.stringify(r.config, null, 2))}</pre></details>
</body></html>
`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1340px}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:1px solid #ddd}h3{margin:12px 0 4px;font-size:15px}
.meta,.note{color:#555}.grid{display:flex;flex-wrap:wrap;gap:16px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}svg text{font-family:system-ui,sans-serif}
figure{margin:8px 0}figcaption{color:#555;font-size:12px}img{image-rendering:pixelated;max-width:100%}
pre{background:#f7f7f7;padding:8px;overflow:auto}`;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function safeStem(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? 'clip';
  return base.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40) || 'clip';
}

/** Viridis-like ramp for heatmap cells, v in [0, 1]. */
function cellColor(v: number): string {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, v)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = [0, 1, 2].map((k) => Math.round(stops[i][k] * (1 - f) + stops[i + 1][k] * f));
  return `rgb(${c.join(',')})`;
}

export function heatmapSvg(m: number[][], tasks: string[], id: string, title: string): string {
  const rowLabels = tasks.map((name, i) => `after ${i + 1}. ${short(name)}`);
  // Row labels are right-aligned at `left`: leave room for the longest (≈6.5 px per character at 11 px).
  const cell = 46, top = 40, T = tasks.length, left = Math.max(96, Math.ceil(Math.max(...rowLabels.map((l) => l.length)) * 6.5) + 12);
  const flat = m.flat().filter(Number.isFinite);
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const unit = (v: number) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
  // Wide enough for the title even with few tasks (≈7.5 px per character at 13 px).
  const width = Math.max(left + T * cell + 10, Math.ceil(title.length * 7.5) + 8), height = top + T * cell + 70;
  const parts: string[] = [];
  parts.push(`<text x="4" y="16" font-size="13" font-weight="600">${esc(title)}</text>`);
  m.forEach((row, t) =>
    row.forEach((v, j) => {
      const u = unit(v);
      const x = left + j * cell, y = top + t * cell;
      parts.push(
        `<rect class="cell" data-row="${t}" data-col="${j}" data-value="${v}" x="${x}" y="${y}" width="${cell - 1}" height="${cell - 1}" fill="${Number.isFinite(v) ? cellColor(u) : '#ddd'}"><title>after ${esc(tasks[t])}, task ${esc(tasks[j])}: ${fmt(v)}</title></rect>`,
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" font-size="11" text-anchor="middle" fill="${u > 0.6 ? '#000' : '#fff'}">${fmt(v)}</text>`,
      );
    }),
  );
  tasks.forEach((name, i) => {
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${esc(rowLabels[i])}</text>`);
    const cx = left + i * cell + cell / 2, cy = top + T * cell + 8;
    parts.push(`<text x="${cx}" y="${cy}" font-size="11" text-anchor="end" transform="rotate(-40 ${cx} ${cy})">${esc(short(name))}</text>`);
  });
  return `<svg data-heatmap="${esc(id)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">${parts.join('')}</svg>`;
}

function short(name: string): string {
  return name.length > 12 ? `${name.slice(0, 11)}…` : name;
}

interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  series: { name: string; points: [number, number][] }[];
  xTicks?: { x: number; label: string }[];
  /** Vertical dashed markers (e.g. task boundaries). */
  markers?: { x: number; label: string }[];
  /** A horizontal dashed reference line (e.g. the chance level), always inside the y range. */
  reference?: { y: number; label: string };
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((s) => s * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function lineChartSvg(spec: ChartSpec): string {
  const W = 420, H = 260, L = 52, R = 12, Tp = 28, B = 62;
  const pts = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const ref = spec.reference && Number.isFinite(spec.reference.y) ? spec.reference : undefined;
  if (!pts.length) return `<svg data-chart="${esc(spec.id)}" width="${W}" height="40"><text x="0" y="20" font-size="12">${esc(spec.title)}: no data</text></svg>`;
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  const ys = [...pts.map((p) => p[1]), ...(ref ? [ref.y] : [])];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => Tp + (1 - (y - y0) / (y1 - y0)) * (H - Tp - B);
  const parts: string[] = [`<text x="${L}" y="16" font-size="13" font-weight="600">${esc(spec.title)}</text>`];
  for (const v of niceTicks(y0, y1)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${sy(v)}" y2="${sy(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${L - 4}" y="${sy(v) + 4}" font-size="10" text-anchor="end">${Number(v.toPrecision(4))}</text>`);
  }
  const xTicks = spec.xTicks ?? niceTicks(x0, x1).map((x) => ({ x, label: String(x) }));
  for (const t of xTicks) parts.push(`<text x="${sx(t.x)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${esc(t.label)}</text>`);
  for (const m of spec.markers ?? []) {
    parts.push(`<line x1="${sx(m.x)}" x2="${sx(m.x)}" y1="${Tp}" y2="${H - B}" stroke="#999" stroke-dasharray="3,3"><title>${esc(m.label)}</title></line>`);
  }
  if (ref) {
    parts.push(`<line data-reference="${esc(ref.label)}" x1="${L}" x2="${W - R}" y1="${sy(ref.y)}" y2="${sy(ref.y)}" stroke="#c00" stroke-width="1.2" stroke-dasharray="6,4"><title>${esc(ref.label)}</title></line>`);
    parts.push(`<text x="${W - R - 4}" y="${sy(ref.y) - 4}" font-size="10" fill="#c00" text-anchor="end">${esc(ref.label)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${Tp}" width="${W - L - R}" height="${H - Tp - B}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - B + 28}" font-size="11" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    if (path.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${path.join(' ')}"><title>${esc(s.name)}</title></polyline>`);
    if (s.points.length <= 40) for (const p of path) {
      const [cx, cy] = p.split(',');
      parts.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${color}"/>`);
    }
    const lx = L + (i % 4) * 92, ly = H - 18 + Math.floor(i / 4) * 12;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="3" fill="${color}"/><text x="${lx + 14}" y="${ly - 4}" font-size="10">${esc(short(s.name))}</text>`);
  });
  const height = H + Math.max(0, Math.ceil(spec.series.length / 4) - 1) * 12;
  return `<svg data-chart="${esc(spec.id)}" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" role="img">${parts.join('')}</svg>`;
}

function lossCharts(losses: LossRecord[]): string {
  if (!losses.length) return '<p class="note">No loss records given.</p>';
  const keys = [...new Set(losses.flatMap((l) => Object.keys(l.values)))];
  const markers: { x: number; label: string }[] = [];
  losses.forEach((l, i) => {
    if (i > 0 && l.task !== losses[i - 1].task) markers.push({ x: l.step, label: `task ${l.task} starts` });
  });
  return `<div class="grid">${keys
    .map((key) =>
      lineChartSvg({
        id: `loss-${key}`,
        title: key,
        xLabel: 'step',
        markers,
        series: [{ name: key, points: losses.filter((l) => key in l.values).map((l) => [l.step, l.values[key]] as [number, number]) }],
      }),
    )
    .join('')}</div>`;
}

function summaryTable(r: Results): string {
  const rows = (['a2v', 'v2a'] as const).flatMap((d) =>
    (['R1', 'R5', 'R10', 'avg'] as const).map((k) => {
      const s = r.summary[d][k];
      const chance = r.chance ? `<td>${fmt(r.chance[k])}</td>` : '';
      return `<tr><td class="l">${DIRECTION_LABEL[d]}</td><td class="l">${k === 'avg' ? '<b>Avg</b>' : `R@${k.slice(1)}`}</td><td>${fmt(s.A)}</td>${chance}<td>${fmt(s.F)}</td><td>${fmt(s.F_authors)}</td></tr>`;
    }),
  );
  const chanceHead = r.chance ? '<th>chance</th>' : '';
  return `<table data-table="summary"><tr><th class="l">direction</th><th class="l">metric</th><th>A ↑</th>${chanceHead}<th>F ↓</th><th>F<sub>authors</sub> ↓</th></tr>${rows.join('')}</table>`;
}

function chanceNote(r: Results): string {
  if (!r.chance) return '';
  return ` Chance = what a model that learned nothing scores: ${esc(r.chance.formula)}, G = ${r.chance.gallery}; the dashed red line on the R@K charts.`;
}

function localizationTable(r: Results): string {
  const rows = (['video', 'audio'] as const)
    .filter((m) => r.localization[m])
    .map((m) => {
      const l = r.localization[m]!;
      return `<tr><td class="l">${m}</td><td>${fmt(l.meanAuc, 3)}</td><td>${l.clips}</td><td>${l.skipped}</td></tr>`;
    });
  if (!rows.length) return '<p class="note">No localisation results.</p>';
  return `<table data-table="localization"><tr><th class="l">modality</th><th>mean ROC-AUC</th><th>clips</th><th>skipped (one class only)</th></tr>${rows.join('')}</table>`;
}

function bytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function memoryTimingTables(r: Results): string {
  const m = r.memory, t = r.timing;
  return `<div class="grid"><table data-table="memory"><tr><th class="l">memory</th><th>bytes</th><th></th></tr>
<tr><td class="l">replay buffer</td><td>${m.bufferBytes}</td><td>${bytes(m.bufferBytes)}</td></tr>
<tr><td class="l">peak tensor memory</td><td>${m.peakTensorBytes}</td><td>${bytes(m.peakTensorBytes)}</td></tr>
<tr><td class="l">peak RSS</td><td>${m.peakRssBytes}</td><td>${bytes(m.peakRssBytes)}</td></tr></table>
<table data-table="timing"><tr><th class="l">timing</th><th>value</th></tr>
<tr><td class="l">wall time</td><td>${fmt(t.wallSeconds, 1)} s</td></tr>
<tr><td class="l">median step</td><td>${fmt(t.stepMsMedian, 1)} ms</td></tr></table></div>`;
}

function errorsTable(r: Results): string {
  if (!r.errors.length) return '<p class="note">No errors.</p>';
  return `<table data-table="errors"><tr><th class="l">path</th><th class="l">stage</th><th class="l">message</th></tr>${r.errors
    .map((e) => `<tr><td class="l">${esc(e.path)}</td><td class="l">${esc(e.stage)}</td><td class="l">${esc(e.message)}</td></tr>`)
    .join('')}</table>`;
}

function clipSection(clip: ClipPictureInput, framesPng: Buffer, spectrogramPng: Buffer): string {
  const src = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
  const counts = [
    clip.videoSelected ? `${clip.videoSelected.length} video patches selected` : '',
    clip.audioSelected ? `${clip.audioSelected.length} audio patches selected` : '',
  ].filter(Boolean);
  return `<h3>${esc(clip.path)}</h3>
<figure><img alt="frames of ${esc(clip.path)}" src="${src(framesPng)}"><figcaption>Frames (top: as decoded; bottom: video patch importance as heat, selected patches outlined in green). ${counts.join(', ')}</figcaption></figure>
<figure><img alt="spectrogram of ${esc(clip.path)}" src="${src(spectrogramPng)}"><figcaption>Log-mel spectrogram, time →, low frequencies at the bottom (top: plain; bottom: audio patch importance, selected patches outlined).</figcaption></figure>`;
}

/** Which weights the model started from: a reader needs it to judge any number on the page. */
function initLine(r: Results): string {
  if (!r.init) return '';
  const from = r.init.backbone === 'none' ? '<b>scratch</b> (random init)' : `<b>${esc(r.init.backbone)}</b>${r.init.sha256 ? ` (sha256 ${esc(r.init.sha256)}…)` : ''}`;
  return `<p class="meta">started from ${from} · AVM <b>${esc(r.init.avm)}</b>${r.init.note ? ` · ${esc(r.init.note)}` : ''}</p>`;
}
