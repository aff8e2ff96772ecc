/**
 * The shared store: PostgreSQL through a `pg` Pool, selected by `DATABASE_URL`. Same semantics as
 * the DuckDB store; several NADIR processes may share one database.
 *
 * A batch of predictions or ingested rows is one statement (`INSERT … SELECT FROM unnest($1::…[],
 * …) WITH ORDINALITY … ORDER BY ord RETURNING id`): identity values are drawn in row order, so the
 * sorted returned ids match the batch's rows. Writes resolve after COMMIT (synchronous_commit).
 *
 * An optional schema (validated as a plain lower-case identifier) isolates a store: it is created
 * if missing and made the connections' `search_path`. Migrations run under an advisory lock so
 * processes opening the same schema at once do not race. `location` never carries the password.
 */
import pg from 'pg';
import { UserError } from '../core/diagnostics.js';
import { migrate } from './migrations.js';
import {
  type AlertPatch,
  activeAlert,
  alertPage,
  alertParams,
  alertStatusUpdate,
  alertUpdate,
  COUNT_INGESTED,
  DEACTIVATE_OTHER_MODELS,
  DELETE_OLD_ALERTS,
  DELETE_OLD_DELIVERIES,
  DELETE_OLD_INGESTED,
  DELETE_OLD_PREDICTIONS,
  DELIVERY_COLUMNS,
  deliveryParams,
  FIND_MODEL,
  GET_ALERT,
  GET_MODEL,
  ingestedRead,
  LATEST_CONFIG,
  LIST_MODELS,
  modelParams,
  ms,
  noSuchModel,
  num,
  PING,
  PREDICTION_COLUMNS,
  page,
  predictionCount,
  predictionPage,
  predictionValues,
  type Row,
  SCHEMA_VERSION,
  toAlert,
  toConfig,
  toDelivery,
  toIngested,
  toModel,
  toPrediction,
  UPSERT_MODEL,
} from './sql.js';
import type {
  Alert,
  AlertInput,
  AlertQuery,
  AlertStatus,
  Delivery,
  DeliveryInput,
  Ingested,
  IngestedInput,
  ModelRecord,
  Page,
  Prediction,
  PredictionInput,
  PredictionQuery,
  Store,
} from './store.js';

/** What a schema name must look like (it is spliced into DDL, so nothing else gets through). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Array types of the prediction columns, in `PREDICTION_COLUMNS` order. */
const PREDICTION_TYPES = [
  'bigint',
  'text',
  'text',
  'float8',
  'float8',
  'boolean',
  'text',
  'text',
  'text',
  'text',
  'integer',
  'text',
  'integer',
  'integer',
  'text',
  'text',
  'text',
];

const INSERT_PREDICTIONS = `INSERT INTO predictions (${PREDICTION_COLUMNS.join(', ')})
  SELECT ${PREDICTION_COLUMNS.join(', ')}
  FROM unnest(${PREDICTION_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
    WITH ORDINALITY AS t(${PREDICTION_COLUMNS.join(', ')}, ord)
  ORDER BY ord
  RETURNING id`;

const INSERT_INGESTED = `INSERT INTO ingested (ts, source, record)
  SELECT ts, source, record FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS t(ts, source, record, ord)
  ORDER BY ord
  RETURNING id`;

export interface PostgresOptions {
  /** Schema to keep the tables in (created if missing); the server's default search_path when absent. */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
  /** How long to wait for a connection before giving up (default 10 s). */
  connectionTimeoutMillis?: number;
}

