/**
 * Time features of a regular series, for the hybrid autoencoder and for people: calendar
 * categories (weekday, hour, segment of day, weekend, holiday from a configurable date list; in
 * UTC or a given IANA time zone), rolling statistics over several window lengths (mean, standard deviation, and a robust
 * z-score of each point against the W points before it), and a classical seasonal decomposition
 * (trend = centred moving average over one season, seasonal = median per phase of the detrended
 * series, remainder = the rest).
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../core/diagnostics.js';
import { MAD_TO_SD } from './detectors.js';
import { parsePeriod, type Series } from './series.js';

export interface Calendar {
  /** Holiday dates as YYYY-MM-DD (in `timeZone`). */
  holidays: Set<string>;
  /** IANA time zone of the calendar (default UTC), e.g. `Europe/Prague`. */
  timeZone?: string;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** Checks an IANA zone name; throws a UserError naming an example when it is unknown. */
export function checkTimeZone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new UserError(
      `--timezone '${zone}' is not a time zone`,
      'use an IANA name such as Europe/Prague or America/New_York',
    );
  }
  return zone;
}

/** Weekday (0 = Sunday), hour and YYYY-MM-DD of `t` in `zone`. */
function localParts(t: number, zone: string): { wd: number; hour: number; date: string } {
  let f = zoneFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      hourCycle: 'h23',
    });
    zoneFormats.set(zone, f);
  }
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(new Date(t))) p[x.type] = x.value;
  return { wd: WEEKDAYS.indexOf(p.weekday), hour: Number(p.hour), date: `${p.year}-${p.month}-${p.day}` };
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const SEGMENTS = ['night', 'morning', 'afternoon', 'evening'];

/** Reads a holiday list: one YYYY-MM-DD per line; `#` starts a comment. */
export function loadHolidays(path: string): Set<string> {
  const out = new Set<string>();
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) return;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(line) || Number.isNaN(Date.parse(`${line}T00:00:00Z`)))
        throw new UserError(`${path}:${i + 1}: '${line}' is not a date (YYYY-MM-DD)`);
      out.add(line);
    });
  return out;
}

export interface CalendarFeatures {
  weekday: string;
  hour: number;
  segment: string;
  weekend: boolean;
  holiday: boolean;
}

export function calendarFeatures(t: number, cal: Calendar): CalendarFeatures {
  let wd: number;
  let hour: number;
  let date: string;
  if (cal.timeZone && cal.timeZone !== 'UTC') ({ wd, hour, date } = localParts(t, cal.timeZone));
  else {
    const d = new Date(t);
    wd = d.getUTCDay();
    hour = d.getUTCHours();
    date = d.toISOString().slice(0, 10);
  }
  return {
    weekday: WEEKDAYS[wd],
    hour,
    segment: SEGMENTS[Math.floor(hour / 6)],
    weekend: wd === 0 || wd === 6,
    holiday: cal.holidays.has(date),
  };
}

/**
 * Rolling statistics of each point against the `w` points before it (missing values skipped):
 * mean, standard deviation and robust z = (x − median) / (1.4826·MAD). NaN until 2 values exist.
 */
export function rollingStats(
  values: Float64Array,
  w: number,
): { mean: Float64Array; std: Float64Array; z: Float64Array } {
  const n = values.length;
  const mean = new Float64Array(n).fill(Number.NaN);
  const std = new Float64Array(n).fill(Number.NaN);
  const z = new Float64Array(n).fill(Number.NaN);
  const buf = new Float64Array(w);
  let s = 0;
  let s2 = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    if (c >= 2) {
      const m = s / c;
      mean[i] = m;
      std[i] = Math.sqrt(Math.max(0, s2 / c - m * m));
      let k = 0;
      for (let j = Math.max(0, i - w); j < i; j++) if (!Number.isNaN(values[j])) buf[k++] = values[j];
      const win = buf.subarray(0, k).sort();
      const med = k & 1 ? win[k >> 1] : (win[(k >> 1) - 1] + win[k >> 1]) / 2;
      const dev = Float64Array.from(win, (x) => Math.abs(x - med)).sort();
      const mad = (k & 1 ? dev[k >> 1] : (dev[(k >> 1) - 1] + dev[k >> 1]) / 2) * MAD_TO_SD;
      const x = values[i];
      if (!Number.isNaN(x)) z[i] = mad > 0 ? (x - med) / mad : x === med ? 0 : Math.sign(x - med) * 1e6;
    }
    // Slide: add point i, drop point i − w.
    const add = values[i];
    if (!Number.isNaN(add)) {
      s += add;
      s2 += add * add;
      c++;
    }
    if (i - w >= 0) {
      const old = values[i - w];
      if (!Number.isNaN(old)) {
        s -= old;
        s2 -= old * old;
        c--;
      }
    }
  }
  return { mean, std, z };
}

