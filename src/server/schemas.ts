/**
 * JSON schemas of the API's requests and responses (TypeBox): they validate requests, drive the
 * fast response serialiser, and generate `/api/v1/openapi.json`.
 */
import type { ErrorObject } from 'ajv';
import Type from 'typebox';

export const ErrorT = Type.Object(
  {
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String({ description: 'What went wrong and what to do' }),
    problems: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'JSON pointer into the request' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { $id: 'Error' },
);

const RecordT = Type.Object(
  {},
  {
    additionalProperties: true,
    description:
      'A FlowRecord (`{ srcIp, dstIp, srcPort, dstPort, protocol, features: { "Flow Duration": … }, label }`) or a flat object of CIC-named columns (either CICFlowMeter flavour), see docs/records.md',
  },
);

export const RecordsBodyT = Type.Object(
  {
    records: Type.Optional(
      Type.Array(RecordT, {
        description: 'Flow records as objects; at most the server’s batch limit (default 10,000)',
      }),
    ),
    columns: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Columnar form: the column names once (CIC names of either flavour, identifiers, label)…',
      }),
    ),
    rows: Type.Optional(
      Type.Array(Type.Array(Type.Unknown()), {
        description: '…and one array of values per flow, in column order',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Either `records` (objects) or `columns` + `rows` (a third of the bytes, decoded faster)',
  },
);

export const LogEntriesBodyT = Type.Object(
  {
    log_entries: Type.Array(RecordT, { description: 'CIC-named rows; an `id` field is echoed back' }),
  },
  { additionalProperties: false },
);

const ContributionT = Type.Object({
  feature: Type.String(),
  value: Type.Union([Type.Number(), Type.String(), Type.Null()]),
  typical: Type.Union([Type.Number(), Type.String(), Type.Null()]),
  share: Type.Number(),
});

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

/** A flow's identity as verdicts and stored predictions show it. */
const FlowIdentityT = {
  flow_id: Nullable(Type.String()),
  src_ip: Nullable(Type.String()),
  src_port: Nullable(Type.Integer()),
  dst_ip: Nullable(Type.String()),
  dst_port: Nullable(Type.Integer()),
  protocol: Nullable(Type.Integer()),
};

export const VerdictT = Type.Object({
  id: Nullable(Type.Integer({ description: 'Prediction id in the store' })),
  client_id: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  status: Type.String({ description: '`scored`, or `learning` while the baseline is being collected' }),
  score: Nullable(Type.Number()),
  threshold: Nullable(Type.Number()),
  is_anomaly: Type.Boolean(),
  threat_type: Nullable(Type.String()),
  model: Nullable(Type.String()),
  ...FlowIdentityT,
  contributions: Type.Optional(Type.Array(ContributionT)),
});

export const DetectResponseT = Type.Object({
  model: Nullable(Type.String()),
  status: Type.String({ description: '`detecting` or `learning`' }),
  verdicts: Type.Array(VerdictT),
});

export const ThreatResponseT = Type.Object({
  predictions: Type.Array(
    Type.Object({
      id: Type.Union([Type.String(), Type.Number()]),
      threat_type: Type.String({ description: '`Benign`, the classifier’s threat type, or `Anomaly`' }),
      score: Nullable(Type.Number()),
      is_anomaly: Type.Boolean(),
    }),
  ),
});

export const PredictionT = Type.Object({
  id: Type.Integer(),
  ts: Type.String({ description: 'When it was scored (ISO 8601)' }),
  source: Type.String(),
  model: Nullable(Type.String()),
  score: Nullable(Type.Number()),
  threshold: Nullable(Type.Number()),
  is_anomaly: Type.Boolean(),
  threat_type: Nullable(Type.String()),
  label: Nullable(Type.String()),
  ...FlowIdentityT,
  flow_timestamp: Nullable(Type.String()),
  contributions: Nullable(Type.Array(ContributionT)),
  features: Nullable(Type.Record(Type.String(), Type.Number())),
});

export const PageOf = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    next_cursor: Nullable(Type.Integer({ description: 'Pass as `cursor` for the next (older) page' })),
  });

