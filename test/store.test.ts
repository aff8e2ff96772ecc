/**
 * The store's contract, run against both implementations: DuckDB in a temporary directory and
 * PostgreSQL at 127.0.0.1:5432/test (one fresh schema per test, dropped afterwards; the suite is
 * skipped when the server is not reachable, and fails instead under NADIR_REQUIRE_SERVICES=1).
 * Expectations are computed here from the inserted rows, never read back from the store.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { UserError } from '../src/core/diagnostics.js';
import { Rng } from '../src/core/rng.js';
import { LATEST_VERSION } from '../src/store/migrations.js';
import { openStore } from '../src/store/open.js';
import type {
  Alert,
  AlertInput,
  AlertQuery,
  AlertStatus,
  Ingested,
  ModelRecord,
  Page,
  Prediction,
  PredictionInput,
  PredictionQuery,
  Severity,
  Store,
} from '../src/store/store.js';
import { DEFAULT_PAGE, MAX_PAGE } from '../src/store/store.js';
import { ROOT, tmp } from './helpers.js';

/** The test server (trust auth); NADIR_TEST_DATABASE_URL points the suite elsewhere. */
const PG_URL = process.env.NADIR_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const T0 = 1_700_000_000_000;

// --- environments ----------------------------------------------------------------------------------

