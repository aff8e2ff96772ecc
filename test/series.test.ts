/**
 * Time series: import rules (unsorted, duplicates, gaps, NaN, text, bad times) against counts
 * worked out by hand; the streaming detectors against independent computations (the ARIMA
 * detector's one-step forecasts against arima.ts's batch `forecast`, the baseline against a
 * median computed here); save/restore continuing exactly; the registry's versions; time features
 * against naive recomputation and a known calendar; the event evaluation on a hand case.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UserError } from '../src/core/diagnostics.js';
import { Rng } from '../src/core/rng.js';
import { fitArima, forecast } from '../src/series/arima.js';
import { ArimaDetector, type Forecast, robustScale } from '../src/series/detectors.js';
import { evaluateEvents } from '../src/series/evaluate.js';
import { calendarFeatures, checkTimeZone, decompose, rollingStats } from '../src/series/features.js';
import { counterRates, importSeries, parseTime } from '../src/series/import.js';
import {
  chooseTransform,
  fitSeriesModel,
  newPoint,
  type ScoredPoint,
  SeriesModel,
  type SeriesTrainOptions,
} from '../src/series/model.js';
import { loadSeriesSet, saveSeriesSet, seriesVersions } from '../src/series/registry.js';
import { choosePeriod, inferStep, parseDuration, regularise, type Series } from '../src/series/series.js';
import { tmp, writeFile } from './helpers.js';

const H = 3_600_000;
const T0 = Date.parse('2024-01-01T00:00:00Z'); // a Monday

/** A daily-rhythm series: base · (1.5 + sin(2π h/24)) + noise, hourly. */
function daily(days: number, seed = 1, base = 1000): Series {
  const r = new Rng(seed);
  const n = days * 24;
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++)
    values[i] = base * (1.5 + Math.sin((2 * Math.PI * (i % 24)) / 24)) + 20 * r.normal();
  return { key: 'k', metric: 'm', start: T0, step: H, values };
}

function stepAll(m: SeriesModel, values: ArrayLike<number>): ScoredPoint[] {
  const out: ScoredPoint[] = [];
  for (let i = 0; i < values.length; i++) {
    const p = newPoint();
    m.step(values[i], p);
    out.push(p);
  }
  return out;
}

