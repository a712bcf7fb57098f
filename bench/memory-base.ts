/**
 * In-step peak tensor memory of STELLA against DER++ at `base` (ViT-B), measured with shape-only
 * kernels on the cpu backend, and the check that shape-only kernels leave the peak unchanged.
 *
 * Why shape-only: tfjs's tensor-byte count depends only on the shapes and lifetimes of the tensors,
 * not their values (src/core/shape-only-kernels.ts). The wasm heap cannot hold a `base` step and the
 * cpu backend computes one in about an hour here; with the heavy kernels shape-only it takes about a
 * minute, and the allocations are those of the real code path.
 *
 * 1. Validation at `tiny` (the Selectors protocol's batch): per selector, the peak with the real wasm
 *    kernels, the real cpu kernels and the shape-only cpu kernels; they must be equal (the script
 *    fails otherwise).
 * 2. `base`: one child process per selector, batch and run (`stella bench step --config base --batch B
 *    --steps 1 --warmup 1 --shape-only --json`, STELLA_BACKEND=cpu), the selectors' order alternating
 *    per run; medians over the runs, STELLA's saving against DER++ and the goal (≥ 40 %).
 * With --write, replaces the "Memory at base" section of docs/benchmarks.md.
 *
 *   npm run bench:memory-base -- [--runs 3] [--batch 1,2] [--selectors stella,der++] [--validate stella,der++,full] [--validate-batch 4] [--naive] [--write]
 *   npm run bench:memory-base -- --config tiny --runs 1 --validate ''     # a quick dry run of the script (prints only)
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { median } from '../src/model/step-bench.ts';
import { writeBenchmarkSection } from './docs-section.ts';

const args = process.argv.slice(2);
const value = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const runs = Number(value('runs', '3'));
const batches = list(value('batch', '1,2')).map(Number);
const selectors = list(value('selectors', 'stella,der++'));
const validate = list(value('validate', 'stella,der++,full'));
const validateBatch = Number(value('validate-batch', '4'));
const naive = args.includes('--naive');
/** `base`; another config only for a quick dry run of this script (never written to the docs). */
const config = value('config', 'base');
const write = args.includes('--write');
for (const [name, n] of [['runs', runs], ...batches.map((b) => ['batch', b] as const), ['validate-batch', validateBatch]] as const) {
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${name} must be a positive integer (got ${n})`);
}
if (config !== 'base' && args.includes('--write')) throw new Error(`--write records the base figures; --config ${config} is for a dry run only`);
if (!selectors.includes('stella') || !selectors.includes('der++')) throw new Error(`--selectors must include stella and der++ (got ${selectors.join(',')})`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exec = promisify(execFile);

interface Measured {
  peakTensorBytes: number;
  residentTensorBytes: number;
  /** The same peak in bytes of distinct buffers (views and shared saves once). */
  peakHeldBytes: number;
  peakRssBytes: number;
  rows: number;
  replayed: number;
  /** The child's wall time, start-up and warm-up included. */
  wallMs: number;
}

/** One `stella bench step` child: one selector, one warm-up step (fills the replay buffer), one measured step. */
async function measure(config: string, selector: string, rows: number, backend: 'cpu' | 'wasm', shapeOnly: boolean): Promise<Measured> {
  const stepArgs = ['bench', 'step', '--config', config, '--selector', selector, '--batch', String(rows), '--steps', '1', '--warmup', '1', '--json'];
  if (shapeOnly) stepArgs.push('--shape-only');
  if (naive) stepArgs.push('--naive');
  const t0 = performance.now();
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...stepArgs], {
    cwd: root, env: { ...process.env, STELLA_BACKEND: backend, STELLA_WASM_THREADS: '1' }, maxBuffer: 16 << 20,
  });
  const out = JSON.parse(stdout) as { backend: string; results: Measured[] };
  if (out.backend !== backend) throw new Error(`asked for the ${backend} backend, the child ran ${out.backend}`);
  return { ...out.results[0], wallMs: performance.now() - t0 };
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1);
const GiB = (b: number) => (b / 2 ** 30).toFixed(2);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
/** 'a', 'a and b', 'a, b and c'. */
const listing = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

// 1. Validation at tiny.
type Peaks = { wasm: number; cpu: number; shapeOnly: number };
const checks: ({ selector: string; held: Peaks } & Peaks)[] = [];
for (const selector of validate) {
  const [wasm, cpu, shapeOnly] = [
    await measure('tiny', selector, validateBatch, 'wasm', false),
    await measure('tiny', selector, validateBatch, 'cpu', false),
    await measure('tiny', selector, validateBatch, 'cpu', true),
  ];
  const held = { wasm: wasm.peakHeldBytes, cpu: cpu.peakHeldBytes, shapeOnly: shapeOnly.peakHeldBytes };
  checks.push({ selector, wasm: wasm.peakTensorBytes, cpu: cpu.peakTensorBytes, shapeOnly: shapeOnly.peakTensorBytes, held });
  process.stderr.write(`tiny ${selector}: wasm ${wasm.peakTensorBytes} (held ${held.wasm}), cpu ${cpu.peakTensorBytes} (${held.cpu}), cpu shape-only ${shapeOnly.peakTensorBytes} (${held.shapeOnly}) bytes\n`);
}
const agree = (p: Peaks) => p.wasm === p.cpu && p.cpu === p.shapeOnly;
const mismatched = checks.filter((c) => !agree(c) || !agree(c.held));

// 2. base, one process per selector, batch and run.
const key = (selector: string, batch: number) => `${selector}@${batch}`;
const measured = new Map<string, Measured[]>(batches.flatMap((b) => selectors.map((s) => [key(s, b), []] as [string, Measured[]])));
for (let run = 1; run <= runs; run++) {
  const order = run % 2 ? selectors : [...selectors].reverse();
  for (const batch of batches) {
    for (const selector of order) {
      const m = await measure(config, selector, batch, 'cpu', true);
      measured.get(key(selector, batch))!.push(m);
      process.stderr.write(`${config} run ${run} batch ${batch} ${selector}: peak ${MiB(m.peakTensorBytes)} MiB (held ${MiB(m.peakHeldBytes)}), resident ${MiB(m.residentTensorBytes)} MiB, RSS ${GiB(m.peakRssBytes)} GiB, ${(m.wallMs / 1000).toFixed(0)} s (load ${os.loadavg()[0].toFixed(1)})\n`);
    }
  }
}
const peak = (s: string, b: number) => median(measured.get(key(s, b))!.map((m) => m.peakTensorBytes));
const rise = (s: string, b: number) => peak(s, b) - first(s, b).residentTensorBytes;
const first = (s: string, b: number) => measured.get(key(s, b))![0];
const saving = (b: number) => 1 - peak('stella', b) / peak('der++', b);
const heldPeak = (s: string, b: number) => median(measured.get(key(s, b))!.map((m) => m.peakHeldBytes));
const heldSaving = (b: number) => 1 - heldPeak('stella', b) / heldPeak('der++', b);
const verdict = (x: number) => (x >= 0.4 ? 'met' : `not met (${(40 - 100 * x).toFixed(1)} points short)`);
const top = Math.max(...batches);

const checkTable = [
  '| selector (tiny, batch ' + validateBatch + ') | peak | wasm, real kernels | cpu, real kernels | cpu, shape-only | equal |',
  '| --- | --- | --- | --- | --- | --- |',
  ...checks.flatMap((c) => [['tensors', c] as const, ['held', c.held] as const].map(([what, p]) =>
    `| ${c.selector} | ${what} | ${p.wasm} B (${MiB(p.wasm)} MiB) | ${p.cpu} B | ${p.shapeOnly} B | ${agree(p) ? 'yes' : '**no**'} |`)),
].join('\n');
const baseTable = [
  '| batch (current + replayed) | selector | peak tensors MiB, per run | median | resident MiB | rise within the step MiB | STELLA vs DER++ (peak / rise) | held peak MiB (median) | STELLA vs DER++ (held) | peak RSS GiB (median) | wall s per run |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...batches.flatMap((b) => selectors.map((s) => {
    const ms = measured.get(key(s, b))!;
    const versus = s === 'stella' ? `**${pct(saving(b))}** / ${pct(1 - rise('stella', b) / rise('der++', b))} less` : '—';
    const heldVersus = s === 'stella' ? `**${pct(heldSaving(b))}** less` : '—';
    return `| ${b} + ${first(s, b).replayed} | ${s} | ${ms.map((m) => MiB(m.peakTensorBytes)).join(', ')} | **${MiB(peak(s, b))}** | ${MiB(first(s, b).residentTensorBytes)} | ${MiB(rise(s, b))} | ${versus} | ${MiB(heldPeak(s, b))} | ${heldVersus} | ${GiB(median(ms.map((m) => m.peakRssBytes)))} | ${ms.map((m) => (m.wallMs / 1000).toFixed(0)).join(', ')} |`;
  })),
].join('\n');
/** Peak bytes of the same measurement before both changes (batch 2; tiny batch 4), and with only freeingGrad. */
const BEFORE = { stella: 27193232728, der: 40650344668, tinyStella: 261909756, tinyDer: 350799672 };
const FREEING_ONLY = { stella: 14022.0 * 2 ** 20, der: 23918.7 * 2 ** 20 }; // MiB as that run printed them
type HistoryPeaks = Partial<Record<number | 'tiny', { stella: number; der: number }>> & { tiny: { stella: number; der: number } };
const MB = (stella: number, der: number) => ({ stella: stella * 2 ** 20, der: der * 2 ** 20 }); // MiB as those runs printed them
/**
 * Peak bytes after each earlier stage of the changes below, in the order they landed:
 * the first two (freeingGrad, the disposed initial tensors); the first five (block scopes, off-tape
 * targets, scaleBy); the first six (the freeing backward), before the matching loss was differentiated apart;
 * the first seven, before the backward freed saved tensors and the rest of this round's list.
 */
const HISTORY: [string, HistoryPeaks][] = [
  ['with the first two', { 1: MB(7471.5, 12419.8), 2: MB(13291.7, 23188.4), tiny: { stella: 130450280, der: 187810664 } }],
  ['with the first five', { 1: MB(6038.3, 9252.0), 2: MB(10339.2, 16803.1), 3: MB(14644.2, 24371.9), 4: MB(18958.3, 31940.7), tiny: { stella: 114601256, der: 130537376 } }],
  ['with the first six', { 1: MB(4859.7, 7376.7), 2: MB(8055.7, 13104.2), 3: MB(11251.7, 18831.7), 4: MB(14447.7, 24559.2), tiny: { stella: 96537884, der: 122480436 } }],
  ['with the first seven', { 1: MB(4729.7, 7376.7), 2: MB(7787.6, 13104.2), 3: MB(10845.5, 18831.7), 4: MB(13903.4, 24559.2), tiny: { stella: 83413820, der: 122480436 } }],
];
/** Held (distinct-buffer) peaks with the first seven, as that run printed them (MiB). */
const HELD_SEVEN: Record<number, { stella: number; der: number }> = { 1: MB(3384.7, 5216.1), 2: MB(5105.3, 8790.6), 3: MB(6825.9, 12365.1), 4: MB(8546.5, 15939.6) };
/** One row of the history table: STELLA's and DER++'s peaks and the saving. */
const historyRow = (label: string, p: { stella: number; der: number }) => `| ${label} | ${MiB(p.stella)} MiB | ${MiB(p.der)} MiB | ${pct(1 - p.stella / p.der)} less |`;
const tinyCheck = (s: string) => checks.find((c) => c.selector === s);
const tinyNow = tinyCheck('stella') && tinyCheck('der++') ? { stella: tinyCheck('stella')!.wasm, der: tinyCheck('der++')!.wasm } : undefined;
const command = `npm run bench:memory-base -- --runs ${runs} --batch ${batches.join(',')} --selectors ${selectors.join(',')} --validate ${validate.join(',')} --validate-batch ${validateBatch}${naive ? ' --naive' : ''}`;

const section = `## Memory at base

Goal (issue 12): STELLA's in-step peak at \`base\` (ViT-B: 768 wide, 12 blocks, decoder 512 × 8) at
least 40 % below DER++'s, one process per selector.

**Result: ${batches.map((b) => `at batch ${b} (+ ${b} replayed) STELLA ${MiB(peak('stella', b))} MiB against DER++ ${MiB(peak('der++', b))} MiB, ${pct(saving(b))} less: the goal is ${verdict(saving(b))}`).join('; ')}.**
Counted in distinct buffers (a view or a shared save once, as PyTorch's allocator counts storage): ${batches.map((b) => `batch ${b} ${MiB(heldPeak('stella', b))} against ${MiB(heldPeak('der++', b))} MiB, ${pct(heldSaving(b))} less (${verdict(heldSaving(b))})`).join('; ')}.
(Paper: 43.6 % for STELLA, ViT-B on a V100 at batch 9.) The saving grows with the batch: the resident
weights, the same for both, weigh less against the activations; the rise within the step alone is
${listing(batches.map((b) => pct(1 - rise('stella', b) / rise('der++', b))))} lower at batch ${listing(batches.map(String))}. Batches above ${top} were not measured here
(a DER++ child at batch ${top} peaks at ${GiB(median(measured.get(key('der++', top))!.map((m) => m.peakRssBytes)))} GiB RSS on a shared 24 GiB machine).
${naive ? 'Plain tfjs path (`--naive`)' : 'Fast path (the default)'}, the same peak as the Selectors section (\`measurePeakBytes\`: the high-water mark of
\`tf.memory().numBytes\` within the measured step, plus the selector's resident tensors).

\`\`\`
${command}
\`\`\`

**Method: shape-only kernels on the cpu backend.** tfjs counts a tensor's bytes from its shape and dtype
when the engine tracks it, never from its values, so the in-step peak depends only on which tensors
exist when. \`--shape-only\` (src/core/shape-only-kernels.ts) re-registers the cpu kernels that cost the
time (BatchMatMul, _FusedMatMul, the elementwise, softmax, transpose and reduction kernels, and the
large copies Concat, SplitV, Slice, GatherV2) as kernels that return a zero-filled output of the shape
and dtype the real kernel would, without computing it. Everything else is the real code path: the
same strategy code, tape, tidy scopes, gradients (themselves products), disposals, replay buffer and
optimiser; TopK, OneHot, ScatterNd, Cast and the ids stay real. A \`base\` step then takes about a minute
instead of an hour. Each child runs one warm-up step first (it fills the replay buffer with B rows, so
the measured step trains on B current + B replayed rows, as in the Selectors protocol).

**Validation at tiny** (same children, \`--config tiny --batch ${validateBatch}\`): ${checks.length ? `the peak with shape-only
kernels equals the peak with the real cpu kernels and with the real wasm kernels, byte for byte${mismatched.length ? ` — **except ${mismatched.map((c) => c.selector).join(', ')}**` : ''}:

${checkTable}` : 'not run this time (`--validate` was empty); test/core/shape-only-kernels.test.ts checks one STELLA step.'}

Values reach control flow in a few places; none changes a shape, so zeros allocate what real values do:
- importance order (TopK over all L patches: a full permutation whatever the scores; ties go to the
  lower index) and the candidate masks (top K = L/2, K fixed by the config);
- STELLA's Bernoulli pruning, weighted video permutation and audio chunk rule (stellaSelection): they
  decide *which* patches are kept, never how many (K_v, K_a fixed), and the Mode-D gathers take the first
  K ids of each permutation;
- the MAE masking plan (visible counts fixed by the mask ratio), the AVM's matching pairs (random
  stream), the replay draw (min(N, rows held): a count of steps, not of values);
- the non-finite guards (importance in scoreBatch, every loss term in sumLosses): with zeros everything
  stays finite, and a guard that fired would stop the step with an error, not change a shape;
- Adam reads gradients and weights with dataSync on the cpu backend (host typed arrays, not tensors).
The random streams may advance differently with zeros (weighted draws), which changes which rows and
patches are drawn but not how many.

**Base, one process per selector, batch and run** (cpu backend, ${os.availableParallelism()} shared cores; peaks are deterministic, so the runs
agree to the byte; RSS is the child's peak, with shape-only outputs left as untouched zero pages):

${baseTable}

Reading: peak tensor bytes count every live tensor handle (a reshaped view counts again, as in every
figure of this file), so they exceed the memory actually held; they are comparable between selectors.
The held peak counts each backing buffer once (\`measurePeakBytes\`' \`heldRise\`: bytes of the data ids
tfjs tracks, added when a new one appears and removed when tfjs drops it), which is what the step
really holds: the views of reshapes and head splits drop out. DER++ holds more of those views (its
decoder runs on every patch), so its held peak falls further, and the saving in held bytes is lower
than in handles.
Both exclude the Adam moments (outside tfjs: the wasm heap or host arrays), the same for both
selectors; a PyTorch figure would count them (twice the weights), which lowers every ratio.

**What the step stopped keeping alive** (issue 12: "what else STELLA can stop keeping alive without
changing its numbers"). Fourteen things, all for every selector except the seventh and the fourteenth
(STELLA's family); the values are the same ops in the same order (STELLA's and DER++'s losses over 4
steps are bit-identical before and after each, wasm, tiny, batch 4):
- tfjs calls a \`tf.customGrad\` gradient outside the per-node tidy scope of the backward and frees
  every node's incoming gradient and saved tensors only when the whole backward ends, so the fast path's
  gradients (linear, layer norm, GELU, attention, gathers) kept all their intermediates, every upstream
  gradient and every saved activation alive at once. \`freeingGrad\` (src/core/fast-matmul.ts) runs
  each in a tidy scope and frees its dy and saved tensors as soon as it returns (test \`freeingGrad: the
  same gradients bit for bit…\`, test/core/fast-matmul.test.ts).
- \`ParamStore.add\` never disposed the initial tensor a variable was made from: every weight was
  counted twice, and after the first update the initial values stayed alive beside the trained ones
  (a real copy of the weights). It is disposed now; "resident" is the weights alone.
- Under autodiff, tfjs frees nothing made inside the loss function until the backward ends: every
  reshaped view, head split and temporary of the forward stayed alive, whether a gradient saved it or
  not. Each transformer block now runs in its own tidy scope (src/model/layers.ts \`block\`): what a
  gradient needs is saved (kept) by its op, the rest is freed as the block returns.
- The MAE targets (the patch layout change and the per-patch standardisation of the raw patches) were
  computed on the tape, which kept their intermediates for a gradient nobody takes; they are computed off
  the tape now (\`asConstant\`).
- Attention logits were scaled with a Multiply, whose gradient saves both inputs (for the scalar's
  gradient): every AVM logit tensor stayed alive through the backward. \`scaleBy\` saves nothing.
- tfjs' backprop frees no upstream gradient until the whole backward ends, so every intermediate
  gradient of the step stayed alive (at batch 1 about 1.6 GiB for STELLA and 2.6 GiB for DER++, by
  \`npm run bench:peak-tensors\`). \`withFreeingBackward\` (src/core/fast-matmul.ts) wraps each tape
  node's gradient so that a node's upstream gradients are freed once its own are computed, as
  PyTorch's autograd does (test \`withFreeingBackward: the same gradients bit for bit…\`).
- STELLA's AVM matching loss reads constant embeddings (computed in the scoring pass), so it reaches
  the AVM's weights alone and the backbone's losses never reach them. It is now differentiated first,
  on the AVM's weights, and its forward is freed before the backbone's forward starts
  (\`ModelService.trainStepSplit\`); both gradients go to one Adam step. The gradients are those of one
  pass over the sum, bit for bit (test \`trainStepSplit: …\`, test/model/model-service.test.ts), and the
  step no longer holds the AVM's cross-attention (12 heads over every audio × video token pair) while
  the backbone's activations peak.
- tfjs keeps every tensor it saved for a gradient until the whole backward ends, and what a native
  gradient makes before returning its thunks (Softmax's dy·y), and every per-use gradient of a tensor
  read twice (a weight shared by streams, a residual stream) after adding it into the total.
  \`withFreeingBackward\` now frees all three once the node has run, as PyTorch's autograd does (test
  \`withFreeingBackward: saved tensors, what a gradient made…\`): at the end of the backward the softmax
  outputs of every block were still alive.
- Reshape, Add, Sub, Concat and a few other kernels save their inputs only for their shapes, which kept
  every residual stream, head split and qkv output alive until the backward reached them. A disposed
  tensor keeps its shape, so these saves are let go as the node is recorded.
- Adam made every new weight before assigning any: a second copy of all the weights (730 MiB at base)
  beside the gradients. It now updates 64 MiB at a time (\`updateChunkBytes\`; one call at tiny), the
  same values bit for bit (test \`chunked update: …\`, test/model/optimizer.test.ts).
- A block's output stayed tracked by the caller's scope until the whole forward ended, and so did the
  encoders' token sums, gathered rows and consumed streams. A block frees the previous block's output,
  and the encode, shared-middle and decode parts of the forward each run in their own scope.
- GELU saved its input and Φ, and fc2 saved GELU's output: three [N, 4D] tensors per block where
  PyTorch keeps two. GELU and fc2 are one op now (\`fastGeluLinear2d\`) that saves x and Φ(x) and makes
  GELU(x) = x·Φ(x) again in the backward, the forward kernel's own product, so the same bits.
- A linear saved a handle of its weight for the gradient: no new buffer, but tf.memory() counted the
  weight's bytes again at every use (about 1.2 GiB of the handle figure at base). The gradient reads
  the variable itself now (no variable changes between a forward and its backward); this moves the
  handle figures only, not the held ones.
- STELLA's AVM gradients waited through the whole backbone pass for the one Adam step. A finite AVM
  part is now applied first (\`Adam.beginStep\`: one step whose gradients come in parts, the same update
  bit for bit), so its gradients are freed before the backbone runs; the backbone pass is watched, and
  reading an AVM weight there is an error that names it (test \`trainStepSplit applies a finite part…\`).
The third to fifth help DER++ more than STELLA in absolute terms (its full-length Mode-C forward had more
intermediates to free), so the relative saving went down while both peaks fell: the earlier figures
counted memory that tfjs, unlike PyTorch's autograd, kept for no gradient. The eighth to thirteenth
help both alike, and at batch 1 STELLA's peak, like DER++'s, is now at the start of the backward.
Held (distinct-buffer) peaks with the first seven were ${[1, 2, 3, 4].map((b) => `${MiB(HELD_SEVEN[b].stella)} against ${MiB(HELD_SEVEN[b].der)} MiB at batch ${b}`).join(', ')}. Effect on the in-step peak
(the same measurement, shape-only cpu kernels, one warm-up and one measured step; peaks are
deterministic, so one run each):

| | STELLA | DER++ | STELLA vs DER++ |
| --- | --- | --- | --- |
${batches.includes(2) && !naive ? `${historyRow('base, batch 2, before all of them', BEFORE)}
${historyRow('base, batch 2, with freeingGrad only', FREEING_ONLY)}
` : ''}${!naive ? HISTORY.flatMap(([label, p]) => batches.filter((b) => p[b]).map((b) => historyRow(`base, batch ${b}, ${label}`, p[b]!))).map((row) => `${row}\n`).join('') : ''}${batches.map((b) => historyRow(`base, batch ${b}, now (all fourteen)`, { stella: peak('stella', b), der: peak('der++', b) })).join('\n')}
${tinyNow && validateBatch === 4 ? `${historyRow(`tiny, batch ${validateBatch}, before all of them (the Selectors section)`, { stella: BEFORE.tinyStella, der: BEFORE.tinyDer })}
${HISTORY.map(([label, p]) => `${historyRow(`tiny, batch ${validateBatch}, ${label}`, p.tiny)}\n`).join('')}${historyRow(`tiny, batch ${validateBatch}, now (all fourteen)`, tinyNow)}
` : ''}
**On wasm, only STELLA at batch 1 fits a base step.** tfjs-wasm is 32-bit WebAssembly: its heap
stops at 4 GiB (Emscripten's \`getHeapMax()\`, 4 GiB − 64 KiB), whatever the machine has, and the
weights and Adam's two moments take 2.1 GiB of it before any activation. Measured here
(\`STELLA_WASM_THREADS=1\`, one warm-up and one measured step, with all fourteen changes above): STELLA at
batch 1 trains, about 39 s a step, the same 2090.2 MiB peak as the shape-only measurement, process RSS
4.8 GiB; DER++ at batch 1 and STELLA at batch 2 fill the heap and abort inside the wasm module
(\`Aborted()\`, \`memory access out of bounds\`), which kills the process without a usable message. (With
the first seven changes, STELLA at batch 1 aborted the same way after about 7 minutes; so did batch 2,
the issue's report. The first run of the fitting step also found that Adam's moments, once the heap
passed 2 GiB, got negative offsets from Emscripten's \`_malloc\`: they are read as unsigned now,
\`heapAlloc\` in src/core/heap-simd.ts.) Training \`base\` on wasm stays refused up front
(\`src/core/backend-limits.ts\`, called by \`StrategyTrainer\` and the \`full\` bench step; test
\`test/core/backend-limits.test.ts\`): a size-aware check that lets STELLA's batch 1 through is not built.

\`\`\`
$ STELLA_BACKEND=wasm stella bench step --config base --selector stella --batch 1
stella: config 'base' (768 wide, 12 blocks, decoder 512 × 8) cannot train on the wasm backend: tfjs-wasm's
heap is limited to 4 GiB (32-bit WebAssembly), and a 'base' training step needs more (measured: the
weights and Adam's moments take 2.1 GiB; DER++ at batch 1 and STELLA at batch 2 fill the heap and abort).
Use the tensorflow backend instead (npm install @tensorflow/tfjs-node, then STELLA_BACKEND=tensorflow;
with a GPU, @tensorflow/tfjs-node-gpu and STELLA_BACKEND=tensorflow-gpu), or STELLA_BACKEND=cpu (no heap
limit, but slow), or config=tiny.
\`\`\`

(exit code 1, after ~19 s of start-up; \`stella run --set config=base\` stops the same way once the
corpus is generated, before the first step.)
`;
process.stdout.write(section);
if (write) await writeBenchmarkSection('Memory at base', section);
if (mismatched.length) {
  process.stderr.write(`shape-only peaks differ from the real kernels' for ${mismatched.map((c) => c.selector).join(', ')}\n`);
  process.exitCode = 1;
}
