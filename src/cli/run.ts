/**
 * `stella run [GRAPH] [--set key=value]... [--out DIR] [--resume DIR]`: the main job.
 *
 * With no arguments it runs graphs/continual-pretrain.yaml with STELLA on the generated corpus (made
 * once under .cache/corpus/), tiny config. After each task it prints the retrieval table; at the end it
 * writes, per train node, `results.json` (schema in src/eval/results.ts), `report.html` with pictures,
 * and the run's checkpoints under `checkpoints/`. SIGINT/SIGTERM finish the current step, checkpoint
 * and exit 0 with the resume command; `--resume DIR` continues exactly (same results, same weights).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { describeBackend, initBackend, type BackendInfo } from '../core/backend.ts';
import { cacheRoot } from '../core/cache-dir.ts';
import { modelConfig } from '../core/config.ts';
import { writeFileAtomic } from '../core/atomic-write.ts';
import { REPO_ROOT } from '../graph/container.ts';
import { GraphConfigError } from '../graph/errors.ts';
import { loadGraph, type LoadedGraph } from '../graph/loader.ts';
import { Evaluator } from '../graph/roles.ts';
import { runGraph, type RunResult } from '../graph/runner.ts';
import { StopController, type SignalSource } from '../graph/stop.ts';
import { CORPUS_VERSION, generateCorpus } from '../media/corpus.ts';
import { loadManifest } from '../media/manifest.ts';
import { RunSession, type RunSessionState, type TaskEvaluation } from '../method/run-session.ts';
import { RunCheckpointer, restoreRun } from '../method/run-checkpointer.ts';
import { finalize } from '../eval/evaluator.ts';
import { parseResults, type Results } from '../eval/results.ts';
import { writeReport } from '../eval/report.ts';
import type { ClipPictureInput } from '../eval/pictures.ts';
import type { TaskEvaluator } from '../eval/task-evaluator.ts';
import { median } from '../model/step-bench.ts';
import { preloadInitWeights, type ResolvedInit } from '../method/model-init.ts';
import { serializeSafetensors } from '../core/safetensors.ts';
import { graphEnv, listKeys, parseRunSets, RunParamError, runParamsSchema, type RunParams } from './run-params.ts';
import { collect, helpFooter } from './help.ts';

export const DEFAULT_GRAPH = path.join(REPO_ROOT, 'graphs', 'continual-pretrain.yaml');

export interface RunCommandOptions {
  graph?: string;
  sets?: string[];
  out?: string;
  resume?: string;
  quiet?: boolean;
  /** Where SIGINT/SIGTERM come from (tests inject one); default the process. */
  signals?: SignalSource | null;
  log?: (line: string) => void;
  /** Called with each committed checkpoint's directory. */
  onCheckpoint?: (path: string) => void;
}

export interface RunOutcome {
  outDir: string;
  /** results.json per train node (one for the main graph). */
  results: Record<string, Results>;
  /** Every task evaluation, in order (all train nodes). */
  evaluations: TaskEvaluation[];
  stopped: boolean;
  message?: string;
}

