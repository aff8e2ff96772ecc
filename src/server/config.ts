/**
 * The service configuration: what `GET/PUT /api/v1/config` read and write (detection threshold,
 * the learn-then-detect default, alert rules and channels, retention). Its JSON schema (TypeBox)
 * validates PUT bodies and documents itself in OpenAPI; defaults make `nadir serve` useful with no
 * configuration at all. Stored, versioned, in the store's config table. Documented in
 * docs/serve.md; keep the two in step.
 */
import { Ajv } from 'ajv';
import Type, { type Static } from 'typebox';
import { redactChannel, SECRET_MARK, validateChannel } from '../alert/channels.js';
import { parseThresholdMethod } from '../detect/calibration.js';
import { detectorFactory, detectorKinds } from '../detect/detector.js';
import { schemaProblems } from './schemas.js';

const SeverityT = Type.Union([
  Type.Literal('info'),
  Type.Literal('low'),
  Type.Literal('medium'),
  Type.Literal('high'),
  Type.Literal('critical'),
]);
const GroupByT = Type.Union(
  [Type.Literal('none'), Type.Literal('src'), Type.Literal('dst'), Type.Literal('pair')],
  {
    description:
      'Aggregation key: one alert per source IP, destination IP, source→destination pair, or overall',
  },
);
const NameT = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' });

export const ScoreRuleT = Type.Object(
  {
    name: NameT,
    type: Type.Literal('score'),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    minScore: Type.Optional(
      Type.Union([Type.Number(), Type.Null()], {
        description: "Raise for anomalies scoring above this; null = the model's threshold",
      }),
    ),
    groupBy: GroupByT,
    severity: Type.Union([SeverityT, Type.Literal('auto')], {
      description: '`auto`: from how far the score lies above the threshold, and the threat type',
    }),
  },
  { additionalProperties: false, description: 'One alert per anomaly group (de-duplicated per key)' },
);

export const CountRuleT = Type.Object(
  {
    name: NameT,
    type: Type.Literal('count'),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    k: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'Anomalies needed per key within the window',
    }),
    windowSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86_400 }),
    groupBy: GroupByT,
    severity: SeverityT,
  },
  { additionalProperties: false, description: 'At least K anomalies per key within a sliding window' },
);

const HttpUrlT = Type.String({ minLength: 8, maxLength: 2048 });

export const ChannelT = Type.Union([
  Type.Object(
    {
      name: NameT,
      type: Type.Literal('webhook'),
      enabled: Type.Optional(Type.Boolean()),
      url: HttpUrlT,
      secret: Type.Optional(
        Type.String({ maxLength: 512, description: 'HMAC-SHA256 key; signs every request' }),
      ),
      headers: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 1024 }))),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { name: NameT, type: Type.Literal('slack'), enabled: Type.Optional(Type.Boolean()), url: HttpUrlT },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      name: NameT,
      type: Type.Literal('email'),
      enabled: Type.Optional(Type.Boolean()),
      host: Type.String({ minLength: 1, maxLength: 255 }),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      secure: Type.Optional(Type.Boolean()),
      user: Type.Optional(Type.String({ maxLength: 255 })),
      pass: Type.Optional(Type.String({ maxLength: 1024 })),
      from: Type.String({ minLength: 3, maxLength: 320 }),
      to: Type.Array(Type.String({ minLength: 3, maxLength: 320 }), { minItems: 1, maxItems: 50 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      name: NameT,
      type: Type.Literal('log'),
      enabled: Type.Optional(Type.Boolean()),
      path: Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'Relative paths are under the data directory',
      }),
    },
    { additionalProperties: false },
  ),
]);

