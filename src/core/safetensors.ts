/**
 * safetensors read/write: 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}` padded with
 * spaces to a multiple of 8, then the raw little-endian data (offsets relative to the data start).
 * Supported dtypes: F32, I32 (read and write), F64 / F16 / BF16 read and widened to float32.
 * Errors name the file and the tensor at fault (truncated files, overlapping or out-of-range offsets).
 * Ref: huggingface/safetensors format description; golden README (g6_backbone.safetensors).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface NamedTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = { F32: 4, I32: 4, F64: 8, F16: 2, BF16: 2 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export type FloatDtype = 'F32' | 'F64' | 'F16' | 'BF16';

/** Little-endian F32 / F64 / F16 / BF16 values as a new float32 array (the wider or narrower ones converted). */
export function decodeFloats(raw: Uint8Array, dtype: FloatDtype): Float32Array {
  // Copy (a Node Buffer's slice is a view) so the typed array starts aligned and owns its bytes.
  if (dtype === 'F32') return new Float32Array(Uint8Array.prototype.slice.call(raw).buffer);
  const count = raw.byteLength / BYTES[dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F64') for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
  else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
  else {
    const bits = new Uint32Array(out.buffer); // bfloat16 is the top half of a float32
    for (let i = 0; i < count; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
  }
  return out;
}

/** Parses safetensors bytes; `file` names the source in errors. */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  if (bytes.length < 8) throw new Error(`${file}: truncated safetensors file (${bytes.length} bytes, no header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) throw new Error(`${file}: truncated safetensors file: header needs ${headerLength} bytes, only ${bytes.length - 8} follow`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: corrupt safetensors header (not JSON: ${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Error(`${file}: corrupt safetensors header (not an object)`);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = info ?? {}; continue; }
    const width = BYTES[info?.dtype];
    if (!width) throw new Error(`${file}: tensor '${name}' has unsupported dtype '${info?.dtype}' (F32, I32, F64, F16, BF16)`);
    if (!Array.isArray(info.shape) || !Array.isArray(info.data_offsets) || info.data_offsets.length !== 2) {
      throw new Error(`${file}: tensor '${name}' has a malformed header entry (needs shape[] and data_offsets[2])`);
    }
    const [begin, end] = info.data_offsets as number[];
    const count = (info.shape as number[]).reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end >= begin && end <= dataLength)) {
      throw new Error(`${file}: tensor '${name}' data [${begin}, ${end}) lies outside the ${dataLength} data bytes (truncated or corrupt file)`);
    }
    if (end - begin !== count * width) throw new Error(`${file}: tensor '${name}' has ${end - begin} bytes but shape [${info.shape}] of ${info.dtype} needs ${count * width}`);
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    const data = info.dtype === 'I32' ? new Int32Array(Uint8Array.prototype.slice.call(raw).buffer) : decodeFloats(raw, info.dtype);
    tensors.set(name, { shape: info.shape.slice(), dtype: info.dtype === 'I32' ? 'int32' : 'float32', data });
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read safetensors file: ${(e as Error).message}`);
  }
  return parseSafetensors(bytes, file);
}

/** Serialises tensors (in the given order) with optional string metadata. */
export function serializeSafetensors(tensors: Map<string, NamedTensor> | Iterable<[string, NamedTensor]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new Error(`safetensors: tensor '${name}' has ${t.data.length} values but shape [${t.shape}] needs ${count}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function writeSafetensors(file: string, tensors: Map<string, NamedTensor> | Iterable<[string, NamedTensor]>, metadata?: Record<string, string>): void {
  writeFileSync(file, serializeSafetensors(tensors, metadata));
}