/** `postgres://user@host:port/db`, without the password (or any query parameters). */
export function describeUrl(url: string, schema?: string): string {
  let base: string;
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    base = `postgres://${user}${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    base = 'postgres (DATABASE_URL)';
  }
  return schema ? `${base} (schema ${schema})` : base;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private closed = false;

  private constructor(
    readonly location: string,
    private readonly pool: pg.Pool,
  ) {}

  /** Connects, creates the schema if asked for one, and migrates it. */
  static async open(url: string, opts: PostgresOptions = {}): Promise<PostgresStore> {
    const { schema } = opts;
    if (schema !== undefined && !SCHEMA_NAME.test(schema))
      throw new UserError(
        `schema name ${JSON.stringify(schema)} is not allowed; use lower-case letters, digits and _ (up to 63, not starting with a digit)`,
      );
    const location = describeUrl(url, schema);
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle client's error (server restart, network) must not crash the process; the pool drops
    // that client and the next query connects afresh.
    pool.on('error', () => undefined);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw translateError(location, e as Error & { code?: string });
    }
    try {
      await client.query('BEGIN');
      await client.query("SELECT pg_advisory_xact_lock(hashtext('nadir.migrate:' || $1))", [
        schema ?? '(search_path)',
      ]);
      // The name matched SCHEMA_NAME, so quoting it is safe (and keeps reserved words usable).
      if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      const query = async (sql: string, params?: unknown[]): Promise<Row[]> =>
        (await client.query(sql, params)).rows;
      await migrate('postgres', { query }, location);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      await pool.end().catch(() => undefined);
      throw translateError(location, e as Error & { code?: string });
    }
    client.release();
    return new PostgresStore(location, pool);
  }

  private async rows(sql: string, params: unknown[] = []): Promise<Row[]> {
    if (this.closed) throw new Error(`store ${this.location} is closed`);
    return (await this.pool.query(sql, params)).rows;
  }

  /** Runs `fn` in one transaction on one pooled connection; rolls back if it throws. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`store ${this.location} is closed`);
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  // --- predictions -------------------------------------------------------------------------------

  async insertPredictions(rows: PredictionInput[]): Promise<number[]> {
    if (rows.length === 0) return [];
    const columns: unknown[][] = PREDICTION_COLUMNS.map(() => new Array(rows.length));
    for (let i = 0; i < rows.length; i++) {
      const v = predictionValues(rows[i]);
      for (let j = 0; j < v.length; j++) columns[j][i] = v[j];
    }
    return ids(await this.rows(INSERT_PREDICTIONS, columns), rows.length);
  }

  async queryPredictions(q: PredictionQuery): Promise<Page<Prediction>> {
    const { sql, params, size } = predictionPage(q);
    return page((await this.rows(sql, params)).map(toPrediction), size);
  }

  async countPredictions(q: PredictionQuery = {}): Promise<number> {
    const { sql, params } = predictionCount(q);
    const [r] = await this.rows(sql, params);
    return num(r.n);
  }

  // --- ingested ----------------------------------------------------------------------------------

  async insertIngested(rows: IngestedInput[]): Promise<number[]> {
    if (rows.length === 0) return [];
    const r = await this.rows(INSERT_INGESTED, [
      rows.map((x) => ms(x.ts)),
      rows.map((x) => x.source),
      rows.map((x) => JSON.stringify(x.record)),
    ]);
    return ids(r, rows.length);
  }

  async readIngested(after: number, limit: number): Promise<Ingested[]> {
    const { sql, params } = ingestedRead(after, limit);
    return (await this.rows(sql, params)).map(toIngested);
  }

  async countIngested(): Promise<number> {
    const [r] = await this.rows(COUNT_INGESTED);
    return num(r.n);
  }

  // --- alerts ------------------------------------------------------------------------------------

  async insertAlert(a: AlertInput): Promise<number> {
    const [r] = await this.rows(
      `INSERT INTO alerts (rule, dedup_key, severity, status, first_seen, last_seen, count, score, threshold, model, summary, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
      alertParams(a),
    );
    return num(r.id);
  }

  async updateAlert(id: number, patch: AlertPatch): Promise<void> {
    const u = alertUpdate(id, patch);
    if (!u) return;
    await this.rows(u.sql, u.params);
  }

  async setAlertStatus(id: number, status: AlertStatus, at: number): Promise<Alert | null> {
    const { sql, params } = alertStatusUpdate(id, status, at);
    const rows = await this.rows(sql, params);
    return rows.length ? toAlert(rows[0]) : null;
  }

  async getAlert(id: number): Promise<Alert | null> {
    const rows = await this.rows(GET_ALERT, [id]);
    return rows.length ? toAlert(rows[0]) : null;
  }

  async queryAlerts(q: AlertQuery): Promise<Page<Alert>> {
    const { sql, params, size } = alertPage(q);
    return page((await this.rows(sql, params)).map(toAlert), size);
  }

  async findActiveAlert(key: string, since: number): Promise<Alert | null> {
    const { sql, params } = activeAlert(key, since);
    const rows = await this.rows(sql, params);
    return rows.length ? toAlert(rows[0]) : null;
  }

  // --- deliveries --------------------------------------------------------------------------------

  async insertDelivery(d: DeliveryInput): Promise<number> {
    const [r] = await this.rows(
      `INSERT INTO deliveries (alert_id, channel, kind, attempt, ok, detail, ts)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      deliveryParams(d),
    );
    return num(r.id);
  }

  async deliveriesFor(alertIds: number[]): Promise<Delivery[]> {
    if (alertIds.length === 0) return [];
    const rows = await this.rows(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE alert_id = ANY($1::bigint[]) ORDER BY id`,
      [alertIds],
    );
    return rows.map(toDelivery);
  }

  // --- models ------------------------------------------------------------------------------------

  putModel(m: ModelRecord): Promise<void> {
    return this.tx(async (c) => {
      // Serialises activations, so two concurrent ones cannot both win.
      await c.query('LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE');
      if (m.active) await c.query(DEACTIVATE_OTHER_MODELS, [m.id]);
      await c.query(UPSERT_MODEL, modelParams(m));
    });
  }

  async listModels(): Promise<ModelRecord[]> {
    return (await this.rows(LIST_MODELS)).map(toModel);
  }

  async getModel(id: string): Promise<ModelRecord | null> {
    const rows = await this.rows(GET_MODEL, [id]);
    return rows.length ? toModel(rows[0]) : null;
  }

  activateModel(id: string): Promise<void> {
    return this.tx(async (c) => {
      await c.query('LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE');
      const found = await c.query(FIND_MODEL, [id]);
      if (!found.rowCount) throw noSuchModel(id);
      await c.query(DEACTIVATE_OTHER_MODELS, [id]);
      await c.query('UPDATE models SET active = true WHERE id = $1', [id]);
    });
  }

  // --- configuration -----------------------------------------------------------------------------

  async getConfig(): Promise<{ version: number; value: Record<string, unknown> } | null> {
    return toConfig(await this.rows(LATEST_CONFIG));
  }

  putConfig(value: Record<string, unknown>): Promise<number> {
    return this.tx(async (c) => {
      // Versions are consecutive even when several processes write at once.
      await c.query('LOCK TABLE config IN SHARE ROW EXCLUSIVE MODE');
      const r = await c.query(
        `INSERT INTO config (version, value, ts)
         SELECT coalesce(max(version), 0) + 1, $1, $2 FROM config RETURNING version`,
        [JSON.stringify(value), Date.now()],
      );
      return num(r.rows[0].version);
    });
  }

  // --- retention ---------------------------------------------------------------------------------

  deleteOlderThan(before: number): Promise<{ predictions: number; ingested: number; alerts: number }> {
    const b = Math.ceil(before);
    return this.tx(async (c) => {
      const predictions = (await c.query(DELETE_OLD_PREDICTIONS, [b])).rowCount ?? 0;
      const ingested = (await c.query(DELETE_OLD_INGESTED, [b])).rowCount ?? 0;
      await c.query(DELETE_OLD_DELIVERIES, [b]);
      const alerts = (await c.query(DELETE_OLD_ALERTS, [b])).rowCount ?? 0;
      return { predictions, ingested, alerts };
    });
  }

  // --- housekeeping ------------------------------------------------------------------------------

  async ping(): Promise<void> {
    await this.rows(PING, [Date.now()]);
  }

  async schemaVersion(): Promise<number> {
    const [r] = await this.rows(SCHEMA_VERSION);
    return num(r.v);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** Returned ids, ascending: the order the batch's rows were inserted in. */
function ids(rows: Row[], expected: number): number[] {
  const out = rows.map((r) => num(r.id)).sort((a, b) => a - b);
  if (out.length !== expected) throw new Error(`inserted ${out.length} rows of ${expected}`);
  return out;
}

/** Connection and login failures as UserErrors saying what to do; anything else unchanged. */
export function translateError(location: string, e: Error & { code?: string }): Error {
  const code = e.code ?? '';
  const msg = e.message;
  if (
    [
      'ECONNREFUSED',
      'ENOTFOUND',
      'EAI_AGAIN',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ECONNRESET',
    ].includes(code) ||
    /timeout|Connection terminated/i.test(msg)
  )
    return new UserError(
      `PostgreSQL not reachable at ${location} (${code || msg}); start it, or fix DATABASE_URL / --database-url`,
    );
  if (code === '28P01' || code === '28000' || /password/i.test(msg))
    return new UserError(
      `PostgreSQL at ${location} refused the login (${msg}); check the user and password in DATABASE_URL`,
    );
  if (code === '3D000')
    return new UserError(`${msg} at ${location}; create it (createdb) or fix DATABASE_URL`);
  if (code === '42501')
    return new UserError(
      `PostgreSQL at ${location}: ${msg}; grant the user CREATE on the database/schema, or run the first start as its owner`,
    );
  return e;
}
