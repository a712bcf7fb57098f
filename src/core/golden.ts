/**
 * Reader for the golden reference cases (`../shared/golden`, format in its README):
 * `{config, tensors: {name: {shape, dtype, data_b64}}, notes}`.
 */
import { readFileSync } from 'node:fs';

export interface GoldenTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export interface GoldenCase {
  file: string;
  config: Record<string, any>;
  tensors: Map<string, GoldenTensor>;
  notes: string;
  /** The tensor by name; throws naming the file and tensor when absent. */
  get(name: string): GoldenTensor;
  has(name: string): boolean;
}

export function decodeTensor(file: string, name: string, raw: any): GoldenTensor {
  if (!raw || !Array.isArray(raw.shape) || typeof raw.data_b64 !== 'string') {
    throw new Error(`${file}: tensor '${name}' is malformed (needs shape[] and data_b64)`);
  }
  const bytes = Buffer.from(raw.data_b64, 'base64');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const count = raw.shape.reduce((a: number, b: number) => a * b, 1);
  let data: Float32Array | Int32Array;
  if (raw.dtype === 'float32') data = new Float32Array(buf);
  else if (raw.dtype === 'int32') data = new Int32Array(buf);
  else throw new Error(`${file}: tensor '${name}' has unsupported dtype '${raw.dtype}' (float32 or int32)`);
  if (data.length !== count) {
    throw new Error(`${file}: tensor '${name}' has ${data.length} elements but shape [${raw.shape}] needs ${count}`);
  }
  return { shape: raw.shape, dtype: raw.dtype, data };
}

export function loadGolden(file: string): GoldenCase {
  let json: any;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read golden case: ${(e as Error).message}`);
  }
  if (!json || typeof json.tensors !== 'object') throw new Error(`${file}: not a golden case (no 'tensors' object)`);
  const tensors = new Map<string, GoldenTensor>();
  for (const [name, raw] of Object.entries(json.tensors)) tensors.set(name, decodeTensor(file, name, raw));
  return {
    file,
    config: json.config ?? {},
    tensors,
    notes: json.notes ?? '',
    get(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${file}: golden tensor '${name}' is missing`);
      return t;
    },
    has: (name) => tensors.has(name),
  };
}

export interface Comparison {
  /** Largest |actual - expected|. */
  maxAbs: number;
  /** Largest excess over the tolerance (<= 0 means within tolerance). */
  worstExcess: number;
  /** Flat index of the worst element. */
  worstIndex: number;
  ok: boolean;
}

/** Element-wise `|a - e| <= abs + rel·|e|`, NaN never passes. */
export function compareClose(actual: ArrayLike<number>, expected: ArrayLike<number>, abs: number, rel = 0): Comparison {
  if (actual.length !== expected.length) {
    return { maxAbs: Infinity, worstExcess: Infinity, worstIndex: -1, ok: false };
  }
  let maxAbs = 0, worstExcess = -Infinity, worstIndex = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    const excess = Number.isNaN(d) ? Infinity : d - (abs + rel * Math.abs(expected[i]));
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    if (excess > worstExcess) { worstExcess = excess; worstIndex = i; }
  }
  return { maxAbs, worstExcess, worstIndex, ok: worstExcess <= 0 };
}

/** Exact equality of integer-valued arrays; returns the number of mismatches. */
export function countMismatches(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Math.max(actual.length, expected.length);
  let n = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) n++;
  return n;
}
