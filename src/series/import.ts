/**
 * Series import from CSV (optionally gzipped) and JSON lines, in two layouts:
 *
 *   long   one point per row: a time column, key column(s), `metric`, `value`
 *          (`timestamp,country,metric,value`); chosen when `metric` and `value` columns exist;
 *   wide   one row per time (and key): a time column, key column(s), and every other column
 *          that holds numbers is a metric (`time,link,bytes,packets`). Text columns that are
 *          neither time nor key are ignored and reported.
 *
 * The time column is `--time`, else the first of timestamp/time/ts/date/datetime, else the first
 * column. Times are ISO 8601 text (no zone = UTC) or epoch numbers (seconds, milliseconds,
 * microseconds or nanoseconds, told apart by size). A row whose time cannot be read is skipped and
 * reported with its line; a value that is empty or not a number is a missing point. Then each
 * series is put on a regular grid by `regularise` (series.ts), whose rules cover unsorted times,
 * duplicates, gaps and NaN.
 */
import { createReadStream } from 'node:fs';
import { Diagnostics, type ProblemSink, UserError } from '../core/diagnostics.js';
import { maybeGunzip } from '../core/streams.js';
import {
  type CsvRecordView,
  CsvTokenizer,
  decodeText,
  NUM_EMPTY,
  numStatus,
  parseNumber,
} from '../ingest/csv.js';
import { expandPaths, shortName } from '../ingest/table.js';
import {
  type CombineRule,
  inferStep,
  label,
  type RegulariseCounts,
  regularise,
  type Series,
} from './series.js';

export interface SeriesImportOptions {
  /** Key columns (a series per distinct combination). */
  key?: string[];
  /** Metrics to keep (wide: columns; long: values of the metric column). Default: all. */
  metrics?: string[];
  time?: string;
  format?: 'auto' | 'long' | 'wide';
  /** Step in ms for every series; else `stepFor`, else inferred per series. */
  step?: number;
  stepFor?: (key: string, metric: string) => number | undefined;
  combine?: CombineRule;
  /**
   * The values are cumulative counters (octets, packets since boot): each point becomes the
   * increase per second since the previous one; a decrease (a reset or wrap) makes it missing.
   */
  rate?: boolean;
  /** Only points with from ≤ time < until (ms). */
  from?: number;
  until?: number;
  onProblem?: ProblemSink;
}

export interface SeriesImport {
  series: Series[];
  format: 'long' | 'wide';
  files: string[];
  timeColumn: string;
  keyColumns: string[];
  metrics: string[];
  /** Columns that were neither time, key nor numeric (wide). */
  ignored: string[];
  rows: number;
  /** Rows skipped (unreadable time, wrong number of fields). */
  badRows: number;
  /** Rows outside --from/--until. */
  outside: number;
  /** Series with a single distinct timestamp (no step can be inferred); their names. */
  single: string[];
  /** Series that could not be put on a grid (their times span too many steps), with the reason. */
  unusable: { series: string; reason: string }[];
  /** With `rate`: counter decreases (resets, wraps) turned into missing points. */
  resets: number;
  counts: RegulariseCounts;
  diagnostics: Diagnostics;
}

const NATURAL = new Intl.Collator('en', { numeric: true });
const TIME_NAMES = ['timestamp', 'time', 'ts', 'date', 'datetime', 'id_time'];
/** The most distinct series one import may hold. */
export const MAX_SERIES = 1_000_000;

/** A growable Float64Array. */
class Grow {
  a = new Float64Array(16);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  view(): Float64Array {
    return this.a.subarray(0, this.n);
  }
}

interface Raw {
  key: string;
  metric: string;
  t: Grow;
  v: Grow;
}

/**
 * Epoch milliseconds from a time cell: ISO text (a missing zone means UTC) or an epoch number in
 * s / ms / µs / ns. NaN when unreadable.
 */
