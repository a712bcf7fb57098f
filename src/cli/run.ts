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
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { describeBackend, initBackend, type BackendInfo } from '../core/backend.ts';
import { cacheRoot } from '../core/cache-dir.ts';
import { modelConfig } from '../core/config.ts';
import { writeFileAtomic } from '../core/atomic-write.ts';
import { resolveCheckpointDir, RUN_CHECKPOINTS } from '../core/checkpoint.ts';
import { serializeSafetensors } from '../core/safetensors.ts';
import { REPO_ROOT } from '../graph/container.ts';
import { GraphConfigError, GraphFileError } from '../graph/errors.ts';
import { loadGraph, type LoadedGraph } from '../graph/loader.ts';
import { Evaluator } from '../method/roles.ts';
import { runGraph, type RunResult } from '../graph/runner.ts';
import { StopController, type SignalSource } from '../graph/stop.ts';
import { CORPUS_VERSION, generateCorpus } from '../media/corpus.ts';
import { loadManifest } from '../media/manifest.ts';
import { RunSession, type RunSessionState, type TaskEvaluation } from '../method/run-session.ts';
import { RunCheckpointer, restoreRun } from '../method/run-checkpointer.ts';
import { finalize } from '../eval/evaluator.ts';
import { parseResults, type Results } from '../eval/results.ts';
import { chanceLevels, type RecallRow } from '../eval/retrieval.ts';
import { writeReport } from '../eval/report.ts';
import type { ClipPictureInput } from '../eval/pictures.ts';
import type { TaskEvaluator } from '../eval/task-evaluator.ts';
import { median } from '../model/step-bench.ts';
import { preloadInitWeights, type ResolvedInit } from '../method/model-init.ts';
import { graphEnv, listKeys, parseRunSets, RUN_KEY_PLACEHOLDERS, RunParamError, runParamsSchema, type RunParams } from './run-params.ts';
import { collect, helpFooter } from './help.ts';

/** The final model of each train node, at the top of its output folder. */
export const FINAL_WEIGHTS = 'weights.safetensors';

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
  /** Redis for graph nodes on `device: redis` (default $STELLA_REDIS). */
  redis?: string;
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
  // --resume takes the run folder or its checkpoints/ folder; the run keeps writing into the run folder.
  const checkpointDir = options.resume ? await resolveCheckpointDir(options.resume) : undefined;
  const resumeDir = checkpointDir && path.basename(checkpointDir) === RUN_CHECKPOINTS ? path.dirname(checkpointDir) : options.resume;
  const restored = checkpointDir ? await restoreRun(checkpointDir, (m) => log(`warning: ${m}`)) : undefined;
  const saved = restored?.config.run as { params: RunParams; graph: string; graphOverrides: string[] } | undefined;
  if (saved && options.sets?.length) throw new RunParamError(`--resume continues the run as it was configured; drop --set (${options.sets.join(' ')})`);
  const { params, graphOverrides } = saved ?? { ...parseRunSets(options.sets ?? []), graph: undefined };
  const graphFile = path.resolve(saved?.graph ?? options.graph ?? DEFAULT_GRAPH);
  await requireEvaluateNode(graphFile);
  const outDir = path.resolve(resumeDir ?? options.out ?? path.join('runs', `${params.selector.replace(/[^\w.+-]/g, '_')}-seed${params.seed}`));
  await mkdir(outDir, { recursive: true });

  const backend = await initBackend();
  log(describeBackend(backend));
  const config = modelConfig(params.config);
  const manifest = await dataManifest(params, log);
  const trainManifest = params.selector === 'multitask' ? await jointManifest(manifest) : manifest;

  const env = { ...process.env, ...graphEnv(params, trainManifest, outDir), STELLA_EVAL_MANIFEST: manifest };
  const loaded = await loadGraph(graphFile, { overrides: graphOverrides, env, origins: setOrigins(options.sets ?? []) });
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
  const checkpoints = new RunCheckpointer(session, {
    dir: path.join(outDir, RUN_CHECKPOINTS), every: params.checkpoint.every, keep: params.checkpoint.keep, config,
    run: { params, graph: graphFile, graphOverrides }, onWarning: (m) => print(`warning: ${m}`), onSaved: options.onCheckpoint,
  });
  session.checkpoints = checkpoints;
  // Several train nodes (A/B): each table is headed with its node and selector.
  const armLabel = (node: string) => {
    if (session.trainers.size < 2) return undefined;
    const name = session.trainers.get(node)?.strategyName;
    return name ? `${node}: ${name}` : node;
  };
  session.onEvaluation = (e) => { if (!options.quiet) print(retrievalTable(e, session.tasks, armLabel(e.trainer))); };
  const total = options.quiet ? undefined : await plannedSteps(loaded);
  const progress = total ? { label: 'train steps', total, done: () => session.losses.length } : undefined;

  const stop = new StopController();
  const unlisten = options.signals === null ? () => {} : stop.listen(options.signals ?? process);
  let result: RunResult;
  try {
    result = await runGraph(loaded, {
      stop, signals: null, outDir, redis: options.redis,
      display: { mode: options.quiet ? 'quiet' : undefined, progress, attachLog: (write) => { print = write ?? log; } },
    });
  } finally {
    unlisten();
  }
  if (result.stopped) {
    const message = `stopped after step ${result.position.step}; checkpoint in ${path.join(outDir, RUN_CHECKPOINTS)}.\nResume with: ${checkpoints.resumeCommand()}`;
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
    // The final model where people look for it (what `init=`, `stella inspect --weights` and score-only take).
    await writeFileAtomic(path.join(dir, FINAL_WEIGHTS), serializeSafetensors(trainer.model.weights(), { config: JSON.stringify(config), node, selector: body.selector, steps: String(trainer.stepsDone) }));
    const clips = await reportClips(evaluator, trainer, params.report.clips, config.patchSize);
    const report = await writeReport(dir, body, { losses: session.losses.filter((l) => l.node === node), clips, title: `${trainer.strategyName} on ${path.basename(path.dirname(manifest))}` });
    log(`wrote ${path.join(dir, 'results.json')}, ${report.htmlPath} and ${path.join(dir, FINAL_WEIGHTS)}`);
    results[node] = body;
  }
  if (result.errors.length || session.testSetErrors.length) log(`${result.errors.length + session.testSetErrors.length} clip(s) failed; see "errors" in results.json`);
  return { outDir, results, evaluations: session.evaluations, stopped: false };
}

