/**
 * Streaming detectors for one regular series, River-style: `predict` forecasts the next point
 * (expected value and a scale), `learn` takes the observed value into the state. Scoring a point is
 * predict → compare → learn, so every score is out of sample and nothing is refitted. The wrapper
 * in model.ts turns (expected, scale) into a score |value − expected| / scale, a band and a
 * verdict. Hot paths allocate nothing: state lives in ring buffers, medians use scratch arrays.
 *
 *   baseline   the median of the same phase in the most similar past windows (every past day at
 *              this hour for a weekly season, every past season otherwise; similarity: the points
 *              just before, compared window by window), with a band from the spread (MAD) of
 *              those values widened by the typical training residual. Each vote is shifted by how
 *              much the points before now differ from the points before it (today's level).
 *              Without a season it is a rolling median of the last points. Robust and
 *              explainable: "expected 41k, like the 7 most similar past days at 14:00".
 *   arima      seasonal ARIMA(p, d, q)(0, D, 0)ₛ (arima.ts) with d and D chosen by the variance
 *              rule (the least-variance differencing; over-differencing raises it) and p ≤ 5,
 *              q ≤ 1 by AIC (Hannan–Rissanen); the one-step forecast from the state (values and
 *              innovations), the scale from the training residuals' MAD.
 *   lstm       see lstm.ts.
 */
import { UserError } from '../core/diagnostics.js';
import { quantileSorted } from '../core/stats.js';
import { type ArimaModel, arPolynomial, difference, fitArima } from './arima.js';

export type SeriesDetectorKind = 'baseline' | 'arima' | 'lstm';
export const SERIES_DETECTORS: SeriesDetectorKind[] = ['baseline', 'arima', 'lstm'];

export interface Forecast {
  expected: number;
  /** One unit of "how far is unusual" (a robust standard deviation), > 0. */
  scale: number;
}

export interface SeriesDetector {
  readonly kind: SeriesDetectorKind;
  /** Forecasts the point at time t (ms) into `out`; false while the state is too short. */
  predict(t: number, out: Forecast): boolean;
  /** Takes the value observed at t into the state (NaN: missing, the forecast stands in). */
  learn(t: number, v: number): void;
  /** Parameters and state, JSON-safe. */
  save(): SavedDetector;
}

export interface SavedDetector {
  kind: SeriesDetectorKind;
  params: Record<string, unknown>;
  state: Record<string, unknown>;
}

/** Fixed-capacity history; lag 1 is the latest value. Missing values are NaN. */
export class Ring {
  readonly buf: Float64Array;
  /** Index where the next value goes. */
  pos = 0;
  /** Values pushed so far (capped at capacity). */
  size = 0;
  constructor(readonly capacity: number) {
    this.buf = new Float64Array(Math.max(1, capacity)).fill(Number.NaN);
  }
  push(v: number): void {
    this.buf[this.pos] = v;
    this.pos = this.pos + 1 === this.buf.length ? 0 : this.pos + 1;
    if (this.size < this.buf.length) this.size++;
  }
  /** The value `lag` steps back (1 = latest); NaN beyond the history. */
  lag(lag: number): number {
    if (lag > this.size || lag < 1) return Number.NaN;
    let i = this.pos - lag;
    if (i < 0) i += this.buf.length;
    return this.buf[i];
  }
  toJSON(): { values: string; pos: number; size: number } {
    return { values: encodeF64(this.buf), pos: this.pos, size: this.size };
  }
  /** Loads a saved state (from `toJSON`) into this ring; the capacities must match. */
  restore(j: unknown): void {
    if (!j) return;
    const r = j as { values: string; pos: number; size: number };
    const v = decodeF64(r.values);
    if (v.length !== this.buf.length)
      throw new Error(`series state: ring of ${v.length} values, expected ${this.buf.length}`);
    this.buf.set(v);
    this.pos = r.pos;
    this.size = r.size;
  }
}

