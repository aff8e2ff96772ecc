/**
 * SQL shared by the DuckDB and PostgreSQL stores: column lists, the WHERE clauses of the
 * prediction and alert queries (always `$n` placeholders, values only ever bound), and the mapping
 * from result rows back to the interface's objects. Both dialects accept the same SQL here.
 */
import { UserError } from '../core/diagnostics.js';
import type { Contribution } from '../core/records.js';
import {
  type Alert,
  type AlertInput,
  type AlertQuery,
  type AlertStatus,
  type Delivery,
  type DeliveryInput,
  type Ingested,
  type ModelRecord,
  type Prediction,
  type PredictionInput,
  type PredictionQuery,
  pageSize,
  type Severity,
  type Store,
  type TimeRange,
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

// --- statements both stores run as they are ----------------------------------------------------

/** A statement with its bound values. */
export interface Statement {
  sql: string;
  params: unknown[];
}

/** A page query: `limit + 1` rows newest first, and the page size to cut them to. */
export interface PageStatement extends Statement {
  size: number;
}

/** One page of predictions matching `q`, newest first. */
export function predictionPage(q: PredictionQuery): PageStatement {
  const size = pageSize(q.limit);
  const w = predictionWhere(q, true);
  return {
    sql: `SELECT id, ${PREDICTION_COLUMNS.join(', ')} FROM predictions ${w.sql()} ORDER BY id DESC LIMIT $${w.params.length + 1}`,
    params: [...w.params, size + 1],
    size,
  };
}

/** The number of predictions matching `q` (as `n`), ignoring its cursor. */
export function predictionCount(q: PredictionQuery): Statement {
  const w = predictionWhere(q, false);
  return { sql: `SELECT count(*) AS n FROM predictions ${w.sql()}`, params: w.params };
}

/** Ingested rows after an id, oldest first, at most `MAX_INGEST_READ`. */
export function ingestedRead(after: number, limit: number): Statement {
  const n = Math.max(1, Math.min(MAX_INGEST_READ, Math.floor(limit) || 1));
  return {
    sql: 'SELECT id, ts, source, record FROM ingested WHERE id > $1 ORDER BY id LIMIT $2',
    params: [Math.floor(after), n],
  };
}

export const COUNT_INGESTED = 'SELECT count(*) AS n FROM ingested';

/** An alert's column values from `rule` to `details` (`ALERT_COLUMNS` without id and status_changed_at). */
export function alertParams(a: AlertInput): unknown[] {
  return [
    a.rule,
    a.key,
    a.severity,
    a.status,
    ms(a.firstSeen),
    ms(a.lastSeen),
    a.count,
    a.score,
    a.threshold,
    a.model,
    a.summary,
    JSON.stringify(a.details),
  ];
}

/** The fields `updateAlert` may change. */
export type AlertPatch = Parameters<Store['updateAlert']>[1];

/** The UPDATE for the defined fields of an alert patch; null when there are none. */
export function alertUpdate(id: number, patch: AlertPatch): Statement | null {
  const params: unknown[] = [];
  const set = alertSet(patch, params);
  if (!set) return null;
  params.push(id);
  return { sql: `UPDATE alerts ${set} WHERE id = $${params.length}`, params };
}

/** Sets an alert's status (stamping the change time only when it changes), returning the alert. */
export function alertStatusUpdate(id: number, status: AlertStatus, at: number): Statement {
  return {
    sql: `UPDATE alerts SET status_changed_at = CASE WHEN status <> $1 THEN $2 ELSE status_changed_at END,
         status = $1 WHERE id = $3 RETURNING ${ALERT_COLUMNS}`,
    params: [status, ms(at), id],
  };
}

export const GET_ALERT = `SELECT ${ALERT_COLUMNS} FROM alerts WHERE id = $1`;

/** One page of alerts matching `q`, newest first. */
export function alertPage(q: AlertQuery): PageStatement {
  const size = pageSize(q.limit);
  const w = alertWhere(q);
  return {
    sql: `SELECT ${ALERT_COLUMNS} FROM alerts ${w.sql()} ORDER BY id DESC LIMIT $${w.params.length + 1}`,
    params: [...w.params, size + 1],
    size,
  };
}

/** The newest unresolved alert with a dedup key, last seen at or after `since`. */
export function activeAlert(key: string, since: number): Statement {
  return {
    sql: `SELECT ${ALERT_COLUMNS} FROM alerts
       WHERE dedup_key = $1 AND status <> 'resolved' AND last_seen >= $2 ORDER BY id DESC LIMIT 1`,
    params: [key, Math.ceil(since)],
  };
}

export const DELIVERY_COLUMNS = 'id, alert_id, channel, kind, attempt, ok, detail, ts';

/** A delivery's column values from `alert_id` to `ts` (`DELIVERY_COLUMNS` without id). */
export function deliveryParams(d: DeliveryInput): unknown[] {
  return [d.alertId, d.channel, d.kind, d.attempt, d.ok, d.detail, ms(d.ts)];
}

/** Clears the active flag of every model but `$1`. */
export const DEACTIVATE_OTHER_MODELS = 'UPDATE models SET active = false WHERE active AND id <> $1';

/** Inserts or replaces a model; values from `modelParams`. */
export const UPSERT_MODEL = `INSERT INTO models (id, kind, path, created_at, registered_at, threshold, fingerprint, info, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, path = excluded.path, created_at = excluded.created_at,
           registered_at = excluded.registered_at, threshold = excluded.threshold,
           fingerprint = excluded.fingerprint, info = excluded.info, active = excluded.active`;

/** The values of `UPSERT_MODEL`. */
export function modelParams(m: ModelRecord): unknown[] {
  return [
    m.id,
    m.kind,
    m.path,
    ms(m.createdAt),
    ms(m.registeredAt),
    m.threshold,
    m.fingerprint,
    JSON.stringify(m.info),
    m.active,
  ];
}

export const LIST_MODELS = 'SELECT * FROM models ORDER BY registered_at, id';
export const GET_MODEL = 'SELECT * FROM models WHERE id = $1';
export const FIND_MODEL = 'SELECT id FROM models WHERE id = $1';

export const LATEST_CONFIG = 'SELECT version, value FROM config ORDER BY version DESC LIMIT 1';

/** The newest configuration from `LATEST_CONFIG`'s rows; null when there is none. */
export function toConfig(rows: Row[]): { version: number; value: Record<string, unknown> } | null {
  if (!rows.length) return null;
  return { version: num(rows[0].version), value: JSON.parse(String(rows[0].value)) };
}

export const DELETE_OLD_PREDICTIONS = 'DELETE FROM predictions WHERE ts < $1';
export const DELETE_OLD_INGESTED = 'DELETE FROM ingested WHERE ts < $1';
/** Resolved alerts last seen, and last changed, before `$1`. */
const OLD_ALERTS = `SELECT id FROM alerts WHERE status = 'resolved' AND last_seen < $1
                   AND coalesce(status_changed_at, last_seen) < $1`;
export const DELETE_OLD_DELIVERIES = `DELETE FROM deliveries WHERE alert_id IN (${OLD_ALERTS})`;
export const DELETE_OLD_ALERTS = `DELETE FROM alerts WHERE id IN (${OLD_ALERTS})`;

export const PING =
  'INSERT INTO heartbeat (id, ts) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts';
export const SCHEMA_VERSION = 'SELECT coalesce(max(version), 0) AS v FROM schema_migrations';
