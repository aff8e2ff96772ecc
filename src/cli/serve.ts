/**
 * `nadir serve`: the detection service. Zero configuration: 127.0.0.1:8080, data in
 * ./nadir-data (embedded DuckDB, model registry, API key, alert log), learn-then-detect until a
 * model is activated. Flags, then environment variables, then a JSON config file set the rest.
 * SIGINT/SIGTERM: stop accepting, finish requests in flight, commit everything accepted, exit 0.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { type Command, InvalidArgumentError } from 'commander';
import { Collector } from '../collect/collector.js';
import { UserError } from '../core/diagnostics.js';
import { EXPORT_ID_COLUMNS, type ExportRow, exportTimestamp, NETFLOW_FEATURES } from '../features/netflow.js';
import { CIC_FEATURES, ID_COLUMNS, LABEL_CANDIDATES } from '../ingest/columns.js';
import { flatRecord } from '../ingest/json-records.js';
import type { DetectionService } from '../pipeline/service.js';
import { buildServer } from '../server/app.js';
import { validateConfig, withConfigDefaults } from '../server/config.js';
import { schemaProblems } from '../server/schemas.js';
import { openStore } from '../store/open.js';
import { collectorOptions, withCollectorFlags } from './collect.js';
import { csvCell } from './format.js';

const SERVER_KEYS = [
  'host',
  'port',
  'dataDir',
  'databaseUrl',
  'databaseSchema',
  'apiKeys',
  'readsRequireAuth',
  'bodyLimit',
  'maxBatch',
  'rateLimit',
  'model',
  'trustProxy',
  'netflow',
  'ipfix',
  'sflow',
  'collectHost',
  'allow',
  'seriesModel',
];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Types and ranges of the config file's "server" section (as the flags check them). */
const serverCheck = new Ajv({ allErrors: true, strict: false }).compile({
  type: 'object',
  properties: {
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    dataDir: { type: 'string', minLength: 1 },
    databaseUrl: { type: 'string', minLength: 1 },
    databaseSchema: { type: 'string', minLength: 1 },
    apiKeys: { type: 'array', items: { type: 'string', minLength: 16 } },
    readsRequireAuth: { type: 'boolean' },
    bodyLimit: { type: 'integer', minimum: 1024, maximum: 1 << 30 },
    maxBatch: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    rateLimit: { type: 'integer', minimum: 1 },
    model: { type: 'string', minLength: 1 },
    trustProxy: { type: ['boolean', 'string'] },
    netflow: { type: 'integer', minimum: 0, maximum: 65535 },
    ipfix: { type: 'integer', minimum: 0, maximum: 65535 },
    sflow: { type: 'integer', minimum: 0, maximum: 65535 },
    collectHost: { type: 'string', minLength: 1 },
    allow: { type: 'array', items: { type: 'string', minLength: 1 } },
    seriesModel: { type: 'string', minLength: 1 },
  },
});

interface ServeFile {
  server?: {
    host?: string;
    port?: number;
    dataDir?: string;
    databaseUrl?: string;
    databaseSchema?: string;
    apiKeys?: string[];
    readsRequireAuth?: boolean;
    bodyLimit?: number;
    maxBatch?: number;
    rateLimit?: number;
    model?: string;
    trustProxy?: boolean | string;
    /** Collector UDP ports and options (as the flags). */
    netflow?: number;
    ipfix?: number;
    sflow?: number;
    collectHost?: string;
    allow?: string[];
    /** Series model directory (as --series-model). */
    seriesModel?: string;
  };
  /** Initial service configuration (see GET /api/v1/config); used when the store has none. */
  config?: Record<string, unknown>;
}

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function readConfigFile(path: string): ServeFile {
  if (!existsSync(path)) throw new UserError(`--config ${path}: no such file`, undefined, 2);
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    const extra = Object.keys(v).filter((k) => k !== 'server' && k !== 'config');
    if (extra.length)
      throw new Error(`unknown section(s) ${extra.join(', ')}; expected "server" and "config"`);
    const f = v as ServeFile;
    if (f.server !== undefined && !serverCheck(f.server))
      throw new Error(
        `"server"${schemaProblems(serverCheck.errors ?? [])
          .slice(0, 5)
          .map((p) => ` ${p.path} ${p.message}`)
          .join(';')}`,
      );
    const unknown = Object.keys(f.server ?? {}).filter((k) => !SERVER_KEYS.includes(k));
    if (unknown.length)
      throw new Error(`unknown "server" setting(s) ${unknown.join(', ')}; known: ${SERVER_KEYS.join(', ')}`);
    if (f.config !== undefined) {
      const problems = validateConfig(withConfigDefaults(f.config));
      if (problems.length)
        throw new Error(
          `"config"${problems
            .slice(0, 5)
            .map((p) => ` ${p.path} ${p.message}`)
            .join(';')}`,
        );
    }
    return f;
  } catch (e) {
    throw new UserError(`--config ${path}: ${(e as Error).message}`, 'see docs/serve.md for the format', 2);
  }
}

