/**
 * HTTP benchmark of `nadir serve`: POST /api/v1/detect with real CIC-IDS-2017 rows, driven by
 * autocannon against the real CLI server (a child process, its own data directory per run).
 *
 *   npm run build && node dist/bench/serve.js [--duration 10] [--warmup 2] [--connections 1,8,32]
 *       [--batches 1,100] [--rows benign|all] [--alerts on|off] [--store-normal true|false]
 *       [--body records|columnar] [--client autocannon|wrk] [--no-stages] [--profile]
 *
 * Model: `nadir train` (iforest, the defaults: 80% of the rows by hash, benign rows only) on
 * ../shared/datasets/cicids2017_improved_sampled. Request bodies: rows of BENIGN_5000.csv (or of
 * every file with --rows all: 88% attacks, so most verdicts are anomalies with explanations), as
 * a client sends them: CIC-named columns, numbers as JSON numbers, identifiers as strings, no
 * label. The service runs its default configuration (every verdict stored, the two default alert
 * rules) unless --alerts off / --store-normal false change it.
 *
 * Per run (fresh server, `--warmup` seconds discarded, then `--duration` seconds): requests/s,
 * flows/s, latency p50/p90/p99 (exact, from every response's time, not autocannon's 1 ms
 * histogram), errors and non-2xx, server CPU (cores used, from /proc/PID/stat), server peak RSS
 * (VmRSS sampled every 100 ms), and, after a SIGTERM stop, whether the store holds every flow
 * that was acknowledged (and at most the responses autocannon stopped waiting for more). Then, in-process, the cost of each stage of one request (JSON
 * parse, schema validation, decode, score, the service's detect with its store commit,
 * serialisation, a full `app.inject`), and with --profile a CPU profile of the server under load
 * (batch 100, 8 connections) summarised by where the time goes.
 *
 * The load generator runs on the same machine as the server: on a 2-core machine they share the
 * cores, so the figures are a lower bound of what the server does alone.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { RecordDecoder, recordObjects } from '../src/ingest/json-records.js';
import { predictionOf } from '../src/pipeline/service.js';
import { buildServer } from '../src/server/app.js';
import { DetectResponseT, RecordsBodyT } from '../src/server/schemas.js';
import { openStore } from '../src/store/open.js';
import type { PredictionInput } from '../src/store/store.js';

// --- options -----------------------------------------------------------------------------------

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const list = (s: string) => s.split(',').map(Number).filter(Number.isFinite);
const DURATION = Number(opt('duration', '10'));
const WARMUP = Number(opt('warmup', '2'));
const CONNECTIONS = list(opt('connections', '1,8,32'));
const BATCHES = list(opt('batches', '1,100'));
const ROWS = opt('rows', 'benign');
const STAGES = !args.includes('--no-stages');
/** `off`: no alert rules (the default configuration has two). */
const ALERTS = opt('alerts', 'on');
/** `false`: store anomalies only (the default stores every verdict). */
const STORE_NORMAL = opt('store-normal', 'true') !== 'false';
const PROFILE = args.includes('--profile');
/** `wrk`: load from wrk (C) instead of autocannon (Node), leaving the server more CPU. */
const CLIENT = opt('client', 'autocannon');
/** `columnar`: bodies as `{columns, rows}` instead of `{records}`. */
const BODY = opt('body', 'records');
const KEY = 'bench-key-0123456789abcdef';

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(root, 'bin', 'nadir.js');
const datasetsDir = process.env.NADIR_DATASETS ?? resolve(root, '..', 'shared', 'datasets');
const CIC = join(datasetsDir, 'cicids2017_improved_sampled');
const work = mkdtempSync(join(tmpdir(), 'nadir-serve-bench-'));
/** The service configuration the bench asks for (merged over the defaults by the server). */
const SERVICE_CONFIG: Record<string, unknown> = {
  detection: { storeNormal: STORE_NORMAL },
  ...(ALERTS === 'off' ? { alerts: { rules: [] } } : {}),
};
const CONFIG_FILE = join(work, 'serve.json');
writeFileSync(CONFIG_FILE, JSON.stringify({ config: SERVICE_CONFIG }));

