/**
 * Flow records sent as JSON (the HTTP API, JSON-lines files): either a FlowRecord
 * (`{ srcIp, dstPort, protocol, features: { "Flow Duration": … }, label }`, docs/records.md) or a
 * flat object of CIC-named columns (`{ "Flow Duration": 1234, " Destination Port": 80, … }`, either
 * header flavour, any spacing or case). Both are decoded into the columnar `Rows` a model scores,
 * plus the identity columns for storage, without a per-record Map: column names are resolved
 * through a cache, values written straight into typed arrays.
 *
 * Rules (each violation is a problem with a JSON-pointer path, e.g. `/records/3/Flow Duration`):
 * - a column name must be known: a CIC column of either flavour, an identifier, a label, or an
 *   input of the active model; anything else is an unknown column;
 * - numeric values are numbers, numeric strings (`"1.5e3"`, `"Infinity"`, `"NaN"` as CIC CSVs
 *   write them) or null (missing → the model's fill value);
 * - a column the model needs but the record lacks is named, per record.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { BENIGN, LabelPolicy } from '../core/labels.js';
import { NETFLOW_FEATURES } from '../features/netflow.js';
import type { Layout, Rows } from '../features/pipeline.js';
import { canonicalColumn, isKnownCicColumn, LABEL_CANDIDATES } from './columns.js';

/** The NetFlow feature set's columns are NADIR's own vocabulary too (collectors send them). */
const NETFLOW_NAMES = new Set<string>(NETFLOW_FEATURES);

export interface RecordProblem {
  /** JSON pointer into the request body. */
  path: string;
  message: string;
}

/**
 * Records in columnar form: column names once, then one array of values per flow, in column
 * order. A third of the bytes of the same flows as objects, and decoded by position.
 */
export interface Columnar {
  columns: string[];
  rows: unknown[][];
}

/** Records as objects, or columnar. */
export type RecordInput = readonly unknown[] | Columnar;

export function isColumnar(x: RecordInput): x is Columnar {
  return !Array.isArray(x);
}

/** The number of flows in an input. */
export function recordCount(x: RecordInput): number {
  return isColumnar(x) ? x.rows.length : x.length;
}

/** The records as objects (columnar rows become `{ column: value }`), e.g. to store them as sent. */
export function recordObjects(x: RecordInput): Record<string, unknown>[] {
  if (!isColumnar(x)) return x as Record<string, unknown>[];
  return x.rows.map((row) => {
    const o: Record<string, unknown> = {};
    x.columns.forEach((c, j) => {
      o[c] = row[j];
    });
    return o;
  });
}

/** Identity of each decoded flow (what the store keeps beside the verdict). */
export interface FlowIdentity {
  flowId: (string | null)[];
  srcIp: (string | null)[];
  srcPort: (number | null)[];
  dstIp: (string | null)[];
  dstPort: (number | null)[];
  protocol: (number | null)[];
  timestamp: (string | null)[];
  /** Canonical true label, when the record carried one. */
  label: (string | null)[];
  /** The client's own id of the record (`id` column), when given. */
  clientId: (string | number | null)[];
}

export interface DecodedRecords {
  rows: Rows;
  ids: FlowIdentity;
  problems: RecordProblem[];
}

const FLOW_RECORD_KEYS = new Set([
  'flowId',
  'srcIp',
  'srcPort',
  'dstIp',
  'dstPort',
  'protocol',
  'timestamp',
  'features',
  'categories',
  'label',
  'rawLabel',
  'origin',
  'id',
  // Where a collected flow came from (`nadir collect -f jsonl`): kept out of the features.
  'exporter',
]);

type IdField = 'flowId' | 'srcIp' | 'srcPort' | 'dstIp' | 'dstPort' | 'timestamp' | 'id' | 'label';
const ID_BY_CANONICAL: Record<string, IdField> = {
  'Flow ID': 'flowId',
  'Src IP': 'srcIp',
  'Src Port': 'srcPort',
  'Dst IP': 'dstIp',
  'Dst Port': 'dstPort',
  Timestamp: 'timestamp',
  id: 'id',
};
const LABEL_NAMES = new Set(LABEL_CANDIDATES);

/** What one column name means for a decoder's layout. */
interface Slot {
  /** Numeric slot, or -1. */
  ni: number;
  /** Categorical slot, or -1. */
  si: number;
  id: IdField | null;
  label: boolean;
  protocol: boolean;
  unknown: boolean;
}

/** Column name → canonical name, cached (header spellings repeat on every record). */
const canonicalCache = new Map<string, string>();
function canonical(name: string): string {
  let c = canonicalCache.get(name);
  if (c === undefined) {
    c = canonicalColumn(name);
    if (canonicalCache.size < 4096) canonicalCache.set(name, c);
  }
  return c;
}