export function parseTime(cell: string | number): number {
  if (typeof cell === 'number') return epochMs(cell);
  const s = cell.trim();
  if (!s) return Number.NaN;
  if (/^-?\d+(\.\d+)?$/.test(s)) return epochMs(Number(s));
  let iso = s.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) iso += 'T00:00:00';
  if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso)) iso += 'Z';
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : Number.NaN;
}

function epochMs(x: number): number {
  if (!Number.isFinite(x)) return Number.NaN;
  const a = Math.abs(x);
  if (a < 1e11) return x * 1000;
  if (a < 1e14) return x;
  if (a < 1e17) return x / 1000;
  return x / 1e6;
}

/** Reads series from files (CSV, .csv.gz, JSON lines) and regularises them. */
export async function importSeries(paths: string[], opts: SeriesImportOptions = {}): Promise<SeriesImport> {
  const files = expandPaths(paths);
  if (!files.length) throw new UserError(`no input files in ${paths.join(', ')}`);
  const diagnostics = new Diagnostics(opts.onProblem ?? (() => {}));
  const raws = new Map<string, Raw[]>();
  const metricsSeen = new Set<string>();
  let layout: { format: 'long' | 'wide'; time: string; keys: string[]; ignored: string[] } | null = null;
  let rows = 0;
  let badRows = 0;
  let outside = 0;
  const wantMetric = opts.metrics?.length ? new Set(opts.metrics) : null;

  const rawFor = (key: string, metric: string, slot: number): Raw => {
    let list = raws.get(key);
    if (!list) {
      if (raws.size >= MAX_SERIES)
        throw new UserError(
          `more than ${MAX_SERIES.toLocaleString('en-US')} distinct keys`,
          'choose a coarser --key',
        );
      list = [];
      raws.set(key, list);
    }
    let r = list[slot];
    if (!r) {
      r = { key, metric, t: new Grow(), v: new Grow() };
      list[slot] = r;
    }
    return r;
  };
  const longSlots = new Map<string, number>();
  const longSlot = (metric: string) => {
    let s = longSlots.get(metric);
    if (s === undefined) {
      s = longSlots.size;
      longSlots.set(metric, s);
    }
    return s;
  };

  for (const file of files) {
    const name = shortName(file);
    const isJson = /\.(jsonl|ndjson|json)(\.gz)?$/i.test(file);
    let plan: RowPlan | null = null;
    let lastTimeText = '';
    let lastTime = Number.NaN;
    const onRow = (row: Row): void => {
      if (row.header) {
        plan = makePlan(row.header, opts, layout, name);
        if (!layout)
          layout = { format: plan.format, time: plan.timeName, keys: plan.keyNames, ignored: plan.ignored };
        return;
      }
      if (!plan) {
        plan = makePlan(row.fieldNames(), opts, layout, name);
        if (!layout)
          layout = { format: plan.format, time: plan.timeName, keys: plan.keyNames, ignored: plan.ignored };
      }
      if (plan.format === 'wide' && !plan.checked) {
        // A column whose first cell is text (not empty, not a number) is a label, not a metric.
        plan.checked = true;
        const keep = plan.metricIdx.map((i) => {
          const v = row.get(i);
          return (
            typeof v === 'number' ||
            String(v).trim() === '' ||
            !Number.isNaN(Number(v)) ||
            /^(nan|na|null|inf|-inf)$/i.test(String(v).trim())
          );
        });
        plan.ignored = plan.metricNames.filter((_, m) => !keep[m]);
        plan.metricNames = plan.metricNames.filter((_, m) => keep[m]);
        plan.metricIdx = plan.metricIdx.filter((_, m) => keep[m]);
        if (!layout?.ignored.length && layout) layout.ignored = plan.ignored;
        if (!plan.metricIdx.length)
          throw new UserError(
            `${name}: no numeric columns besides time and key`,
            `ignored text columns: ${plan.ignored.join(', ')}`,
          );
      }
      rows++;
      const cell = row.get(plan.time);
      // Long files repeat each time for every key: parse a repeated text once.
      let t: number;
      if (typeof cell === 'string' && cell === lastTimeText) t = lastTime;
      else {
        t = parseTime(cell);
        if (typeof cell === 'string') {
          lastTimeText = cell;
          lastTime = t;
        }
      }
      if (!Number.isFinite(t)) {
        badRows++;
        diagnostics.report({
          severity: 'warning',
          reason: 'bad-time',
          file: name,
          line: row.line,
          column: plan.timeName,
          message: `time ${JSON.stringify(String(row.get(plan.time)).slice(0, 40))} is not ISO 8601 or an epoch number; row skipped`,
        });
        return;
      }
      if ((opts.from !== undefined && t < opts.from) || (opts.until !== undefined && t >= opts.until)) {
        outside++;
        return;
      }
      const key = plan.keys.map((k) => String(row.get(k)).trim()).join('/');
      if (plan.format === 'long') {
        const metric = String(row.get(plan.metric)).trim();
        if (wantMetric && !wantMetric.has(metric)) return;
        metricsSeen.add(metric);
        const r = rawFor(key, metric, longSlot(metric));
        r.t.push(t);
        r.v.push(row.num(plan.value, diagnostics, name, 'value'));
      } else {
        for (let m = 0; m < plan.metricIdx.length; m++) {
          const r = rawFor(key, plan.metricNames[m], m);
          r.t.push(t);
          r.v.push(row.num(plan.metricIdx[m], diagnostics, name, plan.metricNames[m]));
        }
      }
    };
    if (isJson) await readJsonLines(file, onRow);
    else await readCsv(file, diagnostics, name, onRow);
  }
  // Assigned inside the row callback, which TypeScript's narrowing does not follow.
  const lay = layout as { format: 'long' | 'wide'; time: string; keys: string[]; ignored: string[] } | null;
  if (!lay) throw new UserError(`${files.map(shortName).join(', ')}: no header or rows`);
  const series: Series[] = [];
  const single: string[] = [];
  const unusable: { series: string; reason: string }[] = [];
  let resets = 0;
  const counts: RegulariseCounts = {
    points: 0,
    outOfOrder: 0,
    duplicates: 0,
    combined: 0,
    gaps: 0,
    missing: 0,
  };
  for (const list of raws.values())
    for (const r of list) {
      if (!r) continue;
      let times = r.t.view();
      let vals = r.v.view();
      if (opts.rate) {
        const c = counterRates(times, vals);
        times = c.times;
        vals = c.rates;
        resets += c.resets;
      }
      const step = opts.step ?? opts.stepFor?.(r.key, r.metric) ?? inferStep(sortedTimes(times));
      if (step === null) {
        single.push(label(r.key, r.metric));
        continue;
      }
      let out: ReturnType<typeof regularise>;
      try {
        out = regularise(r.key, r.metric, times, vals, step, opts.combine ?? 'mean');
      } catch (e) {
        // One series whose times span too many steps (a wild timestamp) must not stop the rest.
        if (!(e instanceof UserError)) throw e;
        unusable.push({
          series: label(r.key, r.metric),
          reason: `${e.message}${e.hint ? `; ${e.hint}` : ''}`,
        });
        continue;
      }
      series.push(out.series);
      for (const k of Object.keys(counts) as (keyof RegulariseCounts)[]) counts[k] += out.counts[k];
    }
  // Natural order: Hu0/0/0/2 before Hu0/0/0/10.
  series.sort((a, b) => NATURAL.compare(a.key, b.key) || NATURAL.compare(a.metric, b.metric));
  return {
    series,
    format: lay.format,
    files,
    timeColumn: lay.time,
    keyColumns: lay.keys,
    metrics: lay.format === 'long' ? [...metricsSeen] : [...new Set(series.map((s) => s.metric))],
    ignored: lay.ignored,
    rows,
    badRows,
    outside,
    single,
    unusable,
    resets,
    counts,
    diagnostics,
  };
}