describe('series import', () => {
  it('long format: sorts, combines, counts gaps, duplicates, NaN and bad times exactly', async () => {
    const dir = tmp();
    // Hourly points of one key; line 4 is out of order, line 6 duplicates 01:00, 03:00 is
    // missing (a gap), 04:00 is NaN, 05:00 is text, one row has an unreadable time.
    const f = writeFile(
      dir,
      'long.csv',
      [
        'timestamp,country,metric,value',
        '2024-01-01T00:00:00Z,CZ,flows,10',
        '2024-01-01T02:00:00Z,CZ,flows,30',
        '2024-01-01T01:00:00Z,CZ,flows,20',
        'yesterday,CZ,flows,99',
        '2024-01-01 01:00:00,CZ,flows,40',
        '2024-01-01T04:00:00Z,CZ,flows,NaN',
        '2024-01-01T05:00:00Z,CZ,flows,lots',
        '2024-01-01T06:00:00Z,CZ,flows,70',
        '2024-01-01T00:00:00Z,SK,flows,5',
        '2024-01-01T01:00:00Z,SK,flows,6',
      ].join('\n'),
    );
    const problems: string[] = [];
    const im = await importSeries([f], {
      key: ['country'],
      onProblem: (p) => problems.push(`${p.reason}@${p.line}`),
    });
    assert.equal(im.format, 'long');
    assert.equal(im.rows, 10);
    assert.equal(im.badRows, 1);
    assert.ok(problems.includes('bad-time@5'), problems.join(' '));
    assert.ok(problems.includes('non-numeric@8'), problems.join(' '));
    const cz = im.series.find((s) => s.key === 'CZ');
    assert.ok(cz);
    assert.equal(cz.step, H);
    assert.equal(cz.start, T0);
    // 00:10, 01: mean(20, 40) = 30, 02:30, 03 gap, 04 NaN, 05 text, 06:70.
    assert.deepEqual(Array.from(cz.values), [10, 30, 30, Number.NaN, Number.NaN, Number.NaN, 70]);
    // Out of order: one descent (02:00 then 01:00; the second 01:00 repeats, it does not descend).
    assert.equal(im.counts.outOfOrder, 1);
    assert.equal(im.counts.duplicates, 1);
    assert.equal(im.counts.combined, 1);
    assert.equal(im.counts.missing, 2);
    // Gaps: CZ 03, 04, 05 have no usable point.
    assert.equal(im.counts.gaps, 3);
    assert.deepEqual(Array.from(im.series.find((s) => s.key === 'SK')?.values ?? []), [5, 6]);
  });

  it('wide format with a key; text columns are ignored; JSON lines give the same series', async () => {
    const dir = tmp();
    const rows = [
      ['2024-01-01T00:00:00Z', 'a', 'r1', 1, 10],
      ['2024-01-01T00:10:00Z', 'a', 'r1', 2, 20],
      ['2024-01-01T00:20:00Z', 'a', 'r1', 3, ''],
      ['2024-01-01T00:00:00Z', 'b', 'r2', 4, 40],
      ['2024-01-01T00:10:00Z', 'b', 'r2', 5, 50],
    ];
    const csv = writeFile(
      dir,
      'w.csv',
      `time,link,router,bytes,packets\n${rows.map((r) => r.join(',')).join('\n')}\n`,
    );
    const jsonl = writeFile(
      dir,
      'w.jsonl',
      rows
        .map((r) =>
          JSON.stringify({
            time: r[0],
            link: r[1],
            router: r[2],
            bytes: r[3],
            packets: r[4] === '' ? null : r[4],
          }),
        )
        .join('\n'),
    );
    const a = await importSeries([csv], { key: ['link'] });
    const b = await importSeries([jsonl], { key: ['link'] });
    assert.equal(a.format, 'wide');
    assert.deepEqual(a.ignored, ['router']);
    assert.deepEqual(
      a.series.map((s) => `${s.key}/${s.metric}`),
      ['a/bytes', 'a/packets', 'b/bytes', 'b/packets'],
    );
    assert.equal(a.series[0].step, 600_000);
    assert.deepEqual(Array.from(a.series[1].values), [10, 20, Number.NaN]);
    for (let i = 0; i < a.series.length; i++) {
      assert.equal(b.series[i].key, a.series[i].key);
      assert.deepEqual(Array.from(b.series[i].values), Array.from(a.series[i].values));
    }
  });

  it('a series with a wild timestamp is left out with the reason; the others are imported', async () => {
    const dir = tmp();
    const f = writeFile(
      dir,
      'wild.csv',
      `timestamp,link,metric,value\n${[0, 1, 2, 3, 4].map((m) => `2024-01-01T00:0${m}:00Z,a,x,${m}`).join('\n')}\n9024-01-01T00:05:00Z,a,x,5\n2024-01-01T00:00:00Z,b,x,1\n2024-01-01T00:01:00Z,b,x,2\n`,
    );
    const im = await importSeries([f], { key: ['link'] });
    assert.deepEqual(
      im.series.map((s) => s.key),
      ['b'],
    );
    assert.equal(im.unusable.length, 1);
    assert.match(
      im.unusable[0].reason,
      /^series a x: .* steps of 1m between its first and last point; .*wild timestamp/,
    );
  });

  it('reads the time forms it documents and refuses what it cannot', async () => {
    assert.equal(parseTime('2019-05-19 07:03:11.616000+00:00'), Date.parse('2019-05-19T07:03:11.616Z'));
    assert.equal(parseTime('2024-01-01'), T0);
    assert.equal(parseTime('2024-01-01 00:00'), T0);
    assert.equal(parseTime(T0 / 1000), T0); // seconds
    assert.equal(parseTime(String(T0)), T0); // milliseconds
    assert.equal(parseTime(T0 * 1000), T0); // microseconds
    assert.ok(Number.isNaN(parseTime('soon')));
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1w'), 7 * 24 * H);
    assert.throws(() => parseDuration('5 parsecs'), UserError);
    const dir = tmp();
    const f = writeFile(dir, 'x.csv', 'timestamp,metric,value\n2024-01-01,m,1\n');
    await assert.rejects(importSeries([f], { key: ['country'] }), /no key column 'country'/);
  });

  it('cumulative counters become rates per second; a reset is missing, not negative', () => {
    const t = Float64Array.from([T0 + 20_000, T0, T0 + 10_000, T0 + 30_000, T0 + 40_000]);
    const v = Float64Array.from([3000, 0, 1000, 500, 1500]); // the counter reset between 20 s and 30 s
    const r = counterRates(t, v);
    assert.deepEqual(Array.from(r.times), [T0, T0 + 10_000, T0 + 20_000, T0 + 30_000, T0 + 40_000]);
    assert.deepEqual(Array.from(r.rates), [Number.NaN, 100, 200, Number.NaN, 100]);
    assert.equal(r.resets, 1);
  });

  it('infers a jittered step as the nice interval it is near, and regularises onto it', () => {
    const r = new Rng(3);
    const t = Float64Array.from({ length: 200 }, (_, i) => T0 + i * 10_000 + Math.round(r.next() * 1500));
    assert.equal(inferStep(t), 10_000);
    assert.equal(inferStep(Float64Array.from([T0, T0 + 7_777, T0 + 15_554])), 7_777);
    assert.equal(inferStep(Float64Array.from([T0, T0])), null);
    const { series, counts } = regularise(
      '',
      'x',
      Float64Array.from([T0 + 5, T0 + 1, T0 + 2]),
      Float64Array.from([1, 2, 4]),
      1000,
      'max',
    );
    assert.equal(series.values.length, 1);
    assert.equal(series.values[0], 4);
    assert.equal(counts.combined, 2);
    assert.equal(counts.outOfOrder, 1);
  });
});

