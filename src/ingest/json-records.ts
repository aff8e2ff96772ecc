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
import { BENIGN, LabelPolicy } from '../core/labels.js';
import type { Layout, Rows } from '../features/pipeline.js';
import { CIC_CATEGORICAL, canonicalColumn, isKnownCicColumn, LABEL_CANDIDATES } from './columns.js';

export interface RecordProblem {
  /** JSON pointer into the request body. */
  path: string;
  message: string;
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
    return this.known.has(c) || isKnownCicColumn(c) || LABEL_NAMES.has(c) || c === 'Attempted Category';
  }

  /**
   * Decodes `records` (JSON values) found at `basePath` (e.g. `/records`). Records with problems
   * are still decoded (missing values NaN) so the caller may decide; problems name each one.
   * With `requireAll` false, absent columns are left NaN without a problem (learning a baseline).
   */
  decode(records: readonly unknown[], basePath: string, requireAll = true, maxProblems = 50): DecodedRecords {
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
    const problem = (path: string, message: string) => {
      if (problems.length < maxProblems) problems.push({ path, message });
    };
    const seenNum = new Uint8Array(k);
    const seenStr = new Uint8Array(this.layout.stringNames.length);

    for (let i = 0; i < n; i++) {
      const rec = records[i];
      const at = `${basePath}/${i}`;
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
        problem(at, 'must be an object (a FlowRecord or CIC-named columns)');
        continue;
      }
      seenNum.fill(0);
      seenStr.fill(0);
      const r = rec as Record<string, unknown>;
      const setColumn = (rawName: string, v: unknown, path: string, fromFeatures: boolean) => {
        const c = canonical(rawName);
        const ni = this.numIndex.get(c);
        const si = this.strIndex.get(c);
        if (ni !== undefined) {
          const x = numberOf(v);
          if (x === undefined) problem(path, `must be a number, a numeric string or null`);
          else {
            numeric[i * k + ni] = x;
            seenNum[ni] = 1;
          }
        }
        if (si !== undefined) {
          const t = textOf(v);
          if (t === undefined) problem(path, 'must be a string or a number');
          else {
            strings[si][i] = t;
            seenStr[si] = 1;
          }
        }
        if (c === 'Protocol') {
          const p = numberOf(v);
          if (p !== undefined && Number.isInteger(p)) ids.protocol[i] = p;
        }
        const idf = ID_BY_CANONICAL[c];
        if (idf && !fromFeatures) this.setIdentity(ids, idf, i, v, path, problem);
        else if (LABEL_NAMES.has(c) && !fromFeatures) {
          if (typeof v === 'string' || typeof v === 'number') ids.label[i] = this.labels.canonical(String(v));
          else if (v !== null) problem(path, 'a label must be a string');
        } else if (ni === undefined && si === undefined && !idf && !this.isKnown(c))
          problem(
            path,
            `unknown column '${rawName}' (not a CIC flow column nor an input of the active model)`,
          );
      };

      if (typeof r.features === 'object' && r.features !== null && !Array.isArray(r.features)) {
        // FlowRecord.
        for (const key of Object.keys(r)) {
          const path = `${at}/${escapePointer(key)}`;
          if (!FLOW_RECORD_KEYS.has(key)) {
            problem(path, `unknown field '${key}' of a FlowRecord`);
            continue;
          }
          const v = r[key];
          switch (key) {
            case 'features':
            case 'categories': {
              if (typeof v !== 'object' || v === null || Array.isArray(v)) {
                problem(path, 'must be an object');
                break;
              }
              for (const [name, x] of Object.entries(v as Record<string, unknown>))
                setColumn(name, x, `${path}/${escapePointer(name)}`, true);
              break;
            }
            case 'protocol': {
              const p = numberOf(v);
              if (p === undefined || !Number.isInteger(p) || p < 0 || p > 255)
                problem(path, 'must be an IP protocol number 0..255');
              else {
                ids.protocol[i] = p;
                const si = this.strIndex.get('Protocol');
                if (si !== undefined) {
                  strings[si][i] = String(p);
                  seenStr[si] = 1;
                }
                const ni = this.numIndex.get('Protocol');
                if (ni !== undefined) {
                  numeric[i * k + ni] = p;
                  seenNum[ni] = 1;
                }
              }
              break;
            }
            case 'label':
              if (typeof v === 'string') ids.label[i] = this.labels.canonical(v);
              else if (v !== null && v !== undefined) problem(path, 'must be a string');
              break;
            case 'rawLabel':
            case 'origin':
              break;
            default:
              this.setIdentity(ids, key as IdField, i, v, path, problem);
              // Identifiers may also be model inputs (kept with --keep).
              setColumnIfInput(this, key, v, i);
          }
        }
      } else {
        for (const key of Object.keys(r)) setColumn(key, r[key], `${at}/${escapePointer(key)}`, false);
      }
      if (!requireAll) continue;
      for (let j = 0; j < k; j++)
        if (!seenNum[j]) problem(at, `lacks column '${this.layout.numericNames[j]}' the model needs`);
      for (let s = 0; s < seenStr.length; s++)
        if (!seenStr[s]) problem(at, `lacks column '${this.layout.stringNames[s]}' the model needs`);
    }
    return { rows: { plan: this.layout, n, numeric, strings }, ids, problems };

    function setColumnIfInput(self: RecordDecoder, key: string, v: unknown, i: number) {
      const canonicalName = key === 'srcPort' ? 'Src Port' : key === 'dstPort' ? 'Dst Port' : null;
      if (!canonicalName) return;
      const ni = self.numIndex.get(canonicalName);
      const x = numberOf(v);
      if (ni !== undefined && x !== undefined) {
        numeric[i * k + ni] = x;
        seenNum[ni] = 1;
      }
    }
  }

  private setIdentity(
    ids: FlowIdentity,
    f: IdField,
    i: number,
    v: unknown,
    path: string,
    problem: (p: string, m: string) => void,
  ): void {
    if (v === null || v === undefined) return;
    switch (f) {
      case 'srcPort':
      case 'dstPort': {
        const p = numberOf(v);
        if (p === undefined || !Number.isInteger(p) || p < 0 || p > 65535)
          problem(path, 'must be a port 0..65535');
        else ids[f][i] = p;
        return;
      }
      case 'id':
        if (typeof v === 'string' || typeof v === 'number') ids.clientId[i] = v;
        else problem(path, 'must be a string or a number');
        return;
      case 'label':
        return;
      default: {
        const t = textOf(v);
        if (t === undefined) problem(path, 'must be a string');
        else ids[f][i] = t;
      }
    }
  }
}

