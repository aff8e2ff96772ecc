/**
 * SQL shared by the DuckDB and PostgreSQL stores: column lists, the WHERE clauses of the
 * prediction and alert queries (always `$n` placeholders, values only ever bound), and the mapping
 * from result rows back to the interface's objects. Both dialects accept the same SQL here.
 */
import { UserError } from '../core/diagnostics.js';
import type { Contribution } from '../core/records.js';
import type {
  Alert,
  AlertQuery,
  AlertStatus,
  Delivery,
  Ingested,
  ModelRecord,
  Prediction,
  PredictionInput,
  PredictionQuery,
  Severity,
  TimeRange,
} from './store.js';

export type Row = Record<string, unknown>;

/** Prediction columns in table order, without id. */
export const PREDICTION_COLUMNS = [
  'ts',
  'source',
  'model',
  'score',
  'threshold',
  'is_anomaly',
  'threat_type',
  'label',
  'flow_id',
  'src_ip',
  'src_port',
  'dst_ip',
  'dst_port',
  'protocol',
  'flow_timestamp',
  'contributions',
  'features',
] as const;

export const ALERT_COLUMNS =
  'id, rule, dedup_key, severity, status, first_seen, last_seen, count, score, threshold, model, summary, details, status_changed_at';

/** Times are integer milliseconds in the store; fractions are rounded. */
export function ms(t: number): number {
  return Math.round(t);
}

