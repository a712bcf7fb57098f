/**
 * Atomic, verified checkpoints of a run.
 *
 * Layout under `dir`:
 *   ckpt-000123/            one checkpoint per saved step (zero-padded to 6 digits)
 *     <blob>                named binary blobs: model weights (safetensors bytes from the caller),
 *                           optimiser state, replay buffer, …; the file is the blob's name when that
 *                           has an extension (`weights.safetensors`), else `<blob>.bin`. Readers
 *                           follow each blob's `file` in the manifest, so older checkpoints that
 *                           wrote `weights.safetensors.bin` still load.
 *     manifest.json         {format, version, name, step, createdAt, blobs: {name: {file, bytes, sha256}},
 *                           state: {position, rng, config, …}}; written last
 *   latest                  the name of the newest committed checkpoint (written atomically)
 *
 * Save: blobs and manifest go to a private temp directory `.tmp-ckpt-…`, each file fsynced, then the
 * directory is renamed to `ckpt-NNNNNN` (the commit point) and the parent fsynced; then `latest` is
 * replaced atomically and checkpoints beyond the newest `keep` are deleted. A crash at any point
 * leaves every earlier checkpoint intact; a leftover temp directory is ignored on load and removed
 * by the next save.
 *
 * Where: `loadLatest` takes the checkpoint folder itself or a run folder holding it as `checkpoints/`
 * (`resolveCheckpointDir`), so `--resume runs/x` and `--checkpoint runs/x/checkpoints` both work.
 *
 * Load (`loadLatest`): tries checkpoints from the highest step down. One is valid when its manifest
 * parses and every blob has the recorded size and SHA-256. Each rejected checkpoint produces a
 * warning naming the directory and the fault; if none is valid, `NoValidCheckpointError` lists why.
 * The `latest` pointer is a hint for people and tools: a complete checkpoint newer than it (a crash
 * between the directory rename and the pointer write) is still used, with a warning.
 *
 * Options: `dir` (required), `keep` = 3, `onWarning` = print to stderr.
 * Ref: DESIGN.md "Where state lives" (Checkpointer); spec §6.5 (buffer state is part of a checkpoint).
 */
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, tempSiblingName, writeFileAtomic, writeFileDurable } from './atomic-write.ts';

export const CHECKPOINT_FORMAT = 'stella-checkpoint';
export const CHECKPOINT_VERSION = 1;
const MANIFEST = 'manifest.json';
const LATEST = 'latest';
const NAME_PATTERN = /^ckpt-(\d{6,})$/;
const BLOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Where a run keeps its checkpoints inside its folder (`stella run --out DIR` → DIR/checkpoints). */
export const RUN_CHECKPOINTS = 'checkpoints';

/** A blob's file: its own name when that carries an extension (`weights.safetensors`), else `<name>.bin`. */
export function blobFile(name: string): string {
  return /\.[A-Za-z0-9]+$/.test(name) ? name : `${name}.bin`;
}

const rngStateSchema = z.object({ label: z.string(), words: z.tuple([z.number(), z.number(), z.number(), z.number()]) });

/** What a run needs besides the blobs to resume exactly. Extra keys are kept. */
export const checkpointStateSchema = z.looseObject({
  /** Stream position: the task being trained and the global step. */
  position: z.looseObject({
    taskIndex: z.number().int().nonnegative(),
    task: z.string(),
    step: z.number().int().nonnegative(),
  }),
  /** Every RNG stream's state, keyed by its role (`Rng.state()`). */
  rng: z.record(z.string(), rngStateSchema),
  /** The resolved run configuration. */
  config: z.unknown(),
});
export type CheckpointState = z.infer<typeof checkpointStateSchema>;

const manifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  name: z.string(),
  step: z.number().int().nonnegative(),
  createdAt: z.string(),
  blobs: z.record(z.string(), z.object({ file: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string() })),
  state: checkpointStateSchema,
});
export type CheckpointManifest = z.infer<typeof manifestSchema>;

export const checkpointerOptionsSchema = z.object({
  dir: z.string().min(1),
  /** How many of the newest checkpoints to keep (older ones are deleted after each save). */
  keep: z.number().int().positive().default(3),
});
export type CheckpointerOptions = z.input<typeof checkpointerOptionsSchema> & {
  onWarning?: (message: string) => void;
  /** Test hook: runs after the temp directory is complete, just before the commit rename. */
  beforeCommit?: (tempDir: string) => void | Promise<void>;
};

export type BlobData = Uint8Array | readonly Uint8Array[];
export interface CheckpointInput {
  /** Global step; names the directory. */
  step: number;
  blobs: Record<string, BlobData>;
  state: CheckpointState;
}
export interface LoadedCheckpoint {
  name: string;
  path: string;
  step: number;
  manifest: CheckpointManifest;
  state: CheckpointState;
  blobs: Record<string, Uint8Array>;
  /** Faults found in newer checkpoints that were skipped to reach this one. */
  warnings: string[];
}

