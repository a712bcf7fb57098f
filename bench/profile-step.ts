/**
 * Where a selector's training step spends its time: every top-level kernel call timed by wrapping
 * `engine.runKernel` (products keyed by their operand shapes), the medians over the timed steps.
 *   npm run bench:profile-step -- [--selector stella] [--steps 8] [--batch 4] [--config tiny]
 *     [--shapes Transpose,Multiply]   also key these kernels by their input shapes and attributes
 *     [--where 192x96]                print the project frames that call the kernels matching this key
 *     [--cpu-profile FILE]            write a V8 CPU profile of the timed steps (chrome://inspect, speedscope)
 *     [--top 40]                      how many kernel keys to print
 * Times are wall times on whatever else the machine runs; compare variants side by side, not across runs.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { initBackend } from '../src/core/backend.ts';
import { modelConfig } from '../src/core/config.ts';
import { median, prepareBench } from '../src/model/step-bench.ts';
import '../src/cli/bench.ts';
import { arg } from './args.ts';
import { projectFrames } from './stack-frames.ts';

const selector = arg('selector', 'stella'), steps = Number(arg('steps', '8')), batch = Number(arg('batch', '4'));
const shapeKernels = new Set(arg('shapes', '').split(',').filter(Boolean));
const where = arg('where', ''), cpuProfile = arg('cpu-profile', '');
if (where) Error.stackTraceLimit = 40;

const backend = await initBackend();
type Shaped = { shape: number[] } | undefined;
function keyOf(name: string, inputs: Record<string, Shaped>, attrs: Record<string, unknown> | undefined): string {
  if (name === 'BatchMatMul' || name === '_FusedMatMul') {
    const a = inputs.a!, b = inputs.b!;
    return `${name} ${a.shape.join('x')}${attrs?.transposeA ? 'ᵀ' : ''} · ${b.shape.join('x')}${attrs?.transposeB ? 'ᵀ' : ''}`;
  }
  if (name === 'StellaLinear2d') return `${name} ${inputs.x!.shape.join('x')} · ${inputs.w!.shape.join('x')}`;
  if (!shapeKernels.has(name)) return name;
  return `${name} ${Object.values(inputs).map((t) => t?.shape.join('x')).join(' ')} ${JSON.stringify(attrs ?? {}).slice(0, 60)}`;
}

const engine = tf.engine() as unknown as { runKernel: (name: string, inputs: Record<string, Shaped>, attrs?: Record<string, unknown>) => unknown };
const runKernel = engine.runKernel.bind(engine);
let step = new Map<string, [number, number]>();
const callers = new Map<string, number>();
let depth = 0;
engine.runKernel = (name, inputs, attrs) => {
  if (depth > 0) return runKernel(name, inputs, attrs); // kernels inside kernels count in their caller
  depth++;
  const start = performance.now();
  try {
    return runKernel(name, inputs, attrs);
  } finally {
    depth--;
    const key = keyOf(name, inputs, attrs);
    const entry = step.get(key) ?? [0, 0];
    entry[0] += performance.now() - start;
    entry[1]++;
    step.set(key, entry);
    if (where && key.includes(where)) {
      const frames = projectFrames(5);
      callers.set(`${key} :: ${frames}`, (callers.get(`${key} :: ${frames}`) ?? 0) + 1);
    }
  }
};

const bench = prepareBench({ config: modelConfig(arg('config', 'tiny')), selector, steps, batch, naive: false, warmup: 2 });
const session = cpuProfile ? new Session() : undefined;
if (session) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
}
const perStep: Map<string, [number, number]>[] = [], wall: number[] = [], cpu: number[] = [];
for (let i = 0; i < steps; i++) {
  step = new Map();
  const before = process.cpuUsage();
  wall.push(...bench.run(1));
  const used = process.cpuUsage(before);
  cpu.push((used.user + used.system) / 1000);
  perStep.push(step);
}
if (session) writeFileSync(cpuProfile, JSON.stringify((await session.post('Profiler.stop')).profile));
bench.dispose();

const total = (m: Map<string, [number, number]>, i: 0 | 1) => [...m.values()].reduce((s, v) => s + v[i], 0);
const rows = [...new Set(perStep.flatMap((m) => [...m.keys()]))]
  .map((key) => ({ key, ms: median(perStep.map((m) => m.get(key)?.[0] ?? 0)), calls: median(perStep.map((m) => m.get(key)?.[1] ?? 0)) }))
  .sort((a, b) => b.ms - a.ms);
console.log(`${selector}, batch ${batch}, ${backend.name}: step ${median(wall).toFixed(1)} ms (cpu ${median(cpu).toFixed(1)} ms), ` +
  `inside kernels ${median(perStep.map((m) => total(m, 0))).toFixed(1)} ms, ${median(perStep.map((m) => total(m, 1)))} kernel calls (medians of ${steps} steps)`);
for (const r of rows.slice(0, Number(arg('top', '40')))) console.log(`${r.ms.toFixed(2).padStart(8)} ms ${String(r.calls).padStart(5)}  ${r.key}`);
for (const [k, n] of [...callers].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(5)}× ${k}`);
