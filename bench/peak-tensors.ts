/**
 * What is alive at a selector's in-step peak: runs one warm-up and one measured step (cpu backend,
 * shape-only kernels) and prints the live tensors at the moment the tensor bytes peak, grouped by
 * where they were made (the first project frames of the creating stack), largest first.
 *   npm run bench:peak-tensors -- [selector] [config] [batch]      (e.g. stella base 1: ~2 min, ~6 GiB)
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/core/backend.ts';
import { modelConfig } from '../src/core/config.ts';
import { installShapeOnlyKernels } from '../src/core/shape-only-kernels.ts';
import { prepareBench } from '../src/model/step-bench.ts';
import '../src/cli/bench.ts';
import { projectFrames } from './stack-frames.ts';

Error.stackTraceLimit = 80; // creating stacks pass through tfjs' engine first
const [selector = 'stella', config = 'tiny', batch = '1'] = process.argv.slice(2);
await initBackend('cpu');
installShapeOnlyKernels();
const bench = prepareBench({ config: modelConfig(config), selector, steps: 1, batch: Number(batch), naive: false, warmup: 1 });
const engine = tf.engine() as unknown as { trackTensor: (t: tf.Tensor, b: unknown) => void; disposeTensor: (t: tf.Tensor) => void; state: { numBytes: number } };
const live = new Map<number, { bytes: number; where: string; shape: number[] }>();
const proto = Object.getPrototypeOf(engine) as typeof engine;
const track = proto.trackTensor, dispose = proto.disposeTensor;
let peak = 0, atPeak: { bytes: number; where: string; shape: number[] }[] = [];
const frames = () => projectFrames(2, 'step-bench');
proto.trackTensor = function (t, b) {
  track.call(this, t, b);
  live.set(t.id, { bytes: t.size * 4, where: frames(), shape: t.shape });
  if (engine.state.numBytes > peak) { peak = engine.state.numBytes; atPeak = [...live.values()]; }
};
proto.disposeTensor = function (t) { if (!t.isDisposed) live.delete(t.id); dispose.call(this, t); };
const startIds = new Set(live.keys());
bench.run(1);
const groups = new Map<string, { bytes: number; count: number; shapes: Set<string> }>();
for (const t of atPeak) {
  const g = groups.get(t.where) ?? { bytes: 0, count: 0, shapes: new Set() };
  g.bytes += t.bytes; g.count++; g.shapes.add(t.shape.join('x'));
  groups.set(t.where, g);
}
console.log(`${selector} ${config} batch ${batch}: peak ${(peak / 2 ** 20).toFixed(1)} MiB (tracked at the peak: ${(atPeak.reduce((s, t) => s + t.bytes, 0) / 2 ** 20).toFixed(1)} MiB in ${atPeak.length} tensors; ${startIds.size} existed before)`);
for (const [where, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 40)) {
  console.log(`${(g.bytes / 2 ** 20).toFixed(1).padStart(9)} MiB ${String(g.count).padStart(4)}  ${where}  [${[...g.shapes].slice(0, 3).join(' ')}]`);
}
bench.dispose();
