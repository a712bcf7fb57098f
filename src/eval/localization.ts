/**
 * Localisation quality of patch importance scores: ROC-AUC against ground-truth patch labels.
 *
 * Behaviour: for each clip, AUC = P(score of a random positive patch > score of a random negative
 * patch) + ½ P(equal), computed with the Mann–Whitney U statistic on mid-ranks (ties get the
 * average of the ranks they span). The clip AUCs are averaged with equal weight per clip.
 * Labels: 1 = the patch is covered by the sounding object (video) / holds its sound events (audio),
 * 0 = background. A clip whose labels are all 1 or all 0 has no AUC; it is skipped and counted.
 *
 * Inputs: `scores` (one per patch, e.g. I_v [Lv] or I_a [La]) and `labels` of the same length
 * (numbers 0/1 or booleans). Outputs: `{ meanAuc, clips, skipped, perClip }` where `perClip[i]` is
 * null for a skipped clip; `meanAuc` is NaN when every clip was skipped.
 *
 * Ref: our own evaluation (the paper shows localisation qualitatively only, paper-results.md §2.4);
 * importance scores are spec §5.2 (2).
 */

export type PatchLabels = ArrayLike<number> | readonly boolean[];

export interface LocalizationSummary {
  /** Mean AUC over the clips that have both positive and negative patches. */
  meanAuc: number;
  /** Clips that contributed. */
  clips: number;
  /** Clips skipped because every label was equal. */
  skipped: number;
  perClip: (number | null)[];
}

/** Mann–Whitney ROC-AUC with tie-averaged ranks; null when only one class is present. */
export function rocAuc(scores: ArrayLike<number>, labels: PatchLabels, where = 'clip'): number | null {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`${where}: ${n} scores but ${labels.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) throw new RangeError(`${where}: score ${i} is ${scores[i]}, not finite`);
  }
  order.sort((x, y) => scores[x] - scores[y]);
  // Sum of the 1-based mid-ranks of the positives.
  let positiveRankSum = 0;
  let positives = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1]] === scores[order[start]]) end++;
    const midRank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (labels[order[k]]) {
        positiveRankSum += midRank;
        positives++;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  const u = positiveRankSum - (positives * (positives + 1)) / 2;
  return u / (positives * negatives);
}

/** Mean AUC over clips; clips with one class only are skipped and counted. */
export function localizationAuc(clips: readonly { scores: ArrayLike<number>; labels: PatchLabels; path?: string }[]): LocalizationSummary {
  const perClip = clips.map((c, i) => rocAuc(c.scores, c.labels, c.path ?? `clip ${i}`));
  const used = perClip.filter((x): x is number => x !== null);
  return {
    meanAuc: used.length ? used.reduce((s, x) => s + x, 0) / used.length : NaN,
    clips: used.length,
    skipped: perClip.length - used.length,
    perClip,
  };
}
