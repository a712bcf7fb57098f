/** `stella verify-golden`: PASS on the real model cases, FAIL on a corrupted tensor, a truncated weights file and an unknown case. */
import test from 'ava';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../src/core/backend.ts';
import { formatCaseLine, verifyGoldenDir } from '../../src/cli/verify-golden.ts';
import { golden } from '../helpers.ts';

test.before(async () => { await initBackend(); });

function scratch(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'stella-golden-'));
}

test('passes on the untouched G1 and G6 cases', async (t) => {
  const dir = scratch();
  for (const f of ['g1_avm.json', 'g6_backbone.json', 'g6_backbone.safetensors']) copyFileSync(golden(f), path.join(dir, f));
  const lines = await verifyGoldenDir(dir);
  t.deepEqual(lines.map((l) => formatCaseLine(l).split(' ')[0]), ['PASS', 'PASS']);
  rmSync(dir, { recursive: true, force: true });
});

test('fails a case whose expected tensor was corrupted, naming the quantity', async (t) => {
  const dir = scratch();
  const json = JSON.parse(readFileSync(golden('g1_avm.json'), 'utf8'));
  const bytes = Buffer.from(json.tensors.logits.data_b64, 'base64');
  const logits = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  logits[2] += 0.01;
  json.tensors.logits.data_b64 = Buffer.from(logits.buffer).toString('base64');
  writeFileSync(path.join(dir, 'g1_bad.json'), JSON.stringify(json));
  const [line] = await verifyGoldenDir(dir);
  t.false(line.result.ok);
  const text = formatCaseLine(line);
  t.regex(text, /^FAIL g1_bad\.json 1\.0\d*e-2/);
  t.regex(text, /\n {2}logits: max abs error .* flat index 2/);
  rmSync(dir, { recursive: true, force: true });
});

test('fails G6 when its weights file is truncated, naming the file', async (t) => {
  const dir = scratch();
  copyFileSync(golden('g6_backbone.json'), path.join(dir, 'g6_backbone.json'));
  const weights = readFileSync(golden('g6_backbone.safetensors'));
  writeFileSync(path.join(dir, 'g6_backbone.safetensors'), weights.subarray(0, weights.length - 1000));
  const [line] = await verifyGoldenDir(dir);
  t.false(line.result.ok);
  t.regex(line.result.failures.join('\n'), /g6_backbone\.safetensors: tensor '.*' data .* outside/);
  rmSync(dir, { recursive: true, force: true });
});

test('fails an unknown case id with the list of known cases', async (t) => {
  const dir = scratch();
  writeFileSync(path.join(dir, 'weird.json'), JSON.stringify({ config: { case: 'G99' }, tensors: {} }));
  const [line] = await verifyGoldenDir(dir);
  t.false(line.result.ok);
  t.is(line.result.maxError, Infinity);
  t.regex(formatCaseLine(line), /FAIL weird\.json Infinity\n {2}weird\.json: unknown case 'G99' \(known: G1, G2/);
  rmSync(dir, { recursive: true, force: true });
});