export class NoValidCheckpointError extends Error {
  constructor(readonly dir: string, readonly faults: string[]) {
    super(
      faults.length
        ? `no valid checkpoint in ${dir}: ${faults.join('; ')}`
        : `no checkpoint in ${dir} (expected directories named ckpt-NNNNNN; give a run folder or its ${RUN_CHECKPOINTS}/ folder)`,
    );
  }
}

export function checkpointName(step: number): string {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`checkpoint step must be a non-negative integer, got ${step}`);
  return `ckpt-${String(step).padStart(6, '0')}`;
}

const defaultWarning = (message: string) => process.stderr.write(`warning: ${message}\n`);

export class Checkpointer {
  readonly dir: string;
  readonly keep: number;
  private readonly onWarning: (message: string) => void;
  private readonly beforeCommit?: CheckpointerOptions['beforeCommit'];
  /** Saves run one after another even if the caller does not await them. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: CheckpointerOptions) {
    const opts = checkpointerOptionsSchema.parse(options);
    this.dir = opts.dir;
    this.keep = opts.keep;
    this.onWarning = options.onWarning ?? defaultWarning;
    this.beforeCommit = options.beforeCommit;
  }

  /** Writes one checkpoint atomically; resolves with its directory once committed. */
  save(input: CheckpointInput): Promise<{ name: string; path: string }> {
    const run = this.queue.then(() => this.saveNow(input));
    this.queue = run.catch(() => undefined);
    return run;
  }

  loadLatest(): Promise<LoadedCheckpoint> {
    return loadLatest(this.dir, { onWarning: this.onWarning });
  }

  private async saveNow({ step, blobs, state }: CheckpointInput) {
    const name = checkpointName(step);
    const parsedState = checkpointStateSchema.safeParse(state);
    if (!parsedState.success) throw new Error(`checkpoint ${name}: bad state: ${z.prettifyError(parsedState.error)}`);
    for (const blobName of Object.keys(blobs)) {
      if (!BLOB_NAME.test(blobName)) throw new Error(`checkpoint ${name}: blob name '${blobName}' must match ${BLOB_NAME}`);
      if (blobFile(blobName) === MANIFEST) throw new Error(`checkpoint ${name}: blob name '${blobName}' would overwrite ${MANIFEST}`);
    }
    await mkdir(this.dir, { recursive: true });
    await removeStaleTemps(this.dir);
    const newest = (await listCheckpoints(this.dir))[0];
    if (newest && checkpointStep(newest) > step) {
      this.onWarning(`saving ${name} in ${this.dir}, which already holds ${newest} with a higher step; loadLatest will still pick ${newest}`);
    }

    const finalPath = join(this.dir, name);
    const tempPath = tempSiblingName(finalPath);
    await mkdir(tempPath);
    try {
      const manifestBlobs: CheckpointManifest['blobs'] = {};
      for (const [blobName, data] of Object.entries(blobs)) {
        const chunks = data instanceof Uint8Array ? [data] : data;
        const hash = createHash('sha256');
        let bytes = 0;
        for (const chunk of chunks) {
          hash.update(chunk);
          bytes += chunk.byteLength;
        }
        const file = blobFile(blobName);
        await writeFileDurable(join(tempPath, file), chunks);
        manifestBlobs[blobName] = { file, bytes, sha256: hash.digest('hex') };
      }
      const manifest: CheckpointManifest = {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        name,
        step,
        createdAt: new Date().toISOString(),
        blobs: manifestBlobs,
        state: parsedState.data,
      };
      await writeFileDurable(join(tempPath, MANIFEST), JSON.stringify(manifest, null, 2));
      await fsyncDirectory(tempPath);
      await this.beforeCommit?.(tempPath);
      // Re-saving a step: move the old copy aside so the rename below can land.
      if (await exists(finalPath)) {
        const aside = tempSiblingName(finalPath);
        await rename(finalPath, aside);
        await rm(aside, { recursive: true, force: true });
      }
      await rename(tempPath, finalPath);
    } catch (e) {
      // A thrown error (not a crash) cleans up after itself; a crash leaves the temp dir for the next save.
      await rm(tempPath, { recursive: true, force: true });
      throw e;
    }
    await fsyncDirectory(this.dir);
    await writeFileAtomic(join(this.dir, LATEST), `${name}\n`);
    await this.prune();
    return { name, path: finalPath };
  }

  private async prune() {
    const names = await listCheckpoints(this.dir);
    for (const old of names.slice(this.keep)) {
      await rm(join(this.dir, old), { recursive: true, force: true });
    }
  }
}

