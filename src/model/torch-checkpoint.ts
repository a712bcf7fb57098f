/**
 * Reads a PyTorch checkpoint written by `torch.save` (the zip format of PyTorch ≥ 1.6) without
 * running any of its pickle code.
 *
 * The archive holds `<name>/data.pkl` (the pickled object), `<name>/data/<key>` (one raw
 * little-endian storage per key), `<name>/version` and, from PyTorch 2.1, `<name>/byteorder`. The
 * pickle is parsed by `pickleparser` with every global resolved here: only what a tensor state dict
 * needs is allowed (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `torch._utils._rebuild_parameter[_with_state]`, and the storage types `torch.FloatStorage` …
 * inside persistent ids); any other global (`os.system`, `builtins.eval`, a class of the training
 * script) is refused by name before anything could be built from it. Nothing in the file is ever
 * called: the allowed globals map to small functions of this module that record shapes.
 *
 * `openTorchCheckpoint(file)` returns the unpickled tree (Maps for dicts, arrays for lists and
 * tuples, `TorchTensor` for tensors, whose data is not read yet) and `readTensors`, which reads only
 * the storages that the chosen tensors use and returns them as float32 in their logical (contiguous)
 * order: storage offsets and strides (transposed, expanded, sliced views) are applied, and float16,
 * bfloat16 and float64 storages are converted. The legacy non-zip format (PyTorch < 1.6, or
 * `_use_new_zipfile_serialization=False`) and TorchScript archives are refused with how to re-save.
 * Errors name the file and the entry or tensor at fault.
 * Ref: pytorch torch/serialization.py (`_save`, `_load`), torch/_utils.py (`_rebuild_tensor_v2`).
 */
import { open as openFile } from 'node:fs/promises';
import zlib from 'node:zlib';
import { Parser } from 'pickleparser';
import yauzl from 'yauzl';
import { decodeFloats, type FloatDtype, type NamedTensor } from '../core/safetensors.ts';

export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** `torch.<Name>Storage` → element type and width. */
const STORAGE_TYPES: Record<string, { dtype: TorchDtype; bytes: number }> = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
  DoubleStorage: { dtype: 'float64', bytes: 8 },
  LongStorage: { dtype: 'int64', bytes: 8 },
  IntStorage: { dtype: 'int32', bytes: 4 },
  ShortStorage: { dtype: 'int16', bytes: 2 },
  CharStorage: { dtype: 'int8', bytes: 1 },
  ByteStorage: { dtype: 'uint8', bytes: 1 },
  BoolStorage: { dtype: 'bool', bytes: 1 },
};

const FLOAT_CODES: Partial<Record<TorchDtype, FloatDtype>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64' };

/** The globals a tensor state dict may name (listed in refusals). */
export const ALLOWED_GLOBALS = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
] as const;

/** How to turn a checkpoint that is refused into one that is read (printed with the refusal). */
export const RESAVE_HINT = 'with PyTorch >= 1.6: python -c "import torch; sd = torch.load(\'IN.pth\', map_location=\'cpu\'); torch.save(sd.get(\'model\', sd), \'OUT.pth\')"';

/** A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`. */
export interface StorageRef {
  readonly key: string;
  readonly dtype: TorchDtype;
  /** Elements (not bytes). */
  readonly numel: number;
  readonly itemBytes: number;
}

