/**
 * The HTTP API of `nadir serve` (Fastify): routes under `/api/v1`, OpenAPI 3 generated from the
 * route schemas at `/api/v1/openapi.json`, Swagger UI at `/docs`. Documented for users in
 * docs/serve.md.
 *
 * Security by default: every write and the configuration need `Authorization: Bearer <key>`
 * (reads too with `readsRequireAuth`); bodies are capped (`bodyLimit`), batches too (`maxBatch`,
 * 413 beyond); requests are rate-limited per key (per address without one); unknown fields,
 * wrong types and malformed JSON are 400 with the JSON pointer of each problem. Keys are compared
 * as SHA-256 digests in constant time and never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { alertDocument } from '../alert/channels.js';
import { AlertEngine } from '../alert/engine.js';
import { NADIR_VERSION } from '../core/version.js';
import { isColumnar, type RecordInput, recordCount, threatName } from '../ingest/json-records.js';
import { ModelRegistry } from '../model/registry.js';
import { type SeriesPointIn, SeriesService } from '../pipeline/series-service.js';
import { type ApiVerdict, DetectionService, NoModelError, RecordsError } from '../pipeline/service.js';
import type { Alert, ModelRecord, Prediction, PredictionQuery, Store } from '../store/store.js';
import {
  checkConfig,
  redactConfig,
  restoreSecrets,
  type ServiceConfig,
  ServiceConfigT,
  withConfigDefaults,
} from './config.js';
import { Metrics } from './metrics.js';
import {
  AlertQueryT,
  AlertT,
  DetectResponseT,
  ErrorT,
  IdParamT,
  LogEntriesBodyT,
  ModelIdParamT,
  ModelT,
  PageOf,
  PredictionQueryT,
  PredictionT,
  RecordsBodyT,
  SeriesPointsBodyT,
  SeriesPointsResponseT,
  schemaProblems,
  ThreatResponseT,
} from './schemas.js';

export interface ServerOptions {
  store: Store;
  dataDir: string;
  /** Bearer keys accepted for writes (and reads when `readsRequireAuth`). */
  apiKeys: string[];
  readsRequireAuth?: boolean;
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimit?: number;
  /** Most records in one request (default 10,000). */
  maxBatch?: number;
  /** Requests per minute per key (or per address without one); default 600,000. */
  rateLimit?: number;
  /** Fastify/pino logger settings; false for none. */
  logger?: boolean | Record<string, unknown>;
  /** Configuration used when the store has none yet (from a config file). */
  initialConfig?: Record<string, unknown>;
  /** Where the API key is, for the 401 message (e.g. `see ./nadir-data/api-key`). */
  authHint?: string;
  /** Trust X-Forwarded-For from a reverse proxy (Fastify's trustProxy). */
  trustProxy?: boolean | string;
  /** A series model directory (`nadir series train -o DIR`): enables /api/v1/series. */
  seriesModel?: string;
}

export interface Server {
  app: FastifyInstance;
  service: DetectionService;
  alerts: AlertEngine;
  metrics: Metrics;
  registry: ModelRegistry;
  /** Per-series models, when started with `seriesModel`. */
  series: SeriesService | null;
}

