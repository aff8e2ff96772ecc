/**
 * The store: one repository interface for everything `nadir serve` keeps (predictions, recorded
 * traffic, alerts and their deliveries, the model registry, the service configuration), with two
 * implementations run against the same test suite: DuckDB embedded in the process (the default,
 * `./nadir-data/nadir.duckdb`) and PostgreSQL (when `DATABASE_URL` is set).
 *
 * Conventions: times are epoch milliseconds (numbers) at this interface; ids are store-assigned,
 * increasing integers (safe JS numbers) used as pagination cursors (newest first: the next page is
 * `id < cursor`). Every write resolves only after it is committed, so a caller may acknowledge it.
 * All SQL is parameterised.
 */
import type { Contribution } from '../core/records.js';

/** One scored flow, as written by the detection service. */
export interface PredictionInput {
  /** When it was scored (ms). */
  ts: number;
  /** Where the flow came from: `api`, `capture`, `netflow`, … */
  source: string;
  /** Model id, or null while the service is still learning its baseline. */
  model: string | null;
  score: number | null;
  threshold: number | null;
  isAnomaly: boolean;
  threatType: string | null;
  /** True label carried by the input record, when it had one. */
  label: string | null;
  flowId: string | null;
  srcIp: string | null;
  srcPort: number | null;
  dstIp: string | null;
  dstPort: number | null;
  protocol: number | null;
  /** The flow's own start time as its source wrote it. */
  flowTimestamp: string | null;
  /** Top contributing features (anomalies). */
  contributions: Contribution[] | null;
  /** The record's numeric features (kept for anomalies, so an alert can be re-examined). */
  features: Record<string, number> | null;
}

export interface Prediction extends PredictionInput {
  id: number;
}

export interface TimeRange {
  /** Inclusive lower bound (ms). */
  from?: number;
  /** Exclusive upper bound (ms). */
  to?: number;
}

export interface PredictionQuery extends TimeRange {
  /** Only anomalies. */
  anomalies?: boolean;
  /** Exact true label. */
  label?: string;
  threatType?: string;
  model?: string;
  minScore?: number;
  maxScore?: number;
  srcIp?: string;
  dstIp?: string;
  /** Return rows with id < cursor (newest first). */
  cursor?: number;
  /** Page size (the store caps it at 1000). */
  limit?: number;
}

export interface Page<T> {
  items: T[];
  /** Cursor for the next (older) page, or null when this was the last one. */
  nextCursor: number | null;
}

/** A flow recorded by `POST /ingest` for later training. */
export interface IngestedInput {
  ts: number;
  source: string;
  /** The record as received (FlowRecord JSON or CIC-named columns). */
  record: Record<string, unknown>;
}

export interface Ingested extends IngestedInput {
  id: number;
}

export type AlertStatus = 'open' | 'acked' | 'resolved';
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export interface AlertInput {
  /** Rule that raised it. */
  rule: string;
  /** De-duplication key: rule + group (e.g. `count:dst=10.0.0.5`). */
  key: string;
  severity: Severity;
  status: AlertStatus;
  firstSeen: number;
  lastSeen: number;
  /** Anomalies folded into this alert. */
  count: number;
  /** Highest score seen. */
  score: number;
  threshold: number;
  model: string | null;
  /** One line, human readable. */
  summary: string;
  /** Why: top contributing features with observed vs typical values, and more. */
  details: Record<string, unknown>;
}

export interface Alert extends AlertInput {
  id: number;
  /** When and by which key the status last changed. */
  statusChangedAt: number | null;
}

export interface AlertQuery extends TimeRange {
  status?: AlertStatus;
  severity?: Severity;
  rule?: string;
  cursor?: number;
  limit?: number;
}

export interface DeliveryInput {
  alertId: number;
  /** Channel name from the configuration. */
  channel: string;
  /** webhook | slack | email | log | … */
  kind: string;
  attempt: number;
  ok: boolean;
  /** HTTP status, SMTP response, or error message. */
  detail: string;
  ts: number;
}

export interface Delivery extends DeliveryInput {
  id: number;
}

/** A model in the registry. The bundle itself lives on disk at `path`. */
export interface ModelRecord {
  id: string;
  kind: string;
  path: string;
  createdAt: number;
  /** When it was added to the registry. */
  registeredAt: number;
  threshold: number;
  /** Training data fingerprint(s). */
  fingerprint: string;
  /** Training summary and metrics, free-form. */
  info: Record<string, unknown>;
  active: boolean;
}

export interface Store {
  readonly kind: 'duckdb' | 'postgres';
  /** Human-readable location (file path, or host/database without credentials). */
  readonly location: string;

  insertPredictions(rows: PredictionInput[]): Promise<number[]>;
  queryPredictions(q: PredictionQuery): Promise<Page<Prediction>>;
  countPredictions(q?: PredictionQuery): Promise<number>;

  insertIngested(rows: IngestedInput[]): Promise<number[]>;
  /** Oldest first: the next page is `id > after`. */
  readIngested(after: number, limit: number): Promise<Ingested[]>;
  countIngested(): Promise<number>;

  insertAlert(a: AlertInput): Promise<number>;
  /** Updates the changing fields of an alert (count, lastSeen, score, severity, summary, details). */
  updateAlert(
    id: number,
    patch: Partial<Pick<AlertInput, 'count' | 'lastSeen' | 'score' | 'severity' | 'summary' | 'details'>>,
  ): Promise<void>;
  setAlertStatus(id: number, status: AlertStatus, at: number): Promise<Alert | null>;
  getAlert(id: number): Promise<Alert | null>;
  queryAlerts(q: AlertQuery): Promise<Page<Alert>>;
  /** The newest alert with this key that is not resolved and was last seen at or after `since`. */
  findActiveAlert(key: string, since: number): Promise<Alert | null>;

  insertDelivery(d: DeliveryInput): Promise<number>;
  deliveriesFor(alertIds: number[]): Promise<Delivery[]>;

  /** Inserts or replaces by id. */
  putModel(m: ModelRecord): Promise<void>;
  listModels(): Promise<ModelRecord[]>;
  getModel(id: string): Promise<ModelRecord | null>;
  /** Marks one model active (and every other inactive), atomically. */
  activateModel(id: string): Promise<void>;

  /** The service configuration document, or null before the first PUT. */
  getConfig(): Promise<{ version: number; value: Record<string, unknown> } | null>;
  /** Stores a new version of the configuration; returns its version number. */
  putConfig(value: Record<string, unknown>): Promise<number>;

  /** Deletes predictions, ingested rows and resolved alerts (with deliveries) older than `before`. */
  deleteOlderThan(before: number): Promise<{ predictions: number; ingested: number; alerts: number }>;

  /** Checks that the store answers and accepts writes. */
  ping(): Promise<void>;
  /** Schema version after migrations. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

/** Largest page a query returns. */
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE;
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(limit)));
}
