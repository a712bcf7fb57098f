/**
 * Clip manifests: which clips form which continual-learning task, with labels and splits.
 *
 * `loadManifest(path, { allowOutside = false, seed = 2021, testFraction = 0.2 })` → `Manifest`
 * `{ seed, source, tasks: [{ name, classes, train: ClipEntry[], test: ClipEntry[] }] }` with every
 * `ClipEntry.path` / `groundTruth` absolute. Accepted inputs:
 *   (a) our format: `{"seed"?, "source"?, "tasks": [{"name", "classes"?, "train": [{"path", "label",
 *       "groundTruth"?}], "test": [...]}]}`, paths relative to the manifest's folder (`classes`
 *       defaults to the sorted labels seen);
 *   (b) a CAV-MAE / VGGSound datafile `{"data": [{"video_id", "video_path", "wav", "labels"}]}`: one
 *       task named after the file; the clip is `video_path` when it names a file, else
 *       `video_path/<video_id>.mp4`; the label is the first comma-separated entry of `labels`;
 *   (c) a folder whose subfolders are labels, holding media files (searched recursively): one task
 *       named after the folder.
 * Split for (b) and (c): deterministic and seeded per clip — a clip is test when
 * `Rng.fromSeed("<seed>/split/<key>").uniform() < testFraction` (key = video_id, or the path relative
 * to the folder), so adding clips never moves existing ones between splits.
 * Errors name the file and the JSON path of the bad field (`tasks[0].train[3].label: …`), bad JSON with
 * its line and column; a path resolving outside the manifest folder is refused unless `allowOutside`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { Rng } from '../core/rng.ts';

export interface ClipEntry {
  path: string;
  label: string;
  groundTruth?: string;
}
export interface ManifestTask {
  name: string;
  classes: string[];
  train: ClipEntry[];
  test: ClipEntry[];
}
export interface Manifest {
  seed: number;
  source: string;
  tasks: ManifestTask[];
}

export const loadManifestOptionsSchema = z.object({
  allowOutside: z.boolean().default(false),
  /** Seed of the (b)/(c) split; our format carries its own. */
  seed: z.number().int().default(2021),
  testFraction: z.number().min(0).max(1).default(0.2),
});
export type LoadManifestOptions = z.input<typeof loadManifestOptionsSchema>;

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
  }
}

export const MEDIA_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.flv', '.mpg', '.mpeg', '.ts', '.3gp', '.ogv', '.wmv']);

const clipSchema = z.object({
  path: z.string().min(1),
  label: z.string().min(1),
  groundTruth: z.string().min(1).optional(),
});
const ourSchema = z.object({
  seed: z.number().int().default(0),
  source: z.string().optional(),
  tasks: z
    .array(
      z.object({
        name: z.string().min(1),
        classes: z.array(z.string().min(1)).optional(),
        train: z.array(clipSchema).default([]),
        test: z.array(clipSchema).default([]),
      }),
    )
    .min(1),
});
const cavSchema = z.object({
  data: z
    .array(
      z.object({
        video_id: z.string().min(1),
        video_path: z.string().min(1),
        wav: z.string().optional(),
        labels: z.string().min(1),
      }),
    )
    .min(1),
});

/**
 * For an issue at `a.b.field`: the keys of the object `a.b` in the file that its schema does not know
 * (a typo such as `lable` for `label`), as "; unknown key 'lable' there (known: …)"; '' if none.
 */
function unknownKeysNote(json: unknown, schema: z.ZodType, issuePath: readonly PropertyKey[]): string {
  let value: unknown = json, s: any = schema;
  const unwrap = (x: any) => { while (x?.def?.innerType) x = x.def.innerType; return x; };
  for (const k of issuePath.slice(0, -1)) {
    s = unwrap(s);
    s = typeof k === 'number' ? s?.def?.element : s?.def?.shape?.[k as string];
    value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
  }
  const shape = unwrap(s)?.def?.shape as Record<string, unknown> | undefined;
  if (!shape || !value || typeof value !== 'object' || Array.isArray(value)) return '';
  const unknown = Object.keys(value).filter((k) => !(k in shape));
  if (!unknown.length) return '';
  return `; unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} there (known: ${Object.keys(shape).join(', ')})`;
}

/** `tasks[0].train[3].label` from a zod issue path. */
export function jsonPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : `${out ? '.' : ''}${String(k)}`;
  return out || '(root)';
}

function zodFailure(file: string, error: z.ZodError, json: unknown, schema: z.ZodType): ManifestError {
  const lines = error.issues.slice(0, 5).map((i) => `${jsonPath(i.path)}: ${i.message}${unknownKeysNote(json, schema, i.path)}`);
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return new ManifestError(file, `invalid manifest: ${lines.join('; ')}${more}`);
}