function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === null) return Number.NaN;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t === '' || t === 'NaN' || t === 'nan') return Number.NaN;
    if (t === 'Infinity' || t === 'inf') return Number.POSITIVE_INFINITY;
    if (t === '-Infinity' || t === '-inf') return Number.NEGATIVE_INFINITY;
    const n = Number(t);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}

function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Decodes records into a layout. `layout` lists the numeric and categorical columns wanted (a
 * model's inputs); `extraKnown` are further accepted column names (the model's inputs, when they
 * are not CIC columns).
 */
export class RecordDecoder {
  private readonly numIndex = new Map<string, number>();
  private readonly strIndex = new Map<string, number>();
  private readonly known: Set<string>;
  private readonly labels = new LabelPolicy();

  constructor(
    readonly layout: Layout,
    extraKnown: Iterable<string> = [],
  ) {
    layout.numericNames.forEach((n, i) => {
      this.numIndex.set(n, i);
    });
    layout.stringNames.forEach((n, i) => {
      this.strIndex.set(n, i);
    });
    this.known = new Set(extraKnown);
    for (const n of layout.numericNames) this.known.add(n);
    for (const n of layout.stringNames) this.known.add(n);
  }

  private isKnown(c: string): boolean {
    return (
      this.known.has(c) ||
      isKnownCicColumn(c) ||
      NETFLOW_NAMES.has(c) ||
      LABEL_NAMES.has(c) ||
      c === 'Attempted Category'
    );
  }

  /** What a column name means for this layout, resolved once per name. */
  private readonly slots = new Map<string, Slot>();

  private slot(rawName: string): Slot {
    let sl = this.slots.get(rawName);
    if (sl) return sl;
    const c = canonical(rawName);
    const ni = this.numIndex.get(c) ?? -1;
    const si = this.strIndex.get(c) ?? -1;
    // Own keys only: `constructor`, `toString` … are not identifiers.
    const id = Object.hasOwn(ID_BY_CANONICAL, c) ? ID_BY_CANONICAL[c] : null;
    const label = LABEL_NAMES.has(c);
    sl = {
      ni,
      si,
      id,
      label,
      protocol: c === 'Protocol',
      unknown: ni < 0 && si < 0 && !id && !label && !this.isKnown(c),
    };
    if (this.slots.size < 4096) this.slots.set(rawName, sl);
    return sl;
  }