interface RecordsBody {
  records?: unknown[];
  columns?: string[];
  rows?: unknown[][];
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly problems?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function parseTime(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new HttpError(400, `?${name}: '${v}' is not a time`, [
      { path: `?${name}`, message: 'use ISO 8601 (2026-11-28T10:00:00Z) or epoch milliseconds' },
    ]);
  return ms;
}

function predictionJson(p: Prediction) {
  return {
    id: p.id,
    ts: new Date(p.ts).toISOString(),
    source: p.source,
    model: p.model,
    score: p.score,
    threshold: p.threshold,
    is_anomaly: p.isAnomaly,
    threat_type: p.threatType,
    label: p.label,
    flow_id: p.flowId,
    src_ip: p.srcIp,
    src_port: p.srcPort,
    dst_ip: p.dstIp,
    dst_port: p.dstPort,
    protocol: p.protocol,
    flow_timestamp: p.flowTimestamp,
    contributions: p.contributions,
    features: p.features,
  };
}

function modelJson(m: ModelRecord) {
  return {
    id: m.id,
    kind: m.kind,
    active: m.active,
    created_at: new Date(m.createdAt).toISOString(),
    registered_at: new Date(m.registeredAt).toISOString(),
    threshold: m.threshold,
    fingerprint: m.fingerprint,
    info: m.info,
  };
}

export async function buildServer(opts: ServerOptions): Promise<Server> {
  const bodyLimit = opts.bodyLimit ?? 16 * 1024 * 1024;
  const maxBatch = opts.maxBatch ?? 10_000;
  const keyDigests = opts.apiKeys.map(digest);
  const metrics = new Metrics();
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    trustProxy: opts.trustProxy ?? false,
    forceCloseConnections: 'idle',
  });

  // JSON only: a text/plain body is refused with 415 instead of reaching a handler as a string.
  app.removeContentTypeParser('text/plain');
  // Bodies are validated strictly (no coercion, unknown fields refused); query strings coerce.
  const bodyAjv = new Ajv({
    removeAdditional: false,
    coerceTypes: false,
    useDefaults: false,
    allErrors: true,
    strict: false,
  });
  const queryAjv = new Ajv({
    removeAdditional: false,
    coerceTypes: true,
    useDefaults: true,
    allErrors: true,
    strict: false,
  });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema as object),
  );

  const store = opts.store;
  /** Serialises PUT /config. */
  let configLock: Promise<unknown> = Promise.resolve();
  const stored = await store.getConfig();
  let config: ServiceConfig = withConfigDefaults(stored?.value ?? opts.initialConfig ?? null);
  if (stored && opts.initialConfig)
    app.log.warn(
      `the config file's "config" section is not applied: the store already holds configuration version ${stored.version}; change it with PUT /api/v1/config`,
    );
  if (!stored) {
    const problems = checkConfig(config);
    if (problems.length)
      throw new Error(`configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    await store.putConfig(config as unknown as Record<string, unknown>);
  }
  const log = {
    info: (m: string) => app.log.info(m),
    warn: (m: string) => app.log.warn(m),
    error: (m: string) => app.log.error(m),
  };
  const registry = new ModelRegistry(store, `${opts.dataDir}/models`);
  const streamListeners = new Set<(event: string, data: unknown) => void>();
  /** Open event streams, ended before the server closes (they would hold it open). */
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of openStreams) end();
    openStreams.clear();
  });
  const alerts = new AlertEngine(
    store,
    () => config,
    metrics,
    log,
    opts.dataDir,
    (a) => {
      for (const l of streamListeners) l('alert', alertDocument(a, []));
    },
  );
  // Series models, when given, also count the service's own flows (see series-service.ts).
  let series: SeriesService | null = null;
  const service = new DetectionService({
    store,
    registry,
    metrics,
    config,
    log,
    onFlows: (dec, now) => series?.observe(dec, now),
    onAnomalies: (batch) => alerts.handle(batch),
  });
  await service.start();
  series = opts.seriesModel
    ? new SeriesService(opts.seriesModel, service.predictions, log, (batch) => alerts.handle(batch))
    : null;
  if (series)
    log.info(
      `series models: ${series.list().length} from ${series.set.path}` +
        (series.live
          ? `; counting the service's flows per ${series.live.key} every ${series.live.bucketMs / 1000} s`
          : ''),
    );

  app.setErrorHandler((err: FastifyError | HttpError | RecordsError, req, reply) => {
    let status = 500;
    let message = 'internal error; see the server log';
    let problems: { path: string; message: string }[] | undefined;
    if (err instanceof NoModelError) {
      status = 503;
      message = err.message;
    } else if (err instanceof RecordsError) {
      status = 400;
      message = `${err.problems.length === 50 ? '50 or more' : err.problems.length} problem(s) in the records; nothing was stored`;
      problems = err.problems;
      metrics.rejected.inc({ reason: 'records' });
    } else if (err instanceof HttpError) {
      status = err.statusCode;
      message = err.message;
      problems = err.problems;
    } else if ((err as FastifyError).validation) {
      status = 400;
      problems = schemaProblems(
        (err as FastifyError).validation ?? [],
        (err as FastifyError).validationContext,
      );
      message = `invalid request: ${problems[0]?.path} ${problems[0]?.message}`;
      metrics.rejected.inc({ reason: 'validation' });
    } else {
      const fe = err as FastifyError;
      if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        status = 413;
        message = `request body over the ${bodyLimit} byte limit; send smaller batches`;
        metrics.rejected.inc({ reason: 'size' });
      } else if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        status = 415;
        message = 'send JSON with Content-Type: application/json';
      } else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
        status = fe.statusCode;
        message = fe.message;
        if (status === 400) metrics.rejected.inc({ reason: 'malformed' });
      } else req.log.error({ err }, 'request failed');
    }
    reply
      .status(status)
      .send({ error: REASONS[status] ?? 'Error', message, ...(problems ? { problems } : {}) });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: 'Not Found', message: `no route ${req.method} ${req.url}; see /docs` });
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  const bearer = (req: FastifyRequest): string | null => {
    const h = req.headers.authorization;
    if (!h) return null;
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    return m ? m[1] : '';
  };
  const keyValid = (key: string): boolean => {
    const d = digest(key);
    let ok = false;
    for (const k of keyDigests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  };
  /** Authentication: writes and configuration always, reads when configured. */
  app.addHook('onRequest', async (req) => {
    // Decided on the matched route, never on the raw URL: the router decodes `%61pi/…` into
    // `/api/v1/…`, so a URL check could be bypassed. Unknown routes answer 404 whatever the
    // credentials.
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/v1/')) return;
    const path = route.slice(7);
    if (path === '/health' || path === '/ready' || path === '/openapi.json') return;
    const needs = req.method !== 'GET' || path === '/config' || opts.readsRequireAuth === true;
    const key = bearer(req);
    if (key === null) {
      if (!needs) return;
      metrics.rejected.inc({ reason: 'auth' });
      throw new HttpError(
        401,
        `this request needs an API key: send Authorization: Bearer <key>${opts.authHint ? ` (${opts.authHint})` : ''}`,
      );
    }
    if (key === '') {
      metrics.rejected.inc({ reason: 'auth' });
      throw new HttpError(401, 'the Authorization header must be `Bearer <key>`');
    }
    if (!keyValid(key)) {
      metrics.rejected.inc({ reason: 'auth' });
      throw new HttpError(401, 'unknown API key');
    }
  });

  await app.register(rateLimit, {
    global: true,
    max: opts.rateLimit ?? 600_000,
    timeWindow: '1 minute',
    keyGenerator: (req) => {
      const k = bearer(req);
      return k ? `key:${digest(k).toString('hex').slice(0, 16)}` : `ip:${req.ip}`;
    },
    allowList: (req) => req.routeOptions.url === '/api/v1/health',
    onExceeded: () => metrics.rejected.inc({ reason: 'rate' }),
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(429, `rate limit of ${ctx.max} requests per minute exceeded; retry in ${ctx.after}`),
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'NADIR API',
        version: NADIR_VERSION,
        description:
          'Network Anomaly Detection In Real time. Writes and /config need `Authorization: Bearer <key>`; the key of a zero-config server is in `./nadir-data/api-key`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const err = { 400: ErrorT, 401: ErrorT, 413: ErrorT };
  /** The flows of a /detect or /ingest body: `records`, or `columns` + `rows`. */
  const recordsOf = (b: RecordsBody): RecordInput => {
    const columnar = b.columns !== undefined || b.rows !== undefined;
    if (columnar === (b.records !== undefined) || (columnar && (!b.columns || !b.rows)))
      throw new HttpError(400, 'send either "records" or "columns" with "rows"', [
        { path: '/', message: 'needs "records", or "columns" and "rows", not both' },
      ]);
    const input: RecordInput = columnar
      ? { columns: b.columns ?? [], rows: b.rows ?? [] }
      : (b.records ?? []);
    checkBatch(recordCount(input));
    return input;
  };
  const checkBatch = (n: number) => {
    if (n > maxBatch) {
      metrics.rejected.inc({ reason: 'batch' });
      throw new HttpError(413, `a batch of ${n} records exceeds the limit of ${maxBatch}; split it`);
    }
  };

  await app.register(
    async (api) => {
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

      api.get('/health', { schema: { tags: ['service'], summary: 'Liveness', security: [] } }, async () => ({
        status: 'ok',
        version: NADIR_VERSION,
        uptime_seconds: Math.round(process.uptime()),
      }));

      api.get(
        '/ready',
        {
          schema: {
            tags: ['service'],
            summary: 'Readiness: a model (or the learning baseline) and a writable store',
            security: [],
          },
        },
        async (_req, reply) => {
          const st = service.status();
          let storeOk = true;
          let storeError: string | undefined;
          try {
            await store.ping();
          } catch (e) {
            storeOk = false;
            storeError = (e as Error).message;
          }
          const ready = storeOk && st.mode !== 'idle';
          reply.status(ready ? 200 : 503);
          return {
            ready,
            mode: st.mode,
            model: st.model,
            baseline: st.baseline,
            store: { kind: store.kind, location: store.location, writable: storeOk, error: storeError },
          };
        },
      );

      api.get(
        '/config',
        { schema: { tags: ['config'], summary: 'The service configuration (secrets shown as ***)' } },
        async () => {
          const c = await store.getConfig();
          return { version: c?.version ?? 0, config: redactConfig(config) };
        },
      );

      api.put(
        '/config',
        {
          schema: {
            tags: ['config'],
            summary: 'Replace the configuration (validated, persisted, applied at once)',
            description: 'Secrets sent back as *** keep their current value.',
            body: ServiceConfigT,
            response: { 400: ErrorT },
          },
        },
        async (req) =>
          // One PUT at a time, so the applied configuration is the newest stored version.
          (configLock = configLock
            .catch(() => undefined)
            .then(async () => {
              const next = restoreSecrets(req.body as ServiceConfig, config);
              const problems = checkConfig(next);
              if (problems.length)
                throw new HttpError(
                  400,
                  `invalid configuration: ${problems[0].path} ${problems[0].message}`,
                  problems,
                );
              const version = await store.putConfig(next as unknown as Record<string, unknown>);
              config = next;
              service.config = next;
              app.log.info(`configuration version ${version} applied`);
              return { version, config: redactConfig(config) };
            })),
      );

      api.post(
        '/detect',
        {
          schema: {
            tags: ['detection'],
            summary: 'Score a batch of flow records: one verdict each',
            description:
              'Verdicts are committed to the store before the response. Anomalies carry their top contributing features (observed vs typical). While no model exists yet the service learns a baseline and answers `status: learning`.',
            body: RecordsBodyT,
            response: { 200: DetectResponseT, ...err },
          },
        },
        async (req) => {
          const records = recordsOf(req.body as RecordsBody);
          return service.detect(records, isColumnar(records) ? '' : '/records', 'api');
        },
      );

      api.post(
        '/threat-detection',
        {
          schema: {
            tags: ['detection'],
            summary:
              'Score log entries: `{"log_entries":[…]}` → `{"predictions":[{"id":1,"threat_type":"Benign"},…]}`',
            body: LogEntriesBodyT,
            response: { 200: ThreatResponseT, ...err },
          },
        },
        async (req) => {
          const { log_entries } = req.body as { log_entries: unknown[] };
          checkBatch(log_entries.length);
          const res = await service.detect(log_entries, '/log_entries', 'api');
          return {
            predictions: res.verdicts.map((v: ApiVerdict, i) => ({
              id: v.client_id ?? i + 1,
              threat_type: v.status === 'learning' ? 'Benign' : threatName(v.is_anomaly, v.threat_type),
              score: v.score,
              is_anomaly: v.is_anomaly,
            })),
          };
        },
      );

      const noSeries = () =>
        new HttpError(
          404,
          'no series models are loaded: start the server with --series-model DIR (from `nadir series train -o DIR`)',
        );
      api.get(
        '/series',
        {
          schema: {
            tags: ['series'],
            summary:
              'The loaded per-series models: key, metric, detector, step, season, threshold, next step',
          },
        },
        async () => {
          if (!series) throw noSeries();
          return {
            version: series.version,
            path: series.set.path,
            from_flows: series.live
              ? { key: series.live.key, bucket_seconds: series.live.bucketMs / 1000 }
              : null,
            series: series.list().map((m) => ({
              key: m.key,
              metric: m.metric,
              detector: m.kind,
              step_seconds: m.step / 1000,
              season_steps: m.period,
              threshold: m.threshold,
              transform: m.transform,
              next: new Date(m.next).toISOString(),
            })),
          };
        },
      );

      api.post(
        '/series/points',
        {
          schema: {
            tags: ['series'],
            summary: 'Score time-series points against their per-series models (then learn them)',
            description:
              'Each point is placed on its model’s grid; a point for a step already scored is `late`, skipped steps count as missing. Anomalies are stored (source `series`) and alerted on before the response.',
            body: SeriesPointsBodyT,
            response: { 200: SeriesPointsResponseT, ...err, 404: ErrorT },
          },
        },
        async (req) => {
          if (!series) throw noSeries();
          const { points } = req.body as { points: SeriesPointIn[] };
          checkBatch(points.length);
          return { version: series.version, points: await series.score(points) };
        },
      );

      api.post(
        '/ingest',
        {
          schema: {
            tags: ['detection'],
            summary: 'Record flows for later training, without detecting',
            description:
              'Committed before the response. With no model yet, ingested flows also feed the learned baseline. Export with `nadir export-traffic`.',
            body: RecordsBodyT,
            response: { ...err },
          },
        },
        async (req) => {
          const records = recordsOf(req.body as RecordsBody);
          const ids = await service.ingest(records, isColumnar(records) ? '' : '/records', 'api');
          return { accepted: ids.length, first_id: ids[0] ?? null, last_id: ids[ids.length - 1] ?? null };
        },
      );

      const predictionQuery = (q: Record<string, unknown>, anomalies?: boolean): PredictionQuery => ({
        from: parseTime(q.from as string | undefined, 'from'),
        to: parseTime(q.to as string | undefined, 'to'),
        cursor: q.cursor as number | undefined,
        limit: q.limit as number | undefined,
        label: q.label as string | undefined,
        threatType: q.threat_type as string | undefined,
        model: q.model as string | undefined,
        minScore: q.min_score as number | undefined,
        maxScore: q.max_score as number | undefined,
        srcIp: q.src_ip as string | undefined,
        dstIp: q.dst_ip as string | undefined,
        anomalies: anomalies ?? (q.anomalies as boolean | undefined),
      });
      const page = async (q: PredictionQuery) => {
        const p = await store.queryPredictions(q);
        return { items: p.items.map(predictionJson), next_cursor: p.nextCursor };
      };
      const predictionPage = { 200: PageOf(PredictionT), 400: ErrorT };

      api.get(
        '/logs',
        {
          schema: {
            tags: ['history'],
            summary: 'Past predictions, newest first',
            querystring: PredictionQueryT,
            response: predictionPage,
          },
        },
        async (req) => page(predictionQuery(req.query as Record<string, unknown>)),
      );
      api.get(
        '/anomalies',
        {
          schema: {
            tags: ['history'],
            summary: 'Past anomalies, newest first',
            querystring: PredictionQueryT,
            response: predictionPage,
          },
        },
        async (req) => page(predictionQuery(req.query as Record<string, unknown>, true)),
      );
      api.get(
        '/anomalies/latest',
        {
          schema: {
            tags: ['history'],
            summary: 'The newest anomalies',
            querystring: PredictionQueryT,
            response: predictionPage,
          },
        },
        async (req) => {
          const q = predictionQuery(req.query as Record<string, unknown>, true);
          return page({ ...q, limit: q.limit ?? 20 });
        },
      );

      api.get(
        '/alerts',
        {
          schema: {
            tags: ['alerts'],
            summary: 'Alerts, newest first, with their deliveries',
            querystring: AlertQueryT,
            response: { 200: PageOf(AlertT), 400: ErrorT },
          },
        },
        async (req) => {
          const q = req.query as Record<string, unknown>;
          const p = await store.queryAlerts({
            from: parseTime(q.from as string | undefined, 'from'),
            to: parseTime(q.to as string | undefined, 'to'),
            cursor: q.cursor as number | undefined,
            limit: q.limit as number | undefined,
            status: q.status as Alert['status'] | undefined,
            severity: q.severity as Alert['severity'] | undefined,
            rule: q.rule as string | undefined,
          });
          const deliveries = await store.deliveriesFor(p.items.map((a) => a.id));
          return { items: p.items.map((a) => alertDocument(a, deliveries)), next_cursor: p.nextCursor };
        },
      );
      api.get(
        '/alerts/:id',
        {
          schema: {
            tags: ['alerts'],
            summary: 'One alert',
            params: IdParamT,
            response: { 200: AlertT, 404: ErrorT },
          },
        },
        async (req) => {
          const id = (req.params as { id: number }).id;
          const a = await store.getAlert(id);
          if (!a) throw new HttpError(404, `no alert ${id}`);
          return alertDocument(a, await store.deliveriesFor([id]));
        },
      );
      for (const [action, status] of [
        ['ack', 'acked'],
        ['resolve', 'resolved'],
      ] as const) {
        api.post(
          `/alerts/:id/${action}`,
          {
            schema: {
              tags: ['alerts'],
              summary:
                action === 'ack'
                  ? 'Acknowledge an alert'
                  : 'Resolve an alert (new anomalies then open a new one)',
              params: IdParamT,
              response: { 200: AlertT, 404: ErrorT },
            },
          },
          async (req) => {
            const id = (req.params as { id: number }).id;
            const a = await store.setAlertStatus(id, status, Date.now());
            if (!a) throw new HttpError(404, `no alert ${id}`);
            alerts.statusChanged(a);
            return alertDocument(a, await store.deliveriesFor([id]));
          },
        );
      }

      api.post(
        '/test-alert',
        {
          schema: {
            tags: ['alerts'],
            summary: 'Send a test alert through every enabled channel; reports each delivery',
          },
        },
        async () => {
          const outcomes = await alerts.testAlert();
          return { deliveries: outcomes, ok: outcomes.every((o) => o.ok) };
        },
      );

      api.get(
        '/models',
        {
          schema: {
            tags: ['models'],
            summary: 'Models in the registry',
            response: { 200: { type: 'object', properties: { items: { type: 'array', items: ModelT } } } },
          },
        },
        async () => ({ items: (await registry.list()).map(modelJson) }),
      );
      api.get(
        '/models/:id',
        {
          schema: {
            tags: ['models'],
            summary: 'One model: version, trained at, data fingerprint, metrics, threshold',
            params: ModelIdParamT,
            response: { 200: ModelT, 404: ErrorT },
          },
        },
        async (req) => {
          const id = (req.params as { id: string }).id;
          const m = await registry.get(id);
          if (!m) throw new HttpError(404, `no model '${id}'; GET /api/v1/models lists them`);
          return modelJson(m);
        },
      );
      api.post(
        '/models/:id/activate',
        {
          schema: {
            tags: ['models'],
            summary: 'Make a model the active one (hot swap: no restart, no dropped request)',
            params: ModelIdParamT,
            response: { 200: ModelT, 404: ErrorT },
          },
        },
        async (req) => {
          const id = (req.params as { id: string }).id;
          if (!(await registry.get(id)))
            throw new HttpError(404, `no model '${id}'; GET /api/v1/models lists them`);
          return modelJson(await service.activate(id));
        },
      );

      api.get(
        '/metrics',
        { schema: { tags: ['service'], summary: 'Prometheus metrics (text format)' } },
        async (_req, reply) => {
          reply.type(metrics.contentType);
          return metrics.text();
        },
      );

      api.get(
        '/stream',
        {
          schema: {
            tags: ['detection'],
            summary: 'Live verdicts and alerts (Server-Sent Events)',
            description:
              'Events `verdict` (anomalies; every verdict with ?all=true) and `alert`. A slow reader misses events rather than slowing the service.',
            querystring: {
              type: 'object',
              properties: { all: { type: 'boolean', default: false } },
              additionalProperties: false,
            },
          },
        },
        (req: FastifyRequest, reply: FastifyReply) => {
          const all = (req.query as { all?: boolean }).all === true;
          reply.hijack();
          const res = reply.raw;
          res.writeHead(200, {
            'content-type': 'text/event-stream',
            'cache-control': 'no-cache',
            connection: 'keep-alive',
            'x-accel-buffering': 'no',
          });
          res.write(': nadir stream\n\n');
          const send = (event: string, data: unknown) => {
            if (res.writableLength > 1 << 20) return;
            res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
          };
          const onVerdicts = (vs: ApiVerdict[]) => {
            for (const v of vs) if (all || v.is_anomaly) send('verdict', v);
          };
          streamListeners.add(send);
          service.on('verdicts', onVerdicts);
          const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
          const done = () => {
            clearInterval(ping);
            streamListeners.delete(send);
            service.off('verdicts', onVerdicts);
          };
          const end = () => {
            done();
            res.end();
          };
          openStreams.add(end);
          req.raw.on('close', () => {
            openStreams.delete(end);
            done();
          });
        },
      );
    },
    { prefix: '/api/v1' },
  );

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/docs'));

  // Retention: hourly, and once at start, delete what is older than `retention.days`.
  const retain = async () => {
    const days = config.retention.days;
    if (!(days > 0)) return;
    try {
      const r = await store.deleteOlderThan(Date.now() - days * 86_400_000);
      if (r.predictions + r.ingested + r.alerts > 0)
        app.log.info(
          `retention (${days} days): deleted ${r.predictions} predictions, ${r.ingested} ingested flows, ${r.alerts} resolved alerts`,
        );
    } catch (e) {
      app.log.error(`retention failed: ${(e as Error).message}`);
    }
  };
  const retention = setInterval(() => void retain(), 3_600_000);
  retention.unref();
  app.addHook('onReady', async () => {
    await retain();
  });

  app.addHook('onClose', async () => {
    clearInterval(retention);
    try {
      await series?.close();
    } catch (e) {
      app.log.error(`series state not saved: ${(e as Error).message}`);
    }
    await service.close();
    await alerts.drain();
    await store.close();
  });

  return { app, service, alerts, metrics, registry, series };
}
