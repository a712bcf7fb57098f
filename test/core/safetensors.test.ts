/** safetensors: round trip, header padding, the golden file, and clear errors for bad files. */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSafetensors, readSafetensors, serializeSafetensors } from '../../src/core/safetensors.ts';
import { golden } from '../helpers.ts';

test('round-trips F32 and I32 tensors with metadata; header padded to 8 bytes', (t) => {
  const bytes = serializeSafetensors(new Map([
    ['a.weight', { shape: [2, 3], dtype: 'float32' as const, data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
    ['ids', { shape: [4], dtype: 'int32' as const, data: Int32Array.from([3, 1, 0, 2]) }],
  ]), { format: 'pt' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  t.is(headerLength % 8, 0);
  const back = parseSafetensors(bytes, 'mem');
  t.deepEqual(back.metadata, { format: 'pt' });
  t.deepEqual(Array.from(back.tensors.get('a.weight')!.data), [1, 2, 3, 4, 5, -6.5]);
  t.deepEqual(back.tensors.get('a.weight')!.shape, [2, 3]);
  t.is(back.tensors.get('ids')!.dtype, 'int32');
  t.deepEqual(Array.from(back.tensors.get('ids')!.data), [3, 1, 0, 2]);
});

test('reads the G6 weights: 110 tensors, 831 520 parameters, config metadata', (t) => {
  const f = readSafetensors(golden('g6_backbone.safetensors'));
  t.is(f.tensors.size, 110);
  t.is([...f.tensors.values()].reduce((n, x) => n + x.data.length, 0), 831520);
  t.deepEqual(f.tensors.get('patch_embed_v.proj.weight')!.shape, [96, 3, 16, 16]);
  t.is(JSON.parse(f.metadata.config).encoder_embed_dim, 96);
});

test('truncated, corrupt and inconsistent files fail naming the file and tensor', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stella-st-'));
  const good = serializeSafetensors(new Map([['w', { shape: [4], dtype: 'float32' as const, data: new Float32Array(4) }]]));
  const cut = path.join(dir, 'cut.safetensors');
  writeFileSync(cut, good.subarray(0, good.length - 4));
  t.throws(() => readSafetensors(cut), { message: /cut\.safetensors: tensor 'w' data \[0, 16\) lies outside the 12 data bytes/ });
  const tiny = path.join(dir, 'tiny.safetensors');
  writeFileSync(tiny, good.subarray(0, 5));
  t.throws(() => readSafetensors(tiny), { message: /tiny\.safetensors: truncated/ });
  const garbage = Uint8Array.from(good);
  garbage[9] = 0x7b; garbage[10] = 0x7b;
  t.throws(() => parseSafetensors(garbage, 'bad.st'), { message: /bad\.st: corrupt safetensors header/ });
  t.throws(() => readSafetensors(path.join(dir, 'absent.safetensors')), { message: /absent\.safetensors: cannot read/ });
  rmSync(dir, { recursive: true, force: true });
});
