/**
 * The common end of every subcommand's `--help`: an `Examples:` block and an `Exit codes:` line, so
 * each command documents both the same way (test/cli/help.test.ts checks every command has them).
 *
 * Example:
 *   cmd.addHelpText('after', helpFooter(['stella doctor --json'], '0 printed, 1 no backend could start'));
 */
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