// --- autocannon (CommonJS, untyped) ------------------------------------------------------------

interface AcResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  requests: { total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}
interface AcInstance {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, r: AcResult) => void) => AcInstance;
const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;

// --- data --------------------------------------------------------------------------------------

/** Identifier columns sent as strings; everything else numeric goes as a JSON number. */
const TEXT = new Set(['Flow ID', 'Src IP', 'Dst IP', 'Timestamp']);
/** Not sent: a collector knows no label; `id` is the CSV's row number. */
const DROP = new Set(['id', 'Label', 'Attempted Category']);

function readRows(file: string): Record<string, string | number | null>[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const header = lines[0].split(',').map((h) => h.trim());
  const out: Record<string, string | number | null>[] = [];
  for (let l = 1; l < lines.length; l++) {
    if (!lines[l]) continue;
    const cells = lines[l].split(',');
    const r: Record<string, string | number | null> = {};
    header.forEach((h, c) => {
      if (DROP.has(h)) return;
      const v = cells[c];
      if (TEXT.has(h)) r[h] = v;
      else {
        const x = Number(v);
        // JSON has no Infinity/NaN: send those as the strings CIC CSVs write.
        r[h] = v === '' ? null : Number.isFinite(x) ? x : v;
      }
    });
    out.push(r);
  }
  return out;
}

/** Deterministic shuffle (mulberry32). */
function shuffle<T>(a: T[], seed: number): T[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Distinct request bodies of `batch` records each (autocannon cycles through them). */
function bodies(rows: Record<string, unknown>[], batch: number): string[] {
  const count = Math.max(1, Math.min(1000, Math.floor(rows.length / batch)));
  const out: string[] = [];
  for (let b = 0; b < count; b++) {
    const part = rows.slice(b * batch, b * batch + batch);
    if (BODY === 'columnar') {
      const columns = Object.keys(part[0]);
      out.push(JSON.stringify({ columns, rows: part.map((r) => columns.map((c) => r[c])) }));
    } else out.push(JSON.stringify({ records: part }));
  }
  return out;
}

// --- the server as a child process -------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  base: string;
  dataDir: string;
  exited: Promise<number | null>;
  log: () => string;
}

function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // The embedded DuckDB store: a developer's DATABASE_URL would send the server to PostgreSQL.
  delete env.DATABASE_URL;
  return env;
}

async function startServer(model: string, nodeFlags: string[] = []): Promise<Child> {
  const dataDir = mkdtempSync(join(work, 'data-'));
  const proc = spawn(
    process.execPath,
    [
      ...nodeFlags,
      CLI,
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--api-key',
      KEY,
      '--model',
      model,
      '--rate-limit',
      '1000000000',
      '--config',
      CONFIG_FILE,
      '--log-level',
      'warn',
    ],
    { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const exited = new Promise<number | null>((done) => proc.once('exit', (code) => done(code)));
  proc.stderr?.setEncoding('utf8');
  return new Promise<Child>((ok, fail) => {
    proc.stderr?.on('data', (s: string) => {
      err += s;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) ok({ proc, base: m[1], dataDir, exited, log: () => err });
    });
    void exited.then((code) => fail(new Error(`nadir serve exited (${code}):\n${err}`)));
  });
}

const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of the main (JavaScript) thread alone. */
function mainThreadSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return Number.NaN;
  }
}

