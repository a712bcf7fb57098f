/** Which module verifies which golden case; imported lazily so a verifier loads only what it needs. */
import { registerVerifier } from './golden-verify.ts';

registerVerifier('G1', async () => (await import('../model/golden-checks.ts')).verifyG1);
registerVerifier('G2', async () => (await import('../method/golden-checks.ts')).verifyG2);
registerVerifier('G3', async () => (await import('../method/golden-checks.ts')).verifyG3);
registerVerifier('G4', async () => (await import('../media/golden-checks.ts')).verifyG4);
registerVerifier('G5', async () => (await import('../media/golden-checks.ts')).verifyG5);
registerVerifier('G6', async () => (await import('../model/golden-checks.ts')).verifyG6);

export { verifyCase, knownCases } from './golden-verify.ts';