/**
 * Cumulative counter → rate per second: time-sorted, each point's increase since the previous
 * present value divided by the seconds between them. The first point, repeated times and
 * decreases (counter reset or wrap) give NaN.
 */
export function counterRates(
  times: Float64Array,
  values: Float64Array,
): { times: Float64Array; rates: Float64Array; resets: number } {
  const n = times.length;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => times[a] - times[b] || a - b);
  const t = new Float64Array(n);
  const rates = new Float64Array(n).fill(Number.NaN);
  let resets = 0;
  let pt = Number.NaN;
  let pv = Number.NaN;
  for (let j = 0; j < n; j++) {
    const i = order[j];
    t[j] = times[i];
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (Number.isFinite(pv) && times[i] > pt) {
      if (v >= pv) rates[j] = (v - pv) / ((times[i] - pt) / 1000);
      else resets++;
    }
    pt = times[i];
    pv = v;
  }
  return { times: t, rates, resets };
}

function sortedTimes(t: Float64Array): Float64Array {
  for (let i = 1; i < t.length; i++) if (t[i] < t[i - 1]) return Float64Array.from(t).sort();
  return t;
}

// ---------------------------------------------------------------------------------------------
// Rows of either file type behind one small interface.

interface Row {
  /** Set on the CSV header row only. */
  header?: string[];
  line: number;
  fieldNames(): string[];
  get(i: number): string | number;
  num(i: number, d: Diagnostics, file: string, column: string): number;
}

