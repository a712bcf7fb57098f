/**
 * Golden-case verification registry. Each domain contributes a verifier for the cases it owns
 * (media: G4, G5; model: G1, G6; method: G2, G3); `stella verify-golden` and the tests run them.
 * A verifier must work on any case file of its kind, whatever its seed or shapes: it reads sizes
 * from the tensors and the case's `config`, never from constants.
 */
import path from 'node:path';
import type { GoldenCase } from './golden.ts';

export interface CaseResult {
  /** Largest error against the tolerance's scale (absolute error for real values, mismatches for exact ones). */
  maxError: number;
  ok: boolean;
  /** One line per failed quantity, naming it. */
  failures: string[];
}

/** `dir` is the case file's folder (G2 reads g1_avm.json beside it; G5 its wav files). */
export type CaseVerifier = (c: GoldenCase, dir: string) => Promise<CaseResult>;

/** Accumulates named checks into a CaseResult. */
export class CaseChecker {
  maxError = 0;
  readonly failures: string[] = [];
  /** Records a real-valued comparison; `excess > 0` is a failure. */
  close(name: string, cmp: { maxAbs: number; worstExcess: number; worstIndex: number; ok: boolean }): void {
    this.maxError = Math.max(this.maxError, cmp.maxAbs);
    if (!cmp.ok) this.failures.push(`${name}: max abs error ${cmp.maxAbs.toExponential(3)} (worst at flat index ${cmp.worstIndex})`);
  }
  /** Records an exact comparison by mismatch count. */
  exact(name: string, mismatches: number): void {
    if (mismatches > 0) {
      this.maxError = Math.max(this.maxError, mismatches);
      this.failures.push(`${name}: ${mismatches} mismatching elements`);
    }
  }
  fail(message: string): void {
    this.failures.push(message);
    this.maxError = Math.max(this.maxError, Infinity);
  }
  result(): CaseResult {
    return { maxError: this.maxError, ok: this.failures.length === 0, failures: this.failures };
  }
}

const verifiers = new Map<string, () => Promise<CaseVerifier>>();

/** Registers a lazily imported verifier for a case id (`config.case`, e.g. 'G5'). */
export function registerVerifier(caseId: string, load: () => Promise<CaseVerifier>): void {
  verifiers.set(caseId, load);
}

export function knownCases(): string[] {
  return [...verifiers.keys()].sort();
}

export async function verifyCase(c: GoldenCase): Promise<CaseResult> {
  const id = String(c.config.case ?? '');
  const load = verifiers.get(id);
  if (!load) {
    return { maxError: Infinity, ok: false, failures: [`${path.basename(c.file)}: unknown case '${id}' (known: ${knownCases().join(', ')})`] };
  }
  const verify = await load();
  try {
    return await verify(c, path.dirname(c.file));
  } catch (e) {
    return { maxError: Infinity, ok: false, failures: [`${path.basename(c.file)}: ${(e as Error).message}`] };
  }
}
