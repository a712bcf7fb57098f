/**
 * Replay-guided Correlation Assessment (RCA): how much each current candidate patch "belongs" to a past
 * sample's audio-video correlation rather than to its own.
 *
 * Behaviour (batched tensors), for current row n paired with replay row n:
 *   sp_v[n,h,l] = s·⟨K_v[n,h,l], q_a^past[n,h]⟩        sc_v[n,h,l] = s·⟨K_v[n,h,l], q_a^cur[n,h]⟩
 *   π_v[n,l]    = mean_h σ(sp_v − sc_v)  on the top-K_v candidates, 0 elsewhere (patch order)   [N, Lv]
 *   audio symmetric with K_a and the video queries.  s = d_h^−½.
 * sc uses the query identity of spec §11 Q20 (S is linear in the query), which equals the reference's
 * importance-weighted average of S_av over the candidate audio rows up to float rounding; σ(sp − sc) is
 * the softmax over the pair [sp, sc] at index 0.
 * Pairing (spec §11 Q14): only the first min(N, M) current rows have a past partner; rows without one
 * get π = 0 (never pruned).
 * Inputs: keys K_v [N,H,Lv,d], K_a [N,H,La,d]; current summary queries q_v, q_a [N,H,d]; past queries
 * [M,H,d]; candidate masks [N, L] (1 = candidate). Outputs are caller-owned tensors.
 * Ref: spec §5.2 step (5), §11 Q14, Q20; paper-results §1.3; golden G2 (`v_spu_att` … `prob_a_att`).
 */
import * as tf from '@tensorflow/tfjs';

export interface CorrelationInput {
  kV: tf.Tensor4D;
  kA: tf.Tensor4D;
  /** Current summary queries [N, H, d]. */
  queryV: tf.Tensor3D;
  queryA: tf.Tensor3D;
  /** Past summary queries from the replay rows [M, H, d]. */
  pastQueryV: tf.Tensor3D;
  pastQueryA: tf.Tensor3D;
  candidateMaskV: tf.Tensor2D;
  candidateMaskA: tf.Tensor2D;
}

export interface Correlation {
  /** π_v [N, Lv], π_a [N, La]. */
  probV: tf.Tensor2D;
  probA: tf.Tensor2D;
  /** Per-head logits over all patches [N, H, L]: past (sp) and current (sc). Rows without a partner are 0. */
  pastLogitV: tf.Tensor3D;
  currentLogitV: tf.Tensor3D;
  pastLogitA: tf.Tensor3D;
  currentLogitA: tf.Tensor3D;
}

/** s·⟨k[n,h,l], q[n,h]⟩ for every patch: [N,H,L,d] × [N,H,d] → [N,H,L]. */
export function queryKeyLogits(keys: tf.Tensor4D, query: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const d = keys.shape[3];
    const [N, H] = query.shape;
    return tf.mul(tf.sum(tf.mul(keys, query.reshape([N, H, 1, d])), 3), 1 / Math.sqrt(d)) as tf.Tensor3D;
  });
}

function side(keys: tf.Tensor4D, cur: tf.Tensor3D, past: tf.Tensor3D, cand: tf.Tensor2D, name: string) {
  const [N, H, L, d] = keys.shape;
  const expect = (what: string, t: tf.Tensor, shape: number[]) => {
    if (t.rank !== shape.length || t.shape.some((x, i) => shape[i] >= 0 && x !== shape[i])) {
      throw new RangeError(`correlation: ${what} has shape [${t.shape}], expected [${shape.map((x) => (x < 0 ? '·' : x))}] (keys ${name} [${keys.shape}])`);
    }
  };
  expect(`current query (${name})`, cur, [N, H, d]);
  expect(`past query (${name})`, past, [-1, H, d]);
  expect(`candidate mask (${name})`, cand, [N, L]);
  const P = Math.min(N, past.shape[0]);
  const padRows = (x: tf.Tensor3D) => (P === N ? x : tf.concat([x, tf.zeros([N - P, H, L])], 0) as tf.Tensor3D);
  const sliceRows = <T extends tf.Tensor>(x: T) => (P === x.shape[0] ? x : tf.slice(x, 0, P) as T);
  const sp = padRows(queryKeyLogits(sliceRows(keys), sliceRows(past)));
  const sc = padRows(queryKeyLogits(sliceRows(keys), sliceRows(cur)));
  const paired = P === N ? tf.ones([N, 1]) : tf.concat([tf.ones([P, 1]), tf.zeros([N - P, 1])], 0);
  const prob = tf.mul(tf.mul(tf.mean(tf.sigmoid(tf.sub(sp, sc)), 1), cand), paired) as tf.Tensor2D;
  return { sp, sc, prob };
}

export function replayCorrelation(x: CorrelationInput): Correlation {
  return tf.tidy(() => {
    // Video patches: current video keys against past / current audio queries; audio symmetric.
    const v = side(x.kV, x.queryA, x.pastQueryA, x.candidateMaskV, 'video');
    const a = side(x.kA, x.queryV, x.pastQueryV, x.candidateMaskA, 'audio');
    return { probV: v.prob, probA: a.prob, pastLogitV: v.sp, currentLogitV: v.sc, pastLogitA: a.sp, currentLogitA: a.sc };
  });
}

/** π = 0 everywhere (first step, or the LPIS-only ablation): [N, L] zeros per modality. */
export function zeroCorrelation(N: number, Lv: number, La: number): Pick<Correlation, 'probV' | 'probA'> {
  return { probV: tf.zeros([N, Lv]), probA: tf.zeros([N, La]) };
}

export function disposeCorrelation(c: Partial<Correlation>): void {
  tf.dispose(Object.values(c) as tf.Tensor[]);
}
