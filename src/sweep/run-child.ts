/**
 * Child-process entry of one sweep run: `stella run` in-process, driven by its parent (the local
 * sweep or a `stella worker`) over an IPC channel.
 *
 * Input: argv[2] is JSON `{ graph?, sets, out, resume }` (resume = continue DIR's newest checkpoint).
 * To the parent: `{ type: 'checkpoint', path }` after each committed checkpoint, then
 * `{ type: 'finished', stopped }` (stopped = SIGTERM/SIGINT made it checkpoint and stop early).
 * When the parent goes away (its IPC channel closes, e.g. it was SIGKILLed) the run exits at once, so
 * a killed worker leaves no orphan run behind; its job is resumed elsewhere from the last checkpoint.
 */
import 'reflect-metadata';
import { runCommand } from '../cli/run.ts';

export interface RunChildInput { graph?: string; sets: string[]; out: string; resume: boolean }
export type RunChildMessage = { type: 'checkpoint'; path: string } | { type: 'finished'; stopped: boolean };

const send = (m: RunChildMessage) => new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as RunChildInput;
  const orphaned = () => process.exit(1);
  process.on('disconnect', orphaned);
  const outcome = await runCommand({
    graph: input.graph, out: input.resume ? undefined : input.out, resume: input.resume ? input.out : undefined,
    sets: input.resume ? [] : input.sets, quiet: true,
    onCheckpoint: (path) => void send({ type: 'checkpoint', path }),
  });
  await send({ type: 'finished', stopped: outcome.stopped });
  process.off('disconnect', orphaned);
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`stella run: ${(e as Error)?.message ?? e}\n`);
  process.exit(1);
});
