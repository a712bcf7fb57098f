// Passes TAP through and closes with "N passed, N failed[, N skipped]"; exits non-zero on failures.
import { createInterface } from 'node:readline';
const extraAt = process.argv.indexOf('--extra-failures');
let passed = 0, failed = extraAt > 0 ? Number(process.argv[extraAt + 1]) || 0 : 0, skipped = 0, bailed = false;
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(line + '\n');
  if (/^ok \d+/.test(line)) (/# (SKIP|TODO)/i.test(line) ? skipped++ : passed++);
  else if (/^not ok \d+/.test(line)) (/# TODO/i.test(line) ? skipped++ : failed++);
  else if (/^Bail out!/.test(line)) bailed = true;
}
if (bailed && failed === 0) failed = 1;
if (passed === 0 && failed === 0) failed = 1; // a run with no tests is a failure
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
