import test from 'ava';
import { decodeState, encodeState } from '../../src/core/state-codec.ts';

test('typed arrays and non-finite numbers survive a round trip bit for bit', (t) => {
  const f = new Float32Array([1.5, -0, NaN, 3e-38]);
  const state = { step: 3, rng: { words: [1, 2, 3, 4] }, m: f, ids: new Int32Array([7, -1]), nested: [{ u: new Uint8Array([255, 0]) }], inf: -Infinity };
  const enc = encodeState(state);
  t.is(enc.blobs.length, 3);
  const back = decodeState<typeof state>({ json: enc.json, blobs: enc.blobs.map((b) => b.slice()) });
  t.true(back.m instanceof Float32Array);
  t.deepEqual(new Uint8Array(back.m.buffer), new Uint8Array(f.buffer));
  t.deepEqual(Array.from(back.ids), [7, -1]);
  t.deepEqual(Array.from(back.nested[0].u), [255, 0]);
  t.is(back.inf, -Infinity);
  t.is(back.step, 3);
});

test('a missing blob is an error naming the source', (t) => {
  const enc = encodeState({ m: new Float32Array(2) });
  t.throws(() => decodeState({ json: enc.json, blobs: [] }, 'ckpt-000004/trainer'), { message: /ckpt-000004\/trainer: blob 0/ });
});