/** Checkpoint directory names under `dir`, newest (highest step) first. */
export async function listCheckpoints(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries
    .filter((e) => NAME_PATTERN.test(e))
    .sort((a, b) => checkpointStep(b) - checkpointStep(a));
}

function checkpointStep(name: string): number {
  return Number(NAME_PATTERN.exec(name)![1]);
}

/**
 * Reads and verifies one checkpoint directory; throws an Error describing the first fault. A run
 * may save the same step again while this reads (the task-end save after a periodic one): the
 * save swaps the directory in whole, so a fault found after the manifest changed under the read is
 * the swap, not damage, and the read starts over (a few times) on the new copy.
 */
export async function readCheckpoint(path: string, hooks: { afterManifest?: () => Promise<void> } = {}): Promise<Omit<LoadedCheckpoint, 'warnings' | 'name'>> {
  for (let attempt = 1; ; attempt++) {
    const text = await readManifestText(path);
    // Test hook: runs once, between the first manifest read and the blobs.
    if (attempt === 1) await hooks.afterManifest?.();
    try {
      return await readCheckpointWith(path, text);
    } catch (error) {
      const now = await readFile(join(path, MANIFEST), 'utf8').catch(() => undefined);
      if (attempt >= 3 || now === undefined || now === text) throw error;
    }
  }
}

async function readManifestText(path: string): Promise<string> {
  try {
    return await readFile(join(path, MANIFEST), 'utf8');
  } catch (e) {
    throw new Error(`${MANIFEST} is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

async function readCheckpointWith(path: string, text: string): Promise<Omit<LoadedCheckpoint, 'warnings' | 'name'>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${MANIFEST} is not valid JSON (${(e as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${MANIFEST} does not match the checkpoint format: ${z.prettifyError(parsed.error)}`);
  const manifest = parsed.data;
  const blobs: Record<string, Uint8Array> = {};
  for (const [blobName, entry] of Object.entries(manifest.blobs)) {
    let data: Uint8Array;
    try {
      data = new Uint8Array(await readFile(join(path, entry.file)));
    } catch (e) {
      throw new Error(`blob '${blobName}' (${entry.file}) is missing or unreadable (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (data.byteLength !== entry.bytes) {
      throw new Error(`blob '${blobName}' (${entry.file}) has ${data.byteLength} bytes, the manifest records ${entry.bytes} (truncated or partial write)`);
    }
    const sha = createHash('sha256').update(data).digest('hex');
    if (sha !== entry.sha256) throw new Error(`blob '${blobName}' (${entry.file}) fails its SHA-256 check (content corrupted)`);
    blobs[blobName] = data;
  }
  return { path, step: manifest.step, manifest, state: manifest.state, blobs };
}

/** The newest valid checkpoint under `dir`, skipping corrupt or partial ones with a warning each. */
export async function loadLatest(given: string, options: { onWarning?: (message: string) => void } = {}): Promise<LoadedCheckpoint> {
  const dir = await resolveCheckpointDir(given);
  const warn = options.onWarning ?? defaultWarning;
  const warnings: string[] = [];
  const note = (message: string) => {
    warnings.push(message);
    warn(message);
  };
  const names = await listCheckpoints(dir);
  const pointer = await readFile(join(dir, LATEST), 'utf8').then((s) => s.trim(), () => undefined);
  const faults: string[] = [];
  for (const name of names) {
    try {
      const loaded = await readCheckpoint(join(dir, name));
      if (pointer && pointer !== name && names.indexOf(pointer) > names.indexOf(name)) {
        note(`checkpoint ${name} in ${dir} is complete but newer than the 'latest' pointer (${pointer}); using ${name}`);
      }
      if (faults.length) note(`using checkpoint ${name} in ${dir} after skipping newer ones`);
      return { name, ...loaded, warnings };
    } catch (e) {
      const fault = `${name}: ${(e as Error).message}`;
      faults.push(fault);
      note(`skipping corrupt or partial checkpoint ${join(dir, name)}: ${(e as Error).message}`);
    }
  }
  throw new NoValidCheckpointError(dir, faults);
}

/**
 * The checkpoint folder meant by `path`: `path` itself when it holds checkpoints (or a `latest`
 * pointer), else `path/checkpoints` when that does (a run folder), else `path` unchanged (the load
 * then fails naming it).
 */
export async function resolveCheckpointDir(path: string): Promise<string> {
  const holds = async (dir: string) => (await listCheckpoints(dir)).length > 0 || (await exists(join(dir, LATEST)));
  if (await holds(path)) return path;
  const nested = join(path, RUN_CHECKPOINTS);
  return (await holds(nested)) ? nested : path;
}

/** Leftovers of an interrupted save (one writer per directory is assumed). */
async function removeStaleTemps(dir: string) {
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('.tmp-ckpt-') || entry.startsWith(`.tmp-${LATEST}-`)) await rm(join(dir, entry), { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