/** A fresh, empty store location; `open` may be called again to reopen it. */
interface Env {
  open(): Promise<Store>;
  /** Runs SQL directly against the database (the store must be closed for DuckDB). */
  raw(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

function duckEnv(): Env {
  const dir = tmp('nadir-store-');
  const opened: Store[] = [];
  return {
    async open() {
      const s = await openStore({ dataDir: dir, databaseUrl: '' });
      opened.push(s);
      return s;
    },
    async raw(sql) {
      const inst = await DuckDBInstance.create(join(dir, 'nadir.duckdb'));
      const c = await inst.connect();
      try {
        await c.run(sql);
      } finally {
        c.closeSync();
        inst.closeSync();
      }
    },
    async cleanup() {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const runId = randomBytes(4).toString('hex');
let schemaSeq = 0;

function pgEnv(): Env {
  const schema = `nadir_test_${runId}_${++schemaSeq}`;
  const opened: Store[] = [];
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  return {
    async open() {
      const s = await openStore({ databaseUrl: PG_URL, schema });
      opened.push(s);
      return s;
    },
    raw: admin,
    async cleanup() {
      for (const s of opened) await s.close();
      await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

async function pgReachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Opens a fresh env and store, runs `fn`, then closes everything and removes the data. */
async function withStore(make: () => Env, fn: (s: Store, env: Env) => Promise<void>): Promise<void> {
  const env = make();
  try {
    await fn(await env.open(), env);
  } finally {
    await env.cleanup();
  }
}

// --- data ------------------------------------------------------------------------------------------

const INJECTIONS = [
  "'; DROP TABLE predictions; --",
  'Robert"); DROP TABLE alerts;--',
  "x' OR '1'='1",
  '$1',
  '\\',
  'NULL',
  '%_%',
  '{"a":1}',
];

const LABELS = ['BENIGN', 'DDoS', 'PortScan', INJECTIONS[2], null];
const IPS = ['10.0.0.1', '10.0.0.2', '192.168.1.7', 'fe80::1', null];

function genPredictions(n: number, seed: number): PredictionInput[] {
  const rng = new Rng(seed);
  const pick = <T>(a: readonly T[]): T => a[rng.int(a.length)];
  const out: PredictionInput[] = [];
  for (let i = 0; i < n; i++) {
    const score = rng.next() < 0.1 ? null : Math.round(rng.next() * 10_000) / 1000;
    const isAnomaly = score !== null && score > 7;
    out.push({
      ts: T0 + rng.int(100_000),
      source: pick(['api', 'capture', 'netflow']),
      model: pick(['m1', 'm2', null]),
      score,
      threshold: score === null ? null : 7,
      isAnomaly,
      threatType: isAnomaly ? pick(['dos', 'scan', null]) : null,
      label: pick(LABELS),
      flowId: `flow-${seed}-${i}`,
      srcIp: pick(IPS),
      srcPort: rng.next() < 0.1 ? null : rng.int(65536),
      dstIp: pick(IPS),
      dstPort: rng.next() < 0.1 ? null : rng.int(65536),
      protocol: pick([6, 17, 1, null]),
      flowTimestamp: rng.next() < 0.5 ? null : `2017-07-07 10:${String(rng.int(60)).padStart(2, '0')}:00`,
      contributions: isAnomaly
        ? [{ feature: 'Flow Bytes/s', value: rng.next(), typical: 0.5, share: 0.6 }]
        : null,
      features: isAnomaly ? { a: rng.next(), b: rng.int(100) } : null,
    });
  }
  return out;
}

/** The query's filters, written out independently of the stores' SQL. */
function matches(p: PredictionInput, q: PredictionQuery): boolean {
  if (q.from !== undefined && !(p.ts >= q.from)) return false;
  if (q.to !== undefined && !(p.ts < q.to)) return false;
  if (q.anomalies === true && !p.isAnomaly) return false;
  if (q.label !== undefined && p.label !== q.label) return false;
  if (q.threatType !== undefined && p.threatType !== q.threatType) return false;
  if (q.model !== undefined && p.model !== q.model) return false;
  if (q.minScore !== undefined && !(p.score !== null && p.score >= q.minScore)) return false;
  if (q.maxScore !== undefined && !(p.score !== null && p.score <= q.maxScore)) return false;
  if (q.srcIp !== undefined && p.srcIp !== q.srcIp) return false;
  if (q.dstIp !== undefined && p.dstIp !== q.dstIp) return false;
  return true;
}

/** Every item of a paged listing, following cursors; checks page sizes and cursor bookkeeping. */
async function walk<T extends { id: number }>(
  fetch: (cursor: number | undefined) => Promise<Page<T>>,
  size: number,
): Promise<T[]> {
  const all: T[] = [];
  let cursor: number | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const p = await fetch(cursor);
    assert.ok(p.items.length <= size, `page of ${p.items.length} > ${size}`);
    all.push(...p.items);
    if (p.nextCursor === null) return all;
    assert.equal(p.items.length, size, 'a page followed by another is full');
    assert.equal(p.nextCursor, p.items[p.items.length - 1].id);
    cursor = p.nextCursor;
  }
  throw new Error('pagination did not end');
}

const withIds = <T>(rows: T[], ids: number[]): (T & { id: number })[] =>
  rows.map((r, i) => ({ ...r, id: ids[i] }));
const newestFirst = <T extends { id: number }>(rows: T[]): T[] => [...rows].sort((a, b) => b.id - a.id);

function alertInput(over: Partial<AlertInput> = {}): AlertInput {
  return {
    rule: 'count',
    key: 'count:dst=10.0.0.5',
    severity: 'medium',
    status: 'open',
    firstSeen: T0,
    lastSeen: T0 + 1000,
    count: 3,
    score: 8.5,
    threshold: 7,
    model: 'm1',
    summary: '3 anomalies towards 10.0.0.5',
    details: { top: [{ feature: 'Flow Bytes/s', observed: 1e9, typical: 1200 }], note: 'ünï ✓' },
    ...over,
  };
}

function model(id: string, over: Partial<ModelRecord> = {}): ModelRecord {
  return {
    id,
    kind: 'autoencoder',
    path: `/models/${id}`,
    createdAt: T0,
    registeredAt: T0 + 10,
    threshold: 0.42,
    fingerprint: `sha256:${id}`,
    info: { auroc: 0.97, rows: 12345, nested: { list: [1, 'two', null] } },
    active: false,
    ...over,
  };
}

// --- the suite -------------------------------------------------------------------------------------

function storeSuite(name: string, make: () => Env, skip: string | false): void {
  describe(`store: ${name}`, { skip }, () => {
    it('round-trips every prediction field, including nulls, JSON, unicode and extreme numbers', async () => {
      await withStore(make, async (s) => {
        const rows: PredictionInput[] = [
          {
            ts: T0,
            source: 'api',
            model: null,
            score: null,
            threshold: null,
            isAnomaly: false,
            threatType: null,
            label: null,
            flowId: null,
            srcIp: null,
            srcPort: null,
            dstIp: null,
            dstPort: null,
            protocol: null,
            flowTimestamp: null,
            contributions: null,
            features: null,
          },
          {
            ts: T0 + 1,
            source: 'capture ünïcødé 🚀 中文 עברית',
            model: 'ae-2024-01-01',
            score: Number.MAX_VALUE,
            threshold: Number.MIN_VALUE,
            isAnomaly: true,
            threatType: 'dos 💥',
            label: 'DoS Hulk – ‘quoted’ “text”',
            flowId: '10.0.0.1-10.0.0.2-1234-80-6',
            srcIp: '10.0.0.1',
            srcPort: 0,
            dstIp: 'fe80::1%eth0',
            dstPort: 65535,
            protocol: 255,
            flowTimestamp: '7/7/2017 8:59:00 AM',
            contributions: [
              { feature: 'Flow Bytes/s', value: 1e300, typical: -1e-300, share: 0.75 },
              { feature: 'proto', value: 'tcp', typical: 'udp', share: 0.25 },
            ],
            features: { 'Flow Bytes/s': 123456789.125, 'nul\u0000key': -0.5, 'é\n\t"\\': 1e-7 },
          },
          {
            ...genPredictions(1, 1)[0],
            ts: 8_640_000_000_000_000,
            score: -1.7976931348623157e308,
            threshold: 0.1 + 0.2,
            label: INJECTIONS[0],
            source: INJECTIONS[1],
          },
        ];
        const ids = await s.insertPredictions(rows);
        assert.equal(ids.length, 3);
        assert.ok(ids[0] < ids[1] && ids[1] < ids[2], `ids increase: ${ids}`);
        const page = await s.queryPredictions({});
        assert.deepEqual(page.items, newestFirst(withIds(rows, ids)));
        assert.equal(page.nextCursor, null);
        assert.deepEqual(await s.insertPredictions([]), []);
      });
    });

    it('stores SQL-injection-looking strings verbatim and filters on them exactly', async () => {
      await withStore(make, async (s) => {
        const base = genPredictions(INJECTIONS.length, 2);
        const rows = base.map((p, i) => ({
          ...p,
          label: INJECTIONS[i],
          srcIp: INJECTIONS[i],
          model: INJECTIONS[i],
        }));
        const ids = await s.insertPredictions(rows);
        for (let i = 0; i < rows.length; i++) {
          const p = await s.queryPredictions({
            label: INJECTIONS[i],
            srcIp: INJECTIONS[i],
            model: INJECTIONS[i],
          });
          assert.deepEqual(p.items, [{ ...rows[i], id: ids[i] }], INJECTIONS[i]);
        }
        assert.equal(await s.countPredictions(), rows.length, 'nothing dropped');
        const alertId = await s.insertAlert(alertInput({ key: INJECTIONS[0], summary: INJECTIONS[1] }));
        assert.equal((await s.findActiveAlert(INJECTIONS[0], 0))?.id, alertId);
        assert.equal(await s.findActiveAlert("' OR 1=1 --", 0), null);
        await s.putModel(model(INJECTIONS[3], { path: INJECTIONS[4] }));
        assert.equal((await s.getModel(INJECTIONS[3]))?.path, INJECTIONS[4]);
      });
    });

    it('pages newest first with cursors, capped pages, and no duplicates or gaps', async () => {
      await withStore(make, async (s) => {
        const rows = genPredictions(2537, 3);
        const ids: number[] = [];
        let at = 0;
        for (const n of [1, 999, 1000, 537]) {
          ids.push(...(await s.insertPredictions(rows.slice(at, at + n))));
          at += n;
        }
        assert.equal(new Set(ids).size, rows.length);
        for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'ids increase across batches');
        const expected = newestFirst(withIds(rows, ids));

        const full = await walk((cursor) => s.queryPredictions({ cursor, limit: 1000 }), 1000);
        assert.deepEqual(full, expected);
        const small = await walk((cursor) => s.queryPredictions({ cursor, limit: 250 }), 250);
        assert.deepEqual(
          small.map((p) => p.id),
          expected.map((p) => p.id),
        );

        assert.equal((await s.queryPredictions({ limit: 5000 })).items.length, MAX_PAGE);
        assert.equal((await s.queryPredictions({})).items.length, DEFAULT_PAGE);
        assert.equal((await s.queryPredictions({ limit: 0 })).items.length, 1);
        assert.equal((await s.queryPredictions({ limit: -3 })).items.length, 1);

        const mid = expected[1234].id;
        const after = await s.queryPredictions({ cursor: mid, limit: 5 });
        assert.deepEqual(after.items, expected.slice(1235, 1240));
        const last = await s.queryPredictions({ cursor: expected[expected.length - 3].id, limit: 10 });
        assert.deepEqual(last.items, expected.slice(-2));
        assert.equal(last.nextCursor, null);
        const exact = await s.queryPredictions({ cursor: expected[expected.length - 5].id, limit: 4 });
        assert.equal(exact.items.length, 4);
        assert.equal(exact.nextCursor, null, 'no empty page after the last full one');
      });
    });

    it('applies every PredictionQuery filter, alone and combined, and counts the same rows', async () => {
      await withStore(make, async (s) => {
        // Some scores sit exactly on the query bounds below, so inclusive/exclusive mistakes show.
        const rows = genPredictions(900, 4).map((p, i) =>
          i % 50 === 7 ? { ...p, score: [3, 2.5, 4.25, 8][((i / 50) % 4) | 0] } : p,
        );
        const ids = [
          ...(await s.insertPredictions(rows.slice(0, 450))),
          ...(await s.insertPredictions(rows.slice(450))),
        ];
        const stored = withIds(rows, ids);
        const queries: PredictionQuery[] = [
          {},
          { anomalies: true },
          { label: 'DDoS' },
          { label: INJECTIONS[2] },
          { label: 'no such label' },
          { threatType: 'scan' },
          { model: 'm2' },
          { minScore: 3 },
          { maxScore: 3 },
          { minScore: 2.5, maxScore: 4.25 },
          { minScore: 7.001 },
          { srcIp: '10.0.0.2' },
          { dstIp: 'fe80::1' },
          { from: T0 + 25_000 },
          { to: T0 + 25_000 },
          { from: T0 + 10_000, to: T0 + 60_000 },
          { from: T0 + 50_000, to: T0 + 50_000 },
          { anomalies: true, model: 'm1', from: T0 + 20_000 },
          { label: 'BENIGN', srcIp: '10.0.0.1', dstIp: '192.168.1.7', maxScore: 8 },
          { threatType: 'dos', minScore: 8, to: T0 + 90_000 },
        ];
        for (const q of queries) {
          const expected = newestFirst(stored.filter((p) => matches(p, q)));
          const got = await walk((cursor) => s.queryPredictions({ ...q, cursor, limit: 97 }), 97);
          assert.deepEqual(
            got.map((p) => p.id),
            expected.map((p) => p.id),
            JSON.stringify(q),
          );
          assert.deepEqual((await s.queryPredictions({ ...q, limit: 10 })).items, expected.slice(0, 10));
          assert.equal(await s.countPredictions(q), expected.length, `count ${JSON.stringify(q)}`);
          // A cursor narrows the page but not the count.
          assert.equal(await s.countPredictions({ ...q, cursor: ids[100], limit: 1 }), expected.length);
        }
        assert.ok(
          stored.some((p) => p.isAnomaly) && stored.some((p) => p.score === null),
          'data covers cases',
        );
        // `anomalies` is an "only anomalies" flag: false does not filter.
        assert.equal(await s.countPredictions({ anomalies: false }), rows.length);
        assert.equal(await s.countPredictions(), rows.length);
      });
    });

    it('records ingested rows and reads them oldest first after an id', async () => {
      await withStore(make, async (s) => {
        const rows = Array.from({ length: 25 }, (_, i) => ({
          ts: T0 + i,
          source: i % 2 ? 'api' : 'netflow',
          record: {
            'Flow ID': `f${i}`,
            ' Destination Port': 80 + i,
            nested: { ok: true, list: [1, null, 'x'] },
            s: INJECTIONS[i % 8],
          },
        }));
        const ids = [
          ...(await s.insertIngested(rows.slice(0, 10))),
          ...(await s.insertIngested(rows.slice(10))),
        ];
        assert.equal(new Set(ids).size, 25);
        assert.equal(await s.countIngested(), 25);
        const expected = withIds(rows, ids);
        const read: Ingested[] = [];
        let after = 0;
        for (;;) {
          const batch = await s.readIngested(after, 7);
          if (!batch.length) break;
          assert.ok(batch.length <= 7);
          read.push(...batch);
          after = batch[batch.length - 1].id;
        }
        assert.deepEqual(read, expected);
        assert.deepEqual(await s.readIngested(ids[20], 100), expected.slice(21));
        assert.deepEqual(await s.insertIngested([]), []);
      });
    });

    it('runs the alert lifecycle: insert, update, find active, status changes', async () => {
      await withStore(make, async (s) => {
        const a1in = alertInput();
        const a1 = await s.insertAlert(a1in);
        assert.deepEqual(await s.getAlert(a1), { ...a1in, id: a1, statusChangedAt: null });
        assert.equal(await s.getAlert(a1 + 1000), null);

        await s.updateAlert(a1, {
          count: 5,
          lastSeen: T0 + 2000,
          score: 9.5,
          severity: 'high',
          summary: '5 anomalies',
          details: { why: 'more' },
        });
        const u1 = {
          ...a1in,
          id: a1,
          statusChangedAt: null,
          count: 5,
          lastSeen: T0 + 2000,
          score: 9.5,
          severity: 'high' as Severity,
          summary: '5 anomalies',
          details: { why: 'more' },
        };
        assert.deepEqual(await s.getAlert(a1), u1);
        await s.updateAlert(a1, {});
        await s.updateAlert(a1, { count: 6 });
        assert.deepEqual(await s.getAlert(a1), { ...u1, count: 6 });

        assert.equal((await s.findActiveAlert(a1in.key, T0 + 1500))?.id, a1);
        assert.equal((await s.findActiveAlert(a1in.key, T0 + 2000))?.id, a1, 'since is inclusive');
        assert.equal(await s.findActiveAlert(a1in.key, T0 + 2001), null, 'last seen before since');
        assert.equal(await s.findActiveAlert('count:dst=10.0.0.6', 0), null, 'other key');

        const a2 = await s.insertAlert(alertInput({ firstSeen: T0 + 3000, lastSeen: T0 + 3000 }));
        assert.ok(a2 > a1);
        assert.equal((await s.findActiveAlert(a1in.key, 0))?.id, a2, 'newest first');

        const acked = await s.setAlertStatus(a2, 'acked', T0 + 4000);
        assert.deepEqual(acked, { ...(await s.getAlert(a2)), status: 'acked', statusChangedAt: T0 + 4000 });
        assert.equal(acked?.summary, a1in.summary);
        assert.equal((await s.findActiveAlert(a1in.key, 0))?.id, a2, 'acked is still active');
        const again = await s.setAlertStatus(a2, 'acked', T0 + 4500);
        assert.equal(again?.statusChangedAt, T0 + 4000, 'same status: no change recorded');
        const resolved = await s.setAlertStatus(a2, 'resolved', T0 + 5000);
        assert.equal(resolved?.status, 'resolved');
        assert.equal(resolved?.statusChangedAt, T0 + 5000);
        assert.equal((await s.findActiveAlert(a1in.key, 0))?.id, a1, 'resolved ones are skipped');
        await s.setAlertStatus(a1, 'resolved', T0 + 6000);
        assert.equal(await s.findActiveAlert(a1in.key, 0), null);
        const reopened = await s.setAlertStatus(a1, 'open', T0 + 7000);
        assert.equal(reopened?.statusChangedAt, T0 + 7000);
        assert.equal((await s.findActiveAlert(a1in.key, 0))?.id, a1);
        assert.equal(await s.setAlertStatus(a2 + 1000, 'acked', T0), null, 'unknown id');
      });
    });

    it('applies every AlertQuery filter with paging', async () => {
      await withStore(make, async (s) => {
        const rng = new Rng(5);
        const rules = ['count', 'score', "rate'; --"];
        const severities: Severity[] = ['info', 'low', 'medium', 'high', 'critical'];
        const statuses: AlertStatus[] = ['open', 'acked', 'resolved'];
        const stored: Alert[] = [];
        for (let i = 0; i < 160; i++) {
          const firstSeen = T0 + rng.int(100_000);
          const a = alertInput({
            rule: rules[rng.int(3)],
            key: `k${rng.int(20)}`,
            severity: severities[rng.int(5)],
            status: statuses[rng.int(3)],
            firstSeen,
            lastSeen: firstSeen + rng.int(20_000),
            count: 1 + rng.int(50),
            model: rng.next() < 0.2 ? null : 'm1',
          });
          stored.push({ ...a, id: await s.insertAlert(a), statusChangedAt: null });
        }
        const queries: AlertQuery[] = [
          {},
          { status: 'open' },
          { status: 'resolved' },
          { severity: 'critical' },
          { rule: rules[2] },
          { from: T0 + 50_000 },
          { to: T0 + 30_000 },
          { from: T0 + 40_000, to: T0 + 45_000 },
          { status: 'acked', severity: 'low', rule: 'count' },
          { status: 'open', from: T0 + 20_000, to: T0 + 80_000 },
        ];
        for (const q of queries) {
          const expected = newestFirst(
            stored.filter(
              (a) =>
                (q.status === undefined || a.status === q.status) &&
                (q.severity === undefined || a.severity === q.severity) &&
                (q.rule === undefined || a.rule === q.rule) &&
                (q.from === undefined || a.lastSeen >= q.from) &&
                (q.to === undefined || a.firstSeen < q.to),
            ),
          );
          const got = await walk((cursor) => s.queryAlerts({ ...q, cursor, limit: 13 }), 13);
          assert.deepEqual(got, expected, JSON.stringify(q));
        }
        assert.equal((await s.queryAlerts({})).items.length, DEFAULT_PAGE);
        assert.equal((await s.queryAlerts({ limit: 10_000 })).items.length, stored.length);
      });
    });

    it('records deliveries and lists them per alert', async () => {
      await withStore(make, async (s) => {
        const a1 = await s.insertAlert(alertInput());
        const a2 = await s.insertAlert(alertInput({ key: 'other' }));
        const d = [
          {
            alertId: a1,
            channel: 'ops-webhook',
            kind: 'webhook',
            attempt: 1,
            ok: false,
            detail: 'HTTP 503',
            ts: T0 + 1,
          },
          { alertId: a2, channel: 'slack', kind: 'slack', attempt: 1, ok: true, detail: 'ok ✓', ts: T0 + 2 },
          {
            alertId: a1,
            channel: 'ops-webhook',
            kind: 'webhook',
            attempt: 2,
            ok: true,
            detail: 'HTTP 200',
            ts: T0 + 3,
          },
        ];
        const ids: number[] = [];
        for (const x of d) ids.push(await s.insertDelivery(x));
        assert.ok(ids[0] < ids[1] && ids[1] < ids[2]);
        const all = withIds(d, ids);
        assert.deepEqual(await s.deliveriesFor([a1]), [all[0], all[2]]);
        assert.deepEqual(await s.deliveriesFor([a2, a1]), all);
        assert.deepEqual(await s.deliveriesFor([]), []);
        assert.deepEqual(await s.deliveriesFor([a2 + 100]), []);
      });
    });

    it('keeps a model registry with exactly one active model', async () => {
      await withStore(make, async (s) => {
        assert.deepEqual(await s.listModels(), []);
        const m1 = model('m1');
        const m2 = model('m2', { registeredAt: T0 + 20, active: true });
        await s.putModel(m1);
        await s.putModel(m2);
        assert.deepEqual(await s.listModels(), [m1, m2]);
        const m1b = model('m1', { path: '/elsewhere', threshold: 1.5, info: { replaced: true } });
        await s.putModel(m1b);
        assert.deepEqual(await s.getModel('m1'), m1b, 'replaced by id');
        assert.equal((await s.listModels()).length, 2);
        assert.equal(await s.getModel('nope'), null);

        const active = async () => (await s.listModels()).filter((m) => m.active).map((m) => m.id);
        assert.deepEqual(await active(), ['m2']);
        await s.activateModel('m1');
        assert.deepEqual(await active(), ['m1']);
        await s.activateModel('m1');
        assert.deepEqual(await active(), ['m1']);
        await assert.rejects(s.activateModel('nope'), UserError);
        assert.deepEqual(await active(), ['m1'], 'a failed activation changes nothing');
        await s.putModel(model('m3', { registeredAt: T0 + 30, active: true }));
        assert.deepEqual(await active(), ['m3'], 'putting an active model deactivates the others');
        await Promise.all(['m1', 'm2', 'm3', 'm2', 'm1'].map((id) => s.activateModel(id)));
        assert.equal((await active()).length, 1, 'concurrent activations leave one active');
      });
    });

    it('versions the configuration', async () => {
      await withStore(make, async (s) => {
        assert.equal(await s.getConfig(), null);
        const v1 = { alerts: { channels: [{ name: 'slack', url: 'https://hooks.example/x' }] }, note: 'ünï' };
        assert.equal(await s.putConfig(v1), 1);
        assert.deepEqual(await s.getConfig(), { version: 1, value: v1 });
        const v2 = { alerts: { channels: [] }, threshold: 0.5 };
        assert.equal(await s.putConfig(v2), 2);
        assert.deepEqual(await s.getConfig(), { version: 2, value: v2 });
        const versions = await Promise.all([1, 2, 3, 4, 5].map((i) => s.putConfig({ i })));
        assert.deepEqual(
          [...versions].sort((a, b) => a - b),
          [3, 4, 5, 6, 7],
        );
        const last = await s.getConfig();
        assert.equal(last?.version, 7);
        assert.deepEqual(last?.value, { i: versions.indexOf(7) + 1 });
      });
    });

    it('deletes exactly the rows older than a cut-off, and only resolved alerts', async () => {
      await withStore(make, async (s) => {
        const cut = T0 + 50_000;
        const preds = genPredictions(400, 6);
        const pids = await s.insertPredictions(preds);
        const ingested = preds.map((p) => ({ ts: p.ts, source: 'api', record: { f: p.flowId } }));
        await s.insertIngested(ingested);
        const old = { firstSeen: T0, lastSeen: cut - 1 };
        const gone = await s.insertAlert(alertInput({ ...old, status: 'resolved' }));
        const goneLater = await s.insertAlert(alertInput(old));
        await s.setAlertStatus(goneLater, 'resolved', cut - 1);
        const resolvedAfterCut = await s.insertAlert(alertInput(old));
        await s.setAlertStatus(resolvedAfterCut, 'resolved', cut);
        const openOld = await s.insertAlert(alertInput(old));
        const ackedOld = await s.insertAlert(alertInput({ ...old, status: 'acked' }));
        const resolvedNew = await s.insertAlert(
          alertInput({ firstSeen: T0, lastSeen: cut, status: 'resolved' }),
        );
        const keep = [resolvedAfterCut, openOld, ackedOld, resolvedNew];
        for (const a of [gone, goneLater, ...keep])
          await s.insertDelivery({
            alertId: a,
            channel: 'c',
            kind: 'log',
            attempt: 1,
            ok: true,
            detail: '',
            ts: T0,
          });

        const oldPreds = preds.filter((p) => p.ts < cut).length;
        assert.ok(oldPreds > 0 && oldPreds < preds.length);
        assert.deepEqual(await s.deleteOlderThan(cut), {
          predictions: oldPreds,
          ingested: oldPreds,
          alerts: 2,
        });

        const left = await walk((cursor) => s.queryPredictions({ cursor, limit: 1000 }), 1000);
        assert.deepEqual(
          left.map((p) => p.id),
          newestFirst(withIds(preds, pids).filter((p) => p.ts >= cut)).map((p) => p.id),
        );
        assert.equal(await s.countIngested(), preds.length - oldPreds);
        assert.ok((await s.readIngested(0, 10_000)).every((r) => r.ts >= cut));
        assert.equal(await s.getAlert(gone), null);
        assert.equal(await s.getAlert(goneLater), null);
        for (const a of keep) assert.notEqual(await s.getAlert(a), null);
        assert.deepEqual(
          (await s.deliveriesFor([gone, goneLater, ...keep])).map((d) => d.alertId).sort(),
          [...keep].sort(),
        );
        assert.deepEqual(await s.deleteOlderThan(cut), { predictions: 0, ingested: 0, alerts: 0 });
      });
    });

    it('migrates idempotently, reports its schema version and refuses a newer schema', async () => {
      await withStore(make, async (s, env) => {
        assert.equal(await s.schemaVersion(), LATEST_VERSION);
        await s.ping();
        const ids = await s.insertPredictions(genPredictions(5, 7));
        await s.close();
        await s.close();
        await assert.rejects(s.countPredictions(), /closed/);
        const s2 = await env.open();
        assert.equal(await s2.schemaVersion(), LATEST_VERSION);
        assert.equal(await s2.countPredictions(), 5);
        await s2.close();
        await env.raw(
          `INSERT INTO schema_migrations (version, applied_at) VALUES (${LATEST_VERSION + 1}, 0)`,
        );
        await assert.rejects(env.open(), (e: Error) => {
          assert.ok(e instanceof UserError, String(e));
          assert.match(e.message, new RegExp(`schema version ${LATEST_VERSION + 1}.*upgrade NADIR`));
          return true;
        });
        await env.raw(`DELETE FROM schema_migrations WHERE version = ${LATEST_VERSION + 1}`);
        const s3 = await env.open();
        assert.deepEqual(
          (await s3.queryPredictions({})).items.map((p) => p.id),
          [...ids].reverse(),
        );
      });
    });

    it('keeps everything across close and reopen, and never reuses ids', async () => {
      await withStore(make, async (s, env) => {
        const preds = genPredictions(50, 8);
        const pids = await s.insertPredictions(preds);
        const ing = [{ ts: T0, source: 'api', record: { a: 1 } }];
        const iids = await s.insertIngested(ing);
        const aid = await s.insertAlert(alertInput());
        const acked = await s.setAlertStatus(aid, 'acked', T0 + 5);
        const did = await s.insertDelivery({
          alertId: aid,
          channel: 'c',
          kind: 'log',
          attempt: 1,
          ok: true,
          detail: 'd',
          ts: T0,
        });
        await s.putModel(model('m1', { active: true }));
        await s.putConfig({ a: 1 });
        await s.close();

        const s2 = await env.open();
        assert.deepEqual(
          await walk((cursor) => s2.queryPredictions({ cursor, limit: 1000 }), 1000),
          newestFirst(withIds(preds, pids)),
        );
        assert.deepEqual(await s2.readIngested(0, 10), withIds(ing, iids));
        assert.deepEqual(await s2.getAlert(aid), acked);
        assert.equal((await s2.deliveriesFor([aid]))[0].id, did);
        assert.deepEqual(await s2.listModels(), [model('m1', { active: true })]);
        assert.deepEqual(await s2.getConfig(), { version: 1, value: { a: 1 } });
        const more = await s2.insertPredictions(genPredictions(3, 9));
        assert.ok(more[0] > pids[pids.length - 1], 'ids continue after reopen');

        // Delete everything (all rows are older than the cut), reopen: ids still move forward.
        await s2.setAlertStatus(aid, 'resolved', T0 + 6);
        await s2.deleteOlderThan(T0 + 1_000_000);
        assert.equal(await s2.countPredictions(), 0);
        await s2.close();
        const s3 = await env.open();
        const [next] = await s3.insertPredictions(genPredictions(1, 10));
        assert.ok(next > more[more.length - 1], `id ${next} reused after deletion`);
        const [nextIng] = await s3.insertIngested(ing);
        assert.ok(nextIng > iids[0]);
        const nextAlert = await s3.insertAlert(alertInput());
        assert.ok(nextAlert > aid);
      });
    });

    it('serialises concurrent writers: every row lands once, with its own id', async () => {
      await withStore(make, async (s) => {
        const calls = Array.from({ length: 20 }, (_, k) =>
          genPredictions(50, 100 + k).map((p, i) => ({ ...p, flowId: `c${k}-${i}` })),
        );
        const [results, alerts] = await Promise.all([
          Promise.all(calls.map((rows) => s.insertPredictions(rows))),
          Promise.all(Array.from({ length: 10 }, (_, i) => s.insertAlert(alertInput({ key: `k${i}` })))),
          Promise.all([s.putConfig({ a: 1 }), s.putConfig({ a: 2 }), s.ping()]),
        ]);
        const all = results.flat();
        assert.equal(new Set(all).size, 1000, 'unique ids');
        assert.equal(new Set(alerts).size, 10);
        assert.equal(await s.countPredictions(), 1000);
        const byId = new Map(
          (await walk((cursor) => s.queryPredictions({ cursor, limit: 1000 }), 1000)).map((p) => [p.id, p]),
        );
        for (const [k, ids] of results.entries())
          for (const [i, id] of ids.entries())
            assert.deepEqual(byId.get(id), { ...calls[k][i], id } as Prediction);
      });
    });
  });
}

// --- DuckDB ----------------------------------------------------------------------------------------

storeSuite('duckdb', duckEnv, false);

/** Runs an ESM snippet in a child node process with `openStore` imported. */
function child(code: string): ChildProcess {
  const open = pathToFileURL(join(ROOT, 'dist', 'src', 'store', 'open.js')).href;
  return spawn(
    process.execPath,
    ['--input-type=module', '-e', `import { openStore } from '${open}';\n${code}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

function lines(p: ChildProcess, onLine: (line: string) => void): Promise<number | null> {
  let buf = '';
  let err = '';
  p.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(code);
    });
  });
}

describe('store: duckdb only', () => {
  it('refuses a second open of the same data directory, in this process and from another', async () => {
    const dir = tmp('nadir-store-');
    const first = await openStore({ dataDir: dir, databaseUrl: '' });
    try {
      const inProcess = (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /already open in this process/);
        return true;
      };
      await assert.rejects(openStore({ dataDir: dir, databaseUrl: '' }), inProcess);
      const other = tmp('nadir-store-');
      const both = await Promise.allSettled([0, 1].map(() => openStore({ dataDir: other, databaseUrl: '' })));
      assert.deepEqual(
        both.map((r) => r.status).sort(),
        ['fulfilled', 'rejected'],
        'concurrent opens: one wins',
      );
      for (const r of both)
        if (r.status === 'fulfilled') await r.value.close();
        else inProcess(r.reason);
      rmSync(other, { recursive: true, force: true });
      const out: string[] = [];
      await lines(
        child(`
          try { await openStore({ dataDir: ${JSON.stringify(dir)}, databaseUrl: '' }); console.log('opened'); }
          catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`),
        (l) => out.push(l),
      );
      const r = JSON.parse(out[0]) as { name: string; message: string };
      assert.equal(r.name, 'UserError');
      assert.match(
        r.message,
        new RegExp(`PID ${process.pid}.*holds .*nadir\\.duckdb; stop it or use --data-dir`),
      );
    } finally {
      await first.close();
    }
    const again = await openStore({ dataDir: dir, databaseUrl: '' });
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says what to do when the data directory is a file', async () => {
    const dir = tmp('nadir-store-');
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    await assert.rejects(openStore({ dataDir: file, databaseUrl: '' }), (e: Error) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /not a directory.*--data-dir/);
      return true;
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write when the writer is killed with SIGKILL', async () => {
    const dir = tmp('nadir-store-');
    const writer = child(`
      const s = await openStore({ dataDir: ${JSON.stringify(dir)}, databaseUrl: '' });
      for (let b = 0; ; b++) {
        const rows = Array.from({ length: 200 }, (_, i) => ({ ts: ${T0} + b, source: 'api', model: null, score: i,
          threshold: null, isAnomaly: false, threatType: null, label: null, flowId: b + ':' + i, srcIp: null,
          srcPort: null, dstIp: null, dstPort: null, protocol: null, flowTimestamp: null, contributions: null,
          features: null }));
        const ids = await s.insertPredictions(rows);
        console.log(ids[0] + ' ' + ids[ids.length - 1]);
      }`);
    const acked: [number, number][] = [];
    const done = lines(writer, (l) => {
      const [a, b] = l.split(' ').map(Number);
      acked.push([a, b]);
      if (acked.length === 25) writer.kill('SIGKILL');
    });
    await done;
    assert.equal(writer.signalCode, 'SIGKILL');
    const s = await openStore({ dataDir: dir, databaseUrl: '' });
    try {
      const n = await s.countPredictions();
      assert.ok(n >= 25 * 200, `${n} rows survived, ${25 * 200} were acknowledged`);
      const ids = new Set(
        (await walk((cursor) => s.queryPredictions({ cursor, limit: 1000 }), 1000)).map((p) => p.id),
      );
      for (const [a, b] of acked)
        for (let id = a; id <= b; id++) assert.ok(ids.has(id), `acknowledged id ${id} lost`);
      const [next] = await s.insertPredictions(genPredictions(1, 11));
      assert.ok(next > Math.max(...ids));
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- PostgreSQL ------------------------------------------------------------------------------------

const pgProblem = await pgReachable();
const requireServices = process.env.NADIR_REQUIRE_SERVICES === '1';
const pgSkip =
  pgProblem && !requireServices ? `PostgreSQL not reachable at ${PG_URL} (${pgProblem}); skipped` : false;

if (pgProblem && requireServices)
  describe('store: postgres', () => {
    it('needs PostgreSQL (NADIR_REQUIRE_SERVICES=1)', () => {
      assert.fail(`PostgreSQL not reachable at ${PG_URL}: ${pgProblem}`);
    });
  });
else storeSuite('postgres', pgEnv, pgSkip);

describe('store: postgres only', {
  skip: pgProblem ? `PostgreSQL not reachable at ${PG_URL}; skipped` : false,
}, () => {
  it('never shows the password in its location', async () => {
    const env = pgEnv();
    const schema = `nadir_test_${runId}_pw`;
    // env only serves to run the DROP below.
    const u = new URL(PG_URL);
    u.password = 's3cr%23t';
    const s = await openStore({ databaseUrl: u.href, schema });
    try {
      assert.equal(
        s.location,
        `postgres://${u.username}@${u.hostname}:${u.port || 5432}${u.pathname} (schema ${schema})`,
      );
      assert.ok(!s.location.includes('s3cr'));
    } finally {
      await s.close();
      await env.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('says what to do when PostgreSQL is unreachable or the database is missing', async () => {
    await assert.rejects(openStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/test' }), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /not reachable at postgres:\/\/postgres@127\.0\.0\.1:1\/test.*DATABASE_URL/);
      return true;
    });
    await assert.rejects(
      openStore({
        databaseUrl: Object.assign(new URL(PG_URL), { pathname: `/nadir_missing_${runId}` }).href,
      }),
      (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /does not exist.*createdb/);
        return true;
      },
    );
  });

  it('rejects schema names that are not plain identifiers', async () => {
    for (const schema of ['Public', 'a-b', 'x"; DROP SCHEMA public; --', '1abc', 'a'.repeat(64)])
      await assert.rejects(openStore({ databaseUrl: PG_URL, schema }), UserError, schema);
  });

  it('lets two stores share one schema', async () => {
    const env = pgEnv();
    try {
      const [a, b] = await Promise.all([env.open(), env.open()]);
      const [x, y] = await Promise.all([
        a.insertPredictions(genPredictions(300, 12)),
        b.insertPredictions(genPredictions(300, 13)),
      ]);
      assert.equal(new Set([...x, ...y]).size, 600);
      assert.equal(await a.countPredictions(), 600);
      assert.equal(await b.schemaVersion(), LATEST_VERSION);
    } finally {
      await env.cleanup();
    }
  });
});