const TimeQuery = {
  from: Type.Optional(Type.String({ description: 'Inclusive start: ISO 8601 or epoch milliseconds' })),
  to: Type.Optional(Type.String({ description: 'Exclusive end: ISO 8601 or epoch milliseconds' })),
  cursor: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'From a previous page’s `next_cursor`',
    }),
  ),
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000,
      description: 'Page size: default 100 (20 for /anomalies/latest)',
    }),
  ),
};

export const PredictionQueryT = Type.Object(
  {
    ...TimeQuery,
    label: Type.Optional(Type.String({ maxLength: 200 })),
    threat_type: Type.Optional(Type.String({ maxLength: 200 })),
    model: Type.Optional(Type.String({ maxLength: 200 })),
    min_score: Type.Optional(Type.Number()),
    max_score: Type.Optional(Type.Number()),
    src_ip: Type.Optional(Type.String({ maxLength: 64 })),
    dst_ip: Type.Optional(Type.String({ maxLength: 64 })),
    anomalies: Type.Optional(Type.Boolean({ description: 'Only anomalies' })),
  },
  { additionalProperties: false },
);

export const AlertQueryT = Type.Object(
  {
    ...TimeQuery,
    status: Type.Optional(
      Type.Union([Type.Literal('open'), Type.Literal('acked'), Type.Literal('resolved')]),
    ),
    severity: Type.Optional(
      Type.Union([
        Type.Literal('info'),
        Type.Literal('low'),
        Type.Literal('medium'),
        Type.Literal('high'),
        Type.Literal('critical'),
      ]),
    ),
    rule: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const DeliveryT = Type.Object({
  id: Type.Integer(),
  channel: Type.String(),
  kind: Type.String(),
  attempt: Type.Integer(),
  ok: Type.Boolean(),
  detail: Type.String(),
  ts: Type.String(),
});

export const AlertT = Type.Object({
  id: Type.Integer(),
  rule: Type.String(),
  key: Type.String(),
  severity: Type.String(),
  status: Type.String(),
  first_seen: Type.String(),
  last_seen: Type.String(),
  status_changed_at: Nullable(Type.String()),
  count: Type.Integer(),
  score: Type.Number(),
  threshold: Type.Number(),
  model: Nullable(Type.String()),
  summary: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  deliveries: Type.Array(DeliveryT),
});

export const ModelT = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  active: Type.Boolean(),
  created_at: Type.String({ description: 'When it was trained' }),
  registered_at: Type.String(),
  threshold: Type.Number(),
  fingerprint: Type.String({ description: 'Training data fingerprint(s)' }),
  info: Type.Record(Type.String(), Type.Unknown(), { description: 'Training summary, metrics, parameters' }),
});

export const IdParamT = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
export const ModelIdParamT = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

/** The schema-path prefix of the outermost `anyOf` an error lies under, and the branch index. */
function branchOf(e: ErrorObject): { union: string; branch: number } | null {
  const m = /^(.*?)\/anyOf\/(\d+)\//.exec(e.schemaPath);
  return m
    ? { union: `${m[1]}@${e.instancePath.split('/').slice(0, 4).join('/')}`, branch: Number(m[2]) }
    : null;
}

/**
 * Ajv errors → problems with JSON pointers (`/records/0`, `/alerts/rules/1/k`, `?limit`), for
 * people:
 * - in a union of objects told apart by `type` (alert rules, channels), only the branch the value
 *   names is reported, not why it fails every other branch;
 * - a value outside a union of constants (`groupBy`, `status`) gives one "must be one of"
 *   problem, listed first;
 * - `additionalProperties` / `required` name the field; duplicates are dropped.
 */
