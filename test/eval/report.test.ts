import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { writeReport } from '../../src/eval/report.ts';
import { renderClipPictures } from '../../src/eval/pictures.ts';
import { parseResults } from '../../src/eval/results.ts';
import { syntheticClip, syntheticResults } from './fixtures.ts';

const OUTLINE = [0, 255, 90];
const pixel = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));

test('the report is self-contained and holds one heatmap per matrix with its numbers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stella-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const results = syntheticResults();
  const losses = Array.from({ length: 30 }, (_, s) => ({ step: s, task: s < 15 ? 'sports' : 'music', values: { mae: 1 / (s + 1), nce: 2 - s / 30 } }));
  const out = await writeReport(dir, results, { losses, clips: [syntheticClip()] });
  const html = await readFile(out.htmlPath, 'utf8');

  t.notRegex(html, /https?:\/\//, 'no URL of any kind');
  t.notRegex(html, /<link\b|<script[^>]*\bsrc=|@import|url\(/i);
  const sources = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
  t.is(sources.length, 2, 'the two clip pictures');
  for (const s of sources) t.true(s.startsWith('data:image/png;base64,'));

  const heatmapIds = [...html.matchAll(/data-heatmap="([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(heatmapIds, ['a2v-R1', 'a2v-R5', 'a2v-R10', 'v2a-R1', 'v2a-R5', 'v2a-R10']);
  for (const id of heatmapIds) {
    const [d, k] = id.split('-') as ['a2v' | 'v2a', 'R1' | 'R5' | 'R10'];
    const svg = html.slice(html.indexOf(`data-heatmap="${id}"`), html.indexOf('</svg>', html.indexOf(`data-heatmap="${id}"`)));
    const values = [...svg.matchAll(/data-value="([^"]+)"/g)].map((m) => Number(m[1]));
    t.deepEqual(values, results.retrieval[d][k].flat(), id);
    const labels = [...svg.matchAll(/<text[^>]*>(-?\d+\.\d\d)<\/text>/g)].map((m) => m[1]);
    t.deepEqual(labels, results.retrieval[d][k].flat().map((v) => v.toFixed(2)), `${id} cell labels`);
  }
  t.is([...html.matchAll(/data-chart="curve-/g)].length, 6);
  t.is([...html.matchAll(/data-chart="loss-/g)].length, 2);
  t.regex(html, /clips\/broken\.mp4<\/td><td class="l">decode<\/td><td class="l">ffmpeg exited with code 1 &lt;moov atom not found&gt;/);
  t.regex(html, /<td class="l">video<\/td><td>0\.710<\/td><td>10<\/td><td>2<\/td>/);

  t.is(out.pictures.length, 2);
  const frames = PNG.sync.read(await readFile(out.pictures[0]));
  t.deepEqual([frames.width, frames.height], [4 * 192 + 3 * 6, 2 * 192 + 6]);
  const spectrogram = PNG.sync.read(await readFile(out.pictures[1]));
  t.deepEqual([spectrogram.width, spectrogram.height], [512, 2 * 256 + 6]);
});

test('frame pictures outline the selected patches and tint them by importance', (t) => {
  const clip = syntheticClip();
  const png = PNG.sync.read(renderClipPictures(clip).framesPng);
  // Frame 0, bottom panel starts at y = 198; selected patches are rows 1–2, cols 2–3 (48 px cells).
  const top = 192 + 6;
  t.deepEqual(pixel(png, 2 * 48, top + 48), OUTLINE, 'top-left corner of the selection');
  t.deepEqual(pixel(png, 4 * 48 - 1, top + 3 * 48 - 1), OUTLINE, 'bottom-right corner');
  t.deepEqual(pixel(png, 3 * 48, top + 2 * 48), pixel(png, 3 * 48 + 5, top + 2 * 48 + 5), 'no outline between neighbouring selected patches');
  t.notDeepEqual(pixel(png, 2 * 48 - 3, top + 48 + 10), OUTLINE, 'just outside the selection');
  // Top panel is the plain frame: the object is pure red (0.9, 0.1, 0.1) after un-normalising.
  const plain = pixel(png, 2 * 48 + 10, 48 + 10);
  [230, 25.5, 25.5].forEach((v, c) => t.true(Math.abs(plain[c] - v) <= 1, `channel ${c}: ${plain[c]}`));
  // Bottom panel: the heat overlay changes the object's colour.
  t.notDeepEqual(pixel(png, 2 * 48 + 10, top + 48 + 10), plain);
});

test('spectrogram pictures run time to the right with low frequencies at the bottom', (t) => {
  const png = PNG.sync.read(renderClipPictures(syntheticClip()).spectrogramPng);
  // The loud band is time frames 64–127 (x 128–255 at 2×) and mel bins 0–31 (the bottom 64 px).
  const brightness = (x: number, y: number) => pixel(png, x, y)[0];
  t.true(brightness(190, 250) > brightness(20, 250) + 100, 'band visible at the bottom, inside its time span');
  t.true(brightness(190, 10) < 60, 'high frequencies dark at the same time');
  // Bottom panel (y ≥ 262): selected audio tokens t 4–7, f 0–1 outline exactly the band.
  t.deepEqual(pixel(png, 128, 262 + 192), OUTLINE);
  t.deepEqual(pixel(png, 255, 262 + 255), OUTLINE);
  t.notDeepEqual(pixel(png, 127, 262 + 200), OUTLINE);
  t.notDeepEqual(pixel(png, 140, 262 + 190), OUTLINE);
});

test('bad inputs name the field', (t) => {
  const clip = syntheticClip();
  t.throws(() => renderClipPictures({ ...clip, audioImportance: new Float32Array(5) }), { message: /dog-bark\.mp4: 5 audio importance scores, expected 16·8 = 128/ });
  t.throws(() => renderClipPictures({ ...clip, videoSelected: Int32Array.from([999]) }), { message: /videoSelected: token id 999 outside \[0, 64\)/ });
  t.throws(() => renderClipPictures({ ...clip, frameShape: [4, 32, 32] }), { message: /expected T·3·H·W = 4·3·32·32/ });
  const bad = syntheticResults();
  bad.retrieval.v2a.R5 = [[1, 2]];
  t.throws(() => parseResults(bad, 'run/results.json'), { message: /In 'run\/results\.json'.*3×3.*retrieval\.v2a\.R5/s });
});