export async function runCommand(options: RunCommandOptions): Promise<RunOutcome> {
  const log = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  // While the live bars show on a TTY, lines go above them instead (the display hands over a writer).
  let print = log;
  const started = performance.now();
  // Resume: the saved parameters win; new --set values would change the run.
  const restored = options.resume ? await restoreRun(path.join(options.resume, 'checkpoints'), (m) => log(`warning: ${m}`)) : undefined;
  const saved = restored?.config.run as { params: RunParams; graph: string; graphOverrides: string[] } | undefined;
  if (saved && options.sets?.length) throw new RunParamError(`--resume continues the run as it was configured; drop --set (${options.sets.join(' ')})`);
  const { params, graphOverrides } = saved ?? { ...parseRunSets(options.sets ?? []), graph: undefined };
  const graphFile = path.resolve(saved?.graph ?? options.graph ?? DEFAULT_GRAPH);
  const outDir = path.resolve(options.resume ?? options.out ?? path.join('runs', `${params.selector.replace(/[^\w.+-]/g, '_')}-seed${params.seed}`));
  await mkdir(outDir, { recursive: true });

  const backend = await initBackend();
  log(describeBackend(backend));
  const config = modelConfig(params.config);
  const manifest = await dataManifest(params, log);
  const trainManifest = params.selector === 'multitask' ? await jointManifest(manifest) : manifest;

  const env = { ...process.env, ...graphEnv(params, trainManifest, outDir), STELLA_EVAL_MANIFEST: manifest };
  const loaded = await loadGraph(graphFile, { overrides: graphOverrides, env });
  const session = loaded.container.get<RunSessionState>(RunSession);
  session.manifest = manifest;
  // The authors' .pth checkpoints are read asynchronously, so before the train nodes build their models.
  const inits = [...loaded.nodes.values()].map((n) => (n.options.trainer as { init?: unknown } | undefined)?.init).filter((i): i is string => typeof i === 'string');
  session.weightsReader = await preloadInitWeights(inits, config);
  session.tasks = (await loadManifest(manifest)).tasks.map((t) => t.name);
  if (restored) {
    session.restored = restored.restored;
    session.losses.push(...restored.restored.losses);
    log(`resuming from ${restored.restored.from} (step ${restored.restored.steps})`);
  }
  session.checkpoints = new RunCheckpointer(session, {
    dir: path.join(outDir, 'checkpoints'), every: params.checkpoint.every, keep: params.checkpoint.keep, config,
    run: { params, graph: graphFile, graphOverrides }, onWarning: (m) => print(`warning: ${m}`), onSaved: options.onCheckpoint,
  });
  session.onEvaluation = (e) => { if (!options.quiet) print(retrievalTable(e, session.tasks)); };
  const total = options.quiet ? undefined : await plannedSteps(loaded);
  const progress = total ? { label: 'train steps', total, done: () => session.losses.length } : undefined;

  const stop = new StopController();
  const unlisten = options.signals === null ? () => {} : stop.listen(options.signals ?? process);
  let result: RunResult;
  try {
    result = await runGraph(loaded, {
      stop, signals: null, outDir,
      display: { mode: options.quiet ? 'quiet' : undefined, progress, attachLog: (write) => { print = write ?? log; } },
    });
  } finally {
    unlisten();
  }
  if (result.stopped) {
    const message = `stopped after step ${result.position.step}; checkpoint in ${path.join(outDir, 'checkpoints')}.\nResume with: stella run --resume ${outDir}`;
    log(message);
    return { outDir, results: {}, evaluations: session.evaluations, stopped: true, message };
  }

  const wallSeconds = (performance.now() - started) / 1000;
  const results: Record<string, Results> = {};
  const evaluator = loaded.container.get<TaskEvaluator>(Evaluator);
  const failures = [...result.errors, ...session.testSetErrors];
  if (session.trainers.size === 0 || [...session.trainers.keys()].some((node) => session.evaluationsOf(node).length === 0)) {
    const first = failures.slice(0, 5).map((e) => `  [${e.stage}] ${e.path}: ${e.message}`).join('\n');
    throw new Error(`the run produced no evaluation (${failures.length} error(s))${first ? `:\n${first}` : ''}`);
  }
  for (const [node, trainer] of session.trainers) {
    const stages = session.evaluationsOf(node);
    const dir = session.trainers.size === 1 ? outDir : path.join(outDir, node);
    const body = buildResults({ backend, params, graphFile, config: config.name, session, node, stages, result, wallSeconds, multitask: params.selector === 'multitask' });
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, 'results.json'), JSON.stringify(body, null, 2) + '\n');
    // The final model where people look for it (and what `init=` and `stella inspect --weights` take).
    await writeFileAtomic(path.join(dir, 'weights.safetensors'), serializeSafetensors(trainer.model.weights(), { config: JSON.stringify(config), node, selector: body.selector, steps: String(trainer.stepsDone) }));
    const clips = await reportClips(evaluator, trainer, params.report.clips, config.patchSize);
    const report = await writeReport(dir, body, { losses: session.losses.filter((l) => l.node === node), clips, title: `${trainer.strategyName} on ${path.basename(path.dirname(manifest))}` });
    log(`wrote ${path.join(dir, 'results.json')} and ${report.htmlPath}`);
    results[node] = body;
  }
  if (result.errors.length || session.testSetErrors.length) log(`${result.errors.length + session.testSetErrors.length} clip(s) failed; see "errors" in results.json`);
  return { outDir, results, evaluations: session.evaluations, stopped: false };
}

