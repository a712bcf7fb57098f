/**
 * Items as bytes, for devices in another process or on another machine (remote-device.ts).
 *
 * An item becomes a JSON header plus one binary blob per typed array: the header holds the item
 * with every typed array replaced by `{ "$blob": i, "type": "Float32Array" }`, and blob i holds the
 * array's bytes as they are in memory. Decoding copies each blob into a fresh, aligned buffer, so
 * the arrays come back bit for bit (NaN payloads and -0 included) whatever the transport's offsets.
 * No floats ever pass through JSON.
 *
 * Only plain data travels: objects, arrays, strings, finite-or-not numbers (non-finite ones and -0
 * are kept by a marker), booleans, null and typed arrays. An item holding a function (a Batch's
 * `dispose`) or a class instance (a tensor) is refused with the field's path, since its meaning
 * would not survive the trip.
 */

const TYPED = {
  Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Uint8Array, Uint16Array, Uint32Array, Uint8ClampedArray,
} as const;
type TypedName = keyof typeof TYPED;
type Typed = InstanceType<(typeof TYPED)[TypedName]>;

export interface EncodedItem {
  header: string;
  blobs: Buffer[];
}

function typedName(value: ArrayBufferView): TypedName | undefined {
  const name = value.constructor.name === 'Buffer' ? 'Uint8Array' : value.constructor.name;
  return name in TYPED ? (name as TypedName) : undefined;
}

export function encodeItem(item: unknown): EncodedItem {
  const blobs: Buffer[] = [];
  const walk = (value: unknown, at: string): unknown => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
    if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? value : { $number: Object.is(value, -0) ? '-0' : String(value) };
    if (value === undefined) return undefined;
    if (ArrayBuffer.isView(value)) {
      const type = typedName(value);
      if (!type) throw new Error(`item field '${at}' is a ${value.constructor.name}, which cannot be sent to a remote device`);
      blobs.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      return { $blob: blobs.length - 1, type };
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, `${at}[${i}]`));
    if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = walk(v, at ? `${at}.${k}` : k);
      return out;
    }
    const what = typeof value === 'function' ? 'a function' : `a ${(value as object).constructor?.name ?? typeof value}`;
    throw new Error(`item field '${at}' is ${what}; only plain data and typed arrays can be sent to a remote device`);
  };
  return { header: JSON.stringify(walk(item, '')), blobs };
}

/** Copies `bytes` into a fresh buffer of the right alignment. */
function typedFrom(type: TypedName, bytes: Uint8Array): Typed {
  const Ctor = TYPED[type];
  if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
    throw new Error(`a ${type} blob of ${bytes.byteLength} bytes is not a whole number of elements`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Ctor(copy.buffer);
}

export function decodeItem<T = unknown>(header: string | Buffer, blobs: readonly Uint8Array[]): T {
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      const v = value as Record<string, unknown>;
      if (typeof v.$blob === 'number' && typeof v.type === 'string') {
        const bytes = blobs[v.$blob];
        if (!bytes) throw new Error(`item header names blob ${v.$blob}, but ${blobs.length} came with it`);
        if (!(v.type in TYPED)) throw new Error(`item header names an unknown array type '${v.type}'`);
        return typedFrom(v.type as TypedName, bytes);
      }
      if (typeof v.$number === 'string' && Object.keys(v).length === 1) return Number(v.$number);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return value;
  };
  return walk(JSON.parse(header.toString())) as T;
}
