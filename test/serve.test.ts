/**
 * The detection service end to end, through real HTTP, on both stores (DuckDB embedded, and
 * PostgreSQL at 127.0.0.1:5432 in a schema of its own): a scripted client posts CIC-IDS-2017 rows
 * to /detect and /threat-detection, finds the anomalies in /anomalies/latest, an alert reaches a
 * real webhook receiver (signature checked independently) and a real SMTP server, /metrics counts
 * it all; bad input gets the right 4xx and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { Diagnostics } from '../src/core/diagnostics.js';
import { buildServer, type Server } from '../src/server/app.js';
import { DEFAULT_CONFIG } from '../src/server/config.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { auroc } from '../src/train/metrics.js';
import { train } from '../src/train/train.js';
import { CLI, datasets, NO_DATASETS, tmp } from './helpers.js';

const KEY = 'test-key-0123456789abcdef';
const SECRET = 'webhook-secret-xyz';
const PG_URL = process.env.NADIR_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Rows of a CIC CSV as objects keyed by the header (files without quoted commas). */
function csvObjects(path: string, limit: number): Record<string, string>[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const header = lines[0].split(',');
  const out: Record<string, string>[] = [];
  for (let i = 1; i < lines.length && out.length < limit; i++) {
    const cells = lines[i].split(',');
    if (cells.length !== header.length) continue;
    const o: Record<string, string> = {};
    header.forEach((h, j) => {
      o[h] = cells[j];
    });
    out.push(o);
  }
  return out;
}

async function pgReachable(): Promise<string | null> {
  try {
    const s = await openStore({ databaseUrl: PG_URL, schema: 'nadir_probe' });
    await s.close();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

async function webhookReceiver(): Promise<{ url: string; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const srv = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(parts) });
      res.writeHead(204).end();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

async function smtpReceiver(): Promise<{ port: number; mails: string[]; close: () => Promise<void> }> {
  const mails: string[] = [];
  const srv = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        mails.push(Buffer.concat(parts).toString('utf8'));
        cb();
      });
    },
  });
  srv.listen(0, '127.0.0.1');
  await once(srv.server, 'listening');
  const port = (srv.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise((r) => srv.close(() => r())) };
}

async function until<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const data = datasets();
const cic = data ? join(data, 'cicids2017_improved_sampled') : null;

/** An isolation forest trained on the dataset's benign rows, shared by both suites. */
let modelDir = '';
let benign: Record<string, string>[] = [];
let attacks: Record<string, string>[] = [];

before(async () => {
  if (!cic) return;
  const dir = tmp('nadir-serve-model-');
  modelDir = join(dir, 'model');
  await train({
    data: [join(cic, 'BENIGN_5000.csv')],
    detector: 'iforest',
    detectorParams: {},
    split: { kind: 'ratio', ratio: 0.8, seed: 1 },
    threshold: 'p99',
    calibrationFraction: 0.25,
    maxRows: 100_000,
    seed: 1,
    ingest: {},
    features: {},
    out: modelDir,
    diag: new Diagnostics(),
  });
  benign = csvObjects(join(cic, 'BENIGN_5000.csv'), 400).slice(200);
  attacks = [
    ...csvObjects(join(cic, 'DDoS_5000.csv'), 100),
    ...csvObjects(join(cic, 'Portscan_5000.csv'), 100),
    ...csvObjects(join(cic, 'DoS_Hulk_5000.csv'), 100),
  ];
});