/** Corpora being generated by this process, so concurrent runs share one generation. */
const generating: Record<string, Promise<void>> = {};

/** The run's manifest: data.manifest, or the generated corpus (made once, cached by its parameters). */
async function dataManifest(p: RunParams, log: (l: string) => void): Promise<string> {
  if (p.data.manifest) return path.resolve(p.data.manifest);
  const d = p.data;
  const dir = path.join(cacheRoot(), 'corpus', `${p.config}-seed${p.seed}-${d.tasks}x${d.classes}-${d.train}+${d.test}-v${CORPUS_VERSION}`);
  const file = path.join(dir, 'manifest.json');
  if (!existsSync(file)) {
    generating[dir] ??= (async () => {
      log(`generating the synthetic corpus (${d.tasks} tasks × ${d.classes} classes) in ${dir}`);
      // Built beside and renamed into place, so concurrent runs never read a half-written corpus.
      const temporary = `${dir}.tmp-${process.pid}-${randomUUID()}`;
      await generateCorpus({ out: temporary, seed: p.seed, tasks: d.tasks, classes: d.classes, train: d.train, test: d.test, size: p.config });
      try {
        await rename(temporary, dir);
      } catch {
        await rm(temporary, { recursive: true, force: true }); // another process finished it first
      }
    })();
    await generating[dir];
  }
  return file;
}

/**
 * Training steps the run will take, over all train nodes (for the ETA): per task, ⌊epochs × clips /
 * batch size⌋ (⌈…⌉ without dropLast; a batch never spans tasks). Undefined when the graph is not a
 * single source → … → batch chain or its manifest cannot be read; clips that fail to decode make
 * the real count smaller.
 */
async function plannedSteps(loaded: LoadedGraph): Promise<number | undefined> {
  const nodes = (type: string) => [...loaded.nodes.values()].filter((n) => n.stage.type === type);
  const sources = nodes('source'), batches = nodes('batch'), trainers = nodes('train').length;
  if (sources.length !== 1 || batches.length !== 1 || trainers === 0) return undefined;
  const s = sources[0].options as { manifest: string; split: string; epochs: number; tasks: string[]; limit: number };
  const b = batches[0].options as { size: number; dropLast: boolean };
  const manifest = await loadManifest(s.manifest).catch(() => undefined);
  if (!manifest) return undefined;
  let steps = 0;
  for (const task of manifest.tasks) {
    if (s.tasks.length && !s.tasks.includes(task.name)) continue;
    const rows = s.split === 'test' ? task.test.length : s.split === 'train' ? task.train.length : 0;
    const clips = s.epochs * (s.limit > 0 ? Math.min(rows, s.limit) : rows);
    steps += b.dropLast ? Math.floor(clips / b.size) : Math.ceil(clips / b.size);
  }
  return steps * trainers;
}

