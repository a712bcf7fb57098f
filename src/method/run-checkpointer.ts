/**
 * RunCheckpointer: writes everything a run needs to resume exactly — each train node's weights
 * (safetensors), optimiser, replay buffer and random streams, the evaluations and losses so far, the
 * global step and the resolved run config — through the atomic, checksummed Checkpointer of
 * src/core/checkpoint.ts. It is both the graph's `Checkpointer` role (graceful stop) and the session's
 * checkpoint policy (every N steps, each task end). `restore(dir)` reads the newest valid checkpoint
 * back into a RestoredRun (a corrupt newest one falls back to the previous, with a warning).
 *
 * Blobs: `weights.safetensors` (the first train node; what `stella inspect` reads),
 * `weights-<node>.safetensors` for others, `trainer-<node>.json|.bin` (state codec), `session.json|.bin`.
 */
import path from 'node:path';
import type { ModelConfig } from '../core/config.ts';
import { Checkpointer as AtomicCheckpointer, loadLatest, RUN_CHECKPOINTS } from '../core/checkpoint.ts';
import { serializeSafetensors } from '../core/safetensors.ts';
import { decodeState, encodeState } from '../core/state-codec.ts';
import type { Checkpointer, StreamPosition } from '../graph/roles.ts';
import type { CheckpointPolicy, LossRecord, RestoredRun, RunSessionState, TaskEvaluation } from './run-session.ts';
import type { TrainerState } from './strategy-trainer.ts';

const utf8 = new TextEncoder();
const text = new TextDecoder();

function pack(state: unknown): { json: Uint8Array; bin: Uint8Array; sizes: number[] } {
  const encoded = encodeState(state);
  const sizes = encoded.blobs.map((b) => b.byteLength);
  const bin = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let o = 0;
  for (const b of encoded.blobs) { bin.set(b, o); o += b.byteLength; }
  return { json: utf8.encode(JSON.stringify({ json: encoded.json, sizes })), bin, sizes };
}

function unpack<T>(json: Uint8Array | undefined, bin: Uint8Array | undefined, source: string): T {
  if (!json) throw new Error(`${source}: missing`);
  const { json: inner, sizes } = JSON.parse(text.decode(json)) as { json: string; sizes: number[] };
  const blobs: Uint8Array[] = [];
  let o = 0;
  for (const n of sizes) { blobs.push((bin ?? new Uint8Array(0)).subarray(o, o + n)); o += n; }
  return decodeState<T>({ json: inner, blobs }, source);
}

export const weightsBlob = (node: string, first: boolean) => (first ? 'weights.safetensors' : `weights-${node}.safetensors`);

export class RunCheckpointer implements Checkpointer, CheckpointPolicy {
  private readonly store: AtomicCheckpointer;
  private lastStep = -1;

  constructor(
    private readonly session: RunSessionState,
    private readonly settings: {
      dir: string; every: number; keep: number; config: ModelConfig; run: unknown; onWarning?: (m: string) => void;
      /** Called with each committed checkpoint's directory (a sweep worker copies it off the machine). */
      onSaved?: (path: string) => void;
    },
  ) {
    this.store = new AtomicCheckpointer({ dir: settings.dir, keep: settings.keep, onWarning: settings.onWarning });
  }

  get every(): number { return this.settings.every; }

  /**
   * The command that continues this run: `stella run --resume` takes the run folder (the parent of
   * checkpoints/) and restores its newest valid checkpoint, so the command is the same for every
   * `_checkpoint` of the run.
   */
  resumeCommand(_checkpoint?: string): string {
    const { dir } = this.settings;
    const runDir = path.basename(dir) === RUN_CHECKPOINTS ? path.dirname(dir) : dir;
    // Quoted for a POSIX shell when it holds anything but plain path characters.
    const arg = /^[\w@%+=:,./-]+$/.test(runDir) ? runDir : `'${runDir.replace(/'/g, `'\\''`)}'`;
    return `stella run --resume ${arg}`;
  }

  /** Graph role: called on a graceful stop with the stream position. */
  async save(position: StreamPosition): Promise<string | undefined>;
  async save(reason: 'step' | 'task-end' | 'stop', step: number): Promise<string | undefined>;
  async save(a: StreamPosition | 'step' | 'task-end' | 'stop', b?: number): Promise<string | undefined> {
    const step = typeof a === 'object' ? a.step : b!;
    // One checkpoint per step even when several nodes ask (A/B graphs); a task end re-saves its step.
    if (step === this.lastStep && a === 'step') return undefined;
    if (this.session.trainers.size === 0) return undefined;
    this.lastStep = step;
    const blobs: Record<string, Uint8Array> = {};
    let first = true;
    for (const [node, trainer] of this.session.trainers) {
      blobs[weightsBlob(node, first)] = serializeSafetensors(trainer.model.weights(), { config: JSON.stringify(this.settings.config), node });
      const state = pack(trainer.state());
      blobs[`trainer-${node}.json`] = state.json;
      blobs[`trainer-${node}.bin`] = state.bin;
      first = false;
    }
    const session = pack({ evaluations: this.session.evaluations, losses: this.session.losses, nodes: [...this.session.trainers.keys()] });
    blobs['session.json'] = session.json;
    blobs['session.bin'] = session.bin;
    const last = this.session.evaluations[this.session.evaluations.length - 1];
    const saved = await this.store.save({
      step,
      blobs,
      state: {
        position: { taskIndex: last ? last.task + 1 : 0, task: last?.taskName ?? '', step },
        rng: {},
        config: { model: this.settings.config.name, run: this.settings.run },
      },
    });
    this.settings.onSaved?.(saved.path);
    return saved.path;
  }
}

/** Reads the newest valid checkpoint of `dir` back into what a resumed run needs. */
export async function restoreRun(dir: string, onWarning?: (m: string) => void): Promise<{ restored: RestoredRun; config: { model: string; run: unknown } }> {
  const loaded = await loadLatest(dir, { onWarning });
  const from = loaded.path;
  const session = unpack<{ evaluations: TaskEvaluation[]; losses: LossRecord[]; nodes: string[] }>(loaded.blobs['session.json'], loaded.blobs['session.bin'], `${from}/session.json`);
  const trainers: RestoredRun['trainers'] = {};
  session.nodes.forEach((node, i) => {
    const weights = loaded.blobs[weightsBlob(node, i === 0)];
    if (!weights) throw new Error(`${from}: no weights for train node '${node}'`);
    trainers[node] = { weights, state: unpack<TrainerState>(loaded.blobs[`trainer-${node}.json`], loaded.blobs[`trainer-${node}.bin`], `${from}/trainer-${node}.json`) };
  });
  return {
    restored: { steps: loaded.step, trainers, evaluations: session.evaluations, losses: session.losses, from },
    config: loaded.state.config as { model: string; run: unknown },
  };
}
