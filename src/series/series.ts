/**
 * Regular time series: the shape every series detector works on. A series is one metric of one
 * key (a country, a link, a host) sampled on a fixed grid: `start + i·step`; a missing point is
 * NaN. `regularise` turns raw (time, value) points into that shape by documented rules:
 *
 *   unsorted timestamps   sorted (stable), counted as `outOfOrder`;
 *   several points in one step (exact duplicates or jitter)
 *                         combined by `combine` (mean by default), counted as `combined`
 *                         (and `duplicates` for identical timestamps);
 *   steps with no point   left NaN (missing: not scored, not learned), counted as `gaps`;
 *   NaN / empty / non-numeric values
 *                         treated as missing, counted as `missing`;
 *   ±Infinity             treated as missing, counted as `missing`.
 */
import { UserError } from '../core/diagnostics.js';

export interface Series {
  /** Key value(s), joined with '/' when there are several key columns; '' when there is no key. */
  key: string;
  metric: string;
  /** Time of the first point (ms since the epoch, UTC). */
  start: number;
  /** Sampling step (ms). */
  step: number;
  /** One value per step; NaN = missing. */
  values: Float64Array;
}

export type CombineRule = 'mean' | 'sum' | 'first' | 'last' | 'min' | 'max';
export const COMBINE_RULES: CombineRule[] = ['mean', 'sum', 'first', 'last', 'min', 'max'];

/** What regularising did to one series' raw points. */
export interface RegulariseCounts {
  points: number;
  outOfOrder: number;
  duplicates: number;
  combined: number;
  gaps: number;
  missing: number;
}

/** At most this many steps per series (a guard against a step far too small for the span). */
export const MAX_STEPS = 20_000_000;

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Parses a duration such as `10s`, `5m`, `1h`, `1d`, `1w`, `250ms` into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)\s*$/i.exec(text);
  if (!m)
    throw new UserError(
      `${what} '${text}' is not a duration`,
      'write it as a number and a unit: 10s, 5m, 1h, 1d, 1w',
    );
  const ms = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!(ms >= 1)) throw new UserError(`${what} '${text}' is shorter than a millisecond`);
  return Math.round(ms);
}

/** A duration in the largest unit that divides it: 3600000 → `1h`. */
export function formatDuration(ms: number): string {
  for (const [u, f] of [
    ['w', UNITS.w],
    ['d', UNITS.d],
    ['h', UNITS.h],
    ['m', UNITS.m],
    ['s', UNITS.s],
  ] as const)
    if (ms >= f && ms % f === 0) return `${ms / f}${u}`;
  return `${ms}ms`;
}

/** Steps a sampling interval is rounded to when it is inferred from jittered timestamps. */
const NICE_STEPS = [
  1_000,
  2_000,
  5_000,
  10_000,
  15_000,
  20_000,
  30_000,
  60_000,
  120_000,
  300_000,
  600_000,
  900_000,
  1_800_000,
  3_600_000,
  7_200_000,
  10_800_000,
  21_600_000,
  43_200_000,
  86_400_000,
  7 * 86_400_000,
];

/**
 * The sampling step of ascending timestamps: the median positive difference, rounded to the
 * nearest "nice" interval (1s … 1w) when it is within 20% of one (telemetry every ~10 s arrives
 * with jitter), else kept as measured. Null with fewer than two distinct timestamps.
 */
export function inferStep(times: ArrayLike<number>): number | null {
  const d: number[] = [];
  for (let i = 1; i < times.length; i++) if (times[i] > times[i - 1]) d.push(times[i] - times[i - 1]);
  if (!d.length) return null;
  d.sort((a, b) => a - b);
  const med = d[d.length >> 1];
  let best = med;
  let bestErr = 0.2;
  for (const s of NICE_STEPS) {
    const err = Math.abs(Math.log(med / s));
    if (err < bestErr) {
      bestErr = err;
      best = s;
    }
  }
  return Math.max(1, Math.round(best));
}

/**
 * Puts raw points on a regular grid of `step` ms (buckets [start + i·step, start + (i+1)·step),
 * `start` = the first time rounded down to a multiple of `step`, so grids of the same step line
 * up across series). `times`/`values` need not be sorted.
 */
