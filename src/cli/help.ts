/**
 * The common end of every subcommand's `--help`: an `Examples:` block and an `Exit codes:` line, so
 * each command documents both the same way (test/cli/help.test.ts checks every command has them).
 *
 * Example:
 *   cmd.addHelpText('after', helpFooter(['stella doctor --json'], '0 printed, 1 no backend could start'));
 */
import { InvalidArgumentError } from 'commander';

/** Commander argument parser for a positive integer option. */
export const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
};

/** Commander collector for a repeatable option. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function helpFooter(examples: readonly string[], exitCodes: string, notes: readonly string[] = []): string {
  return [
    '',
    'Examples:',
    ...examples.map((e) => `  $ ${e}`),
    ...(notes.length ? ['', ...notes] : []),
    '',
    `Exit codes: ${exitCodes}.`,
  ].join('\n');
}
