import test from 'ava';
import { loadGolden } from '../../src/core/golden.ts';
import { verifyG3 } from '../../src/method/golden-checks.ts';
import { golden } from '../helpers.ts';

test('G3: all 20 time-chunk sub-cases exact, chunk scores within 1e-6', async (t) => {
  const g3 = loadGolden(golden('g3_core_audio.json'));
  t.is(g3.config.subcases.length, 20);
  const r = await verifyG3(g3);
  t.deepEqual(r.failures, []);
  t.true(r.ok);
});
