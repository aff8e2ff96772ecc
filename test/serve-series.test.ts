/**
 * Series detection in the service: per-series models trained by `nadir series train` are served
 * by `buildServer({ seriesModel })`; points posted to /api/v1/series/points are scored in order,
 * anomalies are stored (source `series`) and raised as alerts keyed by their series; late points,
 * unknown series and missing values get their own status; writes need the API key; the advanced
 * state is saved as a new version on close, and a restarted server continues from it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { seriesVersions } from '../src/series/registry.js';
import { buildServer, type Server } from '../src/server/app.js';
import { openStore } from '../src/store/open.js';
import { CLI, tmp, writeFile } from './helpers.js';

const KEY = 'series-test-key-0123456789';
const H = 3_600_000;
const T0 = Date.parse('2024-03-04T00:00:00Z');
const level = (link: string, i: number) =>
  (link === 'a' ? 5000 : 800) *
  (1.6 + Math.sin((2 * Math.PI * ((i % 24) - 6)) / 24)) *
  (1 + 0.02 * Math.sin(i * 7.3));

function trainModels(dir: string): string {
  const lines = ['timestamp,link,metric,value'];
  for (let i = 0; i < 21 * 24; i++)
    for (const k of ['a', 'b'])
      lines.push(`${new Date(T0 + i * H).toISOString()},${k},flows,${Math.round(level(k, i))}`);
  const data = writeFile(dir, 'traffic.csv', `${lines.join('\n')}\n`);
  const out = join(dir, 'series-models');
  const r = spawnSync(process.execPath, [CLI, 'series', 'train', '-d', data, '-k', 'link', '-o', out, '-q'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

async function start(dataDir: string, seriesModel?: string): Promise<{ srv: Server; base: string }> {
  const store = await openStore({ dataDir, databaseUrl: '' });
  const srv = await buildServer({ store, dataDir, apiKeys: [KEY], seriesModel, logger: false });
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  return { srv, base: `http://127.0.0.1:${(srv.app.server.address() as AddressInfo).port}/api/v1` };
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
type Json = any;
const json = async (r: Response | Promise<Response>): Promise<Json> => (await r).json();

const post = (base: string, body: unknown, key: string | null = KEY) =>
  fetch(`${base}/series/points`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });

describe('series in nadir serve', () => {
  const dir = tmp('nadir-serve-series-');
  const models = trainModels(dir);
  const at = (i: number) => new Date(T0 + i * H).toISOString();
  const day22 = 21 * 24;

  it('scores points, stores and alerts on anomalies, keeps statuses apart, saves state on close', async () => {
    const { srv, base } = await start(join(dir, 'data'), models);
    try {
      const list = await json(fetch(`${base}/series`));
      assert.equal(list.version, 1);
      assert.deepEqual(
        list.series.map((s: { key: string; season_steps: number }) => [s.key, s.season_steps]),
        [
          ['a', 24],
          ['b', 24],
        ],
      );
      const unauth = await post(base, { points: [] }, null);
      assert.equal(unauth.status, 401);
      const points = [];
      for (let i = day22; i < day22 + 12; i++) {
        points.push({ time: at(i), key: 'a', metric: 'flows', value: Math.round(level('a', i)) });
        points.push({ time: at(i), key: 'b', metric: 'flows', value: Math.round(level('b', i)) });
      }
      // A flood on a at 12:00, an outage on b at 12:00; a missing value; a late point; an unknown key.
      points.push({
        time: at(day22 + 12),
        key: 'a',
        metric: 'flows',
        value: Math.round(level('a', day22 + 12) * 6),
      });
      points.push({ time: at(day22 + 12), key: 'b', metric: 'flows', value: 0 });
      points.push({ time: at(day22 + 13), key: 'a', metric: 'flows', value: null });
      points.push({ time: at(day22 + 3), key: 'b', metric: 'flows', value: 5 });
      points.push({ time: at(day22 + 13), key: 'c', metric: 'flows', value: 5 });
      const r = await post(base, { points });
      assert.equal(r.status, 200, await r.clone().text());
      const body = await json(r);
      const res = body.points as {
        key: string;
        status: string;
        is_anomaly: boolean;
        direction: string;
        id: number;
      }[];
      assert.equal(res.length, points.length);
      const normal = res.slice(0, 24);
      assert.ok(normal.every((p) => p.status === 'scored'));
      assert.ok(normal.filter((p) => p.is_anomaly).length <= 1, 'ordinary hours are not flagged');
      const [flood, outage, missing, late, unknown] = res.slice(24);
      assert.deepEqual([flood.is_anomaly, flood.direction], [true, 'spike']);
      assert.deepEqual([outage.is_anomaly, outage.direction], [true, 'drop']);
      assert.equal(missing.status, 'missing');
      assert.equal(late.status, 'late');
      assert.equal(unknown.status, 'no-model');
      assert.ok(flood.id > 0 && outage.id > 0);

      const anomalies = await json(
        fetch(`${base}/anomalies?limit=50`, { headers: { authorization: `Bearer ${KEY}` } }),
      );
      const stored = anomalies.items.filter((p: { flow_id: string }) => p.flow_id?.startsWith('series:'));
      assert.ok(
        stored.some(
          (p: { id: number; flow_id: string }) => p.id === flood.id && p.flow_id === 'series:a/flows',
        ),
      );
      // Alerts are raised asynchronously; one per series.
      let alerts: { key: string; summary: string }[] = [];
      for (let k = 0; k < 50 && alerts.length < 2; k++) {
        await new Promise((res) => setTimeout(res, 100));
        alerts = (await json(fetch(`${base}/alerts`, { headers: { authorization: `Bearer ${KEY}` } }))).items;
      }
      const keys = alerts.map((a) => a.key).sort();
      assert.ok(
        keys.includes('anomaly:series:a/flows') && keys.includes('anomaly:series:b/flows'),
        keys.join(' '),
      );
      assert.match(
        alerts.find((a) => a.key === 'anomaly:series:b/flows')?.summary ?? '',
        /series drop b\/flows/,
      );
    } finally {
      await srv.app.close();
    }
    assert.deepEqual(seriesVersions(models), [1, 2], 'the advanced state is a new version');
  });

  it('a restarted server continues from the saved state; without series models the routes say how', async () => {
    const { srv, base } = await start(join(dir, 'data2'), models);
    try {
      const list = await json(fetch(`${base}/series`));
      assert.equal(list.version, 2);
      assert.equal(list.series[0].next, at(day22 + 14), 'a continues after its last point');
      const r = await json(
        post(base, { points: [{ time: at(day22 + 12), key: 'a', metric: 'flows', value: 1 }] }),
      );
      assert.equal(r.points[0].status, 'late');
    } finally {
      await srv.app.close();
    }
    const plain = await start(join(dir, 'data3'));
    try {
      const r = await post(plain.base, { points: [] });
      assert.equal(r.status, 404);
      assert.match((await json(r)).message, /--series-model/);
    } finally {
      await plain.srv.app.close();
    }
  });

  it('series from the service’s own flows: a destination that falls silent is a drop', {
    timeout: 60_000,
  }, async () => {
    // Models trained on `series aggregate`-shaped data: flows per destination, 1 s buckets.
    const lines = ['timestamp,dst,metric,value'];
    const r0 = Date.parse('2024-01-01T00:00:00Z');
    for (let i = 0; i < 120; i++)
      for (const d of ['10.0.0.1', '10.0.0.2'])
        lines.push(
          `${new Date(r0 + i * 1000).toISOString()},${d},flows,${100 + ((i * 7 + d.length) % 9) - 4}`,
        );
    const data = writeFile(dir, 'per-dst.csv', `${lines.join('\n')}\n`);
    const out = join(dir, 'live-models');
    const tr = spawnSync(
      process.execPath,
      [CLI, 'series', 'train', '-d', data, '-k', 'dst', '--period', 'none', '-o', out, '-q'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(tr.status, 0, tr.stderr);
    const { srv, base } = await start(join(dir, 'data4'), out);
    try {
      const list = await json(fetch(`${base}/series`));
      assert.deepEqual(list.from_flows, { key: 'dst', bucket_seconds: 1 });
      const flow = (dst: string, i: number) => ({
        srcIp: `192.0.2.${i % 50}`,
        dstIp: dst,
        srcPort: 40000 + i,
        dstPort: 443,
        protocol: 6,
        features: { 'Flow Duration': 1000, 'Total Fwd Packet': 3, 'Total Bwd packets': 2 },
      });
      const send = async (dsts: string[], ms: number) => {
        const end = Date.now() + ms;
        let i = 0;
        while (Date.now() < end) {
          const records = dsts.flatMap((d) => Array.from({ length: 10 }, () => flow(d, i++)));
          const res = await fetch(`${base}/detect`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
            body: JSON.stringify({ records }),
          });
          assert.equal(res.status, 200);
          await new Promise((res2) => setTimeout(res2, 100));
        }
      };
      // ~100 flows/s to each; the first buckets after the long gap since training warm the state up.
      await send(['10.0.0.1', '10.0.0.2'], 6000);
      await send(['10.0.0.2'], 4000); // 10.0.0.1 falls silent
      await new Promise((res) => setTimeout(res, 1500));
      const anomalies = await json(
        fetch(`${base}/anomalies?limit=100`, { headers: { authorization: `Bearer ${KEY}` } }),
      );
      const series = anomalies.items.filter((p: { flow_id: string }) => p.flow_id?.startsWith('series:'));
      const silent = series.filter(
        (p: { flow_id: string; threat_type: string }) =>
          p.flow_id === 'series:10.0.0.1/flows' && p.threat_type === 'series drop',
      );
      assert.ok(
        silent.length >= 1,
        `no drop for the silent destination: ${JSON.stringify(series.map((p: { flow_id: string }) => p.flow_id))}`,
      );
      const steady = series.filter((p: { flow_id: string }) => p.flow_id === 'series:10.0.0.2/flows');
      assert.ok(steady.length <= 1, `${steady.length} anomalies on the steady destination`);
    } finally {
      await srv.app.close();
    }
  });
});
