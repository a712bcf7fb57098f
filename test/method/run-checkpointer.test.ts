/** The resume command a run's checkpointer prints after a graceful stop is one a shell runs as meant. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { MODEL_CONFIGS } from '../../src/core/config.ts';
import { RunCheckpointer } from '../../src/method/run-checkpointer.ts';
import { RunSessionState } from '../../src/method/run-session.ts';

const checkpointer = (dir: string) => new RunCheckpointer(new RunSessionState(), { dir, every: 1, keep: 1, config: MODEL_CONFIGS.tiny, run: {} });

/** The words a POSIX shell splits `command` into. */
const shellWords = (command: string) => execFileSync('sh', ['-c', `set -- ${command}; printf '%s\\0' "$@"`], { encoding: 'utf8' }).split('\0').slice(0, -1);

test('resume command: `stella run --resume` with the run folder (the parent of checkpoints/), quoted for a shell', (t) => {
  t.is(checkpointer('/runs/small/checkpoints').resumeCommand('/runs/small/checkpoints/ckpt-000003'), 'stella run --resume /runs/small');
  t.is(checkpointer('/runs/elsewhere').resumeCommand(), 'stella run --resume /runs/elsewhere', 'a folder not named checkpoints is passed as it is');
  const odd = "/tmp/it's a run/checkpoints";
  t.deepEqual(shellWords(checkpointer(odd).resumeCommand()), ['stella', 'run', '--resume', "/tmp/it's a run"]);
});
