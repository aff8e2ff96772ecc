/**
 * Probability calibration by temperature scaling (Guo et al. 2017): one scalar T divides the
 * logits; it is fitted on held-out rows by minimising their negative log-likelihood (golden-section
 * search over log T in [−3, 3]). The expected calibration error is reported before and after.
 */
import { expectedCalibrationError } from '../../train/metrics.js';

export interface ProbabilityCalibration {
  rows: number;
  nllBefore: number;
  nllAfter: number;
  eceBefore: number;
  eceAfter: number;
}

/** Softmax of logits z[o .. o+C) divided by T, into p (double precision). */
export function softmaxT(z: Float32Array, o: number, C: number, T: number, p: Float64Array): void {
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < C; j++) mx = Math.max(mx, z[o + j] / T);
  let s = 0;
  for (let j = 0; j < C; j++) {
    p[j] = Math.exp(z[o + j] / T - mx);
    s += p[j];
  }
  for (let j = 0; j < C; j++) p[j] /= s;
}

/** Mean negative log-likelihood of classes y under softmax(z / T); z is n × C. */
export function nllAt(z: Float32Array, y: Int32Array, C: number, T: number): number {
  const p = new Float64Array(C);
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    softmaxT(z, i * C, C, T, p);
    s -= Math.log(Math.max(p[y[i]], 1e-300));
  }
  return s / y.length;
}

/** Expected calibration error of the top-class probability under softmax(z / T). */
export function eceAt(z: Float32Array, y: Int32Array, C: number, T: number): number {
  const p = new Float64Array(C);
  const conf = new Float64Array(y.length);
  const ok: boolean[] = [];
  for (let i = 0; i < y.length; i++) {
    softmaxT(z, i * C, C, T, p);
    let best = 0;
    for (let j = 1; j < C; j++) if (p[j] > p[best]) best = j;
    conf[i] = p[best];
    ok.push(best === y[i]);
  }
  return expectedCalibrationError(conf, ok);
}

/** The temperature minimising held-out NLL of logits z (n × C) for classes y. */
export function fitTemperature(
  z: Float32Array,
  y: Int32Array,
  C: number,
): { temperature: number; calibration: ProbabilityCalibration } {
  const f = (lt: number) => nllAt(z, y, C, Math.exp(lt));
  let a = -3;
  let b = 3;
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  for (let it = 0; it < 60 && b - a > 1e-5; it++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  let T = Math.exp((a + b) / 2);
  // The search brackets the optimum; never return a temperature worse than none.
  if (nllAt(z, y, C, T) > nllAt(z, y, C, 1)) T = 1;
  return {
    temperature: T,
    calibration: {
      rows: y.length,
      nllBefore: nllAt(z, y, C, 1),
      nllAfter: nllAt(z, y, C, T),
      eceBefore: eceAt(z, y, C, 1),
      eceAfter: eceAt(z, y, C, T),
    },
  };
}

/** Probability of any class but 0 (BENIGN) for the logits at z[o .. o+C) and temperature T. */
export function attackProbability(z: Float32Array, o: number, C: number, T: number, p: Float64Array): number {
  softmaxT(z, o, C, T, p);
  let s = 0;
  for (let j = 1; j < C; j++) s += p[j];
  return s;
}

/** Most likely class of each of n rows of logits (n × C) at temperature T, with its probability. */
export function classifyLogits(
  z: Float32Array,
  n: number,
  C: number,
  T: number,
): { ids: Int32Array; confidence: Float32Array } {
  const p = new Float64Array(C);
  const ids = new Int32Array(n);
  const confidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    softmaxT(z, i * C, C, T, p);
    let best = 0;
    for (let j = 1; j < C; j++) if (p[j] > p[best]) best = j;
    ids[i] = best;
    confidence[i] = p[best];
  }
  return { ids, confidence };
}