/** Selected Prometheus counters of the server. */
async function scrape(base: string): Promise<Record<string, number>> {
  const res = await fetch(`${base}/api/v1/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
  const text = await res.text();
  const pick = (re: RegExp) => {
    let sum = 0;
    for (const m of text.matchAll(re)) sum += Number(m[1]);
    return sum;
  };
  return {
    commits: pick(/^nadir_store_write_duration_seconds_count\{[^}]*op="predictions"[^}]*\} (\S+)$/gm),
    commitSeconds: pick(/^nadir_store_write_duration_seconds_sum\{[^}]*op="predictions"[^}]*\} (\S+)$/gm),
    rows: pick(/^nadir_store_rows_total\{[^}]*table="predictions"[^}]*\} (\S+)$/gm),
    anomalies: pick(/^nadir_anomalies_total\{[^}]*\} (\S+)$/gm),
  };
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

interface Load {
  seconds: number;
  ok: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Latency percentile in ms. */
  latency: (p: number) => number;
}

function load(base: string, bodyList: string[], connections: number, duration: number): Promise<Load> {
  return CLIENT === 'wrk'
    ? loadWrk(base, bodyList, connections, duration)
    : loadAutocannon(base, bodyList, connections, duration);
}

/**
 * The same load from wrk (C; Debian's `wrk`), which needs far less CPU than autocannon, so the
 * server gets more of this 2-core machine. Bodies cycle through a Lua `request()`; counts and
 * latency percentiles come from wrk's own summary (HdrHistogram, µs resolution).
 */
function loadWrk(base: string, bodyList: string[], connections: number, duration: number): Promise<Load> {
  const dir = mkdtempSync(join(work, 'wrk-'));
  const files = bodyList.slice(0, 64).map((b, i) => {
    const f = join(dir, `body-${i}.json`);
    writeFileSync(f, b);
    return f;
  });
  const script = join(dir, 'post.lua');
  writeFileSync(
    script,
    `local bodies = {}
local i = 0
init = function(args)
  for _, path in ipairs(args) do
    local f = io.open(path, "rb"); bodies[#bodies + 1] = f:read("*a"); f:close()
  end
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer ${KEY}" }, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("NADIR %d %d %d %d %d %.3f %.3f %.3f\\n", summary.requests, e.status,
    e.connect + e.read + e.write, e.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
`,
  );
  return new Promise<Load>((ok, fail) => {
    const p = spawn(
      'wrk',
      [
        '-t1',
        `-c${connections}`,
        `-d${duration}s`,
        '--timeout',
        '30s',
        '-s',
        script,
        `${base}/api/v1/detect`,
        '--',
        ...files,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      out += d;
    });
    p.stderr.resume();
    p.once('error', fail);
    p.once('exit', (code) => {
      const m = /NADIR (\d+) (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(out);
      if (code !== 0 || !m) return fail(new Error(`wrk failed (${code}): ${out.slice(-500)}`));
      const [requests, status, sock, timeouts, us, p50, p90, p99] = m.slice(1).map(Number);
      const pcts: Record<number, number> = { 50: p50, 90: p90, 99: p99 };
      ok({
        seconds: us / 1e6,
        ok: requests - status,
        errors: sock,
        timeouts,
        non2xx: status,
        latency: (q) => pcts[q] ?? Number.NaN,
      });
    });
  });
}

function loadAutocannon(
  base: string,
  bodyList: string[],
  connections: number,
  duration: number,
): Promise<Load> {
  const lat: number[] = [];
  return new Promise<Load>((ok, fail) => {
    const inst = autocannon(
      {
        url: `${base}/api/v1/detect`,
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        requests: bodyList.map((body) => ({ body })),
        connections,
        duration,
        pipelining: 1,
        timeout: 30,
      },
      (err, r) => {
        if (err) return fail(err);
        const sorted = Float64Array.from(lat).sort();
        ok({
          seconds: r.duration,
          ok: r['2xx'],
          errors: r.errors,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          latency: (q) => pct(sorted, q),
        });
      },
    );
    inst.on('response', (_c, status, _b, ms) => {
      if (status >= 200 && status < 300) lat.push(ms);
    });
  });
}

function pct(sorted: Float64Array, p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface RunResult {
  batch: number;
  connections: number;
  load: Load;
  serverCores: number;
  peakRssMb: number;
  hwmMb: number;
  acknowledged: number;
  stored: number | null;
  /** Responses autocannon did not wait for (in flight when a timed run ended): at most this many more stored. */
  slack: number;
  mainThread: number;
  store: { commits: number; commitSeconds: number; rows: number; anomalies: number };
  stopSeconds: number;
  stopCode: number | null;
}

async function countStored(dataDir: string): Promise<number> {
  const store = await openStore({ dataDir, databaseUrl: '' });
  try {
    return await store.countPredictions({});
  } finally {
    await store.close();
  }
}

async function run(
  model: string,
  batch: number,
  connections: number,
  bodyList: string[],
): Promise<RunResult> {
  const srv = await startServer(model);
  const pid = srv.proc.pid as number;
  const warm = WARMUP > 0 ? await load(srv.base, bodyList, connections, WARMUP) : null;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, statusKb(pid, 'VmRSS') || 0);
  }, 100);
  const m0 = await scrape(srv.base);
  const c0 = cpuSeconds(pid);
  const t0 = mainThreadSeconds(pid);
  const l = await load(srv.base, bodyList, connections, DURATION);
  const c1 = cpuSeconds(pid);
  const t1 = mainThreadSeconds(pid);
  const m1 = await scrape(srv.base);
  clearInterval(sampler);
  peak = Math.max(peak, statusKb(pid, 'VmRSS') || 0);
  const hwm = statusKb(pid, 'VmHWM');
  const t = performance.now();
  srv.proc.kill('SIGTERM');
  const code = await srv.exited;
  const stopSeconds = (performance.now() - t) / 1000;
  const acknowledged = ((warm?.ok ?? 0) + l.ok) * batch;
  let stored: number | null = null;
  try {
    stored = await countStored(srv.dataDir);
  } catch (e) {
    process.stderr.write(`counting the store failed: ${(e as Error).message}\n`);
  }
  rmSync(srv.dataDir, { recursive: true, force: true });
  return {
    batch,
    connections,
    load: l,
    serverCores: (c1 - c0) / l.seconds,
    peakRssMb: peak / 1024,
    hwmMb: hwm / 1024,
    acknowledged,
    stored,
    slack: (warm ? 2 : 1) * connections * batch,
    mainThread: (t1 - t0) / l.seconds,
    store: {
      commits: m1.commits - m0.commits,
      commitSeconds: m1.commitSeconds - m0.commitSeconds,
      rows: m1.rows - m0.rows,
      anomalies: m1.anomalies - m0.anomalies,
    },
    stopSeconds,
    stopCode: code,
  };
}

// --- in-process stage costs --------------------------------------------------------------------

async function timeIt(n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(50, n); i++) await fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t) * 1000) / n;
}

async function stages(model: string, bodyList: string[], batch: number) {
  const dataDir = mkdtempSync(join(work, 'stages-'));
  const store = await openStore({ dataDir, databaseUrl: '' });
  const srv = await buildServer({
    store,
    dataDir,
    apiKeys: [KEY],
    logger: false,
    rateLimit: 1e9,
    initialConfig: SERVICE_CONFIG,
  });
  const rec = await srv.registry.import(model);
  await srv.service.activate(rec.id);
  const m = srv.service.model!;
  const schema = m.manifest.features;
  const decoder = new RecordDecoder({
    numericNames: schema.inputs.filter((f) => f.kind === 'numeric').map((f) => f.name),
    stringNames: schema.inputs.filter((f) => f.kind === 'categorical').map((f) => f.name),
    key: 'bench',
  });
  const ajv = new Ajv({
    removeAdditional: false,
    coerceTypes: false,
    useDefaults: false,
    allErrors: true,
    strict: false,
  });
  const validate = ajv.compile(RecordsBodyT as object);
  let serialize: (v: unknown) => string = JSON.stringify;
  let serializer = 'JSON.stringify';
  try {
    const fjs = require('fast-json-stringify') as (s: object) => (v: unknown) => string;
    serialize = fjs(DetectResponseT as object);
    serializer = 'fast-json-stringify (as Fastify)';
  } catch {
    /* fall back to JSON.stringify */
  }
  const parsed = bodyList.map((b) => {
    const o = JSON.parse(b) as { records?: unknown[]; columns?: string[]; rows?: unknown[][] };
    return { records: o.records ?? recordObjects({ columns: o.columns ?? [], rows: o.rows ?? [] }) };
  });
  const n = Math.max(200, Math.min(20_000, Math.floor(40_000 / batch)));
  let k = 0;
  const pick = () => parsed[k++ % parsed.length].records;
  const sample = await srv.service.detect(pick(), '/records', 'api');
  const predRows: PredictionInput[] = sample.verdicts.map((v) =>
    predictionOf(v, Date.now(), 'api', { label: null, flowTimestamp: null, features: null }),
  );
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const out: [string, number][] = [];
  out.push(['JSON.parse of the body', await timeIt(n, () => JSON.parse(bodyList[k++ % bodyList.length]))]);
  out.push([
    'schema validation (Ajv, RecordsBodyT)',
    await timeIt(n, () => validate(parsed[k++ % parsed.length])),
  ]);
  out.push(['decode records → rows', await timeIt(n, () => decoder.decode(pick(), '/records'))]);
  const decoded = parsed.map((p) => decoder.decode(p.records, '/records').rows);
  out.push([
    'score (features + iforest)',
    await timeIt(n, () => m.scoreAsync(decoded[k++ % decoded.length])),
  ]);
  out.push([
    'store commit alone (insertPredictions)',
    await timeIt(n, () => store.insertPredictions(predRows)),
  ]);
  // Time spent in each store method while the service detects (a write waits in the store's one
  // queue behind the alert engine's writes, which the service does not await).
  const storeTime = new Map<string, { calls: number; ms: number }>();
  const target = store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const name of [
    'insertPredictions',
    'findActiveAlert',
    'insertAlert',
    'updateAlert',
    'insertDelivery',
  ]) {
    const f = target[name].bind(store);
    target[name] = async (...a: unknown[]) => {
      const t = performance.now();
      try {
        return await f(...a);
      } finally {
        const e = storeTime.get(name) ?? { calls: 0, ms: 0 };
        e.calls++;
        e.ms += performance.now() - t;
        storeTime.set(name, e);
      }
    };
  }
  const detectUs = await timeIt(n, () => srv.service.detect(pick(), '/records', 'api'));
  await srv.alerts.drain();
  out.push(['service.detect (decode … commit, sequential)', detectUs]);
  const calls = n + Math.min(50, n);
  const notes = [...storeTime].map(
    ([name, e]) =>
      `${name}: ${(e.calls / calls).toFixed(2)} calls / request, ${((1000 * e.ms) / Math.max(1, e.calls)).toFixed(0)} µs each (queue wait + transaction)`,
  );
  out.push([`serialise the response (${serializer})`, await timeIt(n, () => serialize(sample))]);
  out.push([
    'full request in-process (app.inject, no socket)',
    await timeIt(n, () =>
      srv.app.inject({
        method: 'POST',
        url: '/api/v1/detect',
        headers,
        payload: bodyList[k++ % bodyList.length],
      }),
    ),
  ]);
  const anomalies = sample.verdicts.filter((v) => v.is_anomaly).length;
  await srv.app.close();
  rmSync(dataDir, { recursive: true, force: true });
  return { batch, stages: out, anomalies, bodyBytes: bodyList[0].length, notes };
}

// --- CPU profile of the server under load ------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/** What a sampled frame belongs to, by its script and function. */
function category(fn: string, url: string): string {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native (program)';
  if (/secure-json-parse|contentTypeParser|content-type-parser/.test(url) || (fn === 'parse' && !url))
    return 'JSON parse';
  // secure-json-parse scans every body for __proto__ / constructor keys with these.
  if (fn.startsWith('RegExp:') && /u005\[Ff\]|u0063/.test(fn))
    return 'JSON parse (__proto__/constructor scan)';
  if (fn === 'slice' && url === 'node:buffer') return 'body read (UTF-8 decode)';
  if (fn === 'writev' || fn === 'writeBuffer' || fn === 'writeUtf8String') return 'node http / net / streams';
  if (/\/ajv\//.test(url) || (!url && /^validate/.test(fn))) return 'validation (Ajv)';
  if (/fast-json-stringify/.test(url) || (!url && /stringify|anonymous|\$main/i.test(fn)))
    return 'serialisation';
  if (/src\/ingest\//.test(url)) return 'decode (json-records)';
  if (/src\/(features|detect|model)\/|src\/core\/stats/.test(url)) return 'scoring (features + detector)';
  if (/src\/store\/|@duckdb|node_modules\/pg/.test(url)) return 'store (commit)';
  if (/src\/pipeline\//.test(url)) return 'service (verdicts, explain glue)';
  if (/src\/alert\//.test(url)) return 'alerts';
  if (/src\/server\/|prom-client/.test(url)) return 'server glue + metrics';
  if (/node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|pino|toad-cache|fastq)/.test(url))
    return 'fastify';
  if (
    /node:(_http|http|net|stream|internal\/(http|stream|streams|net))|_http_|node:internal\/streams/.test(url)
  )
    return 'node http / net / streams';
  if (/^node:/.test(url)) return 'node (other core)';
  return 'other';
}

async function profile(model: string, bodyList: string[]) {
  const dir = mkdtempSync(join(work, 'prof-'));
  const srv = await startServer(model, ['--cpu-prof', '--cpu-prof-dir', dir]);
  await load(srv.base, bodyList, 8, WARMUP);
  // V8 stamps samples with the monotonic clock, as process.hrtime does: keep the measured window.
  const from = Number(process.hrtime.bigint() / 1000n);
  const l = await load(srv.base, bodyList, 8, DURATION);
  const to = Number(process.hrtime.bigint() / 1000n);
  srv.proc.kill('SIGTERM');
  await srv.exited;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return null;
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = prof.startTime;
  let kept = 0;
  prof.samples.forEach((id, i) => {
    const d = prof.timeDeltas[i] ?? 0;
    at += d;
    if (at < from || at > to) return;
    kept++;
    self.set(id, (self.get(id) ?? 0) + d);
  });
  if (kept === 0) process.stderr.write('profile: no sample inside the measured window (clock mismatch?)\n');
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  let wall = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url } = n.callFrame;
    const c = category(functionName, url);
    cats.set(c, (cats.get(c) ?? 0) + us);
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '');
    const key = `${functionName || '(anonymous)'} ${short}`;
    if (c !== 'idle') {
      fns.set(`[${c}] ${key}`, (fns.get(`[${c}] ${key}`) ?? 0) + us);
      total += us;
    }
    wall += us;
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(srv.dataDir, { recursive: true, force: true });
  return { cats, fns, total, wall, requests: l.ok, seconds: l.seconds };
}

// --- main --------------------------------------------------------------------------------------

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

async function main() {
  if (!existsSync(CIC)) {
    console.log(`missing ${CIC}; the shared datasets are needed`);
    return;
  }
  const c = cpus();
  console.log(
    `machine: ${c[0]?.model ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  console.log(
    `load generator (${CLIENT}) and server share these ${c.length} cores: the server never has the machine to itself`,
  );

  const model = join(work, 'model');
  const t0 = performance.now();
  const tr = spawnSync(
    process.execPath,
    [CLI, 'train', '--data', CIC, '--detector', 'iforest', '--out', model, '--quiet'],
    {
      encoding: 'utf8',
    },
  );
  if (tr.status !== 0) throw new Error(`nadir train failed:\n${tr.stderr}`);
  const manifest = JSON.parse(readFileSync(join(model, 'manifest.json'), 'utf8')) as { id: string };
  console.log(
    `model: ${manifest.id} (iforest, benign rows of the training part of cicids2017_improved_sampled), trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const files =
    ROWS === 'all'
      ? readdirSync(CIC)
          .filter((f) => f.endsWith('.csv'))
          .map((f) => join(CIC, f))
      : [join(CIC, 'BENIGN_5000.csv')];
  const rows = shuffle(files.flatMap(readRows), 7);
  console.log(
    `records: ${int(rows.length)} rows of ${ROWS === 'all' ? 'every class (88% attacks)' : 'BENIGN_5000.csv'}, ${Object.keys(rows[0]).length} columns each`,
  );
  console.log('store: DuckDB (embedded, a fresh <data dir>/nadir.duckdb per run)');
  console.log(
    `service: ${STORE_NORMAL ? 'every verdict stored' : 'anomalies only stored'}, alert rules ${ALERTS === 'off' ? 'off' : 'as default (score per pair, burst per destination), log channel'}`,
  );
  console.log(`runs: ${WARMUP} s warm-up (discarded) + ${DURATION} s measured, a fresh server each\n`);

  const results: RunResult[] = [];
  const bodyCache = new Map<number, string[]>();
  for (const batch of BATCHES) {
    const b = bodies(rows, batch);
    bodyCache.set(batch, b);
    for (const conns of CONNECTIONS) {
      const r = await run(model, batch, conns, b);
      results.push(r);
      process.stderr.write(
        `  batch ${batch}, ${conns} connections: ${int(r.load.ok / r.load.seconds)} req/s, p99 ${ms(r.load.latency(99))} ms\n`,
      );
    }
  }

  console.log(
    '| batch | connections | requests/s | flows/s | p50 ms | p90 ms | p99 ms | errors | non-2xx | server CPU (cores) | server peak RSS (MB) | nothing acknowledged lost |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const rps = r.load.ok / r.load.seconds;
    // autocannon does not count the responses still in flight when a timed run ends (at most one
    // per connection per run); those flows are stored too.
    const extra = r.stored === null ? 0 : r.stored - r.acknowledged;
    const storedOk =
      r.stored === null
        ? '?'
        : !STORE_NORMAL
          ? `n/a: anomalies only (${int(r.stored)} stored)`
          : extra >= 0 && extra <= r.slack
            ? `yes: ${int(r.stored)} stored, ${int(r.acknowledged)} acknowledged`
            : `NO: ${int(r.stored)} stored, ${int(r.acknowledged)} acknowledged`;
    console.log(
      `| ${r.batch} | ${r.connections} | ${int(rps)} | ${int(rps * r.batch)} | ${ms(r.load.latency(50))} | ${ms(r.load.latency(90))} | ${ms(r.load.latency(99))} | ${r.load.errors + r.load.timeouts} | ${r.load.non2xx} | ${r.serverCores.toFixed(2)} | ${r.peakRssMb.toFixed(0)} | ${storedOk} |`,
    );
  }
  console.log('\nwhere the server spends the measured seconds (from /proc and its own /metrics):');
  console.log(
    '| batch | connections | JS main thread busy | other threads (cores) | prediction commits/s | rows per commit | mean commit ms | store busy (commit time / wall) | anomalies | SIGTERM stop (s) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const st = r.store;
    console.log(
      `| ${r.batch} | ${r.connections} | ${(100 * r.mainThread).toFixed(0)}% | ${(r.serverCores - r.mainThread).toFixed(2)} | ${int(st.commits / r.load.seconds)} | ${(st.rows / Math.max(1, st.commits)).toFixed(0)} | ${((1000 * st.commitSeconds) / Math.max(1, st.commits)).toFixed(2)} | ${((100 * st.commitSeconds) / r.load.seconds).toFixed(0)}% | ${int(st.anomalies)} | ${r.stopSeconds.toFixed(2)} |`,
    );
  }
  const stops = results.map((r) => r.stopSeconds);
  console.log(
    `\nSIGTERM stop after each run: exit codes ${[...new Set(results.map((r) => r.stopCode))].join(', ')}, ${Math.min(...stops).toFixed(2)}–${Math.max(...stops).toFixed(2)} s; server VmHWM up to ${Math.max(...results.map((r) => r.hwmMb)).toFixed(0)} MB`,
  );

  const b100 = results.filter((r) => r.batch === 100);
  if (b100.length) {
    const best = b100.reduce((a, r) => (r.load.ok / r.load.seconds > a.load.ok / a.load.seconds ? r : a));
    const flows = (best.load.ok / best.load.seconds) * 100;
    const p99s = b100.map((r) => `${ms(r.load.latency(99))} ms at ${r.connections}`);
    console.log('\ntargets (batch 100):');
    console.log(
      `  p99 < 10 ms: ${b100.some((r) => r.load.latency(99) < 10) ? 'met at' : 'NOT met at any'} connection count (${p99s.join(', ')})`,
    );
    console.log(
      `  ≥ 50,000 flows/s through HTTP: ${flows >= 50_000 ? 'met' : 'NOT met'} (best ${int(flows)} flows/s, ${best.connections} connections)`,
    );
  }

  if (STAGES) {
    console.log('\nin-process cost of one request, by stage (µs per request, sequential, one core):');
    for (const batch of BATCHES) {
      const s = await stages(model, bodyCache.get(batch)!, batch);
      const full = s.stages[s.stages.length - 1][1];
      console.log(
        `\nbatch ${batch} (body ${int(s.bodyBytes)} bytes, ${s.anomalies} of ${batch} anomalous in the sample):`,
      );
      console.log('| stage | µs / request | µs / flow | share of app.inject |');
      console.log('|---|---|---|---|');
      for (const [name, us] of s.stages)
        console.log(
          `| ${name} | ${us.toFixed(1)} | ${(us / batch).toFixed(2)} | ${((100 * us) / full).toFixed(0)}% |`,
        );
      console.log('  store calls during service.detect:');
      for (const note of s.notes) console.log(`    ${note}`);
      const r = results.filter((x) => x.batch === batch);
      for (const x of r) {
        const perReq = (x.serverCores * 1e6) / (x.load.ok / x.load.seconds);
        console.log(
          `  under HTTP load, ${x.connections} connections: server CPU (all threads) ${perReq.toFixed(0)} µs / request, JS thread ${((x.mainThread * 1e6) / (x.load.ok / x.load.seconds)).toFixed(0)} µs`,
        );
      }
    }
  }

  if (PROFILE) {
    const b = bodyCache.get(100) ?? bodies(rows, 100);
    const p = await profile(model, b);
    if (p) {
      console.log(
        `\nCPU profile of the server's JavaScript thread (batch 100, 8 connections, the ${DURATION} s measured, ${int(p.requests)} requests): busy ${((100 * p.total) / p.wall).toFixed(0)}% of the time, idle (waiting, mostly on DuckDB's own threads) ${((100 * (p.wall - p.total)) / p.wall).toFixed(0)}%; busy time by category:`,
      );
      console.log('| where | share | µs / request |');
      console.log('|---|---|---|');
      for (const [cat, us] of [...p.cats].sort((a, z) => z[1] - a[1]))
        if (cat !== 'idle')
          console.log(`| ${cat} | ${((100 * us) / p.total).toFixed(1)}% | ${(us / p.requests).toFixed(0)} |`);
      console.log(`\ntop functions (self time):`);
      for (const [fn, us] of [...p.fns].sort((a, z) => z[1] - a[1]).slice(0, 30))
        console.log(`  ${((100 * us) / p.total).toFixed(1).padStart(5)}%  ${fn}`);
    }
  }
  rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
