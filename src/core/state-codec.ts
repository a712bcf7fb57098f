/**
 * Encodes plain state objects that hold typed arrays (optimizer moments, replay rows, RNG words) as
 * one JSON document plus binary blobs, and back, bit for bit. Used by checkpoints.
 *
 *   encodeState({ a: 1, m: Float32Array }) → { json: '{"a":1,"m":{"$blob":0,"type":"Float32Array"}}', blobs: [bytes] }
 */
const TYPED = {
  Float32Array, Float64Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array,
} as const;
type TypedName = keyof typeof TYPED;

export interface EncodedState {
  json: string;
  blobs: Uint8Array[];
}

export function encodeState(state: unknown): EncodedState {
  const blobs: Uint8Array[] = [];
  const json = JSON.stringify(state, (_key, value) => {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const type = value.constructor.name;
      if (!(type in TYPED)) throw new TypeError(`encodeState: unsupported array type ${type}`);
      blobs.push(new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)));
      return { $blob: blobs.length - 1, type };
    }
    if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
    return value;
  });
  return { json, blobs };
}

export function decodeState<T = unknown>(encoded: EncodedState, source = 'state'): T {
  return JSON.parse(encoded.json, (_key, value) => {
    if (value && typeof value === 'object' && typeof value.$blob === 'number') {
      const bytes = encoded.blobs[value.$blob];
      const Ctor = TYPED[value.type as TypedName];
      if (!bytes || !Ctor) throw new Error(`${source}: blob ${value.$blob} (${value.type}) is missing or of an unknown type`);
      const copy = bytes.slice();
      return new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
    }
    if (value && typeof value === 'object' && typeof value.$number === 'string') return Number(value.$number);
    return value;
  }) as T;
}