describe('series import fuzzing', () => {
  it('mutated CSV and JSON lines never crash the importer: problems are counted, or a clear UserError', async () => {
    const dir = tmp();
    const r = new Rng(99);
    const lines = ['timestamp,link,metric,value'];
    for (let i = 0; i < 300; i++)
      lines.push(
        `${new Date(T0 + i * 60_000).toISOString()},l${i % 3},flows,${Math.round(100 + 50 * r.normal())}`,
      );
    const csv = Buffer.from(`${lines.join('\n')}\n`);
    const jsonl = Buffer.from(
      lines
        .slice(1)
        .map((l) => {
          const [timestamp, link, metric, value] = l.split(',');
          return JSON.stringify({ timestamp, link, metric, value: Number(value) });
        })
        .join('\n'),
    );
    const special = [0x22, 0x2c, 0x0a, 0x0d, 0x00, 0xff, 0x7b, 0x7d, 0x3a, 0x2d, 0x54];
    let problems = 0;
    let userErrors = 0;
    for (let k = 0; k < 300; k++) {
      const base = k % 2 ? jsonl : csv;
      const b = Buffer.from(base);
      const n = 1 + r.int(30);
      switch (r.int(3)) {
        case 0:
          for (let i = 0; i < n; i++) b[r.int(b.length)] ^= 1 << r.int(8);
          break;
        case 1:
          for (let i = 0; i < n; i++) b[r.int(b.length)] = special[r.int(special.length)];
          break;
        default:
          b.fill(0x41, r.int(b.length), r.int(b.length));
      }
      const file = writeFile(
        dir,
        k % 2 ? `f${k}.jsonl` : `f${k}.csv`,
        r.int(10) ? b : b.subarray(0, r.int(b.length)),
      );
      try {
        const im = await importSeries([file], { key: ['link'] });
        problems += im.badRows + im.counts.missing + im.diagnostics.count();
        for (const s of im.series) {
          assert.ok(s.step >= 1 && Number.isFinite(s.start));
          assert.ok(s.values.every((v) => Number.isNaN(v) || Number.isFinite(v)));
        }
      } catch (e) {
        // A mangled header (no key column, no metric) is the user's to fix: it must say so.
        assert.ok(e instanceof UserError, `${file}: ${(e as Error).stack}`);
        userErrors++;
      }
    }
    assert.ok(problems > 0 && userErrors < 300, `${problems} problems counted, ${userErrors} refusals`);
  });
});