export function encodeF64(a: Float64Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function decodeF64(s: string): Float64Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float64Array(b.length / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** Median of the first n values of `a` (sorted in place: insertion sort, n is small). */
function medianInPlace(a: Float64Array, n: number): number {
  for (let i = 1; i < n; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
  return n & 1 ? a[n >> 1] : (a[(n >> 1) - 1] + a[n >> 1]) / 2;
}

/** 1.4826 · MAD: the standard deviation of a normal distribution, estimated robustly. */
export const MAD_TO_SD = 1.4826;

/** Robust scale of finite values: 1.4826·MAD, else 1.2533·mean |x − median| (MAD 0 on ≥ 50% ties), else 0. */
export function robustScale(xs: ArrayLike<number>): number {
  const a = Float64Array.from(xs).filter((x) => Number.isFinite(x));
  if (!a.length) return 0;
  a.sort();
  const med = quantileSorted(a, 0.5);
  const dev = a.map((x) => Math.abs(x - med)).sort();
  const m = quantileSorted(dev, 0.5);
  if (m > 0) return MAD_TO_SD * m;
  let s = 0;
  for (const d of dev) s += d;
  return (1.2533 * s) / dev.length;
}

// ---------------------------------------------------------------------------------------------
// Seasonal baseline

export interface BaselineParams {
  /** Season length in steps; 1 = no season (a rolling median of the last `candidates` points). */
  period: number;
  /**
   * Spacing of the candidate lags in steps: the period, or a day when the period is a week
   * (every past day is a candidate; the context similarity tells weekdays from weekends).
   */
  stride: number;
  /** Candidate lags: stride, 2·stride, …, candidates·stride. */
  candidates: number;
  /** The most similar candidates that vote (all of them when period = 1). */
  pick: number;
  /** Points before the current one compared to judge similarity. */
  context: number;
  /** Typical residual: the robust scale of a first pass's training residuals. */
  floor: number;
}

export class SeasonalBaseline implements SeriesDetector {
  readonly kind = 'baseline';
  readonly ring: Ring;
  private readonly vals: Float64Array;
  private readonly dist: Float64Array;
  private readonly dev: Float64Array;

  constructor(readonly p: BaselineParams) {
    this.ring = new Ring(p.period === 1 ? p.candidates : p.candidates * p.stride + p.context);
    this.vals = new Float64Array(p.candidates);
    this.dist = new Float64Array(p.candidates);
    this.dev = new Float64Array(p.candidates);
  }

  predict(_t: number, out: Forecast): boolean {
    const { period, stride, candidates, context } = this.p;
    const r = this.ring;
    let n = 0;
    if (period === 1) {
      for (let k = 1; k <= candidates; k++) {
        const v = r.lag(k);
        if (!Number.isNaN(v)) this.vals[n++] = v;
      }
      if (n < Math.min(3, candidates)) return false;
    } else {
      // Candidates: the same phase k strides back, each with the mean |difference| of the
      // `context` points before it against the points before now. Direct ring indexing: this
      // loop is the baseline's whole cost.
      const buf = r.buf;
      const cap = buf.length;
      const size = r.size;
      const pos = r.pos;
      for (let k = 1; k <= candidates; k++) {
        const lagK = k * stride;
        if (lagK > size) break;
        let iv = pos - lagK;
        if (iv < 0) iv += cap;
        const v = buf[iv];
        if (Number.isNaN(v)) continue;
        let s = 0;
        let c = 0;
        let off = 0;
        const jmax = Math.min(context, size - lagK);
        for (let j = 1; j <= jmax; j++) {
          let ia = pos - j;
          if (ia < 0) ia += cap;
          let ib = ia - lagK;
          if (ib < 0) ib += cap;
          const a = buf[ia];
          const b = buf[ib];
          if (!Number.isNaN(a) && !Number.isNaN(b)) {
            s += a > b ? a - b : b - a;
            off += a - b;
            c++;
          }
        }
        // Shifted to today's level: by how much the points before now differ from theirs.
        this.vals[n] = c ? v + off / c : v;
        this.dist[n] = c ? s / c : Number.POSITIVE_INFINITY;
        n++;
      }
      if (n < 2) return false;
      // Keep the `pick` nearest: selection by repeated minimum (n ≤ candidates, small).
      const m = Math.min(this.p.pick, n);
      for (let i = 0; i < m; i++) {
        let best = i;
        for (let j = i + 1; j < n; j++) if (this.dist[j] < this.dist[best]) best = j;
        const tv = this.vals[i];
        this.vals[i] = this.vals[best];
        this.vals[best] = tv;
        const td = this.dist[i];
        this.dist[i] = this.dist[best];
        this.dist[best] = td;
      }
      n = m;
    }
    const med = medianInPlace(this.vals, n);
    for (let i = 0; i < n; i++) this.dev[i] = Math.abs(this.vals[i] - med);
    const mad = medianInPlace(this.dev, n) * MAD_TO_SD;
    out.expected = med;
    // The spread of the voters, widened by the typical residual (`floor`): a handful of votes
    // that happen to agree must not make ordinary noise look anomalous.
    out.scale = Math.max(
      Math.sqrt(mad * mad + this.p.floor * this.p.floor),
      1e-9 * Math.max(1, Math.abs(med)),
    );
    return true;
  }

  learn(_t: number, v: number): void {
    this.ring.push(Number.isFinite(v) ? v : Number.NaN);
  }

  save(): SavedDetector {
    return { kind: this.kind, params: { ...this.p }, state: { ring: this.ring.toJSON() } };
  }

  static restore(s: SavedDetector): SeasonalBaseline {
    const d = new SeasonalBaseline(s.params as unknown as BaselineParams);
    d.ring.restore(s.state.ring);
    return d;
  }
}

export interface BaselineOptions {
  /** Past seasons looked at (default: 4 for a weekly season, 28 for a daily one: 28 past days either way). */
  seasons?: number;
  pick?: number;
  context?: number;
}

/** Chooses the baseline's parameters for a training series (values) and period. */
export function baselineParams(
  values: Float64Array,
  period: number,
  o: BaselineOptions = {},
): BaselineParams {
  if (period === 1) {
    const candidates = o.seasons ?? 12;
    return { period, stride: 1, candidates, pick: candidates, context: 0, floor: 0 };
  }
  const stride = period % 7 === 0 && period >= 14 ? period / 7 : period;
  const seasons = o.seasons ?? (stride === period ? 28 : 4);
  const wanted = (seasons * period) / stride;
  const available = Math.floor(values.length / stride) - 1;
  const candidates = Math.max(2, Math.min(wanted, available));
  return {
    period,
    stride,
    candidates,
    pick: Math.min(candidates, o.pick ?? 7),
    context: o.context ?? Math.max(2, Math.min(12, Math.round(stride / 4))),
    floor: 0,
  };
}

// ---------------------------------------------------------------------------------------------
// ARIMA

export interface ArimaDetectorParams {
  model: ArimaModel;
  /** Robust scale of the in-sample one-step residuals (original units). */
  scale: number;
}

export class ArimaDetector implements SeriesDetector {
  readonly kind = 'arima';
  readonly ring: Ring;
  /** One-step innovations ε (MA terms), latest at lag 1. */
  readonly eps: Ring;
  private readonly poly: Float64Array;
  private readonly theta: Float64Array;
  /** The forecast `predict` made for the coming point (`learn` needs it too); null when stale. */
  private pending: number | null = null;

  constructor(readonly p: ArimaDetectorParams) {
    this.poly = arPolynomial(p.model);
    this.theta = p.model.theta ?? new Float64Array(0);
    this.ring = new Ring(this.poly.length - 1);
    this.eps = new Ring(Math.max(1, this.theta.length));
  }

  /**
   * Forecast from the history: c − Σ aⱼ y_{t−j} + Σ θⱼ ε_{t−j}; NaN while the history is shorter
   * than the polynomial.
   */
  private forecast(): number {
    const L = this.poly.length - 1;
    if (this.ring.size < L) return Number.NaN;
    let f = this.p.model.intercept;
    for (let j = 1; j <= L; j++) f -= this.poly[j] * this.ring.lag(j);
    for (let j = 1; j <= this.theta.length; j++) {
      const e = this.eps.lag(j);
      if (!Number.isNaN(e)) f += this.theta[j - 1] * e;
    }
    return f;
  }

  predict(_t: number, out: Forecast): boolean {
    const f = this.forecast();
    this.pending = f;
    if (!Number.isFinite(f)) return false;
    out.expected = f;
    out.scale = Math.max(this.p.scale, 1e-9 * Math.max(1, Math.abs(f)));
    return true;
  }

  learn(_t: number, v: number): void {
    const f = this.pending ?? this.forecast();
    this.pending = null;
    if (Number.isFinite(v)) {
      this.ring.push(v);
      // The innovation (0 while there is no forecast yet, as the conditional fit assumes).
      this.eps.push(Number.isFinite(f) ? v - f : 0);
    } else {
      // A missing point: the forecast stands in (the conditional expectation; its innovation is
      // 0), or, early on, the last value.
      this.ring.push(Number.isFinite(f) ? f : this.ring.size ? this.ring.lag(1) : Number.NaN);
      this.eps.push(0);
    }
  }

  save(): SavedDetector {
    const m = this.p.model;
    return {
      kind: this.kind,
      params: {
        order: m.order,
        intercept: m.intercept,
        phi: Array.from(m.phi),
        theta: Array.from(this.theta),
        sigma2: m.sigma2,
        aic: m.aic,
        n: m.n,
        scale: this.p.scale,
      },
      state: { ring: this.ring.toJSON(), eps: this.eps.toJSON() },
    };
  }

  static restore(s: SavedDetector): ArimaDetector {
    const q = s.params as {
      order: ArimaModel['order'];
      intercept: number;
      phi: number[];
      theta?: number[];
      sigma2: number;
      aic: number;
      n: number;
      scale: number;
    };
    const d = new ArimaDetector({
      model: {
        order: q.order,
        intercept: q.intercept,
        phi: Float64Array.from(q.phi),
        theta: Float64Array.from(q.theta ?? []),
        sigma2: q.sigma2,
        aic: q.aic,
        n: q.n,
      },
      scale: q.scale,
    });
    d.ring.restore(s.state.ring);
    d.eps.restore(s.state.eps);
    return d;
  }
}

/** Linear interpolation over NaN (ends: nearest value), for fitting only. */
export function interpolateGaps(values: Float64Array): Float64Array {
  const y = Float64Array.from(values);
  let last = -1;
  for (let i = 0; i < y.length; i++) {
    if (Number.isNaN(y[i])) continue;
    if (last < 0) for (let j = 0; j < i; j++) y[j] = y[i];
    else if (i - last > 1)
      for (let j = last + 1; j < i; j++) y[j] = y[last] + ((y[i] - y[last]) * (j - last)) / (i - last);
    last = i;
  }
  if (last >= 0) for (let j = last + 1; j < y.length; j++) y[j] = y[last];
  return y;
}

export interface ArimaOptions {
  maxP?: number;
  /** Highest MA order tried (default 1; 0: an AR model by plain least squares). */
  maxQ?: number;
  d?: number;
  D?: number;
}

/**
 * Fits the ARIMA detector's model: d ∈ {0, 1} and (with a season) D ∈ {0, 1} by least variance
 * of the differenced series unless given, then p ≤ maxP and q ≤ maxQ by AIC. Gaps are interpolated for the
 * fit only. Throws a UserError naming what is missing when the series is too short.
 */
export function fitArimaModel(values: Float64Array, period: number, o: ArimaOptions = {}): ArimaModel {
  const y = interpolateGaps(values);
  const maxP = o.maxP ?? 5;
  const need = Math.max(30, (period > 1 ? 2 * period : 0) + 10 * (maxP + 1));
  if (y.length < need)
    throw new UserError(`too short for arima: ${y.length} points, it needs at least ${need}`);
  const ds = o.d !== undefined ? [o.d] : [0, 1];
  const Ds = period > 1 ? (o.D !== undefined ? [o.D] : [0, 1]) : [0];
  let best: { d: number; D: number; v: number } | null = null;
  for (const D of Ds)
    for (const d of ds) {
      const x = difference(y, d, D, period);
      let m = 0;
      for (const v of x) m += v;
      m /= x.length;
      let v = 0;
      for (const xv of x) v += (xv - m) ** 2;
      v /= x.length;
      // Prefer less differencing unless it lowers the variance clearly (5%).
      if (!best || v < best.v * 0.95) best = { d, D, v };
    }
  const b = best as { d: number; D: number };
  return fitArima(y, { d: b.d, D: b.D, s: period, maxP, maxQ: o.maxQ ?? 1 });
}