  /**
   * Decodes `records` (JSON values) found at `basePath` (e.g. `/records`). Records with problems
   * are still decoded (missing values NaN) so the caller may decide; problems name each one.
   * With `requireAll` false, absent columns are left NaN without a problem (learning a baseline).
   */
  decode(input: RecordInput, basePath: string, requireAll = true, maxProblems = 50): DecodedRecords {
    const columnar = isColumnar(input) ? input : null;
    const records: readonly unknown[] = columnar ? columnar.rows : (input as readonly unknown[]);
    const n = records.length;
    const k = this.layout.numericNames.length;
    const numeric = new Float64Array(n * k).fill(Number.NaN);
    const strings = this.layout.stringNames.map(() => new Array<string>(n).fill(''));
    const ids: FlowIdentity = {
      flowId: new Array(n).fill(null),
      srcIp: new Array(n).fill(null),
      srcPort: new Array(n).fill(null),
      dstIp: new Array(n).fill(null),
      dstPort: new Array(n).fill(null),
      protocol: new Array(n).fill(null),
      timestamp: new Array(n).fill(null),
      label: new Array(n).fill(null),
      clientId: new Array(n).fill(null),
    };
    const problems: RecordProblem[] = [];
    // Paths are built only when there is a problem to report.
    const problem = (i: number, keys: string[], message: string) => {
      if (problems.length >= maxProblems) return;
      let path: string;
      if (columnar) {
        // Columnar: `/columns/J` for a column, `/rows/I/J` for a value.
        const j = keys.length ? `/${columnar.columns.indexOf(keys[keys.length - 1])}` : '';
        path = i < 0 ? `${basePath}/columns${j}` : `${basePath}/rows/${i}${j}`;
      } else path = `${basePath}/${i}${keys.map((key) => `/${escapePointer(key)}`).join('')}`;
      problems.push({ path, message });
    };
    const seenNum = new Uint8Array(k);
    const seenStr = new Uint8Array(this.layout.stringNames.length);
    let seenN = 0;
    let seenS = 0;

    const setColumn = (i: number, rawName: string, v: unknown, parent: string | null) => {
      const sl = this.slot(rawName);
      if (sl.ni >= 0) {
        const x = typeof v === 'number' ? v : numberOf(v);
        if (x === undefined)
          problem(i, parent ? [parent, rawName] : [rawName], 'must be a number, a numeric string or null');
        else numeric[i * k + sl.ni] = x;
        // Present (even when invalid: reported above, not again as missing).
        if (!seenNum[sl.ni]) {
          seenNum[sl.ni] = 1;
          seenN++;
        }
      }
      if (sl.si >= 0) {
        const t = textOf(v);
        if (t === undefined)
          problem(i, parent ? [parent, rawName] : [rawName], 'must be a string or a number');
        else strings[sl.si][i] = t;
        if (!seenStr[sl.si]) {
          seenStr[sl.si] = 1;
          seenS++;
        }
      }
      if (sl.protocol) {
        const p = numberOf(v);
        if (p !== undefined && Number.isInteger(p)) ids.protocol[i] = p;
      }
      if (parent !== null) {
        if (sl.unknown)
          problem(
            i,
            [parent, rawName],
            `unknown column '${rawName}' (not a CIC flow column nor an input of the active model)`,
          );
        return;
      }
      if (sl.id) this.setIdentity(ids, sl.id, i, v, () => problem(i, [rawName], ''), problems, maxProblems);
      else if (sl.label) {
        if (typeof v === 'string' || typeof v === 'number') ids.label[i] = this.labels.canonical(String(v));
        else if (v !== null) problem(i, [rawName], 'a label must be a string');
      } else if (sl.unknown && !columnar)
        problem(
          i,
          [rawName],
          `unknown column '${rawName}' (not a CIC flow column nor an input of the active model)`,
        );
    };

    if (columnar) {
      const cols = columnar.columns;
      const m = cols.length;
      // Column checks once for the batch.
      const hasNum = new Uint8Array(k);
      const hasStr = new Uint8Array(seenStr.length);
      cols.forEach((c, j) => {
        const sl = this.slot(c);
        if (sl.unknown)
          problem(-1, [c], `unknown column '${c}' (not a CIC flow column nor an input of the active model)`);
        if (cols.indexOf(c) !== j) problem(-1, [c], `column '${c}' is named twice`);
        if (sl.ni >= 0) hasNum[sl.ni] = 1;
        if (sl.si >= 0) hasStr[sl.si] = 1;
      });
      if (requireAll) {
        const missing = this.layout.numericNames
          .filter((_, j) => !hasNum[j])
          .concat(this.layout.stringNames.filter((_, q) => !hasStr[q]));
        if (missing.length)
          problem(
            -1,
            [],
            `lacks ${missing.length} column(s) the model needs: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`,
          );
      }
      for (let i = 0; i < n && problems.length < maxProblems; i++) {
        const row = records[i];
        if (!Array.isArray(row) || row.length !== m) {
          problem(i, [], `must be an array of ${m} values, one per column`);
          continue;
        }
        for (let j = 0; j < m; j++) setColumn(i, cols[j], row[j], null);
      }
      return { rows: { plan: this.layout, n, numeric, strings }, ids, problems };
    }

    for (let i = 0; i < n; i++) {
      const rec = records[i];
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
        problem(i, [], 'must be an object (a FlowRecord or CIC-named columns)');
        continue;
      }
      if (seenN) seenNum.fill(0);
      if (seenS) seenStr.fill(0);
      seenN = 0;
      seenS = 0;
      const r = rec as Record<string, unknown>;
      if (typeof r.features === 'object' && r.features !== null && !Array.isArray(r.features)) {
        // FlowRecord.
        for (const key of Object.keys(r)) {
          if (!FLOW_RECORD_KEYS.has(key)) {
            problem(i, [key], `unknown field '${key}' of a FlowRecord`);
            continue;
          }
          const v = r[key];
          switch (key) {
            case 'features':
            case 'categories': {
              if (typeof v !== 'object' || v === null || Array.isArray(v)) {
                problem(i, [key], 'must be an object');
                break;
              }
              const o = v as Record<string, unknown>;
              for (const name of Object.keys(o)) setColumn(i, name, o[name], key);
              break;
            }
            case 'protocol': {
              const p = numberOf(v);
              if (p === undefined || !Number.isInteger(p) || p < 0 || p > 255)
                problem(i, [key], 'must be an IP protocol number 0..255');
              else setColumn(i, 'Protocol', p, 'protocol');
              break;
            }
            case 'label':
              if (typeof v === 'string') ids.label[i] = this.labels.canonical(v);
              else if (v !== null && v !== undefined) problem(i, [key], 'must be a string');
              break;
            case 'rawLabel':
            case 'origin':
            case 'exporter':
              break;
            default: {
              const f = key as IdField;
              this.setIdentity(ids, f, i, v, () => problem(i, [key], ''), problems, maxProblems);
              // Ports may also be model inputs (kept with --keep).
              if (f === 'srcPort' || f === 'dstPort') {
                const sl = this.slot(f === 'srcPort' ? 'Src Port' : 'Dst Port');
                const x = numberOf(v);
                if (sl.ni >= 0 && x !== undefined) {
                  numeric[i * k + sl.ni] = x;
                  if (!seenNum[sl.ni]) {
                    seenNum[sl.ni] = 1;
                    seenN++;
                  }
                }
              }
            }
          }
        }
      } else {
        for (const key in r) setColumn(i, key, r[key], null);
      }
      if (!requireAll || (seenN === k && seenS === seenStr.length)) continue;
      const missing: string[] = [];
      for (let j = 0; j < k; j++) if (!seenNum[j]) missing.push(this.layout.numericNames[j]);
      for (let q = 0; q < seenStr.length; q++) if (!seenStr[q]) missing.push(this.layout.stringNames[q]);
      problem(
        i,
        [],
        `lacks ${missing.length} column(s) the model needs: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`,
      );
    }
    return { rows: { plan: this.layout, n, numeric, strings }, ids, problems };
  }

  private setIdentity(
    ids: FlowIdentity,
    f: IdField,
    i: number,
    v: unknown,
    at: () => void,
    problems: RecordProblem[],
    maxProblems: number,
  ): void {
    if (v === null || v === undefined) return;
    let message: string | null = null;
    switch (f) {
      case 'srcPort':
      case 'dstPort': {
        const p = typeof v === 'number' ? v : numberOf(v);
        if (p === undefined || !Number.isInteger(p) || p < 0 || p > 65535)
          message = 'must be a port 0..65535';
        else ids[f][i] = p;
        break;
      }
      case 'id':
        if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) ids.clientId[i] = v;
        else message = 'must be a string or a finite number';
        break;
      case 'label':
        break;
      default: {
        const t = textOf(v);
        if (t === undefined) message = 'must be a string';
        else ids[f][i] = t;
      }
    }
    if (message !== null && problems.length < maxProblems) {
      at();
      problems[problems.length - 1].message = message;
    }
  }
}