/** Multitask: every task's training clips as one task, beside the original manifest. */
async function jointManifest(file: string): Promise<string> {
  const m = await loadManifest(file);
  const dir = path.dirname(file);
  const rel = (p: string) => path.relative(dir, p);
  const joint = {
    seed: m.seed,
    tasks: [{
      name: 'all',
      classes: m.tasks.flatMap((t) => t.classes),
      train: m.tasks.flatMap((t) => t.train.map((c) => ({ path: rel(c.path), label: c.label }))),
      test: [],
    }],
  };
  const out = path.join(dir, 'manifest.multitask.json');
  await writeFile(out, JSON.stringify(joint, null, 1) + '\n');
  return out;
}

function buildResults(a: {
  backend: BackendInfo; params: RunParams; graphFile: string; config: string; session: RunSessionState; node: string;
  stages: TaskEvaluation[]; result: RunResult; wallSeconds: number; multitask: boolean;
}): Results {
  const tasks = a.session.tasks;
  // Multitask trains one joint stage; its evaluation fills every row, so A is its mean and F is 0.
  const stages = a.multitask ? tasks.map(() => a.stages[a.stages.length - 1]) : a.stages;
  if (stages.length !== tasks.length) throw new Error(`train node '${a.node}' was evaluated after ${stages.length} of ${tasks.length} tasks`);
  const final = finalize(stages.map((s) => s.evaluation), tasks);
  const trainer = a.session.trainers.get(a.node)!;
  const stepMs = a.result.steps.filter((s) => s.timings?.stepMs !== undefined).map((s) => s.timings!.stepMs);
  return parseResults({
    backend: a.backend.name,
    selector: trainer.strategyName ?? a.params.selector,
    config: { model: a.config, ...a.params, graph: path.relative(REPO_ROOT, a.graphFile), node: a.node },
    tasks,
    ...final,
    memory: { bufferBytes: trainer.bufferBytes, peakTensorBytes: trainer.peakTensorBytes, peakRssBytes: trainer.peakRssBytes },
    timing: { wallSeconds: a.wallSeconds, stepMsMedian: stepMs.length ? median(stepMs) : 0 },
    errors: [...a.result.errors, ...a.session.testSetErrors],
    metrics: a.result.metrics as unknown as Record<string, unknown>,
    init: relativeInit(a.session.inits.get(a.node)),
  });
}

/** The init as results.json shows it: files inside the repository relative to it, so results compare across clones. */
function relativeInit(init: ResolvedInit | undefined): ResolvedInit | undefined {
  if (!init || init.backbone === 'none') return init;
  const rel = path.relative(REPO_ROOT, init.backbone);
  return { ...init, backbone: rel.startsWith('..') ? init.backbone : rel };
}

/** Test clips with frames kept by the evaluator, with the final model's importance and selection. */
async function reportClips(evaluator: TaskEvaluator, trainer: RunSessionState['trainers'] extends Map<string, infer T> ? T : never, count: number, patch: number): Promise<ClipPictureInput[]> {
  if (count === 0) return [];
  const continual = await evaluator.load();
  const clips = continual.clips.filter((c) => c.frames && c.fbank).slice(0, count);
  if (clips.length === 0) return [];
  const scores = continual.importanceFor({ backbone: trainer.model.backbone, avm: trainer.model.avm }, clips);
  return clips.map((c, i) => ({
    path: c.path, frames: c.frames!, fbank: c.fbank!, patch,
    videoImportance: scores[i].importanceV, audioImportance: scores[i].importanceA,
    videoSelected: scores[i].selectedV, audioSelected: scores[i].selectedA,
  }));
}

