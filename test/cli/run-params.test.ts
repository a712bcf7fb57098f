import test from 'ava';
import { graphEnv, parseRunSets, RunParamError } from '../../src/cli/run-params.ts';

test('unset training keys stay unset, so a graph keeps its own defaults; set ones reach the graph', (t) => {
  const { params } = parseRunSets([]);
  const env = graphEnv(params, 'm.json', 'out');
  for (const key of ['STELLA_EPOCHS', 'STELLA_BATCH', 'STELLA_MEMORY', 'STELLA_LR', 'STELLA_INIT', 'STELLA_AVM_INIT']) t.false(key in env, key);
  t.like(env, { STELLA_SELECTOR: 'stella', STELLA_MANIFEST: 'm.json', STELLA_OUT: 'out', STELLA_SEED: '2021' });
  const set = parseRunSets(['train.lr=0.002', 'train.epochs=3', 'init=none', 'avmInit=random']).params;
  t.like(graphEnv(set, 'm.json', 'out'), { STELLA_LR: '0.002', STELLA_EPOCHS: '3', STELLA_INIT: 'none', STELLA_AVM_INIT: 'random' });
});

test('init and avmInit are run keys; a bad avmInit or an unknown key is refused naming it', (t) => {
  t.is(parseRunSets(['init=models/x.pth']).params.init, 'models/x.pth');
  t.throws(() => parseRunSets(['avmInit=maybe']), { instanceOf: RunParamError, message: /--set 'avmInit'/ });
  t.throws(() => parseRunSets(['inti=none']), { instanceOf: RunParamError, message: /--set 'inti': unknown key; run keys are .*init, avmInit/ });
});
