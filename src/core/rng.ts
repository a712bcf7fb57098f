/**
 * Seeded randomness for the whole pipeline.
 *
 * One `Rng` per run, forked by name for each consumer (`rng.fork('masking')`), so every stream
 * is independent of the order in which others draw and a run replays exactly. The generator is
 * sfc32 (32-bit, small state that serialises into checkpoints); seeds are hashed with cyrb128.
 * Every method that draws documents how many words it consumes so tests can pin draws.
 */

export interface RngState {
  /** Name path of this stream, e.g. `2021/train/masking`. */
  label: string;
  /** Four uint32 words of sfc32 state. */
  words: [number, number, number, number];
}

/** cyrb128: string → four well-mixed uint32 words. */
function hash128(text: string): [number, number, number, number] {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4; h2 ^= h1; h3 ^= h1; h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  private spareNormal: number | undefined;

  private constructor(readonly label: string, words: [number, number, number, number]) {
    [this.a, this.b, this.c, this.d] = words;
    // Warm up so nearby seeds decorrelate.
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  /** A root stream from a numeric or string seed. */
  static fromSeed(seed: number | string): Rng {
    return new Rng(String(seed), hash128(String(seed)));
  }

  /** Restores a stream exactly where `state()` left it. */
  static fromState(state: RngState): Rng {
    const r = new Rng(state.label, [0, 0, 0, 0]);
    [r.a, r.b, r.c, r.d] = state.words;
    return r;
  }

  /** An independent child stream; depends only on this stream's label and `name`, never on draws. */
  fork(name: string): Rng {
    const label = `${this.label}/${name}`;
    return new Rng(label, hash128(label));
  }

  /** Rewinds this stream in place to a saved state of the same label. */
  setState(state: RngState): void {
    if (state.label !== this.label) throw new Error(`Rng.setState: state of stream '${state.label}' cannot restore stream '${this.label}'`);
    [this.a, this.b, this.c, this.d] = state.words;
    this.spareNormal = undefined;
  }

  state(): RngState {
    return { label: this.label, words: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0] };
  }

  /** One uint32 (one word). */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits (two words). */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n) without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Uniform integer in [lo, hi] inclusive (NumPy `randint(lo, hi + 1)`). */
  intInclusive(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /** Standard normal (Box–Muller, caches the second value). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const s = this.spareNormal;
      this.spareNormal = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Exp(1). */
  exponential(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return -Math.log(u);
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost). */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniform() || Number.MIN_VALUE, 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number, v: number;
      do { x = this.normal(); v = 1 + c * x; } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b), e.g. LUMP's mixing coefficient Beta(0.5, 0.5). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /** Fills a Float32Array with U[0,1) values. */
  fillUniform(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform();
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]; p[i] = p[j]; p[j] = t;
    }
    return p;
  }

  /** `k` distinct values from 0..n-1, uniformly (NumPy `choice(n, k, replace=False)` semantics). */
  choiceWithoutReplacement(n: number, k: number): Int32Array {
    if (k > n) throw new RangeError(`Rng.choiceWithoutReplacement: cannot draw ${k} distinct items from ${n}`);
    return this.permutation(n).slice(0, k);
  }

  /**
   * Weighted random permutation without replacement (torch.multinomial(w, n, replacement=False)):
   * Efraimidis–Spirakis keys w / E with E ~ Exp(1), sorted descending. Zero weights sort last
   * in ascending index order. Consumes one exponential per entry.
   */
  weightedPermutation(weights: ArrayLike<number>): Int32Array {
    const n = weights.length;
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = this.exponential();
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`Rng.weightedPermutation: weight ${i} is ${w}; weights must be finite and >= 0`);
      keys[i] = w > 0 ? w / e : -1 - i / n;
    }
    const order = Int32Array.from({ length: n }, (_, i) => i);
    order.sort((x, y) => keys[y] - keys[x] || x - y);
    return order;
  }
}
