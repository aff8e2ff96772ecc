/**
 * One trained model per series: a streaming detector (detectors.ts, lstm.ts) plus what turns its
 * forecast into a verdict — a threshold on the score |value − expected| / scale, calibrated on the
 * training stretch's own out-of-sample scores — and the grid position of the next point.
 *
 * Per point the output is: value, expected, band [lower, upper] = expected ∓ threshold·scale,
 * score, is-anomaly (value outside the band), direction (spike above, drop below).
 *
 * Rules for awkward series (documented in docs/series.md):
 *   constant in training   the baseline with its value; any change is an anomaly (`constant`);
 *   too short              not trained; the reason names how many points the detector needs;
 *   missing points         not scored, and the detector's state takes its own forecast instead.
 */
import { UserError } from '../core/diagnostics.js';
import { quantileSorted } from '../core/stats.js';
import {
  ArimaDetector,
  type ArimaOptions,
  type BaselineOptions,
  baselineParams,
  type Forecast,
  fitArimaModel,
  robustScale,
  type SavedDetector,
  SeasonalBaseline,
  type SeriesDetector,
  type SeriesDetectorKind,
} from './detectors.js';
import { fitLstmDetector, LstmSeriesDetector, type LstmSeriesOptions } from './lstm.js';
import { formatDuration, parsePeriod, present, type Series } from './series.js';

export interface SeriesTrainOptions extends BaselineOptions, ArimaOptions, LstmSeriesOptions {
  detector: SeriesDetectorKind;
  /** `auto`, `none`, a duration or a number of steps. */
  period?: string;
  /** `p99.5` (quantile of training scores) or a fixed score such as `4`. */
  threshold?: string;
  /**
   * Range a quantile threshold is kept in (default [4, 6]): the floor keeps a near-perfect fit
   * from flagging noise, the ceiling keeps anomalies inside the training stretch (holidays, past
   * outages) from hiding new ones. Scores are robust z-scores, so 4–6 is "far out".
   */
  minThreshold?: number;
  maxThreshold?: number;
  /** Smallest relative change that can be an anomaly: |value − expected| > minChange·|expected|. */
  minChange?: number;
  /** `auto` (log for non-negative, skewed series), `log` or `none`. */
  transform?: 'auto' | 'log' | 'none';
}

export interface SavedSeriesModel {
  key: string;
  metric: string;
  kind: SeriesDetectorKind;
  step: number;
  period: number;
  periodReason: string;
  /** Time (ms) of the next point the state expects. */
  next: number;
  threshold: number;
  thresholdMethod: string;
  /** Smallest relative deviation that counts (0: any beyond the threshold). */
  minChange: number;
  /** `log`: the detector models log1p(value) (skewed, non-negative series such as traffic). */
  transform: 'none' | 'log';
  /** Non-negative whole numbers in training (counts): Poisson noise widens the band at low levels. */
  counts: boolean;
  /**
   * Factor on the detector's scale so that the median training score is 0.6745, the median of
   * |z| for a standard normal: scores read as robust z-scores whatever the detector.
   */
  calibration: number;
  /** Points (present) the model learned from. */
  trained: number;
  /** Training points scored (after warm-up) and how many of them were above the threshold. */
  trainScored: number;
  trainFlagged: number;
  constant: boolean;
  detector: SavedDetector;
}

/** The result for one point. `scored` is false for a missing value or while warming up. */
export interface ScoredPoint {
  t: number;
  value: number;
  expected: number;
  lower: number;
  upper: number;
  score: number;
  anomaly: boolean;
  scored: boolean;
}

export function newPoint(): ScoredPoint {
  return {
    t: 0,
    value: Number.NaN,
    expected: Number.NaN,
    lower: Number.NaN,
    upper: Number.NaN,
    score: Number.NaN,
    anomaly: false,
    scored: false,
  };
}

export class SeriesModel {
  private readonly f: Forecast = { expected: 0, scale: 1 };

  constructor(
    readonly info: Omit<SavedSeriesModel, 'detector'>,
    readonly det: SeriesDetector,
  ) {}

  get next(): number {
    return this.info.next;
  }

