/**
 * Evaluation metrics for anomaly scores against labels (attack = positive, higher score = more
 * anomalous). Definitions follow scikit-learn so figures are comparable:
 *   AUROC     Mann–Whitney U / (P·N), ties counted half (roc_auc_score)
 *   PR-AUC    average precision: Σ (Rₖ − Rₖ₋₁)·Pₖ over distinct thresholds (average_precision_score)
 *   DR@FPR    the detection rate (TPR) at the largest ROC point with FPR ≤ target, thresholds at
 *             observed scores and "score ≥ threshold" as positive (roc_curve)
 */

/** Ranks (1-based, ties averaged) of the values. */
function ranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => values[a] - values[b]);
  const r = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[idx[j + 1]] === values[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

/** Area under the ROC curve; NaN when either class is empty. */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<number | boolean>): number {
  const r = ranks(scores);
  let nPos = 0;
  let sumPos = 0;
  for (let i = 0; i < scores.length; i++) {
    if (positive[i]) {
      nPos++;
      sumPos += r[i];
    }
  }
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (sumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Indices sorted by score, descending. */
function byScoreDesc(scores: ArrayLike<number>): Uint32Array {
  const idx = new Uint32Array(scores.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => scores[b] - scores[a]);
}

/** Average precision (area under the precision–recall curve, step-wise); NaN without positives. */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<number | boolean>): number {
  const idx = byScoreDesc(scores);
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) if (positive[i]) nPos++;
  if (nPos === 0) return Number.NaN;
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  let i = 0;
  while (i < idx.length) {
    const s = scores[idx[i]];
    while (i < idx.length && scores[idx[i]] === s) {
      if (positive[idx[i]]) tp++;
      else fp++;
      i++;
    }
    const recall = tp / nPos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

/**
 * ROC operating point for a false-positive budget: the highest TPR among thresholds (observed
 * scores, positive when score ≥ threshold) whose FPR ≤ maxFpr. Returns the threshold too.
 */
export function detectionAtFpr(
  scores: ArrayLike<number>,
  positive: ArrayLike<number | boolean>,
  maxFpr: number,
): { tpr: number; fpr: number; threshold: number } {
  const idx = byScoreDesc(scores);
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) if (positive[i]) nPos++;
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return { tpr: Number.NaN, fpr: Number.NaN, threshold: Number.NaN };
  let tp = 0;
  let fp = 0;
  let best = { tpr: 0, fpr: 0, threshold: Number.POSITIVE_INFINITY };
  let i = 0;
  while (i < idx.length) {
    const s = scores[idx[i]];
    while (i < idx.length && scores[idx[i]] === s) {
      if (positive[idx[i]]) tp++;
      else fp++;
      i++;
    }
    const fpr = fp / nNeg;
    if (fpr > maxFpr) break;
    best = { tpr: tp / nPos, fpr, threshold: s };
  }
  return best;
}

export interface BinaryCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Confusion counts with "score > threshold" as predicted anomaly. */
export function countsAt(
  scores: ArrayLike<number>,
  positive: ArrayLike<number | boolean>,
  threshold: number,
): BinaryCounts {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const pred = scores[i] > threshold;
    if (positive[i]) pred ? c.tp++ : c.fn++;
    else pred ? c.fp++ : c.tn++;
  }
  return c;
}

export function precisionRecallF1(c: BinaryCounts): {
  precision: number;
  recall: number;
  f1: number;
  fpr: number;
} {
  const precision = c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : Number.NaN;
  const recall = c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : Number.NaN;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  const fpr = c.fp + c.tn > 0 ? c.fp / (c.fp + c.tn) : Number.NaN;
  return { precision, recall, f1, fpr };
}

/**
 * ROC curve points (fpr, tpr), thresholds at observed scores, thinned to at most `maxPoints`
 * (always keeping the first and last point).
 */
export function rocCurve(
  scores: ArrayLike<number>,
  positive: ArrayLike<number | boolean>,
  maxPoints = 400,
): [number, number][] {
  const idx = byScoreDesc(scores);
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) if (positive[i]) nPos++;
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return [];
  const pts: [number, number][] = [[0, 0]];
  let tp = 0;
  let fp = 0;
  let i = 0;
  while (i < idx.length) {
    const s = scores[idx[i]];
    while (i < idx.length && scores[idx[i]] === s) {
      if (positive[idx[i]]) tp++;
      else fp++;
      i++;
    }
    pts.push([fp / nNeg, tp / nPos]);
  }
  if (pts.length <= maxPoints) return pts;
  const step = (pts.length - 1) / (maxPoints - 1);
  const out: [number, number][] = [];
  for (let k = 0; k < maxPoints; k++) out.push(pts[Math.round(k * step)]);
  return out;
}

/** Expected calibration error of the top-class probability, `bins` equal-width bins. */
export function expectedCalibrationError(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean>,
  bins = 15,
): number {
  const n = confidence.length;
  if (n === 0) return Number.NaN;
  const conf = new Float64Array(bins);
  const acc = new Float64Array(bins);
  const cnt = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const b = Math.min(bins - 1, Math.floor(confidence[i] * bins));
    conf[b] += confidence[i];
    acc[b] += correct[i] ? 1 : 0;
    cnt[b]++;
  }
  let e = 0;
  for (let b = 0; b < bins; b++) if (cnt[b] > 0) e += Math.abs(acc[b] - conf[b]) / n;
  return e;
}