describe('series detectors', () => {
  it('ARIMA: streaming one-step forecasts equal the batch forecast of the same model', () => {
    const s = daily(20, 4);
    const model = fitArima(s.values.slice(0, 400), { d: 0, D: 1, s: 24, maxP: 3 });
    const det = new ArimaDetector({ model, scale: 1 });
    const f: Forecast = { expected: 0, scale: 1 };
    let compared = 0;
    for (let i = 0; i < s.values.length; i++) {
      if (det.predict(0, f)) {
        const batch = forecast(model, s.values.slice(0, i), 1).mean[0];
        assert.ok(
          Math.abs(f.expected - batch) < 1e-6 * (1 + Math.abs(batch)),
          `${i}: ${f.expected} vs ${batch}`,
        );
        compared++;
      }
      det.learn(0, s.values[i]);
    }
    assert.ok(compared > 400);
  });

  it('baseline without a season is the median of the last points; a drop is flagged as one', () => {
    const r = new Rng(5);
    const values = Float64Array.from({ length: 200 }, () => 100 + r.normal());
    const m = fitSeriesModel(
      { key: '', metric: 'x', start: T0, step: 1000, values },
      { detector: 'baseline', period: 'none' },
    );
    assert.equal(m.info.transform, 'none');
    const next = Float64Array.from({ length: 20 }, () => 100 + r.normal());
    const out = stepAll(m, next);
    // Expected for point i = median of the 12 values before it (training tail + new points).
    const all = [...values, ...next];
    for (let i = 0; i < next.length; i++) {
      const prev = all.slice(200 + i - 12, 200 + i).sort((a, b) => a - b);
      assert.ok(Math.abs(out[i].expected - (prev[5] + prev[6]) / 2) < 1e-9);
      assert.ok(out[i].lower < out[i].expected && out[i].expected < out[i].upper);
    }
    const p = newPoint();
    m.step(60, p);
    assert.equal(p.anomaly, true);
    assert.ok(p.value < p.lower);
  });

  for (const detector of ['baseline', 'arima', 'lstm'] as const)
    it(`${detector}: learns a daily rhythm; a spike and a drop are flagged, ordinary days are not`, () => {
      const s = daily(30, 6);
      const opts: SeriesTrainOptions = { detector, epochs: 20 };
      const m = fitSeriesModel({ ...s, values: s.values.slice(0, 21 * 24) }, opts);
      assert.equal(m.info.period, 24, m.info.periodReason);
      const test = s.values.slice(21 * 24);
      const clean = stepAll(SeriesModel.restore(m.save()), test);
      const flaggedClean = clean.filter((p) => p.anomaly).length;
      assert.ok(flaggedClean <= 3, `${flaggedClean} false alarms in 9 clean days`);
      const v = Float64Array.from(test);
      v[50] *= 3; // a spike at 02:00 on day 23
      for (let i = 120; i < 126; i++) v[i] = 0; // a 6-hour outage on day 26
      const hit = stepAll(SeriesModel.restore(m.save()), v);
      assert.ok(hit[50].anomaly && hit[50].value > hit[50].upper, `spike: ${JSON.stringify(hit[50])}`);
      assert.ok(
        hit.slice(120, 126).some((p) => p.anomaly && p.value < p.lower),
        'outage',
      );
    });

  it('save and restore continue the stream exactly', () => {
    for (const detector of ['baseline', 'arima', 'lstm'] as const) {
      const s = daily(20, 8);
      const m = fitSeriesModel({ ...s, values: s.values.slice(0, 360) }, { detector, epochs: 5 });
      stepAll(m, s.values.slice(360, 400));
      const copy = SeriesModel.restore(JSON.parse(JSON.stringify(m.save())));
      const a = stepAll(m, s.values.slice(400));
      const b = stepAll(copy, s.values.slice(400));
      assert.deepEqual(
        b.map((p) => [p.t, p.expected, p.score]),
        a.map((p) => [p.t, p.expected, p.score]),
        detector,
      );
    }
  });

  it('missing points are not scored and do not break the state', () => {
    const s = daily(20, 9);
    const m = fitSeriesModel({ ...s, values: s.values.slice(0, 400) }, { detector: 'arima' });
    const v = Float64Array.from(s.values.slice(400));
    v[3] = Number.NaN;
    v[4] = Number.NaN;
    const out = stepAll(m, v);
    assert.equal(out[3].scored, false);
    assert.equal(out[4].scored, false);
    assert.ok(Number.isFinite(out[3].expected));
    assert.ok(out.slice(5).every((p) => p.scored && Number.isFinite(p.score)));
    assert.ok(out.slice(5).filter((p) => p.anomaly).length <= 2);
  });

  it('a constant series: any change is an anomaly, the same value is not', () => {
    const values = new Float64Array(50).fill(0);
    const m = fitSeriesModel(
      { key: '', metric: 'errors', start: T0, step: 1000, values },
      { detector: 'arima' },
    );
    assert.equal(m.info.constant, true);
    assert.equal(m.info.kind, 'baseline');
    const out = stepAll(m, [0, 0, 3, 0]);
    assert.deepEqual(
      out.map((p) => p.anomaly),
      [false, false, true, false],
    );
  });

  it('too short or empty series are refused with the reason', () => {
    const short = { key: '', metric: 'x', start: T0, step: H, values: Float64Array.from([1, 2, 3, 4, 5]) };
    assert.throws(
      () => fitSeriesModel(short, { detector: 'baseline' }),
      /too short for the baseline: 5 points, it needs at least 10/,
    );
    const long = daily(2, 1);
    assert.throws(
      () => fitSeriesModel(long, { detector: 'baseline', period: '1d' }),
      /too short|two seasons/,
    );
    assert.throws(
      () =>
        fitSeriesModel(
          { ...short, values: Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) },
          { detector: 'arima' },
        ),
      /too short for arima/,
    );
    assert.throws(
      () =>
        fitSeriesModel({ ...short, values: new Float64Array(20).fill(Number.NaN) }, { detector: 'baseline' }),
      /no values/,
    );
  });

  it('scores read as robust z-scores: the median training score is 0.6745', () => {
    const r = new Rng(11);
    const values = Float64Array.from({ length: 3000 }, () => 50 + 5 * r.normal());
    const m = fitSeriesModel(
      { key: '', metric: 'x', start: T0, step: 1000, values },
      { detector: 'baseline', period: 'none' },
    );
    // Fresh points from the same distribution: |z| > 4 about 6 in 100k; the threshold is 4–6.
    const out = stepAll(
      m,
      Float64Array.from({ length: 5000 }, () => 50 + 5 * r.normal()),
    );
    const scores = out
      .filter((p) => p.scored)
      .map((p) => p.score)
      .sort((a, b) => a - b);
    const med = scores[scores.length >> 1];
    assert.ok(med > 0.55 && med < 0.8, `median score ${med}`);
    assert.ok(out.filter((p) => p.anomaly).length <= 5);
    assert.ok(m.info.threshold >= 4 && m.info.threshold <= 6);
  });

  it('chooses log for skewed non-negative series and a season from autocorrelation', () => {
    assert.equal(
      chooseTransform(
        Float64Array.from([1, 2, 3, 50, 2, 1, 100, 2, 3, 1, 2, 300, 1, 1, 1, 1, 1, 1, 1, 2]),
        'auto',
      ),
      'log',
    );
    assert.equal(chooseTransform(Float64Array.from([10, 11, 9, 10, 12]), 'auto'), 'none');
    assert.equal(chooseTransform(Float64Array.from([-1, 5, 50]), 'auto'), 'none');
    assert.equal(choosePeriod(daily(10)).period, 24);
    const r = new Rng(2);
    const noise: Series = {
      key: '',
      metric: 'x',
      start: T0,
      step: H,
      values: Float64Array.from({ length: 24 * 10 }, () => r.normal()),
    };
    assert.equal(choosePeriod(noise).period, 1);
    assert.ok(Math.abs(robustScale(Float64Array.from({ length: 20001 }, () => r.normal())) - 1) < 0.05);
  });
});