  /** Scores the value at `this.next` into `out`, then learns it and moves to the next step. */
  step(v: number, out: ScoredPoint): void {
    const t = this.info.next;
    out.t = t;
    out.value = v;
    out.scored = false;
    out.anomaly = false;
    out.score = Number.NaN;
    const log = this.info.transform === 'log';
    // Log: the detector sees log1p(value), so bands are relative (a drop to a tenth is as far at
    // night as by day); negative values, which log cannot take, are treated as 0.
    const x = log ? Math.log1p(Math.max(0, v)) : v;
    if (this.det.predict(t, this.f)) {
      const thr = this.info.threshold;
      const e = this.f.expected;
      const scale = scoreScale(this.f.scale, this.info.calibration, e, this.info.counts, log);
      const half = thr * scale;
      const ev = log ? Math.expm1(e) : e;
      const minHalf = this.info.minChange * Math.abs(ev);
      out.expected = ev;
      out.lower = Math.min(log ? Math.expm1(e - half) : e - half, ev - minHalf);
      out.upper = Math.max(log ? Math.expm1(e + half) : e + half, ev + minHalf);
      if (Number.isFinite(v)) {
        out.score = Math.abs(x - e) / scale;
        out.anomaly = out.score > thr && Math.abs(v - ev) > minHalf;
        out.scored = true;
      }
    } else {
      out.expected = Number.NaN;
      out.lower = Number.NaN;
      out.upper = Number.NaN;
    }
    this.det.learn(t, x);
    this.info.next = t + this.info.step;
  }

  save(): SavedSeriesModel {
    return { ...this.info, detector: this.det.save() };
  }

  static restore(s: SavedSeriesModel): SeriesModel {
    const { detector, ...info } = s;
    return new SeriesModel(info, restoreDetector(detector));
  }
}

export function restoreDetector(s: SavedDetector): SeriesDetector {
  switch (s.kind) {
    case 'baseline':
      return SeasonalBaseline.restore(s);
    case 'arima':
      return ArimaDetector.restore(s);
    case 'lstm':
      return LstmSeriesDetector.restore(s);
    default:
      throw new Error(`unknown series detector '${(s as SavedDetector).kind}'`);
  }
}

/** Parses a threshold method: `pNN[.N]` (a quantile of training scores) or a fixed score. */
export function parseSeriesThreshold(text: string): { quantile: number } | { fixed: number } {
  const q = /^p(\d{1,2}(?:\.\d+)?)$/i.exec(text.trim());
  if (q) return { quantile: Number(q[1]) / 100 };
  const x = Number(text);
  if (Number.isFinite(x) && x > 0) return { fixed: x };
  throw new UserError(`--threshold '${text}' is neither a quantile like p99.5 nor a positive score like 4`);
}

/** One-step residuals (value − forecast) of a fresh detector streamed over the series. */
function residuals(det: SeriesDetector, s: Series): Float64Array {
  const fc = streamForecasts(det, s.start, s.step, s.values);
  return fc.x.map((x, i) => x - fc.e[i]);
}

/** At least 90% of the present values are whole numbers (counts; a mean of two counts may not be). */
function mostlyWhole(values: Float64Array): boolean {
  let whole = 0;
  let n = 0;
  for (const v of values)
    if (!Number.isNaN(v)) {
      n++;
      if (Number.isInteger(v)) whole++;
    }
  return n > 0 && whole >= 0.9 * n;
}

/**
 * The scale a score divides by: the detector's scale times the calibration, and for counts also
 * the Poisson noise at the expected level λ (√λ, or about √λ / (λ + 1) for log(1 + count)):
 * going from 4 to 5 packets/s is noise, from 40,000 to 50,000 is not.
 */
export function scoreScale(
  detScale: number,
  calibration: number,
  expected: number,
  counts: boolean,
  log: boolean,
): number {
  const s = detScale * calibration;
  if (!counts) return s;
  const lambda = Math.max(0, log ? Math.expm1(expected) : expected);
  // Var(X) = λ; Var(log(1 + X)) ≈ λ / (λ + 1)². The 0.25 keeps a level of 0 from having no noise.
  return Math.sqrt(s * s + (log ? (lambda + 0.25) / (lambda + 1) ** 2 : lambda + 0.25));
}

/** Streams `values` through `det`: the forecast (expected, scale) and value of every point it could score. */
function streamForecasts(
  det: SeriesDetector,
  start: number,
  step: number,
  values: Float64Array,
): { e: Float64Array; s: Float64Array; x: Float64Array } {
  const f: Forecast = { expected: 0, scale: 1 };
  const e: number[] = [];
  const sc: number[] = [];
  const x: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const t = start + i * step;
    const v = values[i];
    if (det.predict(t, f) && Number.isFinite(v)) {
      e.push(f.expected);
      sc.push(f.scale);
      x.push(v);
    }
    det.learn(t, v);
  }
  return { e: Float64Array.from(e), s: Float64Array.from(sc), x: Float64Array.from(x) };
}