/**
 * `stella run` writes results.json from the graph's evaluations, so a graph without an `evaluate`
 * node is refused before any corpus is made or clip decoded, as is a missing graph file.
 */
async function requireEvaluateNode(file: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new GraphFileError(file, `cannot read the graph file (${(error as Error).message})`);
  }
  let nodes: Record<string, { stage?: unknown }> | undefined;
  try {
    nodes = (parseYaml(text) as { nodes?: Record<string, { stage?: unknown }> } | null)?.nodes;
  } catch {
    return; // the loader reports the syntax error with its line
  }
  if (nodes && typeof nodes === 'object' && !Object.values(nodes).some((n) => n?.stage === 'evaluate')) {
    throw new RunParamError(`${path.relative(process.cwd(), file) || file} has no 'evaluate' node, so there is nothing for results.json; ` +
      `stella run needs one (docs/graph.md). Run this graph as it is with: stella graph run ${path.relative(process.cwd(), file) || file}`);
  }
}

/**
 * The `--set` behind each graph placeholder, for messages: `selector=stela` fills STELLA_SELECTOR,
 * so a bad selector is reported as coming from `--set selector=stela`.
 */
function setOrigins(sets: readonly string[]): Record<string, string> {
  const origins: Record<string, string> = {};
  for (const set of sets) {
    const key = set.slice(0, set.indexOf('=')).trim();
    const variable = RUN_KEY_PLACEHOLDERS[key];
    if (variable) origins[variable] = `--set ${set}`;
  }
  return origins;
}

/** Corpora being generated by this process, so concurrent runs share one generation. */
const generating: Record<string, Promise<void>> = {};