function apiSuite(name: string, open: () => Promise<Store | string>) {
  describe(`nadir serve API on ${name}`, () => {
    let srv: Server;
    let base = '';
    let hook: Awaited<ReturnType<typeof webhookReceiver>>;
    let smtp: Awaited<ReturnType<typeof smtpReceiver>>;
    let skip: string | null = null;
    const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
      fetch(`${base}/api/v1${path}`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/api/v1${path}`, { headers });
    let anomalyIds: number[] = [];
    let totalPosted = 0;

    before(async () => {
      if (!cic) return;
      const s = await open();
      if (typeof s === 'string') {
        skip = s;
        return;
      }
      hook = await webhookReceiver();
      smtp = await smtpReceiver();
      const dataDir = tmp('nadir-serve-');
      srv = await buildServer({ store: s, dataDir, apiKeys: [KEY], bodyLimit: 1 << 20, maxBatch: 1000 });
      await srv.app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}`;
      const rec = await srv.registry.import(modelDir);
      const act = await post(`/models/${rec.id}/activate`, '{}');
      assert.equal(act.status, 200, await act.text());
    });

    after(async () => {
      if (srv) await srv.app.close();
      await hook?.close();
      await smtp?.close();
    });

    const t = (title: string, fn: () => Promise<void>) =>
      it(title, async (ctx) => {
        if (!cic) return ctx.skip(NO_DATASETS);
        if (skip) {
          if (process.env.NADIR_REQUIRE_SERVICES === '1')
            assert.fail(`${name} required but unavailable: ${skip}`);
          return ctx.skip(`${name} not reachable (${skip}); skipped`);
        }
        await fn();
      });

    t(
      'configures channels: webhook with a secret, SMTP, log; reads need the key, secrets are redacted',
      async () => {
        const cfg = structuredClone(DEFAULT_CONFIG);
        cfg.alerts.channels = [
          { name: 'hook', type: 'webhook', url: hook.url, secret: SECRET },
          {
            name: 'mail',
            type: 'email',
            host: '127.0.0.1',
            port: smtp.port,
            from: 'nadir@example.org',
            to: ['soc@example.org'],
          },
          { name: 'log', type: 'log', path: 'alerts.log' },
        ];
        cfg.alerts.rules = [
          { name: 'anomaly', type: 'score', groupBy: 'dst', severity: 'auto', minScore: null },
        ];
        cfg.alerts.retry = { attempts: 2, baseDelayMs: 10, maxDelayMs: 50, timeoutMs: 2000 };
        const unauth = await fetch(`${base}/api/v1/config`, {
          method: 'PUT',
          body: JSON.stringify(cfg),
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(unauth.status, 401);
        const put = await fetch(`${base}/api/v1/config`, {
          method: 'PUT',
          body: JSON.stringify(cfg),
          headers: auth,
        });
        assert.equal(put.status, 200, await put.clone().text());
        assert.equal((await get('/config')).status, 401, 'config needs the key even to read');
        const shown = (await (await get('/config', auth)).json()) as { version: number; config: typeof cfg };
        assert.ok(shown.version >= 2);
        const hookShown = shown.config.alerts.channels.find((c) => c.name === 'hook') as { secret?: string };
        assert.equal(hookShown.secret, '***');
        assert.ok(!JSON.stringify(shown).includes(SECRET));
        // Sending the redacted document back keeps the secret (checked when the webhook is signed).
        const again = await fetch(`${base}/api/v1/config`, {
          method: 'PUT',
          body: JSON.stringify(shown.config),
          headers: auth,
        });
        assert.equal(again.status, 200);
      },
    );

    t('POST /detect scores CIC rows: attacks are flagged far more often than benign rows', async () => {
      const rows = [...benign, ...attacks];
      const verdicts: { id: number | null; is_anomaly: boolean; score: number; contributions?: unknown[] }[] =
        [];
      for (let i = 0; i < rows.length; i += 100) {
        const res = await post('/detect', { records: rows.slice(i, i + 100) });
        assert.equal(res.status, 200, await res.clone().text());
        const body = (await res.json()) as { verdicts: typeof verdicts; status: string };
        assert.equal(body.status, 'detecting');
        assert.equal(body.verdicts.length, Math.min(100, rows.length - i));
        verdicts.push(...body.verdicts);
      }
      totalPosted += rows.length;
      const rate = (from: number, to: number) =>
        verdicts.slice(from, to).filter((v) => v.is_anomaly).length / (to - from);
      const benignRate = rate(0, benign.length);
      const attackRate = rate(benign.length, rows.length);
      assert.ok(benignRate < 0.1, `benign flagged ${benignRate}`);
      assert.ok(
        attackRate > 0.3 && attackRate > 4 * benignRate,
        `attacks ${attackRate} vs benign ${benignRate}`,
      );
      for (const v of verdicts) {
        assert.equal(typeof v.id, 'number', 'every verdict is stored');
        if (v.is_anomaly) assert.ok((v.contributions?.length ?? 0) > 0, 'anomalies say why');
      }
      anomalyIds = verdicts.filter((v) => v.is_anomaly).map((v) => v.id as number);
    });

    t(
      'columnar bodies (columns + rows) score exactly like records, with positional error paths',
      async () => {
        const rows = [...benign.slice(0, 50), ...attacks.slice(0, 50)];
        const columns = Object.keys(rows[0]);
        const asObjects = (await (await post('/detect', { records: rows })).json()) as {
          verdicts: { score: number; is_anomaly: boolean; src_ip: string }[];
        };
        const res = await post('/detect', { columns, rows: rows.map((r) => columns.map((c) => r[c])) });
        assert.equal(res.status, 200, await res.clone().text());
        const asColumns = (await res.json()) as typeof asObjects;
        totalPosted += 2 * rows.length;
        assert.deepEqual(
          asColumns.verdicts.map((v) => [v.score, v.is_anomaly, v.src_ip]),
          asObjects.verdicts.map((v) => [v.score, v.is_anomaly, v.src_ip]),
        );
        const problems = async (body: unknown) => {
          const r = await post('/detect', body);
          assert.equal(r.status, 400);
          return ((await r.json()) as { problems: { path: string; message: string }[] }).problems;
        };
        const vals = rows.slice(0, 2).map((r) => columns.map((c) => r[c]));
        assert.deepEqual(await problems({ records: rows.slice(0, 1), columns, rows: vals }), [
          { path: '/', message: 'needs "records", or "columns" and "rows", not both' },
        ]);
        const withBogus = (
          await problems({ columns: [...columns, 'Bogus'], rows: vals.map((v) => [...v, 1]) })
        )[0];
        assert.equal(withBogus.path, `/columns/${columns.length}`);
        assert.match(withBogus.message, /unknown column 'Bogus'/);
        assert.deepEqual(await problems({ columns, rows: [vals[0], vals[1].slice(1)] }), [
          { path: '/rows/1', message: `must be an array of ${columns.length} values, one per column` },
        ]);
        const j = columns.indexOf('Flow Duration');
        const badValue = vals.map((v) => v.slice());
        badValue[1][j] = 'abc';
        assert.deepEqual(await problems({ columns, rows: badValue }), [
          { path: `/rows/1/${j}`, message: 'must be a number, a numeric string or null' },
        ]);
        const fewer = columns.filter((c) => c !== 'Flow Duration');
        const lacking = await problems({
          columns: fewer,
          rows: vals.map((v) => v.filter((_, q) => q !== j)),
        });
        assert.equal(lacking[0].path, '/columns');
        assert.match(lacking[0].message, /lacks 1 column\(s\) the model needs: Flow Duration/);
      },
    );

    t('POST /threat-detection answers one prediction per log entry, echoing ids', async () => {
      const entries = [...benign.slice(0, 5), ...attacks.slice(0, 5)].map((r, i) => ({ ...r, id: `e${i}` }));
      delete (entries[0] as Record<string, unknown>).id;
      const res = await post('/threat-detection', { log_entries: entries });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as {
        predictions: { id: string | number; threat_type: string; is_anomaly: boolean }[];
      };
      totalPosted += entries.length;
      assert.equal(body.predictions.length, 10);
      assert.equal(body.predictions[0].id, 1, 'entries without an id are numbered from 1');
      assert.equal(body.predictions[3].id, 'e3');
      for (const p of body.predictions) assert.equal(p.threat_type, p.is_anomaly ? 'Anomaly' : 'Benign');
    });

    t(
      'GET /anomalies/latest and /anomalies return the stored anomalies, newest first, with cursors',
      async () => {
        const latest = (await (await get('/anomalies/latest?limit=5')).json()) as {
          items: { id: number; is_anomaly: boolean }[];
        };
        assert.ok(latest.items.length > 0);
        for (const a of latest.items) assert.ok(a.is_anomaly);
        const ids = latest.items.map((a) => a.id);
        assert.deepEqual(
          ids,
          [...ids].sort((a, b) => b - a),
        );
        // Every anomaly from /detect is found by paging /anomalies.
        const seen = new Set<number>();
        let cursor: number | null = null;
        do {
          const page = (await (
            await get(`/anomalies?limit=37${cursor ? `&cursor=${cursor}` : ''}`)
          ).json()) as {
            items: { id: number }[];
            next_cursor: number | null;
          };
          for (const a of page.items) {
            assert.ok(!seen.has(a.id), 'no duplicates across pages');
            seen.add(a.id);
          }
          cursor = page.next_cursor;
        } while (cursor);
        for (const id of anomalyIds) assert.ok(seen.has(id), `anomaly ${id} listed`);
        // Filters: score range.
        const hi = (await (await get('/logs?min_score=0.6&limit=1000')).json()) as {
          items: { score: number }[];
        };
        for (const p of hi.items) assert.ok(p.score >= 0.6);
        const bad = await get('/logs?from=yesterday');
        assert.equal(bad.status, 400);
        assert.match(((await bad.json()) as { message: string }).message, /\?from/);
      },
    );

    t(
      'an alert reaches the webhook (valid HMAC signature) and the SMTP server; deliveries are stored',
      async () => {
        const h = await until('a webhook delivery', () => hook.got[0]);
        const ts = String(h.headers['x-nadir-timestamp']);
        const expected = createHmac('sha256', SECRET).update(`${ts}.`).update(h.body).digest('hex');
        assert.equal(String(h.headers['x-nadir-signature']), `sha256=${expected}`);
        const payload = JSON.parse(h.body.toString('utf8')) as {
          alert: { summary: string; details: { contributions: unknown[] } };
        };
        assert.ok(payload.alert.details.contributions.length > 0, 'the alert says why');
        const mail = await until('an e-mail', () => smtp.mails[0]);
        // The subject may be RFC 2047 Q-encoded.
        const subject = (/^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(mail)?.[1] ?? '').replace(
          /=\?UTF-8\?Q\?(.*?)\?=\s*/gi,
          (_m, q: string) =>
            Buffer.from(
              q
                .replace(/_/g, ' ')
                .replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
              'latin1',
            ).toString('utf8'),
        );
        assert.match(subject, /^\[NADIR (LOW|MEDIUM|HIGH|CRITICAL)\] /);
        assert.match(mail, /soc@example\.org/);
        const alerts = await until('stored deliveries', async () => {
          const a = (await (await get('/alerts?limit=1000')).json()) as {
            items: { id: number; deliveries: { channel: string; ok: boolean }[]; summary: string }[];
          };
          const withAll = a.items.filter((x) =>
            ['hook', 'mail', 'log'].every((c) => x.deliveries.some((d) => d.channel === c && d.ok)),
          );
          return withAll.length ? a : undefined;
        });
        assert.ok(alerts.items.length >= 1);
        // De-duplication: alerts are one per destination, far fewer than anomalies.
        assert.ok(
          alerts.items.length < anomalyIds.length,
          `${alerts.items.length} alerts for ${anomalyIds.length} anomalies`,
        );
        const id = alerts.items[0].id;
        const ack = (await (await post(`/alerts/${id}/ack`, '{}')).json()) as { status: string };
        assert.equal(ack.status, 'acked');
        const res = (await (await post(`/alerts/${id}/resolve`, '{}')).json()) as {
          status: string;
          status_changed_at: string;
        };
        assert.equal(res.status, 'resolved');
        assert.ok(res.status_changed_at);
        assert.equal((await post('/alerts/999999/ack', '{}')).status, 404);
      },
    );

    t('POST /test-alert reports each channel’s delivery', async () => {
      const before = hook.got.length;
      const res = await post('/test-alert', '{}');
      const body = (await res.json()) as { ok: boolean; deliveries: { channel: string; ok: boolean }[] };
      assert.equal(res.status, 200);
      assert.deepEqual(body.deliveries.map((d) => d.channel).sort(), ['hook', 'log', 'mail']);
      assert.ok(body.ok);
      assert.equal(hook.got.length, before + 1);
    });

    t('GET /metrics counts verdicts, anomalies, deliveries and requests', async () => {
      await srv.alerts.drain();
      const text = await (await get('/metrics')).text();
      const sum = (name: string, filter = '') =>
        text
          .split('\n')
          .filter((l) => l.startsWith(name) && l.includes(filter))
          .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.equal(sum('nadir_verdicts_total'), totalPosted);
      assert.equal(sum('nadir_anomalies_total') >= anomalyIds.length, true);
      assert.ok(sum('nadir_alert_deliveries_total', 'outcome="ok"') >= 3);
      assert.ok(sum('nadir_http_requests_total', 'route="/api/v1/detect"') >= 1);
      assert.ok(sum('nadir_store_rows_total', 'table="predictions"') >= totalPosted);
    });

    t('models: list, show, activate; unknown ids are 404', async () => {
      const list = (await (await get('/models')).json()) as {
        items: { id: string; active: boolean; threshold: number }[];
      };
      assert.equal(list.items.filter((m) => m.active).length, 1);
      const one = (await (await get(`/models/${list.items[0].id}`)).json()) as {
        fingerprint: string;
        threshold: number;
      };
      assert.ok(one.fingerprint.length > 0);
      assert.equal(typeof one.threshold, 'number');
      assert.equal((await get('/models/nope')).status, 404);
      assert.equal((await post('/models/nope/activate', '{}')).status, 404);
    });

    t('bad input: each gets the right 4xx with a precise message, and the server keeps serving', async () => {
      const cases: [string, () => Promise<Response>, number, RegExp][] = [
        ['malformed JSON', () => post('/detect', '{"records": [ {'), 400, /JSON/i],
        ['wrong type', () => post('/detect', { records: 'x' }), 400, /\/records/],
        ['unknown top-level field', () => post('/detect', { records: [], extra: 1 }), 400, /\/extra/],
        ['unknown column', () => post('/detect', { records: [{ ...benign[0], Bogus: 1 }] }), 400, /Bogus/],
        [
          'non-numeric feature',
          () => post('/detect', { records: [{ ...benign[0], 'Flow Duration': 'abc' }] }),
          400,
          /Flow Duration/,
        ],
        [
          'missing column',
          () => post('/detect', { records: [{ 'Flow Duration': 5 }] }),
          400,
          /lacks \d+ column\(s\) the model needs: .*Total Fwd Packet/,
        ],
        ['record not an object', () => post('/detect', { records: [42] }), 400, /\/records\/0/],
        [
          'missing auth',
          () => post('/detect', { records: [] }, { 'content-type': 'application/json' }),
          401,
          /API key/,
        ],
        [
          'wrong key',
          () => post('/detect', { records: [] }, { ...auth, authorization: 'Bearer nope-nope-nope-nope' }),
          401,
          /unknown API key/,
        ],
        [
          'oversized body',
          () => post('/detect', `{"records":[${'{"a":1},'.repeat(200_000)}{}]}`),
          413,
          /limit/,
        ],
        [
          'huge batch',
          () => post('/detect', { records: new Array(1001).fill({}) }),
          413,
          /1001 records exceeds the limit of 1000/,
        ],
        [
          'wrong content type',
          () => post('/detect', 'records=1', { ...auth, 'content-type': 'text/plain' }),
          415,
          /JSON/,
        ],
        [
          'bad config',
          () =>
            fetch(`${base}/api/v1/config`, {
              method: 'PUT',
              headers: auth,
              body: JSON.stringify({ ...DEFAULT_CONFIG, retention: { days: -1 } }),
            }),
          400,
          /\/retention\/days/,
        ],
        ['unknown route', () => get('/nope'), 404, /no route/],
        ['unknown route, POST without a key', () => post('/nope', '{}', {}), 404, /no route/],
        [
          'an encoded path is not a way around the key',
          () =>
            fetch(`${base}/%61pi/v1/ingest`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: '{"records":[]}',
            }),
          401,
          /API key/,
        ],
        ['an encoded config path needs the key too', () => fetch(`${base}/api/v1/%63onfig`), 401, /API key/],
        [
          'a column named like an Object method',
          () => post('/detect', { records: [{ constructor: 'x', toString: 5 }] }),
          400,
          /unknown column 'constructor'/,
        ],
        [
          'a client id beyond float range',
          () => post('/threat-detection', `{"log_entries":[{"id":1e400}]}`),
          400,
          /finite number/,
        ],
        [
          'an infinite threshold',
          () =>
            fetch(`${base}/api/v1/config`, {
              method: 'PUT',
              headers: auth,
              body: JSON.stringify(DEFAULT_CONFIG).replace('"threshold":null', '"threshold":1e400'),
            }),
          400,
          /\/detection\/threshold.*finite/,
        ],
        ['an id beyond 2^53', () => get('/alerts/100000000000000000000'), 400, /\{id\}/],
        ['a cursor beyond 2^53', () => get('/logs?cursor=100000000000000000000000'), 400, /\?cursor/],
        [
          'a rule with a wrong groupBy',
          () =>
            fetch(`${base}/api/v1/config`, {
              method: 'PUT',
              headers: auth,
              body: JSON.stringify({
                ...DEFAULT_CONFIG,
                alerts: {
                  ...DEFAULT_CONFIG.alerts,
                  rules: [
                    { name: 'r', type: 'count', k: 3, windowSeconds: 5, groupBy: 'host', severity: 'high' },
                  ],
                },
              }),
            }),
          400,
          /^invalid request: \/alerts\/rules\/0\/groupBy must be one of "none", "src", "dst", "pair"/,
        ],
        [
          'a supervised learning detector',
          () =>
            fetch(`${base}/api/v1/config`, {
              method: 'PUT',
              headers: auth,
              body: JSON.stringify({
                ...DEFAULT_CONFIG,
                learning: { ...DEFAULT_CONFIG.learning, detector: 'mlp' },
              }),
            }),
          400,
          /\/learning\/detector.*unsupervised/,
        ],
      ];
      for (const [what, f, status, msg] of cases) {
        const res = await f();
        const body = (await res.json()) as {
          message: string;
          problems?: { path: string; message: string }[];
        };
        assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
        assert.match(`${body.message} ${JSON.stringify(body.problems ?? [])}`, msg, what);
      }
      // A union of rule types: only the meant branch is reported, each allowed value once.
      const rules = [
        { name: 'a', type: 'score', groupBy: 'host', severity: 'auto', minScore: null },
        { name: 'b', type: 'count', k: 0, windowSeconds: 5, groupBy: 'dst', severity: 'auto' },
      ];
      const bad = await fetch(`${base}/api/v1/config`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ ...DEFAULT_CONFIG, alerts: { ...DEFAULT_CONFIG.alerts, rules } }),
      });
      assert.equal(bad.status, 400);
      const body = (await bad.json()) as { problems: { path: string; message: string }[] };
      assert.deepEqual(body.problems, [
        { path: '/alerts/rules/0/groupBy', message: 'must be one of "none", "src", "dst", "pair"' },
        {
          path: '/alerts/rules/1/severity',
          message: 'must be one of "info", "low", "medium", "high", "critical"',
        },
        { path: '/alerts/rules/1/k', message: 'must be >= 1' },
      ]);
      const health = await get('/health');
      assert.equal(health.status, 200);
    });

    t('fuzz: random bodies never get a 5xx', async () => {
      let seed = 12345;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
      };
      const valid = JSON.stringify({ records: benign.slice(0, 3) });
      const values = [null, true, 1e308, -1, 'x', [], {}, [1, 2], { a: { b: [] } }, '\u0000', 'NaN'];
      for (let i = 0; i < 150; i++) {
        let body: string;
        const r = rnd();
        if (r < 0.3) body = valid.slice(0, Math.floor(rnd() * valid.length));
        else if (r < 0.6) {
          const b = Buffer.from(valid);
          for (let k = 0; k < 3; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
          body = b.toString('latin1');
        } else {
          const rec: Record<string, unknown> = { ...benign[0] };
          const keys = Object.keys(rec);
          rec[keys[Math.floor(rnd() * keys.length)]] = values[Math.floor(rnd() * values.length)];
          body = JSON.stringify(
            rnd() < 0.5 ? { records: [rec] } : { log_entries: [rec], x: values[i % values.length] },
          );
        }
        const path = rnd() < 0.5 ? '/detect' : rnd() < 0.5 ? '/threat-detection' : '/ingest';
        const res = await post(path, body);
        assert.ok(res.status < 500, `body ${JSON.stringify(body).slice(0, 200)} → ${res.status}`);
        await res.arrayBuffer();
      }
      assert.equal((await get('/health')).status, 200);
    });

    t('live stream: an anomaly posted to /detect arrives as an SSE verdict event', async () => {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 10_000);
      const res = await fetch(`${base}/api/v1/stream`, { signal: ac.signal });
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const posted = await post('/detect', { records: attacks });
      assert.equal(posted.status, 200);
      const expected = ((await posted.json()) as { verdicts: { is_anomaly: boolean }[] }).verdicts.filter(
        (v) => v.is_anomaly,
      ).length;
      assert.ok(expected > 0);
      let text = '';
      const dec = new TextDecoder();
      try {
        while ((text.match(/event: verdict/g) ?? []).length < expected) {
          const { value, done } = await reader.read();
          if (done) break;
          text += dec.decode(value);
        }
      } finally {
        clearTimeout(timer);
        ac.abort();
      }
      // Only anomalies are streamed (without ?all=true), every one of them.
      assert.equal((text.match(/event: verdict/g) ?? []).length, expected);
      assert.ok(!text.includes('"is_anomaly":false'));
      assert.match(text, /event: verdict\ndata: \{.*"is_anomaly":true/);
    });

    t('hot swap: activating a model while requests are in flight drops none', async () => {
      const models = (await (await get('/models')).json()) as { items: { id: string; active: boolean }[] };
      const id = models.items.find((m) => m.active)?.id as string;
      const batch = { records: benign.slice(0, 50) };
      const inflight = Array.from({ length: 30 }, () => post('/detect', batch));
      const swaps = [post(`/models/${id}/activate`, '{}'), post(`/models/${id}/activate`, '{}')];
      const all = await Promise.all([...inflight, ...swaps]);
      for (const r of all) assert.equal(r.status, 200);
    });
  });
}