describe('series registry', () => {
  it('keeps versions, reads the latest or a given one, and refuses other formats', () => {
    const dir = join(tmp(), 'models');
    const s = daily(10);
    const m = fitSeriesModel(s, { detector: 'baseline' }).save();
    const base = {
      parent: null,
      detector: 'baseline' as const,
      options: {},
      data: {
        files: [],
        format: 'long' as const,
        timeColumn: 'timestamp',
        keyColumns: [],
        metrics: ['m'],
        fingerprint: 'x',
      },
      series: 1,
      skipped: [],
      seconds: 0,
    };
    assert.equal(saveSeriesSet(dir, base, [m]).version, 1);
    // A copy of v1's manifest (as `detect --update` and the service pass) must not keep v1's number.
    const copy = { ...loadSeriesSet(dir).manifest, parent: 1 };
    assert.equal(saveSeriesSet(dir, copy, [m, { ...m, key: 'other' }]).version, 2);
    assert.equal(loadSeriesSet(dir).manifest.version, 2);
    assert.equal(loadSeriesSet(dir).manifest.parent, 1);
    assert.deepEqual(seriesVersions(dir), [1, 2]);
    assert.equal(readFileSync(join(dir, 'LATEST'), 'utf8').trim(), '2');
    assert.equal(loadSeriesSet(dir).models.length, 2);
    assert.equal(loadSeriesSet(dir, 1).models.length, 1);
    assert.throws(() => loadSeriesSet(dir, 7), /has no version 7/);
    assert.throws(() => loadSeriesSet(join(dir, 'nothing')), /no series models/);
    const manifest = join(dir, 'v1', 'manifest.json');
    writeFile(
      join(dir, 'v1'),
      'manifest.json',
      readFileSync(manifest, 'utf8').replace('nadir-series/1', 'other/9'),
    );
    assert.throws(() => loadSeriesSet(dir, 1), /format 'other\/9'/);
  });
});

