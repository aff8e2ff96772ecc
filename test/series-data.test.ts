/**
 * Series detection on real data (skipped when ../shared/datasets is absent):
 *
 *   router telemetry (cisco-ie dataset 11) with a ground-truth event list: every interface
 *   shutdown/enable and BFD break/enable inside the data must be found from the interface rates,
 *   with few false incidents;
 *   CESNET and ISP traffic with weekly / daily rhythm: synthetic outages and floods of known size
 *   injected into the real series must be found while the untouched stretch stays below a stated
 *   false-alarm rate.
 *
 * The bench scripts (bench/series-events.ts, bench/series-inject.ts) run the same protocol and
 * print the full tables; these tests hold the figures to floors with some margin.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTelemetry, TELEMETRY_DIR } from '../bench/series-events.js';
import {
  CESNET_PLAN,
  cesnetSeries,
  ISP_PLAN,
  injectAndDetect,
  ispSeries,
  UNLABELLED_DIR,
} from '../bench/series-inject.js';
import { importSeries } from '../src/series/import.js';
import { NO_DATASETS } from './helpers.js';

describe('router telemetry: labelled network events', () => {
  it('the baseline finds all 8 events with at most 4 false incidents', async (t) => {
    if (!existsSync(TELEMETRY_DIR)) return t.skip(NO_DATASETS);
    const r = await runTelemetry('baseline');
    assert.equal(r.events.length, 8, r.events.map((e) => e.name).join(', '));
    const missed = r.report.events.filter((e) => !e.hit).map((e) => e.event.name);
    assert.deepEqual(missed, []);
    assert.ok(
      r.report.falseIncidents <= 4,
      `${r.report.falseIncidents} false incidents of ${r.report.incidents}`,
    );
    // The shutdowns show on the interface itself or on the ones its traffic moved to.
    const shut = r.report.events.find((e) => e.event.name.startsWith('shutdown_interface'));
    assert.ok(shut?.series.some((s) => s.startsWith('HundredGigE0/0/0/')));
  });

  it('the LSTM and ARIMA forecasters find at least 7 of the 8', async (t) => {
    if (!existsSync(TELEMETRY_DIR)) return t.skip(NO_DATASETS);
    const lstm = await runTelemetry('lstm');
    assert.ok(lstm.report.hits >= 7, `lstm ${lstm.report.hits}/8`);
    assert.ok(lstm.report.falseIncidents <= 4, `lstm: ${lstm.report.falseIncidents} false incidents`);
    const arima = await runTelemetry('arima');
    assert.ok(arima.report.hits >= 7, `arima ${arima.report.hits}/8`);
    assert.ok(arima.report.falseIncidents <= 10, `arima: ${arima.report.falseIncidents} false incidents`);
  });
});

describe('router counters as rates', () => {
  it('cumulative bytes → rate per second tracks the router’s own data-rate (independent computation)', async (t) => {
    if (!existsSync(TELEMETRY_DIR)) return t.skip(NO_DATASETS);
    const file = (n: string) =>
      join(
        TELEMETRY_DIR,
        `Cisco-IOS-XR-infra-statsd-oper__infra-statistics_interfaces_interface_latest_${n}.csv.gz`,
      );
    const step = 30_000;
    const counters = await importSeries([file('generic-counters')], {
      key: ['interface-name'],
      metrics: ['bytes-received'],
      rate: true,
      step,
    });
    const rates = await importSeries([file('data-rate')], {
      key: ['interface-name'],
      metrics: ['input-data-rate'],
      step,
    });
    assert.equal(counters.resets, 0);
    let compared = 0;
    for (const k of ['HundredGigE0/0/0/0', 'HundredGigE0/0/0/5', 'HundredGigE0/0/0/10']) {
      const a = counters.series.find((s) => s.key === k);
      const b = rates.series.find((s) => s.key === k);
      assert.ok(a && b);
      const ratios: number[] = [];
      for (let i = 0; i < a.values.length; i++) {
        const j = i + (a.start - b.start) / step;
        const ours = (a.values[i] * 8) / 1000; // bytes/s → kbit/s, the data-rate's unit
        if (ours > 0 && b.values[j] > 0) ratios.push(ours / b.values[j]);
      }
      ratios.sort((x, y) => x - y);
      const med = ratios[ratios.length >> 1];
      // The router's rate leaves out some framing bytes (a steady ~7%); the shape must match.
      assert.ok(med > 0.95 && med < 1.15, `${k}: median ratio ${med}`);
      const near = ratios.filter((r) => Math.abs(r / med - 1) < 0.05).length;
      assert.ok(near >= 0.8 * ratios.length, `${k}: ${near}/${ratios.length} within 5% of the median ratio`);
      compared += ratios.length;
    }
    assert.ok(compared > 500);
  });
});

describe('traffic with a weekly or daily rhythm: injected outages and floods', () => {
  it('CESNET flows (weekly): outages to 10% and floods ×5 are found; ≤ 1.5% false alarms', async (t) => {
    if (!existsSync(UNLABELLED_DIR)) return t.skip(NO_DATASETS);
    const s = await cesnetSeries('n_flows');
    assert.equal(s.step, 3_600_000);
    const base = injectAndDetect(s, 'baseline', CESNET_PLAN);
    assert.equal(base.period, 168, 'a weekly season is found');
    assert.ok(base.drops.hit >= 14, `baseline drops ${base.drops.hit}/${base.drops.total}`);
    assert.ok(base.spikes.hit >= 8, `baseline spikes ${base.spikes.hit}/${base.spikes.total}`);
    assert.ok(
      base.untouchedFlagged / base.untouchedScored <= 0.01,
      `baseline untouched ${base.untouchedFlagged}/${base.untouchedScored}`,
    );
    const ar = injectAndDetect(s, 'arima', CESNET_PLAN);
    assert.ok(ar.drops.hit >= 14 && ar.spikes.hit >= 12, `arima ${ar.drops.hit}, ${ar.spikes.hit} of 15`);
    assert.ok(
      ar.untouchedFlagged / ar.untouchedScored <= 0.015,
      `arima untouched ${ar.untouchedFlagged}/${ar.untouchedScored}`,
    );
  });

  it('ISP link (daily): outages to 30% and floods ×2 are found; ≤ 1.5% false alarms', async (t) => {
    if (!existsSync(UNLABELLED_DIR)) return t.skip(NO_DATASETS);
    const s = await ispSeries();
    const ar = injectAndDetect(s, 'arima', ISP_PLAN);
    assert.equal(ar.period, 24, 'a daily season is found');
    assert.ok(
      ar.drops.hit >= 8 && ar.spikes.hit >= 8,
      `arima ${ar.drops.hit}/9 drops, ${ar.spikes.hit}/9 spikes`,
    );
    assert.ok(
      ar.untouchedFlagged / ar.untouchedScored <= 0.015,
      `arima untouched ${ar.untouchedFlagged}/${ar.untouchedScored}`,
    );
    const base = injectAndDetect(s, 'baseline', ISP_PLAN);
    assert.ok(base.drops.hit >= 6, `baseline drops ${base.drops.hit}/9`);
    assert.ok(base.untouchedFlagged / base.untouchedScored <= 0.01);
  });
});