/** A tensor of the pickle: a strided view of one storage; its data is read by `readTensors`. */
export class TorchTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    Object.freeze(this); // a BUILD opcode in the pickle cannot rewrite it
  }

  get dtype(): TorchDtype {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** Thrown for a global outside ALLOWED_GLOBALS; `global` is its `module.name`. */
export class RefusedGlobalError extends Error {
  constructor(readonly file: string, readonly global: string) {
    super(
      `${file}: refused to unpickle global '${global}' in data.pkl: only tensor state dicts are read, and nothing in the file is run ` +
        `(allowed: ${ALLOWED_GLOBALS.join(', ')}). Only if you trust the file (torch.load runs its code), keep just its tensors ${RESAVE_HINT}`,
    );
  }
}

export interface TorchArchive {
  readonly file: string;
  /** The archive's folder name inside the zip (torch.save uses the file's stem). */
  readonly prefix: string;
  /** The unpickled object: Maps, arrays, numbers, strings, booleans, null and `TorchTensor`s. */
  readonly root: unknown;
  /** Reads the tensors' storages and returns them as float32 in logical order, under the same names. */
  readTensors(tensors: ReadonlyMap<string, TorchTensor>): Promise<Map<string, NamedTensor>>;
  close(): void;
}

const isIntegerArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);

/** The restricted unpickler's name and persistent-id resolvers for one file. */
function resolvers(file: string) {
  const storages = new Map<string, StorageRef>();
  // The storage classes resolve to these frozen markers; a persistent id must name one of them.
  const markers = new Map(Object.keys(STORAGE_TYPES).map((name) => [Object.freeze({ storageType: name }) as object, name]));
  // A plain function (not an arrow): REDUCE calls it, NEWOBJ constructs it; both give a Map.
  const orderedDict = function orderedDict(items?: unknown): Map<unknown, unknown> {
    const map = new Map();
    if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair) && pair.length === 2) map.set(pair[0], pair[1]);
    return map;
  };
  const rebuildTensor = (storage: unknown, offset: unknown, size: unknown, stride: unknown): TorchTensor => {
    if (!storage || !storages.has((storage as StorageRef).key) || storages.get((storage as StorageRef).key) !== storage) {
      throw new Error(`${file}: _rebuild_tensor_v2 got something that is not a storage of this archive`);
    }
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || !isIntegerArray(size) || !isIntegerArray(stride) || size.length !== stride.length) {
      throw new Error(`${file}: malformed tensor in data.pkl (offset ${String(offset)}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)})`);
    }
    // Copies: the pickle could still append to the memoised tuples after this call.
    return new TorchTensor(storage as StorageRef, offset as number, Object.freeze(size.slice()), Object.freeze(stride.slice()));
  };
  const rebuildParameter = (data: unknown): TorchTensor => {
    if (!(data instanceof TorchTensor)) throw new Error(`${file}: _rebuild_parameter got something that is not a tensor`);
    return data;
  };
  const allowed = new Map<string, unknown>([
    ['collections.OrderedDict', orderedDict],
    ['torch._utils._rebuild_tensor_v2', rebuildTensor],
    ['torch._utils._rebuild_parameter', rebuildParameter],
    ['torch._utils._rebuild_parameter_with_state', rebuildParameter],
    ...[...markers].map(([marker, name]): [string, unknown] => [`torch.${name}`, marker]),
  ]);
  // Frozen, so a BUILD opcode aimed at one of them changes nothing.
  for (const fn of [orderedDict, rebuildTensor, rebuildParameter]) Object.freeze(fn);
  return {
    storages,
    nameResolver: {
      resolve(module: string, name: string) {
        const fn = allowed.get(`${module}.${name}`);
        if (fn === undefined) throw new RefusedGlobalError(file, `${module}.${name}`);
        return fn as (...args: unknown[]) => unknown;
      },
    },
    persistentResolver: {
      resolve(pid: unknown): StorageRef {
        const [tag, type, key, , numel] = Array.isArray(pid) ? pid : [];
        const st = markers.get(type as object);
        if (tag !== 'storage' || !st || typeof key !== 'string' || !Number.isSafeInteger(numel) || numel < 0) {
          throw new Error(`${file}: unsupported persistent id in data.pkl (${JSON.stringify(pid, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}); expected ('storage', torch.<Type>Storage, key, location, numel)`);
        }
        const known = storages.get(key);
        if (known) {
          if (known.dtype !== STORAGE_TYPES[st].dtype) throw new Error(`${file}: storage '${key}' is read both as ${known.dtype} and as ${STORAGE_TYPES[st].dtype}`);
          return known;
        }
        const ref: StorageRef = Object.freeze({ key, dtype: STORAGE_TYPES[st].dtype, numel, itemBytes: STORAGE_TYPES[st].bytes });
        storages.set(key, ref);
        return ref;
      },
    },
  };
}

