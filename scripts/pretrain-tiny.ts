/**
 * `npm run pretrain:tiny`: remakes models/tiny-pretrained.safetensors from a seed, as the authors'
 * protocol does before any continual run (spec §3.5 "Checkpoints", §4.5):
 *   1. the pre-training corpus (`stella corpus --kind pretrain`, seed 7: 32 classes × 100 train + 4
 *      held-out clips, none shared with the continual corpus), made once under .cache/pretrain/;
 *   2. backbone pre-training, graphs/pretrain.yaml (cav-pretrain: MAE + contrastive), from scratch;
 *   3. AVM pre-training, graphs/pretrain-avm.yaml (avm-pretrain: backbone frozen), from stage 2's weights;
 *   4. the result to models/tiny-pretrained.safetensors, and the figures the model card quotes to
 *      models/tiny-pretrained.json (steps, wall time, final losses, held-out retrieval, localisation).
 * Runs go to runs/pretrain-tiny/{backbone,avm}; a stage whose results.json exists is not run again
 * (`--fresh` reruns both). Extra `--set` values go to both stages (e.g. --set train.epochs=1).
 */
import { existsSync } from 'node:fs';
import { copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FINAL_WEIGHTS, runCommand } from '../src/cli/run.ts';
import { CORPUS_VERSION, generateCorpus } from '../src/media/corpus.ts';
import { parseResults, type Results } from '../src/eval/results.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SEED = 7;
const CORPUS = { classes: 32, train: 100, test: 4 };

async function main(argv: string[]): Promise<void> {
  const fresh = argv.includes('--fresh');
  const sets: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--set') sets.push(argv[++i]);
  const log = (line: string) => process.stdout.write(line + '\n');

  const corpusDir = path.join(ROOT, '.cache', 'pretrain', `tiny-seed${SEED}-${CORPUS.classes}x${CORPUS.train}+${CORPUS.test}-v${CORPUS_VERSION}`);
  const manifest = path.join(corpusDir, 'manifest.json');
  if (!existsSync(manifest)) {
    log(`pretrain: generating the pre-training corpus in ${corpusDir}`);
    const temporary = `${corpusDir}.tmp-${process.pid}`;
    await generateCorpus({ out: temporary, kind: 'pretrain', seed: SEED, ...CORPUS, size: 'tiny' }, (done, total) => {
      if (done % 500 === 0 || done === total) log(`  ${done}/${total} clips`);
    });
    await rename(temporary, corpusDir);
  }

  const out = path.join(ROOT, 'runs', 'pretrain-tiny');
  const stage = async (name: string, graph: string, extra: string[]): Promise<Results> => {
    const dir = path.join(out, name);
    const file = path.join(dir, 'results.json');
    if (fresh) await rm(dir, { recursive: true, force: true });
    if (!existsSync(file)) {
      log(`pretrain: ${name} (${graph})`);
      await runCommand({ graph: path.join(ROOT, 'graphs', graph), sets: [`data.manifest=${manifest}`, `seed=${SEED}`, 'checkpoint.every=100', 'report.clips=4', 'nodes.decode.options.concurrency=6', ...extra, ...sets], out: dir, quiet: true, log });
    }
    return parseResults(JSON.parse(await readFile(file, 'utf8')), file);
  };
  const started = performance.now();
  const backbone = await stage('backbone', 'pretrain.yaml', ['init=none']);
  const avm = await stage('avm', 'pretrain-avm.yaml', [`init=${path.join(out, 'backbone', FINAL_WEIGHTS)}`]);

  const target = path.join(ROOT, 'models', 'tiny-pretrained.safetensors');
  await copyFile(path.join(out, 'avm', FINAL_WEIGHTS), target);
  const steps = async (name: string) => JSON.parse(await readFile(path.join(out, name, 'steps.json'), 'utf8'));
  const summary = {
    command: 'npm run pretrain:tiny' + (sets.length ? ` -- ${sets.map((s) => `--set ${s}`).join(' ')}` : ''),
    corpus: { kind: 'pretrain', seed: SEED, ...CORPUS, version: CORPUS_VERSION },
    stages: { backbone: describe(backbone, await steps('backbone')), avm: describe(avm, await steps('avm')) },
    wallSecondsThisInvocation: (performance.now() - started) / 1000,
  };
  await writeFile(path.join(ROOT, 'models', 'tiny-pretrained.json'), JSON.stringify(summary, null, 2) + '\n');
  log(`pretrain: wrote ${path.relative(ROOT, target)} and models/tiny-pretrained.json`);
}

/** Steps, wall time, the mean of each loss over the last 50 steps, held-out retrieval and localisation. */
function describe(r: Results, record: { steps?: { losses?: Record<string, number> }[] } | { losses?: Record<string, number> }[]) {
  const rows = (Array.isArray(record) ? record : record.steps ?? []).filter((s) => s.losses && Object.keys(s.losses).length);
  const tail = rows.slice(-50);
  const finalLosses: Record<string, number> = {};
  for (const key of Object.keys(tail[0]?.losses ?? {})) finalLosses[key] = tail.reduce((s, x) => s + (x.losses![key] ?? 0), 0) / tail.length;
  const recall = (d: 'a2v' | 'v2a') => ({ R1: r.retrieval[d].R1[0][0], R5: r.retrieval[d].R5[0][0], R10: r.retrieval[d].R10[0][0] });
  return {
    steps: rows.length, wallSeconds: r.timing.wallSeconds, stepMsMedian: r.timing.stepMsMedian, finalLosses,
    heldOutRetrieval: { a2v: recall('a2v'), v2a: recall('v2a') }, localization: r.localization, graph: r.config.graph,
  };
}

main(process.argv.slice(2)).catch((e) => { process.stderr.write(`pretrain: ${(e as Error).stack ?? e}\n`); process.exit(1); });