export function regularise(
  key: string,
  metric: string,
  times: Float64Array,
  values: Float64Array,
  step: number,
  combine: CombineRule,
): { series: Series; counts: RegulariseCounts } {
  const n = times.length;
  const counts: RegulariseCounts = {
    points: n,
    outOfOrder: 0,
    duplicates: 0,
    combined: 0,
    gaps: 0,
    missing: 0,
  };
  let order: Uint32Array | null = null;
  for (let i = 1; i < n; i++) if (times[i] < times[i - 1]) counts.outOfOrder++;
  if (counts.outOfOrder) {
    order = Uint32Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => times[a] - times[b] || a - b);
  }
  const at = (i: number) => (order ? order[i] : i);
  const t0 = times[at(0)];
  const tN = times[at(n - 1)];
  const start = Math.floor(t0 / step) * step;
  const len = Math.floor((tN - start) / step) + 1;
  if (len > MAX_STEPS)
    throw new UserError(
      `series ${label(key, metric)}: ${len.toLocaleString('en-US')} steps of ${formatDuration(step)} between its first and last point`,
      'give a longer --step, or look for a wild timestamp (a mistyped year, seconds mixed with milliseconds)',
    );
  const out = new Float64Array(len).fill(Number.NaN);
  const seen = new Uint32Array(len);
  let prevT = Number.NaN;
  for (let j = 0; j < n; j++) {
    const i = at(j);
    const t = times[i];
    if (t === prevT) counts.duplicates++;
    prevT = t;
    const b = Math.floor((t - start) / step);
    const v = values[i];
    if (!Number.isFinite(v)) {
      counts.missing++;
      continue;
    }
    const c = seen[b]++;
    if (c === 0) {
      out[b] = v;
      continue;
    }
    counts.combined++;
    const o = out[b];
    switch (combine) {
      case 'mean':
        out[b] = o + (v - o) / (c + 1);
        break;
      case 'sum':
        out[b] = o + v;
        break;
      case 'first':
        break;
      case 'last':
        out[b] = v;
        break;
      case 'min':
        out[b] = Math.min(o, v);
        break;
      case 'max':
        out[b] = Math.max(o, v);
        break;
    }
  }
  for (let b = 0; b < len; b++) if (Number.isNaN(out[b])) counts.gaps++;
  return { series: { key, metric, start, step, values: out }, counts };
}

export function label(key: string, metric: string): string {
  return key ? `${key} ${metric}` : metric;
}

/** Number of non-missing values. */
export function present(values: ArrayLike<number>, from = 0, to = values.length): number {
  let k = 0;
  for (let i = from; i < to; i++) if (!Number.isNaN(values[i])) k++;
  return k;
}

/**
 * Autocorrelation of `x` at `lag`, over the pairs where both values are present (NaN skipped).
 */
export function autocorrelation(x: ArrayLike<number>, lag: number): number {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++)
    if (!Number.isNaN(x[i])) {
      sum += x[i];
      n++;
    }
  if (n < 2 || lag >= x.length) return Number.NaN;
  const mean = sum / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    if (Number.isNaN(a)) continue;
    den += (a - mean) ** 2;
    if (i >= lag && !Number.isNaN(x[i - lag])) num += (a - mean) * (x[i - lag] - mean);
  }
  return den > 0 ? num / den : Number.NaN;
}

const DAY = 86_400_000;

/**
 * The seasonal period (in steps) for `auto`: a day or a week, whichever the series covers at least
 * three times and whose autocorrelation is highest and at least 0.3 (a week wins ties within
 * 0.05, since it also carries the daily rhythm); 1 (no season) otherwise.
 */
export function choosePeriod(s: Series): { period: number; reason: string } {
  const out: { period: number; acf: number; name: string }[] = [];
  for (const [ms, name] of [
    [DAY, 'day'],
    [7 * DAY, 'week'],
  ] as const) {
    if (ms % s.step !== 0) continue;
    const p = ms / s.step;
    if (p < 2 || s.values.length < 3 * p) continue;
    const r = autocorrelation(s.values, p);
    if (r >= 0.3) out.push({ period: p, acf: r, name });
  }
  if (!out.length) return { period: 1, reason: 'no daily or weekly rhythm (or too short to see one)' };
  out.sort((a, b) => b.acf - a.acf);
  const week = out.find((o) => o.name === 'week');
  const pick = week && week.acf >= out[0].acf - 0.05 ? week : out[0];
  return { period: pick.period, reason: `${pick.name} (autocorrelation ${pick.acf.toFixed(2)})` };
}

/** Parses `--period`: `auto`, `none`, a duration (`1d`) or a number of steps. */
export function parsePeriod(text: string, step: number, s: Series): { period: number; reason: string } {
  const t = text.trim().toLowerCase();
  if (t === 'auto') return choosePeriod(s);
  if (t === 'none' || t === '1' || t === '0') return { period: 1, reason: 'none (as asked)' };
  let p: number;
  if (/^\d+$/.test(t)) p = Number(t);
  else {
    const ms = parseDuration(t, '--period');
    if (ms % step !== 0)
      throw new UserError(`--period ${text} is not a whole number of steps of ${formatDuration(step)}`);
    p = ms / step;
  }
  return { period: p, reason: `${formatDuration(p * step)} (as asked)` };
}