function parseJsonWithPosition(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length, column = Number(pos[1]) - before.lastIndexOf('\n');
      throw new ManifestError(file, `bad JSON at line ${line}, column ${column}: ${msg.replace(/ in JSON at position \d+.*$/, '')}`);
    }
    throw new ManifestError(file, `bad JSON: ${msg}`);
  }
}

function resolver(file: string, base: string, allowOutside: boolean) {
  return (p: string, where: string): string => {
    const abs = path.resolve(base, p);
    const rel = path.relative(base, abs);
    if (!allowOutside && (rel.startsWith('..') || path.isAbsolute(rel))) {
      throw new ManifestError(file, `${where}: path '${p}' resolves outside the manifest folder ${base} (pass allowOutside / --allow-outside to permit)`);
    }
    return abs;
  };
}

const isTest = (seed: number, key: string, fraction: number) => Rng.fromSeed(`${seed}/split/${key}`).uniform() < fraction;
const sortedUnique = (xs: string[]) => [...new Set(xs)].sort();

export async function loadManifest(file: string, options: LoadManifestOptions = {}): Promise<Manifest> {
  const o = loadManifestOptionsSchema.parse(options);
  const abs = path.resolve(file);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new ManifestError(abs, 'manifest not found');
  }
  if (st.isDirectory()) return folderManifest(abs, o);
  const json = parseJsonWithPosition(abs, await readFile(abs, 'utf8'));
  const base = path.dirname(abs);
  const resolve = resolver(abs, base, o.allowOutside);
  if (json && typeof json === 'object' && 'data' in json && !('tasks' in json)) {
    const r = cavSchema.safeParse(json);
    if (!r.success) throw zodFailure(abs, r.error, json, cavSchema);
    const task: ManifestTask = { name: path.basename(abs, path.extname(abs)), classes: [], train: [], test: [] };
    r.data.data.forEach((d, i) => {
      const clip = path.extname(d.video_path) ? d.video_path : path.join(d.video_path, `${d.video_id}.mp4`);
      const entry = { path: resolve(clip, `data[${i}].video_path`), label: d.labels.split(',')[0].trim() };
      (isTest(o.seed, d.video_id, o.testFraction) ? task.test : task.train).push(entry);
    });
    task.classes = sortedUnique([...task.train, ...task.test].map((c) => c.label));
    return { seed: o.seed, source: `cav-mae:${abs}`, tasks: [task] };
  }
  const r = ourSchema.safeParse(json);
  if (!r.success) throw zodFailure(abs, r.error, json, ourSchema);
  const tasks = r.data.tasks.map((t, ti) => {
    const map = (split: 'train' | 'test') =>
      t[split].map((c, ci) => ({
        path: resolve(c.path, `tasks[${ti}].${split}[${ci}].path`),
        label: c.label,
        ...(c.groundTruth ? { groundTruth: resolve(c.groundTruth, `tasks[${ti}].${split}[${ci}].groundTruth`) } : {}),
      }));
    const train = map('train'), test = map('test');
    const classes = t.classes ?? sortedUnique([...train, ...test].map((c) => c.label));
    for (const [split, list] of [['train', train], ['test', test]] as const) {
      list.forEach((c, ci) => {
        if (!classes.includes(c.label)) throw new ManifestError(abs, `tasks[${ti}].${split}[${ci}].label: '${c.label}' is not one of the task's classes (${classes.join(', ')})`);
      });
    }
    return { name: t.name, classes, train, test };
  });
  return { seed: r.data.seed, source: r.data.source ?? abs, tasks };
}

async function listMedia(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listMedia(p)));
    else if (e.isFile() && MEDIA_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(p);
  }
  return out.sort();
}

async function folderManifest(dir: string, o: z.output<typeof loadManifestOptionsSchema>): Promise<Manifest> {
  const labels = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  const task: ManifestTask = { name: path.basename(dir), classes: [], train: [], test: [] };
  for (const label of labels) {
    const files = await listMedia(path.join(dir, label));
    if (files.length === 0) continue;
    task.classes.push(label);
    for (const f of files) (isTest(o.seed, path.relative(dir, f), o.testFraction) ? task.test : task.train).push({ path: f, label });
  }
  if (task.classes.length === 0) throw new ManifestError(dir, `no label subfolders with media files (${[...MEDIA_EXTENSIONS].join(' ')})`);
  return { seed: o.seed, source: `folder:${dir}`, tasks: [task] };
}

/** Every clip of the manifest once, in task then train/test order. */
export function manifestClips(m: Manifest): (ClipEntry & { task: string; split: 'train' | 'test' })[] {
  return m.tasks.flatMap((t) => [
    ...t.train.map((c) => ({ ...c, task: t.name, split: 'train' as const })),
    ...t.test.map((c) => ({ ...c, task: t.name, split: 'test' as const })),
  ]);
}