describe('time features', () => {
  it('calendar: weekday, hour, segment, weekend, holiday (UTC)', () => {
    const cal = { holidays: new Set(['2024-12-25']) };
    assert.deepEqual(calendarFeatures(T0 + 14 * H, cal), {
      weekday: 'Mon',
      hour: 14,
      segment: 'afternoon',
      weekend: false,
      holiday: false,
    });
    const xmas = calendarFeatures(Date.parse('2024-12-25T03:00:00Z'), cal);
    assert.equal(xmas.weekday, 'Wed');
    assert.equal(xmas.holiday, true);
    assert.equal(xmas.segment, 'night');
    assert.equal(calendarFeatures(Date.parse('2024-01-06T20:00:00Z'), cal).weekend, true);
  });

  it('calendar in a time zone: local weekday, hour, holiday; an unknown zone is refused', () => {
    const cal = { holidays: new Set(['2024-01-02']), timeZone: 'Europe/Prague' };
    // 2024-01-01 23:30 UTC is Tuesday 00:30 in Prague (UTC+1 in winter), a holiday in this list.
    assert.deepEqual(calendarFeatures(Date.parse('2024-01-01T23:30:00Z'), cal), {
      weekday: 'Tue',
      hour: 0,
      segment: 'night',
      weekend: false,
      holiday: true,
    });
    // Summer time: 2024-07-06 22:00 UTC is Sunday 00:00 in Prague (UTC+2).
    const summer = calendarFeatures(Date.parse('2024-07-06T22:00:00Z'), cal);
    assert.deepEqual([summer.weekday, summer.hour, summer.weekend], ['Sun', 0, true]);
    assert.throws(() => checkTimeZone('Mars/Olympus'), /not a time zone/);
  });

  it('rolling statistics equal a naive recomputation over the previous W points', () => {
    const r = new Rng(4);
    const v = Float64Array.from({ length: 300 }, (_, i) => (i % 37 === 5 ? Number.NaN : 10 + r.normal()));
    const w = 24;
    const { mean, std, z } = rollingStats(v, w);
    for (let i = 30; i < v.length; i++) {
      const win = Array.from(v.slice(i - w, i)).filter((x) => !Number.isNaN(x));
      const m = win.reduce((a, b) => a + b, 0) / win.length;
      const sd = Math.sqrt(win.reduce((a, b) => a + (b - m) ** 2, 0) / win.length);
      assert.ok(Math.abs(mean[i] - m) < 1e-9 && Math.abs(std[i] - sd) < 1e-6, `${i}`);
      if (!Number.isNaN(v[i])) {
        const sorted = [...win].sort((a, b) => a - b);
        const med =
          sorted.length % 2
            ? sorted[sorted.length >> 1]
            : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
        const dev = sorted.map((x) => Math.abs(x - med)).sort((a, b) => a - b);
        const mad =
          (dev.length % 2 ? dev[dev.length >> 1] : (dev[dev.length / 2 - 1] + dev[dev.length / 2]) / 2) *
          1.4826;
        assert.ok(Math.abs(z[i] - (v[i] - med) / mad) < 1e-9);
      }
    }
  });

  it('decomposition recovers a known trend and seasonal pattern', () => {
    const pattern = [5, -3, 1, -2, 4, -5];
    const v = Float64Array.from({ length: 120 }, (_, i) => 100 + 0.5 * i + pattern[i % 6]);
    const { trend, seasonal, remainder } = decompose(v, 6);
    for (let i = 10; i < 110; i++) {
      assert.ok(Math.abs(trend[i] - (100 + 0.5 * i)) < 1e-9, `trend ${i}`);
      assert.ok(Math.abs(seasonal[i] - pattern[i % 6]) < 1e-9, `seasonal ${i}`);
      assert.ok(Math.abs(remainder[i]) < 1e-9);
    }
  });
});

describe('event evaluation', () => {
  it('hits, misses, false alarms and merged incidents on a hand case', () => {
    const events = [
      { t: 1000_000, name: 'a' },
      { t: 2000_000, name: 'b' },
      { t: 3000_000, name: 'c' },
    ];
    const alarms = [
      { t: 1000_000 + 5000, series: 'x', score: 9 },
      { t: 1000_000 + 8000, series: 'y', score: 7 }, // same incident as the one before
      { t: 2000_000 - 60_000, series: 'x', score: 5 }, // too early: false
      { t: 2500_000, series: 'z', score: 5 }, // far from everything: false
      { t: 3000_000 + 100_000, series: 'x', score: 6 },
    ];
    const r = evaluateEvents(alarms, events, { before: 30_000, after: 120_000, mergeMs: 60_000 });
    assert.deepEqual(
      r.events.map((e) => [e.event.name, e.hit, e.delay]),
      [
        ['a', true, 5000],
        ['b', false, null],
        ['c', true, 100_000],
      ],
    );
    assert.equal(r.hits, 2);
    assert.equal(r.falseAlarms, 2);
    assert.equal(r.incidents, 4);
    assert.equal(r.falseIncidents, 2);
  });
});