/**
 * `auto`: log when every value is ≥ 0 and the series is skewed — its 95th percentile more than 3
 * times its median, or more than 3 times its 5th percentile (traffic volumes with a daily swing
 * or bursts). Otherwise the values are modelled as they are.
 */
export function chooseTransform(values: Float64Array, asked: 'auto' | 'log' | 'none'): 'log' | 'none' {
  if (asked !== 'auto') return asked;
  const a = values.filter((v) => !Number.isNaN(v)).sort();
  if (!a.length || a[0] < 0) return 'none';
  const p5 = quantileSorted(a, 0.05);
  const med = quantileSorted(a, 0.5);
  const p95 = quantileSorted(a, 0.95);
  return p95 > 3 * med || p95 > 3 * p5 ? 'log' : 'none';
}

/**
 * Trains one series. Throws UserError (reason in the message) when it cannot: too short, no
 * values. The caller (the registry) records such series as skipped.
 */
export function fitSeriesModel(series: Series, o: SeriesTrainOptions): SeriesModel {
  let s = series;
  const n = present(s.values);
  if (n === 0) throw new UserError('no values (every point missing)');
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of s.values)
    if (!Number.isNaN(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  const constant = lo === hi;
  const { period, reason } = constant
    ? { period: 1, reason: 'none (constant)' }
    : parsePeriod(o.period ?? 'auto', s.step, s);
  const kind: SeriesDetectorKind = constant ? 'baseline' : o.detector;
  const transform = constant ? 'none' : chooseTransform(s.values, o.transform ?? 'auto');
  if (transform === 'log')
    s = { ...s, values: s.values.map((v) => (Number.isNaN(v) ? v : Math.log1p(Math.max(0, v)))) };
  const make = (): SeriesDetector => {
    switch (kind) {
      case 'baseline': {
        const p = baselineParams(s.values, period, o);
        const minPoints = period === 1 ? 10 : 2 * period + 1;
        if (s.values.length < minPoints || n < Math.min(minPoints, 10))
          throw new UserError(
            `too short for the baseline: ${s.values.length} points, it needs at least ${minPoints}` +
              (period > 1 ? ` (two seasons of ${formatDuration(period * s.step)})` : ''),
          );
        // The typical residual, from a first pass without it.
        p.floor = constant
          ? Math.max(1e-3, 1e-3 * Math.abs(lo))
          : robustScale(residuals(new SeasonalBaseline(p), s));
        return new SeasonalBaseline(p);
      }
      case 'arima': {
        const model = fitArimaModel(s.values, period, o);
        const resid = residuals(new ArimaDetector({ model, scale: 1 }), s);
        return new ArimaDetector({ model, scale: robustScale(resid) || Math.sqrt(model.sigma2) });
      }
      case 'lstm':
        return fitLstmDetector(s, period, o);
    }
  };
  const det = make();
  const fc = streamForecasts(det, s.start, s.step, s.values);
  const raw = fc.x.map((x, i) => Math.abs(x - fc.e[i]) / fc.s[i]);
  const med = raw.length ? quantileSorted(Float64Array.from(raw).sort(), 0.5) : 0;
  const calibration = med > 0 ? med / 0.6745 : 1;
  const counts = !constant && lo >= 0 && mostlyWhole(series.values);
  const scores = fc.x.map(
    (x, i) => Math.abs(x - fc.e[i]) / scoreScale(fc.s[i], calibration, fc.e[i], counts, transform === 'log'),
  );
  const method = o.threshold ?? 'p99.5';
  const th = parseSeriesThreshold(method);
  const minThr = o.minThreshold ?? 4;
  const maxThr = Math.max(minThr, o.maxThreshold ?? 6);
  let threshold: number;
  if ('fixed' in th) threshold = th.fixed;
  else {
    const sorted = Float64Array.from(scores).sort();
    const q = sorted.length ? quantileSorted(sorted, th.quantile) : minThr;
    threshold = Math.min(maxThr, Math.max(minThr, q));
  }
  let flagged = 0;
  for (const x of scores) if (x > threshold) flagged++;
  return new SeriesModel(
    {
      key: s.key,
      metric: s.metric,
      kind,
      step: s.step,
      period,
      periodReason: reason,
      next: s.start + s.values.length * s.step,
      threshold,
      thresholdMethod: method,
      minChange: o.minChange ?? 0,
      transform,
      counts,
      calibration,
      trained: n,
      trainScored: scores.length,
      trainFlagged: flagged,
      constant,
    },
    det,
  );
}