/** `Benign` for normal rows; an anomaly's threat type when a classifier named one, else `Anomaly`. */
export function threatName(isAnomaly: boolean, threatType: string | null): string {
  if (!isAnomaly) return 'Benign';
  return threatType && threatType !== BENIGN ? threatType : 'Anomaly';
}

const FLOW_RECORD_IDS: Record<string, string> = {
  flowId: 'Flow ID',
  srcIp: 'Src IP',
  srcPort: 'Src Port',
  dstIp: 'Dst IP',
  dstPort: 'Dst Port',
  timestamp: 'Timestamp',
  protocol: 'Protocol',
  label: 'Label',
};

/**
 * A received record as one flat row of canonical column names (a FlowRecord's identity, features
 * and categories, or CIC-named columns in either flavour), for writing recorded traffic as CSV.
 */
export function flatRecord(rec: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof rec.features === 'object' && rec.features !== null) {
    for (const [k, name] of Object.entries(FLOW_RECORD_IDS)) if (rec[k] !== undefined) out[name] = rec[k];
    for (const part of [rec.features, rec.categories])
      if (part && typeof part === 'object')
        for (const [k, v] of Object.entries(part as Record<string, unknown>)) out[canonical(k)] = v;
  } else for (const [k, v] of Object.entries(rec)) out[canonical(k)] = v;
  return out;
}

/**
 * Whether a file is JSON lines of flow records (FlowRecord objects, or objects keyed by CIC
 * column names): its first non-blank line (within 64 KiB) parses as such an object.
 */
export function sniffRecordLines(path: string): boolean {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(65536);
      const n = readSync(fd, buf, 0, buf.length, 0);
      text = buf.toString('utf8', 0, n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const first = text.split('\n').find((l) => l.trim() !== '');
  if (!first?.trimStart().startsWith('{')) return false;
  let o: unknown;
  try {
    o = JSON.parse(first);
  } catch {
    return false;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return false;
  const keys = Object.keys(o);
  const features = (o as { features?: unknown }).features;
  if (features && typeof features === 'object' && !Array.isArray(features)) return true;
  return keys.filter((k) => isKnownCicColumn(k) || NETFLOW_NAMES.has(k)).length >= 3;
}