/** Unpickles `data.pkl` with the restricted resolvers; a refused global surfaces as RefusedGlobalError. */
export function unpickleStateDict(bytes: Uint8Array, file: string): unknown {
  const { nameResolver, persistentResolver } = resolvers(file);
  const parser = new Parser({ nameResolver, persistentResolver, unpicklingTypeOfDictionary: 'Map', unpicklingTypeOfSet: 'array' });
  try {
    return parser.parse(bytes);
  } catch (e) {
    if (e instanceof RefusedGlobalError || (e as Error).message?.startsWith(`${file}: `)) throw e;
    throw new Error(`${file}: corrupt data.pkl: ${(e as Error).message}`);
  }
}

async function sniff(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await openFile(file, 'r');
  } catch (e) {
    throw new Error(`${file}: cannot read checkpoint: ${(e as Error).message}`);
  }
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, file: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(entry.uncompressedSize);
  let at = 0;
  try {
    const stream = await zip.openReadStreamPromise(entry);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (at + chunk.length > out.length) throw new Error(`more than the ${out.length} bytes the directory gives`);
      chunk.copy(out, at);
      at += chunk.length;
    }
  } catch (e) {
    throw new Error(`${file}: cannot read ${entry.fileName} (truncated or corrupt archive): ${(e as Error).message}`);
  }
  if (at !== out.length) throw new Error(`${file}: ${entry.fileName} has ${at} bytes, the zip directory says ${out.length} (truncated or corrupt archive)`);
  if (typeof zlib.crc32 === 'function' && zlib.crc32(out) >>> 0 !== entry.crc32 >>> 0) {
    throw new Error(`${file}: ${entry.fileName} fails its CRC-32 check (corrupt archive)`);
  }
  return out;
}

/** Row-major without gaps (size-1 dimensions may have any stride). */
function isContiguous(t: TorchTensor): boolean {
  for (let i = t.shape.length - 1, expect = 1; i >= 0; expect *= t.shape[i], i--) if (t.shape[i] !== 1 && t.stride[i] !== expect) return false;
  return true;
}