/** The API key of a zero-config server: `<data dir>/api-key`, made on first start (mode 0600). */
export function ensureApiKey(dataDir: string): { key: string; path: string; created: boolean } {
  const path = join(dataDir, 'api-key');
  if (existsSync(path)) return { key: readFileSync(path, 'utf8').trim(), path, created: false };
  const key = `nadir_${randomBytes(24).toString('base64url')}`;
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return { key, path, created: true };
}

/** Canonical column order for recorded traffic: identifiers, CIC features, others, the label last. */
function columnOrder(seen: Set<string>): string[] {
  const known = [...ID_COLUMNS, ...CIC_FEATURES].filter((c) => seen.has(c));
  const rest = [...seen]
    .filter((c) => !known.includes(c as (typeof known)[number]) && !LABEL_CANDIDATES.includes(c))
    .sort();
  const labels = LABEL_CANDIDATES.filter((c) => seen.has(c));
  return [...known, ...rest, ...labels];
}

export function addServeCommand(program: Command): void {
  program
    .command('export-traffic')
    .description('write the flows recorded with POST /api/v1/ingest as a CSV that `nadir train` reads')
    .requiredOption('-o, --output <file>', 'CSV file to write')
    .option('--data-dir <dir>', 'the service data directory (env NADIR_DATA_DIR)')
    .option('--database-url <url>', 'read from PostgreSQL (env DATABASE_URL)')
    .option('--database-schema <name>', 'PostgreSQL schema (env NADIR_DATABASE_SCHEMA)')
    .option('--source <name>', 'only flows from this source (e.g. api)')
    .addHelpText(
      'after',
      `
The store must not be held by a running \`nadir serve\` when it is the embedded DuckDB (stop the
service first); with PostgreSQL it may run. Columns: the union of the recorded records' columns,
canonical names (identifiers, CIC features in their usual order, others, the label last).

Example:
  nadir export-traffic -o normal.csv && nadir train --data normal.csv --out models/mine`,
    )
    .action(async (o) => {
      const dataDir = resolve(o.dataDir ?? process.env.NADIR_DATA_DIR ?? 'nadir-data');
      const databaseUrl = o.databaseUrl ?? process.env.DATABASE_URL;
      if (!databaseUrl && !existsSync(dataDir))
        throw new UserError(`${dataDir}: no such data directory`, "give the service's --data-dir");
      const schema = o.databaseSchema ?? process.env.NADIR_DATABASE_SCHEMA;
      const store = await openStore({ dataDir, databaseUrl: databaseUrl ?? '', schema });
      try {
        const total = await store.countIngested();
        if (total === 0)
          throw new UserError('no recorded flows in the store', 'record some with POST /api/v1/ingest');
        // Pass 1: the columns; pass 2: the rows.
        const seen = new Set<string>();
        const pages = async (f: (r: Record<string, unknown>) => void) => {
          let after = 0;
          for (;;) {
            const rows = await store.readIngested(after, 10_000);
            if (rows.length === 0) break;
            for (const r of rows) if (!o.source || r.source === o.source) f(flatRecord(r.record));
            after = rows[rows.length - 1].id;
          }
        };
        await pages((r) => {
          for (const k of Object.keys(r)) seen.add(k);
        });
        if (seen.size === 0)
          throw new UserError(
            `none of the ${total} recorded flows comes from source '${o.source}'`,
            'the API records flows with source "api"',
          );
        const cols = columnOrder(seen);
        const out = createWriteStream(o.output);
        out.write(`${cols.map(csvCell).join(',')}\n`);
        let n = 0;
        await pages((r) => {
          out.write(`${cols.map((c) => csvCell(r[c])).join(',')}\n`);
          n++;
        });
        out.end();
        await once(out, 'finish');
        process.stderr.write(`${o.output}: ${n} recorded flows, ${cols.length} columns\n`);
      } finally {
        await store.close();
      }
    });

  withCollectorFlags(
    program
      .command('serve')
      .description('run the detection service: REST API, store, alerts (no configuration needed)'),
    '; off unless a port is given: collected flows are scored, stored and alerted on',
  )
    .option('--host <addr>', 'address to listen on (env NADIR_HOST)', process.env.NADIR_HOST)
    .option('--port <n>', 'port; 0 picks a free one (env NADIR_PORT)', intArg('--port', 0, 65535))
    .option('--data-dir <dir>', 'where the embedded database, models and API key live (env NADIR_DATA_DIR)')
    .option('--database-url <url>', 'use PostgreSQL instead of the embedded DuckDB (env DATABASE_URL)')
    .option(
      '--database-schema <name>',
      'PostgreSQL schema to use, created if missing (env NADIR_DATABASE_SCHEMA)',
    )
    .option('--model <dir>', 'import this model bundle into the registry and activate it')
    .option(
      '--series-model <dir>',
      'score time-series points posted to /api/v1/series/points with these per-series models (nadir series train -o DIR)',
    )
    .option('--api-key <key...>', 'API key(s) accepted for writes (env NADIR_API_KEYS, comma-separated)')
    .option('--reads-require-auth', 'require an API key for reads too')
    .option('--body-limit <bytes>', 'largest request body', intArg('--body-limit', 1024, 1 << 30))
    .option('--max-batch <n>', 'most records per request', intArg('--max-batch', 1, 1_000_000))
    .option(
      '--rate-limit <n>',
      'requests per minute per API key (or address)',
      intArg('--rate-limit', 1, 1e9),
    )
    .option('--config <file>', 'JSON file with "server" settings and an initial "config" (env NADIR_CONFIG)')
    .option('--trust-proxy', 'behind a reverse proxy: take client addresses from X-Forwarded-For')
    .option('--log-level <level>', LOG_LEVELS.join(', '), (v: string) => {
      if (!LOG_LEVELS.includes(v)) throw new InvalidArgumentError(`use one of ${LOG_LEVELS.join(', ')}`);
      return v;
    })
    .addHelpText(
      'after',
      `
With no flags: listens on http://127.0.0.1:8080, keeps its data in ./nadir-data (DuckDB), writes a
new API key to ./nadir-data/api-key, and learns a baseline from the first flows it receives
before it starts flagging anomalies. API docs at http://127.0.0.1:8080/docs.

Examples:
  nadir serve
  nadir serve --model models/cic --port 9000
  DATABASE_URL=postgres://nadir@db/nadir nadir serve --host 0.0.0.0
  # records are FlowRecords or CIC-named columns; a model needs every column it was trained on
  curl -H "Authorization: Bearer $(cat nadir-data/api-key)" -H 'content-type: application/json' \\
       -d @batch.json http://127.0.0.1:8080/api/v1/detect        # batch.json: {"records":[{…}, …]}`,
    )
    .action(async (o) => {
      const file = o.config ?? process.env.NADIR_CONFIG;
      const fc = file ? readConfigFile(file) : {};
      const s = fc.server ?? {};
      const envPort = process.env.NADIR_PORT;
      const port =
        o.port ??
        (envPort !== undefined ? intArg('NADIR_PORT', 0, 65535)(envPort) : undefined) ??
        s.port ??
        8080;
      const host = o.host ?? s.host ?? '127.0.0.1';
      const dataDir = resolve(o.dataDir ?? process.env.NADIR_DATA_DIR ?? s.dataDir ?? 'nadir-data');
      const databaseUrl = o.databaseUrl ?? process.env.DATABASE_URL ?? s.databaseUrl;
      try {
        mkdirSync(dataDir, { recursive: true });
      } catch (e) {
        throw new UserError(`--data-dir ${dataDir}: cannot create it (${(e as Error).message})`);
      }
      let keys: string[] =
        o.apiKey ?? process.env.NADIR_API_KEYS?.split(',').map((k) => k.trim()) ?? s.apiKeys ?? [];
      keys = keys.filter(Boolean);
      let keyNote = 'API keys from the command line/environment/config';
      let authHint = 'the keys given with --api-key, NADIR_API_KEYS or the config file';
      if (keys.length === 0) {
        const k = ensureApiKey(dataDir);
        keys = [k.key];
        keyNote = `API key ${k.created ? 'created in' : 'in'} ${k.path}`;
        authHint = `the key is in ${k.path}`;
      }
      if (keys.some((k) => k.length < 16))
        throw new UserError(
          'API keys must be at least 16 characters',
          'generate one with `openssl rand -hex 24`',
          2,
        );

      const schema = o.databaseSchema ?? process.env.NADIR_DATABASE_SCHEMA ?? s.databaseSchema;
      const store = await openStore({ dataDir, databaseUrl: databaseUrl ?? '', schema });
      const level = String(o.logLevel ?? 'info');
      const server = await buildServer({
        store,
        dataDir,
        apiKeys: keys,
        readsRequireAuth: o.readsRequireAuth ?? s.readsRequireAuth,
        bodyLimit: o.bodyLimit ?? s.bodyLimit,
        maxBatch: o.maxBatch ?? s.maxBatch,
        rateLimit: o.rateLimit ?? s.rateLimit,
        initialConfig: fc.config,
        authHint,
        trustProxy: o.trustProxy ?? s.trustProxy,
        seriesModel: o.seriesModel ?? s.seriesModel,
        logger: { level, redact: ['req.headers.authorization'] },
      });
      const { app, service, registry } = server;
      const modelDir = o.model ?? s.model;
      if (modelDir) {
        const rec = await registry.import(modelDir);
        await service.activate(rec.id);
      }
      try {
        await app.listen({ host, port });
      } catch (e) {
        await app.close();
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE')
          throw new UserError(`${host}:${port} is in use`, 'stop the other server or pick another --port');
        throw new UserError(`cannot listen on ${host}:${port}: ${err.message}`);
      }
      const addr = app.server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      const base = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
      const st = service.status();
      const mode =
        st.mode === 'detecting'
          ? `model ${st.model}`
          : st.mode === 'learning'
            ? `learning a baseline from the first ${st.baseline?.needed} flows`
            : 'no model (learning disabled)';
      process.stderr.write(
        `nadir serve: listening on ${base} (API docs ${base}/docs)\n` +
          `  store: ${store.kind} ${store.location}\n  ${mode}\n  ${keyNote}\n` +
          (server.series
            ? `  series: ${server.series.list().length} models (v${server.series.version} of ${server.series.dir}); POST points to ${base}/api/v1/series/points\n` +
              (server.series.live
                ? `  series from flows: every flow received is counted per ${server.series.live.key} in ${server.series.live.bucketMs / 1000} s buckets and scored\n`
                : '')
            : ''),
      );
      // Flags win over the config file's server section.
      const co = {
        netflow: o.netflow ?? s.netflow,
        ipfix: o.ipfix ?? s.ipfix,
        sflow: o.sflow ?? s.sflow,
        collectHost: o.collectHost !== '0.0.0.0' ? o.collectHost : (s.collectHost ?? o.collectHost),
        allow: o.allow ?? s.allow,
        pairing: o.pairing,
        receiveBuffer: o.receiveBuffer,
      };
      const collecting =
        co.netflow !== undefined || co.ipfix !== undefined || co.sflow !== undefined
          ? await startCollectors(service, collectorOptions(co, false))
          : null;
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) {
            process.stderr.write(`nadir serve: ${sig} again, exiting without waiting\n`);
            process.exit(130);
          }
          stopping = true;
          process.stderr.write(`nadir serve: ${sig}: finishing requests and committing what was accepted…\n`);
          (collecting ? collecting.stop() : Promise.resolve())
            .then(() => app.close())
            .then(
              () => {
                process.stderr.write('nadir serve: stopped\n');
                done();
              },
              (e) => {
                process.stderr.write(`nadir serve: error while stopping: ${(e as Error).message}\n`);
                done();
              },
            );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}

const EXPORT_COLUMNS = [...EXPORT_ID_COLUMNS.filter((c) => c !== 'Flow ID'), ...NETFLOW_FEATURES];

/**
 * Collectors inside the service: flows from NetFlow/IPFIX/sFlow exporters go through the same
 * detection, storage and alerts as flows posted to /detect (as columnar batches, source
 * `collector`). Scoring needs a model in the NetFlow feature set (`nadir train --features netflow`);
 * until one is active, each batch is counted and the reason logged once a minute.
 */
async function startCollectors(
  service: DetectionService,
  opts: ReturnType<typeof collectorOptions>,
): Promise<{ stop(): Promise<void> }> {
  let buf: ExportRow[] = [];
  let lastNote = 0;
  let chain = Promise.resolve();
  const send = () => {
    if (buf.length === 0) return;
    const rows = buf;
    buf = [];
    const input = {
      columns: EXPORT_COLUMNS,
      rows: rows.map((r) => [
        r.srcIp,
        r.srcPort,
        r.dstIp,
        r.dstPort,
        exportTimestamp(r.startMs),
        ...r.values,
      ]),
    };
    chain = chain.then(() =>
      service.detect(input, '', 'collector').then(
        () => {},
        (e: Error) => {
          if (Date.now() - lastNote < 60_000) return;
          lastNote = Date.now();
          process.stderr.write(
            `nadir serve: ${rows.length} collected flows not scored: ${e.message} (flow exports need a model trained with --features netflow)\n`,
          );
        },
      ),
    );
  };
  const collector = new Collector(
    (r) => {
      buf.push(r);
      if (buf.length >= 2000) send();
    },
    {
      ...opts,
      log: (p) =>
        process.stderr.write(
          `nadir serve: collector: ${p.exporter} ${p.reason} at byte ${p.offset}: ${p.message}\n`,
        ),
    },
  );
  await collector.start();
  const timer = setInterval(send, 500);
  timer.unref();
  process.stderr.write(
    `  collecting ${Object.entries(collector.ports)
      .map(([k, v]) => `${k} udp/${v}`)
      .join(', ')} on ${opts.host}\n`,
  );
  return {
    async stop() {
      clearInterval(timer);
      await collector.stop();
      send();
      await chain;
    },
  };
}