export function schemaProblems(errors: ErrorObject[], where?: string): { path: string; message: string }[] {
  let list = errors.filter((e) => e.keyword !== 'anyOf');
  // Discriminated unions: keep the branch whose `type` matched.
  const byUnion = new Map<string, Map<number, ErrorObject[]>>();
  for (const e of list) {
    const b = branchOf(e);
    if (!b) continue;
    const u = byUnion.get(b.union) ?? new Map<number, ErrorObject[]>();
    const errs = u.get(b.branch) ?? [];
    errs.push(e);
    u.set(b.branch, errs);
    byUnion.set(b.union, u);
  }
  const dropped = new Set<ErrorObject>();
  for (const branches of byUnion.values()) {
    const typeMiss = (errs: ErrorObject[]) =>
      errs.some((e) => e.keyword === 'const' && e.instancePath.endsWith('/type'));
    const meant = [...branches.entries()].filter(([, errs]) => !typeMiss(errs));
    if (meant.length === 1 && branches.size > 1)
      for (const [i, errs] of branches) if (i !== meant[0][0]) for (const e of errs) dropped.add(e);
  }
  list = list.filter((e) => !dropped.has(e));
  const place = (path: string) =>
    where === 'querystring'
      ? `?${path.replace(/^\//, '')}`
      : where === 'params'
        ? `{${path.replace(/^\//, '')}}`
        : path || '/';
  const out: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string) => {
    const key = `${path} ${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path: place(path), message });
    }
  };
  const allowed = new Map<string, Set<string>>();
  for (const e of list)
    if (e.keyword === 'const') {
      const vals = allowed.get(e.instancePath) ?? new Set<string>();
      vals.add(JSON.stringify((e.params as { allowedValue: unknown }).allowedValue));
      allowed.set(e.instancePath, vals);
    }
  // A lone `type` mismatch only says which branch was not meant.
  for (const [path, vals] of allowed)
    if (!path.endsWith('/type') || vals.size > 1) add(path, `must be one of ${[...vals].join(', ')}`);
  for (const e of list) {
    if (e.keyword === 'const') continue;
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties')
      add(`${e.instancePath}/${String(params.additionalProperty)}`, 'unknown field');
    else if (e.keyword === 'required')
      add(`${e.instancePath}/${String(params.missingProperty)}`, 'is required');
    else add(e.instancePath, e.message ?? 'invalid');
  }
  return out;
}

export const SeriesPointsBodyT = Type.Object(
  {
    points: Type.Array(
      Type.Object(
        {
          time: Type.Union([Type.String({ maxLength: 64 }), Type.Number()], {
            description: 'ISO 8601 (no zone = UTC) or epoch seconds / milliseconds',
          }),
          key: Type.Optional(
            Type.String({ maxLength: 512, description: 'The series key (country, link…); omit for none' }),
          ),
          metric: Type.String({ minLength: 1, maxLength: 256 }),
          value: Type.Union([Type.Number(), Type.Null()], { description: 'null: a missing value' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Points in time order per series; at most the server’s batch limit' },
    ),
  },
  { additionalProperties: false },
);

export const SeriesPointsResponseT = Type.Object({
  version: Type.Integer({ description: 'Version of the series model set' }),
  points: Type.Array(
    Type.Object({
      key: Type.String(),
      metric: Type.String(),
      time: Type.String({ description: 'The step the point was placed on' }),
      status: Type.Union(
        ['scored', 'warming-up', 'missing', 'late', 'no-model', 'bad-time'].map((s) => Type.Literal(s)),
      ),
      value: Nullable(Type.Number()),
      expected: Nullable(Type.Number()),
      lower: Nullable(Type.Number()),
      upper: Nullable(Type.Number()),
      score: Nullable(Type.Number()),
      is_anomaly: Type.Boolean(),
      direction: Type.Union([Type.Literal('spike'), Type.Literal('drop'), Type.Null()]),
      id: Type.Union([Type.Integer(), Type.Null()], { description: 'Prediction id (anomalies)' }),
    }),
  ),
});
