/**
 * The LSTM forecaster for one series: T past steps → the next value, on the numeric core's
 * SequenceRegressor (src/nn/lstm.ts). Each input step carries
 *
 *   the value relative to the latest one, (x − x_last) / robust scale, 0 when missing;
 *   a missing flag;
 *   with a step of at most 6 h: hour of day and day of week (sin, cos) of the step it precedes;
 *   with a season P: the value at the same phase one season before the step it precedes,
 *   so a short window still sees the daily or weekly shape.
 *
 * The target is the next value relative to the latest one, so the network is free of the level:
 * persistence is its natural default and a level it never saw (an outage at 0) does not throw it
 * off. Training: every present point after the warm-up whose previous point is present is a target (at most `maxSequences`, spread
 * evenly), MSE, Adam, early stopping on a 10% validation split. The scale of the scores is the
 * robust scale of the in-sample one-step residuals. Scoring shares one network per shape across
 * all series and swaps the (small) weights in when the series changes, so 10k LSTM series do not
 * hold 10k WASM memories.
 */
import { UserError } from '../core/diagnostics.js';
import { DEFAULT_FIT } from '../nn/fit.js';
import { SequenceRegressor } from '../nn/lstm.js';
import { type Forecast, Ring, robustScale, type SavedDetector, type SeriesDetector } from './detectors.js';
import type { Series } from './series.js';

export interface LstmSeriesOptions {
  /** Past steps per input sequence (default 24). */
  window?: number;
  /** LSTM units (default 24). */
  units?: number;
  epochs?: number;
  seed?: number;
  /** Training sequences at most (default 3000). */
  maxSequences?: number;
}

interface LstmParams {
  period: number;
  step: number;
  window: number;
  units: number;
  features: number;
  timeFeatures: boolean;
  center: number;
  spread: number;
  /** Robust scale of the training residuals (original units). */
  scale: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const TAU = 2 * Math.PI;

function featureCount(timeFeatures: boolean, period: number): number {
  return 2 + (timeFeatures ? 4 : 0) + (period > 1 ? 1 : 0);
}

/**
 * Writes the features of one input step into x at offset o: value v observed at time t, seasonal
 * value sv (the point one season before t + step).
 */
function writeStep(
  x: Float32Array,
  o: number,
  p: LstmParams,
  v: number,
  t: number,
  sv: number,
  anchor: number,
): void {
  const miss = Number.isNaN(v);
  x[o] = miss ? 0 : (v - anchor) / p.spread;
  x[o + 1] = miss ? 1 : 0;
  let k = o + 2;
  if (p.timeFeatures) {
    const next = t + p.step;
    const h = ((next % DAY) + DAY) % DAY;
    const w = ((((next / DAY + 3) % 7) + 7) % 7) / 7; // 1970-01-01 was a Thursday: +3 → Monday = 0
    x[k++] = Math.sin((TAU * h) / DAY);
    x[k++] = Math.cos((TAU * h) / DAY);
    x[k++] = Math.sin(TAU * w);
    x[k++] = Math.cos(TAU * w);
  }
  if (p.period > 1) x[k] = Number.isNaN(sv) ? 0 : (sv - anchor) / p.spread;
}

/** One scoring network per shape, shared by every series of that shape. */
const shared = new Map<string, { net: SequenceRegressor; owner: LstmSeriesDetector | null }>();

export class LstmSeriesDetector implements SeriesDetector {
  readonly kind = 'lstm';
  readonly ring: Ring;
  private readonly x: Float32Array;

  constructor(
    readonly p: LstmParams,
    readonly weights: Record<string, Float32Array>,
  ) {
    this.ring = new Ring(p.window + (p.period > 1 ? p.period : 0));
    this.x = new Float32Array(p.window * p.features);
  }

  private net(): SequenceRegressor {
    const id = `${this.p.window}x${this.p.features}x${this.p.units}`;
    let s = shared.get(id);
    if (!s) {
      s = { net: new SequenceRegressor(this.p.window, this.p.features, this.p.units, 1, 1), owner: null };
      shared.set(id, s);
    }
    if (s.owner !== this) {
      for (const q of s.net.params()) {
        const name = q.name.replace(/^head\.(W|b)$/, 'head.$10');
        const w = this.weights[name];
        if (!w || w.length !== q.p.size)
          throw new Error(`lstm series model: weights '${name}' missing or mis-sized`);
        q.p.data.set(w);
      }
      s.owner = this;
    }
    return s.net;
  }