/** The tensor's elements in logical row-major order, gathered from its storage. */
function gather(values: Float32Array, t: TorchTensor): Float32Array {
  const n = t.numel;
  if (isContiguous(t)) return values.slice(t.offset, t.offset + n);
  const out = new Float32Array(n);
  if (n === 0) return out;
  const shape = Array.from(t.shape), stride = Array.from(t.stride);
  const rank = shape.length;
  const inner = shape[rank - 1], innerStride = stride[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let base = t.offset, k = 0;
  for (let row = n / inner; row > 0; row--) {
    for (let j = 0, src = base; j < inner; j++, src += innerStride) out[k++] = values[src];
    // Odometer over the outer dimensions, the last of them fastest.
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d] < shape[d]) { base += stride[d]; break; }
      base -= stride[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

/** Largest storage element a view touches, +1 (0 for an empty tensor). */
function extent(t: TorchTensor): number {
  if (t.shape.some((d) => d === 0)) return 0;
  return t.shape.reduce((acc, d, i) => acc + (d - 1) * t.stride[i], t.offset) + 1;
}

/**
 * Opens a torch.save zip checkpoint and unpickles its `data.pkl` (restricted: see the module note).
 * Throws, naming `file`, for the legacy format, TorchScript archives, big-endian data, a truncated or
 * corrupt zip and refused globals.
 */
export async function openTorchCheckpoint(file: string): Promise<TorchArchive> {
  const head = await sniff(file);
  if (head.length >= 2 && head[0] === 0x80 && head[1] <= 5) {
    throw new Error(`${file}: legacy PyTorch checkpoint format (written by PyTorch < 1.6 or with _use_new_zipfile_serialization=False), which is not read here; re-save it ${RESAVE_HINT}`);
  }
  if (!(head.length === 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04)) {
    throw new Error(`${file}: not a PyTorch checkpoint (no zip signature; torch.save writes a zip archive since PyTorch 1.6)`);
  }
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { autoClose: false, strictFileNames: true });
  } catch (e) {
    throw new Error(`${file}: cannot open the checkpoint's zip archive (truncated or corrupt file): ${(e as Error).message}`);
  }
  try {
    const entries = new Map<string, yauzl.Entry>();
    try {
      for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry);
    } catch (e) {
      throw new Error(`${file}: corrupt zip directory: ${(e as Error).message}`);
    }
    const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if ([...entries.keys()].some((n) => /^[^/]+\/(?:code\/|constants\.pkl$)/.test(n))) {
      throw new Error(`${file}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save the module's state_dict() with torch.save instead`);
    }
    if (pickles.length !== 1) throw new Error(`${file}: expected one <archive>/data.pkl in the zip, found ${pickles.length ? pickles.join(', ') : 'none'} (not a torch.save checkpoint)`);
    const prefix = pickles[0].slice(0, -'/data.pkl'.length);
    const byteorder = entries.get(`${prefix}/byteorder`);
    if (byteorder) {
      const order = (await readEntry(zip, byteorder, file)).toString('utf8').trim();
      if (order !== 'little') throw new Error(`${file}: storages are ${order}-endian; only little-endian checkpoints are read`);
    }
    const root = unpickleStateDict(await readEntry(zip, entries.get(pickles[0])!, file), file);

    const readTensors = async (tensors: ReadonlyMap<string, TorchTensor>): Promise<Map<string, NamedTensor>> => {
      const decoded = new Map<string, Float32Array>();
      // Storages are freed after their last tensor, and a tensor that is its whole storage takes it as is (ViT-B: ~0.8 GB, held once).
      const usesLeft = new Map<string, number>();
      for (const t of tensors.values()) usesLeft.set(t.storage.key, (usesLeft.get(t.storage.key) ?? 0) + 1);
      const out = new Map<string, NamedTensor>();
      for (const [name, t] of tensors) {
        const code = FLOAT_CODES[t.dtype];
        if (!code) throw new Error(`${file}: tensor '${name}' is ${t.dtype}; model weights must be float32, float16, bfloat16 or float64`);
        if (t.stride.some((s) => s < 0) || extent(t) > t.storage.numel) {
          throw new Error(`${file}: tensor '${name}' [${t.shape}] (offset ${t.offset}, stride [${t.stride}]) reaches past the end of its storage '${t.storage.key}' of ${t.storage.numel} elements`);
        }
        let values = decoded.get(t.storage.key);
        if (!values) {
          const entry = entries.get(`${prefix}/data/${t.storage.key}`);
          if (!entry) throw new Error(`${file}: tensor '${name}' needs storage ${prefix}/data/${t.storage.key}, which the archive lacks`);
          const bytes = await readEntry(zip, entry, file);
          const need = t.storage.numel * t.storage.itemBytes;
          if (bytes.length < need) throw new Error(`${file}: storage ${entry.fileName} has ${bytes.length} bytes, ${need} needed for ${t.storage.numel} ${t.dtype} values`);
          values = decodeFloats(bytes.subarray(0, need), code);
          decoded.set(t.storage.key, values);
        }
        const left = usesLeft.get(t.storage.key)! - 1;
        usesLeft.set(t.storage.key, left);
        if (!left) decoded.delete(t.storage.key);
        const whole = !left && t.offset === 0 && t.numel === values.length && isContiguous(t);
        out.set(name, { shape: t.shape.slice(), dtype: 'float32', data: whole ? values : gather(values, t) });
      }
      return out;
    };
    return { file, prefix, root, readTensors, close: () => zip.close() };
  } catch (e) {
    zip.close();
    throw e;
  }
}
