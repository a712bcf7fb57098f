import test from 'ava';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { lastValueFrom, tap } from 'rxjs';
import { initBackend } from '../../src/core/backend.ts';
import { modelConfig } from '../../src/core/config.ts';
import { Rng } from '../../src/core/rng.ts';
import { pullable } from '../../src/graph/bounded-queue.ts';
import { disposeItem, type GraphItem } from '../../src/graph/items.ts';
import type { DecodedClip } from '../../src/media/items.ts';
import { batch } from '../../src/method/stages/batch.ts';
import { score } from '../../src/method/stages/score.ts';
import { tokenize } from '../../src/media/stages/tokenize.ts';
import { modelHost } from '../../src/method/phases-host.ts';
import { ModelService } from '../../src/model/model-service.ts';

// A full garbage collection between RSS samples (node has no gc() without --expose-gc).
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

// 2,000 clips = 250 batches of 8 in the suite: a leak of one tensor per clip adds 1,600 tensors between
// the windows compared. `npm run bench:memory` streams the full 10,000 (about 6 min on 2 cores);
// STELLA_MEMORY_ITEMS sets any other size.
const ITEMS = Number(process.env.STELLA_MEMORY_ITEMS ?? 2_000);
const BATCH = 8;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test(`tokenize → batch → score over ${ITEMS.toLocaleString('en')} clips (${ITEMS / BATCH} batches): live tensors and memory stay flat`, async (t) => {
  t.timeout(Math.max(240_000, ITEMS * 150));
  await initBackend();
  const config = modelConfig('tiny');
  const rng = Rng.fromSeed('memory-flat');
  // Four synthetic decoded clips, replayed: decoding 10,000 files would measure ffmpeg, not the graph.
  const clips = Array.from({ length: 4 }, () => ({
    video: Float32Array.from({ length: config.numFrames * 3 * config.imageSize ** 2 }, () => rng.normal()),
    fbank: Float32Array.from({ length: config.audioFrames * config.melBins }, () => rng.normal()),
  }));
  function* decoded(): Generator<DecodedClip> {
    for (let i = 0; i < ITEMS; i++) {
      yield { kind: 'decoded', path: `synthetic-${i}`, label: 'x', task: 0, taskName: 'task0', split: 'train', index: i, info: {}, ...clips[i % 4] };
    }
  }
  const model = new ModelService({ config, rng: rng.fork('model') });
  const host = modelHost(model, rng.fork('pairs'));
  const batches = ITEMS / BATCH;
  const warmUp = Math.floor(batches * 0.1), window = Math.max(10, Math.floor(batches * 0.05));
  type Sample = { batch: number; tensors: number; wasmHeap: number; jsHeap: number; external: number; rss: number };
  const samples: Sample[] = [];
  const wasmHeapBytes = () => ((tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length ?? 0);
  let seen = 0, scored = 0;
  const started = performance.now();
  try {
    await lastValueFrom(
      (pullable(decoded()) as never as import('rxjs').Observable<GraphItem>).pipe(
        tokenize({}, { config }) as never,
        batch({ size: BATCH, dropLast: true }),
        score({}, { host }),
        tap((item: GraphItem) => {
          if (item.kind === 'scored') scored++;
          disposeItem(item);
          seen++;
          // Samples in the window after warm-up and in the last window.
          if ((seen > warmUp && seen <= warmUp + window) || seen > batches - window) {
            gc();
            const m = process.memoryUsage();
            samples.push({ batch: seen, tensors: tf.memory().numTensors, wasmHeap: wasmHeapBytes(), jsHeap: m.heapUsed, external: m.external, rss: m.rss });
          }
        }),
      ),
    );
  } finally {
    model.dispose();
  }
  t.log(`${ITEMS} clips, ${scored} batches scored in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.is(scored, batches);
  const early = samples.filter((s) => s.batch <= warmUp + window), late = samples.filter((s) => s.batch > batches - window);
  t.true(early.length >= 10 && late.length >= 10);
  const tensors = [median(early.map((s) => s.tensors)), median(late.map((s) => s.tensors))];
  const at = (k: keyof Sample) => [median(early.map((s) => s[k])), median(late.map((s) => s[k]))];
  const MiB = (k: keyof Sample) => at(k).map((x) => (x / 2 ** 20).toFixed(1)).join(' → ');
  t.log(`live tensors ${tensors[0]} → ${tensors[1]}; wasm heap ${MiB('wasmHeap')} MiB; JS heap in use ${MiB('jsHeap')} MiB; external ${MiB('external')} MiB; RSS ${MiB('rss')} MiB`);
  // Nothing may accumulate per batch: a leak of one tensor per batch would add ≥ batches·0.85 tensors.
  t.true(Math.max(...late.map((s) => s.tensors)) <= tensors[0] * 1.05, `tensors ${tensors[0]} → max ${Math.max(...late.map((s) => s.tensors))}`);
  // What the graph can hold on to: tensors' bytes in the wasm heap, JS objects (after a full GC) and
  // typed-array storage (external). A leak of one decoded clip's arrays per item would add ~300 MiB.
  for (const k of ['wasmHeap', 'jsHeap', 'external'] as const) {
    const [before, after] = at(k);
    t.true(after <= before * 1.05 + 2 ** 20, `${k} ${before} → ${after}`);
  }
  // RSS as a backstop for native memory only: with the three above flat to a MiB, it still moved by
  // ±20 MiB of ~300 in both directions between runs (the C allocator's arenas), so its bound is wider.
  const rss = at('rss');
  t.true(rss[1] <= rss[0] * 1.15, `RSS ${rss[0]} → ${rss[1]}`);
});
