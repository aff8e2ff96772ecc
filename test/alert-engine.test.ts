/**
 * Alert rules against a real (DuckDB) store: score and count rules, per-key grouping,
 * suppression/de-duplication, a resolved alert letting the next anomaly open a new one, severity.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AlertEngine, autoSeverity } from '../src/alert/engine.js';
import type { ApiVerdict } from '../src/pipeline/service.js';
import { DEFAULT_CONFIG, type ServiceConfig } from '../src/server/config.js';
import { Metrics } from '../src/server/metrics.js';
import { openStore } from '../src/store/open.js';
import { tmp } from './helpers.js';

function verdict(src: string, dst: string, score: number, threat: string | null = null): ApiVerdict {
  return {
    id: 1,
    status: 'scored',
    score,
    threshold: 0.5,
    is_anomaly: true,
    threat_type: threat,
    model: 'm1',
    flow_id: null,
    src_ip: src,
    src_port: 1234,
    dst_ip: dst,
    dst_port: 80,
    protocol: 6,
    contributions: [{ feature: 'Flow Bytes/s', value: 9e6, typical: 1200, share: 0.7 }],
  };
}

async function setup(rules: ServiceConfig['alerts']['rules'], suppressSeconds = 300) {
  const dir = tmp('nadir-alert-engine-');
  const store = await openStore({ dataDir: dir, databaseUrl: '' });
  const cfg: ServiceConfig = structuredClone(DEFAULT_CONFIG);
  cfg.alerts.rules = rules;
  cfg.alerts.suppressSeconds = suppressSeconds;
  cfg.alerts.channels = [{ name: 'log', type: 'log', path: 'alerts.log' }];
  const quiet = { info() {}, warn() {}, error() {} };
  const emitted: number[] = [];
  const engine = new AlertEngine(
    store,
    () => cfg,
    new Metrics(),
    quiet,
    dir,
    (a) => emitted.push(a.id),
  );
  return { dir, store, engine, emitted };
}

describe('alert engine', () => {
  it('score rule: one alert per destination, later anomalies fold in, resolve opens a new one', async () => {
    const { dir, store, engine, emitted } = await setup([
      { name: 'anomaly', type: 'score', groupBy: 'dst', severity: 'auto', minScore: null },
    ]);
    const t0 = 1_700_000_000_000;
    engine.handle([
      { verdict: verdict('10.0.0.1', '10.9.9.9', 0.6), ts: t0, features: null },
      { verdict: verdict('10.0.0.2', '10.9.9.9', 0.9), ts: t0 + 1, features: null },
      { verdict: verdict('10.0.0.3', '10.8.8.8', 0.52), ts: t0 + 2, features: null },
    ]);
    await engine.drain();
    engine.handle([{ verdict: verdict('10.0.0.4', '10.9.9.9', 0.7), ts: t0 + 1000, features: null }]);
    await engine.drain();
    const page = await store.queryAlerts({ limit: 100 });
    assert.equal(page.items.length, 2);
    const a = page.items.find((x) => x.key === 'anomaly:dst=10.9.9.9');
    assert.ok(a);
    assert.equal(a.count, 3);
    assert.equal(a.score, 0.9);
    assert.equal(a.severity, 'critical', '0.9 / 0.5 = 1.8 ≥ 1.5');
    assert.equal(a.firstSeen, t0);
    assert.equal(a.lastSeen, t0 + 1000);
    // Described by its top-scoring anomaly.
    assert.match(a.summary, /10\.0\.0\.2:1234 → 10\.9\.9\.9:80 TCP: score 0\.9 > threshold 0\.5/);
    assert.match(String(a.details.why), /Flow Bytes\/s .*typical 1200/);
    const b = page.items.find((x) => x.key === 'anomaly:dst=10.8.8.8');
    assert.equal(b?.severity, 'low');
    assert.equal(emitted.length, 2, 'only new alerts are emitted and sent');
    // Deliveries: one per new alert, to the log file.
    const lines = readFileSync(join(dir, 'alerts.log'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    const deliveries = await store.deliveriesFor(page.items.map((x) => x.id));
    assert.equal(deliveries.filter((d) => d.ok).length, 2);
    // Resolved: the next anomaly for that key opens a new alert.
    await store.setAlertStatus(a.id, 'resolved', t0 + 2000);
    engine.statusChanged({ ...a, status: 'resolved' });
    engine.handle([{ verdict: verdict('10.0.0.5', '10.9.9.9', 0.6), ts: t0 + 3000, features: null }]);
    await engine.drain();
    assert.equal((await store.queryAlerts({ limit: 100 })).items.length, 3);
    await store.close();
  });

  it('suppression window: after it passes, the same key opens a new alert', async () => {
    const { store, engine } = await setup(
      [{ name: 'anomaly', type: 'score', groupBy: 'pair', severity: 'medium', minScore: 0.55 }],
      10,
    );
    const t0 = 1_700_000_000_000;
    const at = (s: number, score = 0.6) => ({
      verdict: verdict('1.1.1.1', '2.2.2.2', score),
      ts: t0 + s * 1000,
      features: null,
    });
    for (const batch of [[at(0)], [at(5)], [at(14)], [at(30)], [at(31, 0.54)]]) {
      engine.handle(batch);
      await engine.drain();
    }
    const items = (await store.queryAlerts({ limit: 100 })).items.sort((x, y) => x.id - y.id);
    // 0, 5, 14 chain (each within 10 s of the last); 30 is 16 s after 14: new; 0.54 is below minScore.
    assert.deepEqual(
      items.map((x) => x.count),
      [3, 1],
    );
    assert.ok(items.every((x) => x.severity === 'medium'));
    await store.close();
  });

  it('count rule: K anomalies per source within the window, not fewer, not spread out', async () => {
    const { store, engine } = await setup([
      { name: 'scan', type: 'count', k: 3, windowSeconds: 10, groupBy: 'src', severity: 'high' },
    ]);
    const t0 = 1_700_000_000_000;
    const from = (src: string, s: number) => ({
      verdict: verdict(src, `10.0.0.${s}`, 0.6),
      ts: t0 + s * 1000,
      features: null,
    });
    // Source A: 3 within 10 s → alert. Source B: 3 spread over 30 s → none.
    engine.handle([from('a', 0), from('b', 0), from('a', 4)]);
    await engine.drain();
    assert.equal((await store.queryAlerts({})).items.length, 0, 'two are not enough');
    engine.handle([from('a', 8), from('b', 15), from('b', 30)]);
    await engine.drain();
    const items = (await store.queryAlerts({})).items;
    assert.equal(items.length, 1);
    assert.equal(items[0].key, 'scan:src=a');
    assert.equal(items[0].severity, 'high');
    assert.match(items[0].summary, /^3 anomalies for src=a within 10 s/);
    await store.close();
  });

  it('auto severity follows score / threshold, and a named threat is at least high', () => {
    assert.equal(autoSeverity(0.52, 0.5, null), 'low');
    assert.equal(autoSeverity(0.56, 0.5, null), 'medium');
    assert.equal(autoSeverity(0.63, 0.5, null), 'high');
    assert.equal(autoSeverity(0.75, 0.5, null), 'critical');
    assert.equal(autoSeverity(0.52, 0.5, 'DDoS'), 'high');
    assert.equal(autoSeverity(0.52, 0.5, 'BENIGN'), 'low');
  });
});