apiSuite('DuckDB', async () => openStore({ dataDir: tmp('nadir-serve-duck-'), databaseUrl: '' }));
apiSuite('PostgreSQL', async () => {
  const why = await pgReachable();
  if (why) return why;
  return openStore({ databaseUrl: PG_URL, schema: `nadir_api_${process.pid}_${Date.now() % 100000}` });
});

describe('nadir serve learns a baseline when it has no model', () => {
  it('collects N flows, fits, registers and activates a model, then scores', async (ctx) => {
    if (!cic) return ctx.skip(NO_DATASETS);
    const dataDir = tmp('nadir-learn-');
    const store = await openStore({ dataDir, databaseUrl: '' });
    const srv = await buildServer({
      store,
      dataDir,
      apiKeys: [KEY],
      initialConfig: { learning: { ...DEFAULT_CONFIG.learning, baselineFlows: 300 } },
    });
    await srv.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}/api/v1`;
    try {
      const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
      const rows = csvObjects(join(cic, 'BENIGN_5000.csv'), 600);
      // A partial record first: the learned model must not be limited to its two columns.
      const partial = await fetch(`${base}/detect`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ records: [{ 'Flow Duration': 1200, 'Total Fwd Packet': 3 }] }),
      });
      assert.equal(partial.status, 200);
      const first = await fetch(`${base}/detect`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ records: rows.slice(0, 150) }),
      });
      const b1 = (await first.json()) as { status: string; verdicts: { status: string; score: null }[] };
      assert.equal(b1.status, 'learning');
      assert.equal(b1.verdicts[0].score, null);
      const ing = await fetch(`${base}/ingest`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ records: rows.slice(150, 300) }),
      });
      assert.equal(((await ing.json()) as { accepted: number }).accepted, 150);
      const ready = await until('the learned model', async () => {
        const r = (await (await fetch(`${base}/ready`)).json()) as { mode: string; model: string | null };
        return r.mode === 'detecting' ? r : undefined;
      });
      const models = (await (await fetch(`${base}/models`)).json()) as {
        items: { id: string; info: { auto?: boolean } }[];
      };
      assert.equal(models.items.length, 1);
      assert.equal(models.items[0].id, ready.model);
      assert.equal(models.items[0].info.auto, true);
      const features = (models.items[0].info as { features?: number }).features ?? 0;
      assert.ok(features > 40, `the learned model uses ${features} features`);
      const scans = csvObjects(join(cic, 'Portscan_5000.csv'), 100);
      const res = await fetch(`${base}/detect`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ records: [...rows.slice(300, 400), ...scans] }),
      });
      const body = (await res.json()) as {
        status: string;
        verdicts: { is_anomaly: boolean; score: number }[];
      };
      assert.equal(body.status, 'detecting');
      // The learned model ranks unseen scans above unseen normal flows (its threshold, p99.5 of
      // normal scores, is strict on purpose: few false alarms on a network it knows little of).
      const scores = body.verdicts.map((v) => v.score);
      const positive = body.verdicts.map((_, i) => i >= 100);
      const a = auroc(scores, positive);
      assert.ok(a > 0.8, `AUROC scans vs normal ${a}`);
      const falseAlarms = body.verdicts.slice(0, 100).filter((v) => v.is_anomaly).length;
      assert.ok(falseAlarms <= 5, `${falseAlarms} of 100 normal flows flagged`);
    } finally {
      await srv.app.close();
    }
    // The ingested flows come back out as a CSV that `nadir train` reads.
    const csv = join(dataDir, 'recorded.csv');
    const exp = spawnSync(process.execPath, [CLI, 'export-traffic', '--data-dir', dataDir, '-o', csv], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: '' },
    });
    assert.equal(exp.status, 0, exp.stderr);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(lines.length, 151, 'header + the 150 ingested rows');
    const header = lines[0].split(',');
    const rows = csvObjects(join(cic, 'BENIGN_5000.csv'), 300).slice(150, 300);
    const fid = header.indexOf('Flow ID');
    const dur = header.indexOf('Flow Duration');
    lines.slice(1).forEach((l, i) => {
      const cells = l.split(',');
      assert.equal(cells[fid], rows[i]['Flow ID']);
      assert.equal(Number(cells[dur]), Number(rows[i]['Flow Duration']));
    });
    const tr = spawnSync(
      process.execPath,
      [CLI, 'train', '--data', csv, '--out', join(dataDir, 'm2'), '--quiet'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(tr.status, 0, tr.stderr);
  });
});

describe('nadir serve rate limiting', () => {
  it('answers 429 past the per-key limit, and other keys are unaffected', async () => {
    const store = await openStore({ dataDir: tmp('nadir-rate-'), databaseUrl: '' });
    const other = 'other-key-0123456789abcdef';
    const srv = await buildServer({
      store,
      dataDir: tmp('nadir-rate-data-'),
      apiKeys: [KEY, other],
      rateLimit: 5,
    });
    await srv.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}/api/v1`;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++)
        statuses.push(
          (await fetch(`${base}/models`, { headers: { authorization: `Bearer ${KEY}` } })).status,
        );
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.equal(
        (await fetch(`${base}/models`, { headers: { authorization: `Bearer ${other}` } })).status,
        200,
      );
      const text = await (
        await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${other}` } })
      ).text();
      assert.match(text, /nadir_rejected_requests_total\{reason="rate"\} 2/);
    } finally {
      await srv.app.close();
    }
  });
});

describe('nadir serve without a model and with learning off', () => {
  it('answers 503 to /detect and says what to do; /ready is 503 too', async () => {
    const store = await openStore({ dataDir: tmp('nadir-idle-'), databaseUrl: '' });
    const srv = await buildServer({
      store,
      dataDir: tmp('nadir-idle-data-'),
      apiKeys: [KEY],
      initialConfig: { learning: { ...DEFAULT_CONFIG.learning, enabled: false } },
    });
    await srv.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}/api/v1`;
    try {
      const res = await fetch(`${base}/detect`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ records: [{ 'Flow Duration': 1 }] }),
      });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { message: string }).message, /activate a model/);
      assert.equal((await fetch(`${base}/ready`)).status, 503);
    } finally {
      await srv.app.close();
    }
  });
});
