/**
 * Threshold calibration by named method, on scores of normal (benign) rows held out from fitting.
 *
 *   pNN / pNN.N   the NNth percentile of calibration scores (`p99`, `p99.5`, `p95`)
 *   fpr:RATE      the smallest threshold with at most RATE of calibration scores above it
 *   mad[:K]       median + K · 1.4826 · MAD (K default 3): robust, for when the normal data
 *                 may itself hold some anomalies
 *
 * A row is anomalous when its score is strictly above the threshold.
 */
import { UserError } from '../core/diagnostics.js';
import { mad, quantileSorted, sortedCopy } from '../core/stats.js';

export interface Threshold {
  method: string;
  value: number;
  /** Number of scores it was calibrated on. */
  calibrationRows: number;
}

export type ThresholdMethod =
  | { kind: 'quantile'; q: number }
  | { kind: 'fpr'; rate: number }
  | { kind: 'mad'; k: number };

export function parseThresholdMethod(spec: string): ThresholdMethod {
  const s = spec.trim().toLowerCase();
  let m = /^p(\d{1,2}(?:\.\d+)?)$/.exec(s);
  if (m) {
    const q = Number(m[1]) / 100;
    if (q > 0 && q < 1) return { kind: 'quantile', q };
  }
  m = /^fpr:(\d*\.?\d+(?:e-?\d+)?)$/.exec(s);
  if (m) {
    const rate = Number(m[1]);
    if (rate > 0 && rate < 1) return { kind: 'fpr', rate };
  }
  m = /^mad(?::(\d*\.?\d+))?$/.exec(s);
  if (m) {
    const k = m[1] === undefined ? 3 : Number(m[1]);
    if (k > 0) return { kind: 'mad', k };
  }
  throw new UserError(
    `unknown threshold method '${spec}'`,
    'use p99, p99.5 (percentiles of normal scores), fpr:0.01 (target false-positive rate) or mad, mad:3.5 (median + K·MAD)',
    2,
  );
}

/** Computes a threshold from scores of normal rows. */
export function calibrate(scores: ArrayLike<number>, spec: string): Threshold {
  const method = parseThresholdMethod(spec);
  const n = scores.length;
  if (n === 0) throw new UserError('no normal rows to calibrate the threshold on');
  const sorted = sortedCopy(scores);
  let value: number;
  switch (method.kind) {
    case 'quantile':
      value = quantileSorted(sorted, method.q);
      break;
    case 'fpr': {
      // At most floor(rate·n) scores may lie strictly above the threshold.
      const allowed = Math.floor(method.rate * n);
      value = sorted[Math.max(0, n - 1 - allowed)];
      break;
    }
    case 'mad': {
      const med = quantileSorted(sorted, 0.5);
      value = med + method.k * 1.4826 * mad(sorted, med);
      break;
    }
  }
  return { method: spec.trim().toLowerCase(), value, calibrationRows: n };
}