/** A bound that is absent, or not a finite number, does not filter. */
function finite(x: number | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Builds `WHERE …` from clauses, binding values into `params` as `$n`. */
export class Where {
  private readonly clauses: string[] = [];
  constructor(readonly params: unknown[] = []) {}

  /** Adds `column op $n` with `value` bound. `column` and `op` are code constants, never input. */
  add(column: string, op: string, value: unknown): this {
    this.params.push(value);
    this.clauses.push(`${column} ${op} $${this.params.length}`);
    return this;
  }

  raw(clause: string): this {
    this.clauses.push(clause);
    return this;
  }

  /** Inclusive `from`, exclusive `to` on an integer ms column (bounds rounded up, which is exact). */
  range(column: string, r: TimeRange): this {
    if (finite(r.from)) this.add(column, '>=', Math.ceil(r.from));
    if (finite(r.to)) this.add(column, '<', Math.ceil(r.to));
    return this;
  }

  /** Rows older than an id cursor (ids are integers, so `id < ceil(cursor)` is exact). */
  cursor(cursor: number | undefined): this {
    if (finite(cursor)) this.add('id', '<', Math.ceil(cursor));
    return this;
  }

  sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

/** Filters of a prediction query; the cursor only when `withCursor` (counts ignore it). */
export function predictionWhere(q: PredictionQuery, withCursor: boolean): Where {
  const w = new Where().range('ts', q);
  if (q.anomalies === true) w.raw('is_anomaly');
  if (q.label !== undefined) w.add('label', '=', q.label);
  if (q.threatType !== undefined) w.add('threat_type', '=', q.threatType);
  if (q.model !== undefined) w.add('model', '=', q.model);
  if (finite(q.minScore)) w.add('score', '>=', q.minScore);
  if (finite(q.maxScore)) w.add('score', '<=', q.maxScore);
  if (q.srcIp !== undefined) w.add('src_ip', '=', q.srcIp);
  if (q.dstIp !== undefined) w.add('dst_ip', '=', q.dstIp);
  if (withCursor) w.cursor(q.cursor);
  return w;
}

/**
 * Filters of an alert query. The time range selects alerts active in it: first seen before `to`
 * and last seen at or after `from`.
 */
export function alertWhere(q: AlertQuery): Where {
  const w = new Where();
  if (finite(q.from)) w.add('last_seen', '>=', Math.ceil(q.from));
  if (finite(q.to)) w.add('first_seen', '<', Math.ceil(q.to));
  if (q.status !== undefined) w.add('status', '=', q.status);
  if (q.severity !== undefined) w.add('severity', '=', q.severity);
  if (q.rule !== undefined) w.add('rule', '=', q.rule);
  w.cursor(q.cursor);
  return w;
}

/** The column values of one prediction, in `PREDICTION_COLUMNS` order. */
export function predictionValues(p: PredictionInput): (string | number | boolean | null)[] {
  return [
    ms(p.ts),
    p.source,
    p.model,
    p.score,
    p.threshold,
    p.isAnomaly,
    p.threatType,
    p.label,
    p.flowId,
    p.srcIp,
    p.srcPort,
    p.dstIp,
    p.dstPort,
    p.protocol,
    p.flowTimestamp,
    json(p.contributions),
    json(p.features),
  ];
}

export function json(v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

function parse<T>(v: unknown): T | null {
  return v === null || v === undefined ? null : (JSON.parse(String(v)) as T);
}

/** BIGINT arrives as bigint (DuckDB) or string (pg); both become numbers. */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function str(v: unknown): string {
  return String(v);
}

function strOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export function toPrediction(r: Row): Prediction {
  return {
    id: num(r.id),
    ts: num(r.ts),
    source: str(r.source),
    model: strOrNull(r.model),
    score: numOrNull(r.score),
    threshold: numOrNull(r.threshold),
    isAnomaly: r.is_anomaly === true,
    threatType: strOrNull(r.threat_type),
    label: strOrNull(r.label),
    flowId: strOrNull(r.flow_id),
    srcIp: strOrNull(r.src_ip),
    srcPort: numOrNull(r.src_port),
    dstIp: strOrNull(r.dst_ip),
    dstPort: numOrNull(r.dst_port),
    protocol: numOrNull(r.protocol),
    flowTimestamp: strOrNull(r.flow_timestamp),
    contributions: parse<Contribution[]>(r.contributions),
    features: parse<Record<string, number>>(r.features),
  };
}

export function toIngested(r: Row): Ingested {
  return {
    id: num(r.id),
    ts: num(r.ts),
    source: str(r.source),
    record: parse<Record<string, unknown>>(r.record) ?? {},
  };
}

export function toAlert(r: Row): Alert {
  return {
    id: num(r.id),
    rule: str(r.rule),
    key: str(r.dedup_key),
    severity: str(r.severity) as Severity,
    status: str(r.status) as AlertStatus,
    firstSeen: num(r.first_seen),
    lastSeen: num(r.last_seen),
    count: num(r.count),
    score: num(r.score),
    threshold: num(r.threshold),
    model: strOrNull(r.model),
    summary: str(r.summary),
    details: parse<Record<string, unknown>>(r.details) ?? {},
    statusChangedAt: numOrNull(r.status_changed_at),
  };
}

export function toDelivery(r: Row): Delivery {
  return {
    id: num(r.id),
    alertId: num(r.alert_id),
    channel: str(r.channel),
    kind: str(r.kind),
    attempt: num(r.attempt),
    ok: r.ok === true,
    detail: str(r.detail),
    ts: num(r.ts),
  };
}

export function toModel(r: Row): ModelRecord {
  return {
    id: str(r.id),
    kind: str(r.kind),
    path: str(r.path),
    createdAt: num(r.created_at),
    registeredAt: num(r.registered_at),
    threshold: num(r.threshold),
    fingerprint: str(r.fingerprint),
    info: parse<Record<string, unknown>>(r.info) ?? {},
    active: r.active === true,
  };
}

/** Columns `updateAlert` may change, with how each value is stored. */
export const ALERT_PATCH: Record<string, { column: string; encode: (v: unknown) => unknown }> = {
  count: { column: 'count', encode: (v) => v },
  lastSeen: { column: 'last_seen', encode: (v) => ms(v as number) },
  score: { column: 'score', encode: (v) => v },
  severity: { column: 'severity', encode: (v) => v },
  summary: { column: 'summary', encode: (v) => v },
  details: { column: 'details', encode: (v) => json(v) },
};

/** `SET a = $1, b = $2…` for the defined fields of an alert patch; null when there are none. */
export function alertSet(patch: Record<string, unknown>, params: unknown[]): string | null {
  const sets: string[] = [];
  for (const [field, spec] of Object.entries(ALERT_PATCH)) {
    const v = patch[field];
    if (v === undefined) continue;
    params.push(spec.encode(v));
    sets.push(`${spec.column} = $${params.length}`);
  }
  return sets.length ? `SET ${sets.join(', ')}` : null;
}

/** A page from `limit + 1` rows fetched newest first. */
export function page<T extends { id: number }>(
  rows: T[],
  size: number,
): { items: T[]; nextCursor: number | null } {
  if (rows.length <= size) return { items: rows, nextCursor: null };
  const items = rows.slice(0, size);
  return { items, nextCursor: items[items.length - 1].id };
}

/** Largest batch `readIngested` returns. */
export const MAX_INGEST_READ = 10_000;

export function noSuchModel(id: string): UserError {
  return new UserError(`no model ${JSON.stringify(id)} in the registry`, 'list the registered models first');
}