/** One stage's retrieval per task category, as a small table. */
export function retrievalTable(e: TaskEvaluation, tasks: readonly string[]): string {
  const f = (x: number) => x.toFixed(1).padStart(6);
  const lines = [`after task ${e.task + 1}/${tasks.length} (${e.taskName}, step ${e.step}): zero-shot retrieval, %`,
    `  ${'task'.padEnd(14)}   a2v R@1   R@5  R@10 │ v2a R@1   R@5  R@10`];
  for (const t of tasks) {
    const r = e.evaluation.retrieval.perCategory[t];
    if (!r) continue;
    lines.push(`  ${t.padEnd(14)}  ${f(r.a2v.R1)}${f(r.a2v.R5)}${f(r.a2v.R10)} │  ${f(r.v2a.R1)}${f(r.v2a.R5)}${f(r.v2a.R10)}`);
  }
  const all = e.evaluation.retrieval.all;
  lines.push(`  ${'all'.padEnd(14)}  ${f(all.a2v.R1)}${f(all.a2v.R5)}${f(all.a2v.R10)} │  ${f(all.v2a.R1)}${f(all.v2a.R5)}${f(all.v2a.R10)}`);
  return lines.join('\n');
}

/** `key=default` for every run key, from the schema (so the help cannot drift from it); `(graph)` = the graph's default. */
function runKeyDefaults(): string[] {
  const defaults = runParamsSchema.parse({}) as Record<string, unknown>;
  return listKeys().map((key) => {
    const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults);
    return `${key}=${value === undefined ? '(graph)' : value === '' ? "''" : String(value)}`;
  });
}

function wrap(words: string[], indent: string, width = 100): string[] {
  const lines: string[] = [];
  for (const w of words) {
    if (lines.length && lines[lines.length - 1].length + w.length + 1 <= width) lines[lines.length - 1] += ` ${w}`;
    else lines.push(indent + w);
  }
  return lines;
}

export function register(program: Command): void {
  program
    .command('run [graph]')
    .description('continual audio-video pre-training through a YAML graph (default: STELLA on the generated corpus)')
    .option('--set <key=value>', 'override a run key (selector, train.epochs, data.manifest, …) or a graph key (nodes.…); repeatable', collect, [])
    .option('--out <dir>', 'output folder (default runs/<selector>-seed<seed>)')
    .option('--resume <dir>', 'continue the run in DIR from its newest valid checkpoint')
    .option('--quiet', 'no progress display or tables')
    .option('--json', 'print { outDir, results: { <train node>: results.json }, stopped } as JSON at the end (implies --quiet)')
    .addHelpText('after', () => helpFooter(
      [
        'stella run                                         # STELLA, tiny, generated corpus',
        'stella run --set selector=der++ --set train.epochs=2',
        'stella run --set data.tasks=2 --set data.classes=2 --set train.epochs=1 --out runs/small',
        'stella run --set data.manifest=data/vggsound.json --set config=base',
        'stella run graphs/continual-pretrain.yaml --set nodes.decode.options.concurrency=1   # a graph key',
        'stella run --resume runs/stella-seed2021           # continue after a stop or crash',
      ],
      '0 done (also after a graceful stop), 1 the run failed, 2 bad arguments (an unknown --set key, a bad value, an invalid graph)',
      [
        'Run keys (--set key=value, defaults shown); other keys starting with nodes., defaults., plugins go to the graph:',
        ...wrap(runKeyDefaults(), '  '),
        '',
        'Writes DIR/results.json, DIR/report.html, DIR/pictures/, DIR/checkpoints/, DIR/steps.json.',
        'Progress: on a TTY the live stage bars and a steps bar with ETA (stderr); a plain line every 10 s otherwise.',
        'SIGINT/SIGTERM: the current step finishes, a checkpoint is written and the resume command printed.',
      ],
    ))
    .action(async (graph: string | undefined, opts: { set: string[]; out?: string; resume?: string; quiet?: boolean; json?: boolean }) => {
      try {
        const outcome = await runCommand({ graph, sets: opts.set, out: opts.out, resume: opts.resume, quiet: opts.quiet || opts.json, log: opts.json ? () => {} : undefined });
        if (opts.json) process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
        process.exitCode = 0;
      } catch (e) {
        if (e instanceof RunParamError || e instanceof GraphConfigError) {
          process.stderr.write(`stella run: ${(e as Error).message}\n`);
          process.exitCode = 2;
          return;
        }
        throw e;
      }
    });
}