/**
 * The layout learned from traffic when no model exists yet: every known numeric column present in
 * the sample (CIC columns except identifiers and labels), and Protocol as a category.
 */
export function layoutFromSample(records: readonly unknown[]): Layout {
  const numeric = new Set<string>();
  const str = new Set<string>();
  for (const rec of records) {
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) continue;
    const r = rec as Record<string, unknown>;
    const cols =
      typeof r.features === 'object' && r.features !== null
        ? Object.keys(r.features as object).concat(r.protocol !== undefined ? ['Protocol'] : [])
        : Object.keys(r);
    for (const raw of cols) {
      const c = canonical(raw);
      if (!isKnownCicColumn(c) || ID_BY_CANONICAL[c] || LABEL_NAMES.has(c)) continue;
      if (CIC_CATEGORICAL.has(c)) str.add(c);
      else numeric.add(c);
    }
  }
  const numericNames = [...numeric].sort();
  const stringNames = [...str].sort();
  return { numericNames, stringNames, key: `json:${numericNames.join('|')}#${stringNames.join('|')}` };
}

/** `Benign` for normal rows; an anomaly's threat type when a classifier named one, else `Anomaly`. */
export function threatName(isAnomaly: boolean, threatType: string | null): string {
  if (!isAnomaly) return 'Benign';
  return threatType && threatType !== BENIGN ? threatType : 'Anomaly';
}