  predict(t: number, out: Forecast): boolean {
    const { window: T, period: P, step, features: F } = this.p;
    if (this.ring.size < T) return false;
    const anchor = this.ring.lag(1);
    if (Number.isNaN(anchor)) return false;
    let seen = 0;
    for (let j = 0; j < T; j++) {
      const lag = T - j; // input step j is `lag` steps before t
      const v = this.ring.lag(lag);
      if (!Number.isNaN(v)) seen++;
      // The point one season before (t − lag + step) is lag + P − 1 steps back.
      const sv = P > 1 ? this.ring.lag(lag + P - 1) : Number.NaN;
      writeStep(this.x, j * F, this.p, v, t - lag * step, sv, anchor);
    }
    if (seen < T / 2) return false;
    const net = this.net();
    net.input.data.set(this.x);
    const y = net.forward(1).data[0];
    out.expected = anchor + y * this.p.spread;
    out.scale = Math.max(this.p.scale, 1e-9 * Math.max(1, Math.abs(out.expected)));
    return true;
  }

  learn(_t: number, v: number): void {
    this.ring.push(Number.isFinite(v) ? v : Number.NaN);
  }

  save(): SavedDetector {
    const w: Record<string, string> = {};
    for (const [k, a] of Object.entries(this.weights))
      w[k] = Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    return { kind: this.kind, params: { ...this.p, weights: w }, state: { ring: this.ring.toJSON() } };
  }

  static restore(s: SavedDetector): LstmSeriesDetector {
    const { weights, ...p } = s.params as unknown as LstmParams & { weights: Record<string, string> };
    const w: Record<string, Float32Array> = {};
    for (const [k, b64] of Object.entries(weights)) {
      const b = Buffer.from(b64, 'base64');
      const a = new Float32Array(b.length / 4);
      new Uint8Array(a.buffer).set(b);
      w[k] = a;
    }
    const d = new LstmSeriesDetector(p, w);
    d.ring.restore(s.state.ring);
    return d;
  }
}

/** Trains the LSTM forecaster on a series (see the file comment). */
export function fitLstmDetector(s: Series, period: number, o: LstmSeriesOptions): LstmSeriesDetector {
  const T = o.window ?? 24;
  const H = o.units ?? 24;
  const P = period;
  const v = s.values;
  const warm = T + (P > 1 ? P : 0);
  const targets: number[] = [];
  for (let i = warm; i < v.length; i++) if (!Number.isNaN(v[i]) && !Number.isNaN(v[i - 1])) targets.push(i);
  if (targets.length < 50)
    throw new UserError(
      `too short for lstm: ${targets.length} usable points after a warm-up of ${warm}, it needs at least 50`,
    );
  const sorted = Float64Array.from(v).filter((x) => !Number.isNaN(x));
  sorted.sort();
  const center = sorted[sorted.length >> 1];
  const spread = robustScale(sorted) || 1;
  const p: LstmParams = {
    period: P,
    step: s.step,
    window: T,
    units: H,
    features: featureCount(s.step <= 6 * HOUR, P),
    timeFeatures: s.step <= 6 * HOUR,
    center,
    spread,
    scale: 1,
  };
  const maxSeq = o.maxSequences ?? 3000;
  const stride = Math.max(1, targets.length / maxSeq);
  const n = Math.min(targets.length, maxSeq);
  const F = p.features;
  const x = new Float32Array(n * T * F);
  const y = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const i = targets[Math.floor(r * stride)];
    const anchor = v[i - 1];
    for (let j = 0; j < T; j++) {
      const at = i - T + j;
      const sv = P > 1 ? v[at + 1 - P] : Number.NaN;
      writeStep(x, (r * T + j) * F, p, v[at], s.start + at * s.step, sv, anchor);
    }
    y[r] = (v[i] - anchor) / spread;
  }
  const net = new SequenceRegressor(T, F, H, 1, 64);
  net.init(o.seed ?? 42);
  net.fit(x, y, n, {
    ...DEFAULT_FIT,
    epochs: o.epochs ?? 30,
    batchSize: 64,
    lr: 3e-3,
    patience: 5,
    seed: o.seed ?? 42,
  });
  const det = new LstmSeriesDetector(p, net.exportWeights());
  // Residual scale: one-step residuals over the training stretch, streamed as in scoring.
  const f: Forecast = { expected: 0, scale: 1 };
  const resid: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const t = s.start + i * s.step;
    if (det.predict(t, f) && !Number.isNaN(v[i])) resid.push(v[i] - f.expected);
    det.learn(t, v[i]);
  }
  p.scale = robustScale(resid) || spread;
  // A fresh state: the caller streams the training stretch through it again.
  return new LstmSeriesDetector(p, det.weights);
}