/**
 * Classical additive decomposition with period p (p = 1: trend is a centred 25-point mean and
 * there is no seasonal part). Missing values stay missing in the remainder.
 */
export function decompose(
  values: Float64Array,
  p: number,
): { trend: Float64Array; seasonal: Float64Array; remainder: Float64Array } {
  const n = values.length;
  const win = p > 1 ? p : Math.min(25, n);
  const trend = new Float64Array(n).fill(Number.NaN);
  const half = Math.floor(win / 2);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let c = 0;
    // Centred window; for an even length, the 2×p moving average (half weight at both ends).
    for (let j = i - half; j <= i + half; j++) {
      if (j < 0 || j >= n || Number.isNaN(values[j])) continue;
      const wgt = win % 2 === 0 && (j === i - half || j === i + half) ? 0.5 : 1;
      s += wgt * values[j];
      c += wgt;
    }
    if (c >= win / 2) trend[i] = s / c;
  }
  const seasonal = new Float64Array(n);
  if (p > 1) {
    const phase = new Float64Array(p);
    for (let ph = 0; ph < p; ph++) {
      const d: number[] = [];
      for (let i = ph; i < n; i += p)
        if (!Number.isNaN(values[i]) && !Number.isNaN(trend[i])) d.push(values[i] - trend[i]);
      d.sort((a, b) => a - b);
      phase[ph] = d.length
        ? d.length & 1
          ? d[d.length >> 1]
          : (d[(d.length >> 1) - 1] + d[d.length >> 1]) / 2
        : 0;
    }
    let m = 0;
    for (const v of phase) m += v;
    m /= p;
    for (let i = 0; i < n; i++) seasonal[i] = phase[i % p] - m;
  }
  const remainder = new Float64Array(n);
  for (let i = 0; i < n; i++) remainder[i] = values[i] - trend[i] - seasonal[i];
  return { trend, seasonal, remainder };
}

export function seriesFeatureHeader(windows: number[]): string[] {
  return [
    'Timestamp',
    'key',
    'metric',
    'value',
    'weekday',
    'hour',
    'segment',
    'weekend',
    'holiday',
    ...windows.flatMap((w) => [`mean_${w}`, `std_${w}`, `robust_z_${w}`]),
    'trend',
    'seasonal',
    'remainder',
  ];
}

/** The feature rows of one series (one per step, missing values included as empty cells). */
export function* seriesFeatureRows(
  s: Series,
  windows: number[],
  cal: Calendar,
  period: string,
): Generator<(string | number)[]> {
  const rolls = windows.map((w) => rollingStats(s.values, w));
  const { period: p } = parsePeriod(period, s.step, s);
  const dec = decompose(s.values, p);
  const num = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(8)) : '');
  for (let i = 0; i < s.values.length; i++) {
    const t = s.start + i * s.step;
    const c = calendarFeatures(t, cal);
    yield [
      new Date(t).toISOString(),
      s.key,
      s.metric,
      num(s.values[i]),
      c.weekday,
      c.hour,
      c.segment,
      c.weekend ? 1 : 0,
      c.holiday ? 1 : 0,
      ...rolls.flatMap((r) => [num(r.mean[i]), num(r.std[i]), num(r.z[i])]),
      num(dec.trend[i]),
      num(dec.seasonal[i]),
      num(dec.remainder[i]),
    ];
  }
}