interface RowPlan {
  format: 'long' | 'wide';
  time: number;
  timeName: string;
  keys: number[];
  keyNames: string[];
  metric: number;
  value: number;
  metricIdx: number[];
  metricNames: string[];
  ignored: string[];
  /** Wide: whether the metric columns were checked against the first data row. */
  checked?: boolean;
}

function makePlan(
  names: string[],
  opts: SeriesImportOptions,
  prev: { format: 'long' | 'wide'; time: string; keys: string[] } | null,
  file: string,
): RowPlan {
  const idx = (n: string) => names.indexOf(n);
  const lower = names.map((n) => n.trim().toLowerCase());
  const must = (n: string, what: string) => {
    const i = idx(n);
    if (i < 0)
      throw new UserError(
        `${file}: no ${what} column '${n}'`,
        `its columns are: ${names.map((c) => c || '(unnamed)').join(', ')}`,
      );
    return i;
  };
  let time: number;
  if (opts.time) time = must(opts.time, 'time');
  else {
    time = TIME_NAMES.map((n) => lower.indexOf(n)).find((i) => i >= 0) ?? 0;
  }
  const keys = (opts.key ?? []).map((k) => must(k, 'key'));
  const hasLong = lower.includes('metric') && lower.includes('value');
  const format = opts.format && opts.format !== 'auto' ? opts.format : hasLong ? 'long' : 'wide';
  if (prev && prev.format !== format)
    throw new UserError(`${file} is ${format} but the files before it were ${prev.format}`);
  const plan: RowPlan = {
    format,
    time,
    timeName: names[time] || '(first column)',
    keys,
    keyNames: keys.map((i) => names[i]),
    metric: -1,
    value: -1,
    metricIdx: [],
    metricNames: [],
    ignored: [],
  };
  if (format === 'long') {
    if (!hasLong)
      throw new UserError(
        `${file}: long format needs 'metric' and 'value' columns`,
        `its columns are: ${names.join(', ')}`,
      );
    plan.metric = lower.indexOf('metric');
    plan.value = lower.indexOf('value');
    return plan;
  }
  const taken = new Set([time, ...keys]);
  if (opts.metrics?.length) {
    for (const m of opts.metrics) {
      plan.metricIdx.push(must(m, 'metric'));
      plan.metricNames.push(m);
    }
  } else
    for (let i = 0; i < names.length; i++) {
      if (taken.has(i)) continue;
      plan.metricIdx.push(i);
      plan.metricNames.push(names[i] || `column${i + 1}`);
    }
  if (!plan.metricIdx.length) throw new UserError(`${file}: no metric columns besides time and key`);
  return plan;
}