export const ServiceConfigT = Type.Object(
  {
    detection: Type.Object(
      {
        threshold: Type.Union([Type.Number(), Type.Null()], {
          description: "Overrides the active model's calibrated threshold; null = use the model's",
        }),
        topFeatures: Type.Integer({
          minimum: 1,
          maximum: 20,
          description: 'Contributing features per anomaly',
        }),
        storeNormal: Type.Boolean({ description: 'Store every prediction (true) or anomalies only (false)' }),
      },
      { additionalProperties: false },
    ),
    learning: Type.Object(
      {
        enabled: Type.Boolean({ description: 'With no model: learn a baseline from traffic, then detect' }),
        baselineFlows: Type.Integer({ minimum: 50, maximum: 1_000_000 }),
        detector: Type.String({ minLength: 1, maxLength: 64 }),
        thresholdMethod: Type.String({ minLength: 2, maxLength: 32 }),
        refitHours: Type.Number({ minimum: 0, maximum: 24 * 365, description: '0 = never refit' }),
      },
      { additionalProperties: false },
    ),
    alerts: Type.Object(
      {
        rules: Type.Array(Type.Union([ScoreRuleT, CountRuleT]), { maxItems: 100 }),
        suppressSeconds: Type.Number({
          minimum: 0,
          maximum: 7 * 86_400,
          description: 'An alert with the same key folds new anomalies in for this long after its last one',
        }),
        channels: Type.Array(ChannelT, { maxItems: 50 }),
        retry: Type.Object(
          {
            attempts: Type.Integer({ minimum: 1, maximum: 20 }),
            baseDelayMs: Type.Integer({ minimum: 0, maximum: 600_000 }),
            maxDelayMs: Type.Integer({ minimum: 0, maximum: 3_600_000 }),
            timeoutMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    retention: Type.Object(
      { days: Type.Number({ minimum: 0, maximum: 36_500, description: '0 = keep everything' }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type ServiceConfig = Static<typeof ServiceConfigT>;
export type AlertRule = ServiceConfig['alerts']['rules'][number];

export const DEFAULT_CONFIG: ServiceConfig = {
  detection: { threshold: null, topFeatures: 5, storeNormal: true },
  learning: {
    enabled: true,
    baselineFlows: 5000,
    detector: 'iforest',
    thresholdMethod: 'p99.5',
    refitHours: 24,
  },
  alerts: {
    rules: [
      { name: 'anomaly', type: 'score', groupBy: 'pair', severity: 'auto', minScore: null },
      { name: 'burst', type: 'count', k: 50, windowSeconds: 60, groupBy: 'dst', severity: 'high' },
    ],
    suppressSeconds: 300,
    channels: [{ name: 'log', type: 'log', path: 'alerts.log' }],
    retry: { attempts: 4, baseDelayMs: 500, maxDelayMs: 30_000, timeoutMs: 10_000 },
  },
  retention: { days: 30 },
};

/**
 * Checks what the schema cannot: unique names, valid URLs and addresses, known detector and
 * threshold method. Returns problems as `{ path, message }` (JSON pointers).
 */
export function checkConfig(c: ServiceConfig): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const unique = (items: { name: string }[], base: string) => {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.name))
        problems.push({ path: `${base}/${i}/name`, message: `duplicate name '${it.name}'` });
      seen.add(it.name);
    });
  };
  unique(c.alerts.rules, '/alerts/rules');
  unique(c.alerts.channels, '/alerts/channels');
  c.alerts.channels.forEach((ch, i) => {
    for (const p of validateChannel(ch, `/alerts/channels/${i}`)) {
      const colon = p.indexOf(': ');
      problems.push(
        colon > 0
          ? { path: p.slice(0, colon), message: p.slice(colon + 2) }
          : { path: `/alerts/channels/${i}`, message: p },
      );
    }
  });
  const unsupervised = detectorKinds().filter((k) => !detectorFactory(k).supervised);
  if (!unsupervised.includes(c.learning.detector))
    problems.push({
      path: '/learning/detector',
      message: `must be an unsupervised detector (the baseline has no labels): one of ${unsupervised.join(', ')}`,
    });
  try {
    parseThresholdMethod(c.learning.thresholdMethod);
  } catch (e) {
    problems.push({ path: '/learning/thresholdMethod', message: (e as Error).message });
  }
  // JSON has no Infinity, but 1e400 parses as one.
  if (c.detection.threshold !== null && !Number.isFinite(c.detection.threshold))
    problems.push({ path: '/detection/threshold', message: 'must be a finite number or null' });
  c.alerts.rules.forEach((r, i) => {
    if (r.type === 'score' && r.minScore !== undefined && r.minScore !== null && !Number.isFinite(r.minScore))
      problems.push({ path: `/alerts/rules/${i}/minScore`, message: 'must be a finite number or null' });
  });
  if (c.alerts.retry.maxDelayMs < c.alerts.retry.baseDelayMs)
    problems.push({ path: '/alerts/retry/maxDelayMs', message: 'must be at least baseDelayMs' });
  return problems;
}

const configCheck = new Ajv({ allErrors: true, strict: false }).compile(ServiceConfigT as object);

/** Schema and semantic problems of a whole configuration document (a config file's, say). */
export function validateConfig(c: unknown): { path: string; message: string }[] {
  if (!configCheck(c)) return schemaProblems(configCheck.errors ?? []);
  return checkConfig(c as ServiceConfig);
}

/** The configuration with every secret replaced by `***` (for GET and logs). */
export function redactConfig(c: ServiceConfig): ServiceConfig {
  return { ...c, alerts: { ...c.alerts, channels: c.alerts.channels.map((ch) => redactChannel(ch)) } };
}

/**
 * A PUT body may send back the redacted secrets it got from GET: any `***` value keeps the
 * current secret of the channel with the same name (and type).
 */
export function restoreSecrets(next: ServiceConfig, current: ServiceConfig): ServiceConfig {
  const byName = new Map(current.alerts.channels.map((ch) => [ch.name, ch]));
  const channels = next.alerts.channels.map((ch) => {
    const old = byName.get(ch.name);
    if (!old || old.type !== ch.type) return ch;
    const merged: Record<string, unknown> = { ...ch };
    const redactedOld = redactChannel(old) as unknown as Record<string, unknown>;
    const oldFields = old as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(ch))
      if (typeof v === 'string' && v.includes(SECRET_MARK) && redactedOld[k] === v) merged[k] = oldFields[k];
    // Header values (tokens) are redacted one by one.
    const headers = merged.headers as Record<string, string> | undefined;
    const oldHeaders = oldFields.headers as Record<string, string> | undefined;
    if (headers && oldHeaders) {
      const h = { ...headers };
      for (const [name, v] of Object.entries(h))
        if (v === SECRET_MARK && name in oldHeaders) h[name] = oldHeaders[name];
      merged.headers = h;
    }
    return merged as typeof ch;
  });
  return { ...next, alerts: { ...next.alerts, channels } };
}

/**
 * Fills sections missing from a stored document (older versions) with the defaults. Sections it
 * does not know, or that are not objects, are kept as they are, so validation names them.
 */
export function withConfigDefaults(stored: Record<string, unknown> | null): ServiceConfig {
  const base = structuredClone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;
  if (stored)
    for (const [k, v] of Object.entries(stored))
      base[k] =
        k in DEFAULT_CONFIG && v && typeof v === 'object' && !Array.isArray(v)
          ? { ...(base[k] as Record<string, unknown>), ...v }
          : v;
  return base as unknown as ServiceConfig;
}
