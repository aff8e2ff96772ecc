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