/** Calls `onRow` for every record of a CSV file, with one reused view (synchronously, no queue). */
async function readCsv(file: string, d: Diagnostics, name: string, onRow: (r: Row) => void): Promise<void> {
  let header: string[] | null = null;
  let v: CsvRecordView | null = null;
  const row: Row = {
    line: 0,
    fieldNames: () => header ?? [],
    get: (i) => {
      const w = v as CsvRecordView;
      return decodeText(w.buf, w.starts[i], w.ends[i], w.quoted[i]);
    },
    num: (i, diag, f, column) => {
      const w = v as CsvRecordView;
      const x = parseNumber(w.buf, w.starts[i], w.ends[i]);
      if (Number.isNaN(x) && numStatus !== NUM_EMPTY)
        diag.report({
          severity: 'info',
          reason: 'non-numeric',
          file: f,
          line: w.line,
          column,
          message: `${JSON.stringify(decodeText(w.buf, w.starts[i], w.ends[i], w.quoted[i]).slice(0, 40))} is not a number; a missing point`,
        });
      return x;
    },
  };
  const tok = new CsvTokenizer((rec: CsvRecordView) => {
    if (!header) {
      const fields: string[] = [];
      for (let i = 0; i < rec.n; i++)
        fields.push(decodeText(rec.buf, rec.starts[i], rec.ends[i], rec.quoted[i]));
      header = fields;
      onRow({
        header: fields,
        line: rec.line,
        fieldNames: () => fields,
        get: () => '',
        num: () => Number.NaN,
      });
      return;
    }
    if (rec.n === 1 && rec.ends[0] === rec.starts[0]) return; // blank line
    if (rec.n !== header.length) {
      d.report({
        severity: 'warning',
        reason: 'field-count',
        file: name,
        line: rec.line,
        message: `${rec.n} fields where the header has ${header.length}; row skipped`,
      });
      return;
    }
    v = rec;
    row.line = rec.line;
    onRow(row);
  });
  for await (const chunk of maybeGunzip(createReadStream(file))) tok.push(chunk);
  tok.end();
}

/** Calls `onRow` for every JSON object line (a broken line gets an unreadable time, so it is counted). */
async function readJsonLines(file: string, onRow: (r: Row) => void): Promise<void> {
  let names: string[] | null = null;
  let lineNo = 0;
  let carry = '';
  const rowOf = (obj: Record<string, unknown>, line: number): Row => {
    if (!names) names = Object.keys(obj);
    const n = names;
    return {
      line,
      fieldNames: () => n,
      get: (i) => {
        const v = obj[n[i]];
        return typeof v === 'number' ? v : v === undefined || v === null ? '' : String(v);
      },
      num: (i, diag, f, column) => {
        const v = obj[n[i]];
        if (typeof v === 'number') return v;
        if (v === undefined || v === null || v === '') return Number.NaN;
        const x = Number(v);
        if (Number.isNaN(x))
          diag.report({
            severity: 'info',
            reason: 'non-numeric',
            file: f,
            line,
            column,
            message: `${JSON.stringify(String(v).slice(0, 40))} is not a number; a missing point`,
          });
        return x;
      },
    };
  };
  const take = (l: string) => {
    lineNo++;
    const row = parseJsonLine(l, lineNo, rowOf, file);
    if (row) onRow(row);
  };
  for await (const chunk of maybeGunzip(createReadStream(file))) {
    const lines = (carry + chunk.toString('utf8')).split('\n');
    carry = lines.pop() ?? '';
    for (const l of lines) take(l);
  }
  if (carry.trim()) take(carry);
}

function parseJsonLine(
  l: string,
  line: number,
  rowOf: (o: Record<string, unknown>, line: number) => Row,
  file: string,
): Row | null {
  const s = l.trim();
  if (!s || s === '[' || s === ']') return null;
  try {
    const o = JSON.parse(s.replace(/,$/, ''));
    if (o && typeof o === 'object' && !Array.isArray(o)) return rowOf(o as Record<string, unknown>, line);
  } catch {
    // fall through
  }
  // A broken line gets a row whose time is unreadable, so it is counted and located like a bad CSV row.
  return {
    line,
    fieldNames: () => [],
    get: () => `(not a JSON object in ${shortName(file)})`,
    num: () => Number.NaN,
  };
}