/** The run's manifest: data.manifest, or the generated corpus (made once, cached by its parameters). */
async function dataManifest(p: RunParams, log: (l: string) => void): Promise<string> {
  if (p.data.manifest) return path.resolve(p.data.manifest);
  const d = p.data;
  const dir = path.join(cacheRoot(p.data.cache), 'corpus', `${p.config}-seed${p.seed}-${d.tasks}x${d.classes}-${d.train}+${d.test}-v${CORPUS_VERSION}`);
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
export async function jointManifest(file: string): Promise<string> {
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
  // This node's steps only: in an A/B graph each arm has its own timing.
  const stepMs = a.result.steps.filter((s) => s.timings?.stepMs !== undefined && (s.node === undefined || s.node === a.node)).map((s) => s.timings!.stepMs);
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

/**
 * One stage's retrieval per task category, as a small table, with the chance level of each R@K for
 * its gallery (src/eval/retrieval.ts `chanceLevels`). `arm` names the train node and its selector
 * when a graph trains several (A/B), so interleaved tables can be told apart.
 */
export function retrievalTable(e: TaskEvaluation, tasks: readonly string[], arm?: string): string {
  const f = (x: number) => x.toFixed(1).padStart(6);
  const r = e.evaluation.retrieval;
  type Recalls = Pick<RecallRow, 'R1' | 'R5' | 'R10'>;
  const row = (name: string, d: { a2v: Recalls; v2a: Recalls }) =>
    `  ${name.padEnd(14)}  ${f(d.a2v.R1)}${f(d.a2v.R5)}${f(d.a2v.R10)} │  ${f(d.v2a.R1)}${f(d.v2a.R5)}${f(d.v2a.R10)}`;
  const lines = [`${arm ? `[${arm}] ` : ''}after task ${e.task + 1}/${tasks.length} (${e.taskName}, step ${e.step}): zero-shot retrieval, %`,
    `  ${'task'.padEnd(14)}   a2v R@1   R@5  R@10 │ v2a R@1   R@5  R@10`];
  for (const t of tasks) if (r.perCategory[t]) lines.push(row(t, r.perCategory[t]));
  lines.push(row('all', r.all));
  const chance = chanceLevels(r.n);
  lines.push(row(`chance (G=${r.n})`, { a2v: chance, v2a: chance }));
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
    .option('--resume <dir>', 'continue the run in DIR (the run folder or its checkpoints/ folder) from its newest valid checkpoint')
    .option('--quiet', 'no progress display or tables')
    .option('--json', 'print { outDir, results: { <train node>: results.json }, stopped } as JSON at the end (implies --quiet)')
    .option('--redis <url>', 'Redis for graph nodes on device: redis (e.g. --set nodes.decode.device=redis), run by `stella worker` processes')
    .addHelpText('after', () => helpFooter(
      [
        'stella run                                         # STELLA, tiny, generated corpus (a few minutes)',
        'stella run --set data.tasks=2 --set data.classes=2 --set data.train=2 --set data.test=1 --set train.epochs=1 --set train.batchSize=2 --out runs/small',
        'stella run --set selector=der++ --set data.tasks=2 --set data.classes=2 --set train.epochs=1 --out runs/der',
        'stella run --set data.manifest=data/synth/manifest.json --set train.epochs=1 --out runs/synth   # your manifest (stella corpus)',
        'stella run graphs/ab-selectors.yaml --set selectorB=der++ --set data.tasks=2 --set data.classes=2 --set train.epochs=1 --out runs/ab',
        'stella run --set nodes.decode.options.concurrency=1 --set data.tasks=2 --set data.classes=2 --set train.epochs=1   # a graph key',
        'stella run --resume runs/small                      # continue after a stop or crash (runs/small/checkpoints works too)',
      ],
      '0 done (also after a graceful stop), 1 the run failed, 2 bad arguments (an unknown --set key, a bad value, an invalid graph)',
      [
        'Run keys (--set key=value, defaults shown); other keys starting with nodes., defaults., plugins go to the graph:',
        ...wrap(runKeyDefaults(), '  '),
        '',
        'Writes DIR/results.json, DIR/report.html, DIR/pictures/, DIR/weights.safetensors (the final model), DIR/checkpoints/, DIR/steps.json.',
        'Progress: on a TTY the live stage bars and a steps bar with ETA (stderr); a plain line every 10 s otherwise.',
        'SIGINT/SIGTERM: the current step finishes, a checkpoint is written and the resume command printed.',
      ],
    ))
    .action(async (graph: string | undefined, opts: { set: string[]; out?: string; resume?: string; quiet?: boolean; json?: boolean; redis?: string }) => {
      try {
        const outcome = await runCommand({ graph, sets: opts.set, out: opts.out, resume: opts.resume, quiet: opts.quiet || opts.json, log: opts.json ? () => {} : undefined, redis: opts.redis });
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
