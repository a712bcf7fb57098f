/**
 * `stella verify-golden DIR`: runs every `*.json` golden case in DIR through its verifier
 * (dispatch by `config.case`, src/core/golden-cases.ts) and prints one line per case:
 *
 *   PASS g6_backbone.json 5.722e-6
 *   FAIL g1_avm.json 3.1e-2
 *     logits: max abs error 3.100e-2 (worst at flat index 2)
 *
 * Exit code 0 only when every case passes; 1 when any fails or none is found.
 * Example: `stella verify-golden ../shared/golden`.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../core/backend.ts';
import { loadGolden } from '../core/golden.ts';
import { verifyCase } from '../core/golden-cases.ts';
import type { CaseResult } from '../core/golden-verify.ts';
import { helpFooter } from './help.ts';

export interface CaseLine {
  file: string;
  result: CaseResult;
}

/** Verifies every case file of `dir` (sorted by name); never throws for a bad case. */
export async function verifyGoldenDir(dir: string): Promise<CaseLine[]> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    throw new Error(`verify-golden: cannot read directory ${dir}: ${(e as Error).message}`);
  }
  const lines: CaseLine[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let result: CaseResult;
    try {
      result = await verifyCase(loadGolden(file));
    } catch (e) {
      // A verifier module that cannot load (not written yet) or a malformed case file.
      result = { maxError: Infinity, ok: false, failures: [`${name}: ${(e as Error).message.split('\n')[0]}`] };
    }
    lines.push({ file: name, result });
  }
  return lines;
}

export function formatCaseLine({ file, result }: CaseLine): string {
  const head = `${result.ok ? 'PASS' : 'FAIL'} ${file} ${Number.isFinite(result.maxError) ? result.maxError.toExponential(3) : String(result.maxError)}`;
  return [head, ...(result.ok ? [] : result.failures.map((f) => `  ${f}`))].join('\n');
}

/** One case as plain JSON (an infinite error, from a case that could not run, becomes null). */
export function caseJson({ file, result }: CaseLine): { file: string; ok: boolean; maxError: number | null; failures: string[] } {
  return { file, ok: result.ok, maxError: Number.isFinite(result.maxError) ? result.maxError : null, failures: result.failures };
}

export function register(program: Command): void {
  program
    .command('verify-golden')
    .description('check this port against the golden reference cases in DIR')
    .argument('<dir>', 'folder holding the golden *.json cases (and their side files)')
    .option('--json', 'print [{ file, ok, maxError, failures }] instead of PASS/FAIL lines (maxError null when a case could not run)')
    .addHelpText('after', helpFooter(
      ['stella verify-golden ../shared/golden', 'stella verify-golden ../shared/golden --json'],
      '0 every case passes, 1 any case fails or none is found or DIR is unreadable, 2 usage error',
    ))
    .action(async (dir: string, opts: { json?: boolean }) => {
      await initBackend();
      const lines = await verifyGoldenDir(dir);
      if (!lines.length) {
        process.stderr.write(`verify-golden: no *.json golden cases in ${dir}\n`);
        process.exitCode = 1;
        return;
      }
      if (opts.json) process.stdout.write(JSON.stringify(lines.map(caseJson), null, 2) + '\n');
      else for (const line of lines) process.stdout.write(formatCaseLine(line) + '\n');
      process.exitCode = lines.every((l) => l.result.ok) ? 0 : 1;
    });
}
