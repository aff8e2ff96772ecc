/**
 * Series speed: training time per series and streaming scoring across many series at once, as a
 * live system sees them (every time step brings one point for each of --series keys), with peak
 * RSS; plus import speed of a long CSV. When /usr/bin/python3 has statsmodels, the same AR order
 * selection and fit (AutoReg + ar_select_order on the seasonally differenced series) is timed on
 * the same series in the same run, with the ratio.
 *
 *   npm run build && node dist/bench/series.js [--series 10000] [--detectors baseline,arima] [--lstm 20]
 *
 * Series: hourly, 8 weeks (1,344 points), a daily and weekly rhythm with per-series level, phase
 * and noise; trained on 6 weeks, the last 2 weeks (336 steps) scored point by point.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/core/rng.js';
import type { SeriesDetectorKind } from '../src/series/detectors.js';
import { importSeries } from '../src/series/import.js';
import { fitSeriesModel, newPoint, type SeriesModel } from '../src/series/model.js';
import type { Series } from '../src/series/series.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const N = Number(arg('--series', '10000'));
const DETECTORS = arg('--detectors', 'baseline,arima').split(',') as SeriesDetectorKind[];
const LSTM_N = Number(arg('--lstm', '20'));
const H = 3_600_000;
const T0 = Date.parse('2024-01-01T00:00:00Z');
const WEEKS = 8;
const TRAIN = 6 * 7 * 24;

function makeSeries(n: number, seed: number): Series[] {
  const r = new Rng(seed);
  const out: Series[] = [];
  for (let k = 0; k < n; k++) {
    const base = 100 + r.next() * 10_000;
    const phase = r.next() * 24;
    const noise = 0.02 + r.next() * 0.1;
    const values = new Float64Array(WEEKS * 7 * 24);
    for (let i = 0; i < values.length; i++) {
      const day = Math.floor(i / 24) % 7;
      const weekend = day >= 5 ? 0.6 : 1;
      values[i] = Math.round(
        base * weekend * (1.5 + Math.sin((2 * Math.PI * (i + phase)) / 24)) * (1 + noise * r.normal()),
      );
    }
    out.push({ key: `k${k}`, metric: 'flows', start: T0, step: H, values });
  }
  return out;
}

function quantile(a: number[], q: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function rssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function run(kind: SeriesDetectorKind, series: Series[]): void {
  const models: SeriesModel[] = [];
  const perSeries: number[] = [];
  const t0 = performance.now();
  for (const s of series) {
    const a = performance.now();
    models.push(fitSeriesModel({ ...s, values: s.values.slice(0, TRAIN) }, { detector: kind, epochs: 20 }));
    perSeries.push(performance.now() - a);
  }
  const trainS = (performance.now() - t0) / 1000;
  // Streaming: step by step across all series (the live order), one point each.
  const p = newPoint();
  const steps = series[0].values.length - TRAIN;
  const stepMs: number[] = [];
  let flagged = 0;
  const s0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const a = performance.now();
    for (let k = 0; k < models.length; k++) {
      models[k].step(series[k].values[TRAIN + i], p);
      if (p.anomaly) flagged++;
    }
    stepMs.push(performance.now() - a);
  }
  const scoreS = (performance.now() - s0) / 1000;
  const points = steps * models.length;
  console.log(
    `| ${kind} | ${series.length.toLocaleString('en-US')} | ${((1000 * trainS) / series.length).toFixed(2)} (p99 ${quantile(perSeries, 0.99).toFixed(2)}) | ${Math.round(points / scoreS).toLocaleString('en-US')} | ${quantile(stepMs, 0.5).toFixed(1)} / ${quantile(stepMs, 0.99).toFixed(1)} | ${((100 * flagged) / points).toFixed(2)}% | ${Math.round(rssMb())} |`,
  );
}

function statsmodelsPeer(series: Series[]): void {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import statsmodels'], { encoding: 'utf8' }).status !== 0) {
    console.log('\n(statsmodels not found at /usr/bin/python3: no peer timing)');
    return;
  }
  const file = join(tmpdir(), `nadir-series-bench-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(series.map((s) => Array.from(s.values.slice(0, TRAIN)))));
  const script = String.raw`
import json, sys, time
import numpy as np
from statsmodels.tsa.ar_model import AutoReg, ar_select_order
ys = json.load(open(sys.argv[1]))
t = time.perf_counter()
for y in ys:
    y = np.log1p(np.array(y, dtype=float))
    x = y[168:] - y[:-168]
    sel = ar_select_order(x, maxlag=5, ic="aic", trend="c", old_names=False)
    AutoReg(x, lags=sel.ar_lags, trend="c", old_names=False).fit()
print(json.dumps({"ms": 1000 * (time.perf_counter() - t) / len(ys)}))
`;
  const sf = join(tmpdir(), `nadir-series-bench-${process.pid}.py`);
  writeFileSync(sf, script);
  const r = spawnSync(py, [sf, file], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`statsmodels peer failed: ${r.stderr.slice(-300)}`);
    return;
  }
  const theirs = JSON.parse(r.stdout).ms as number;
  // NADIR's ARIMA on the same series, same work: log, variance rule over (d, D), AIC over p ≤ 5.
  const a = performance.now();
  for (const s of series) fitSeriesModel({ ...s, values: s.values.slice(0, TRAIN) }, { detector: 'arima' });
  const ours = (performance.now() - a) / series.length;
  console.log(
    `\nARIMA order selection + fit per series (${series.length} series of ${TRAIN} points): NADIR ${ours.toFixed(2)} ms (incl. choosing d, D, the season and the threshold), statsmodels AutoReg + ar_select_order ${theirs.toFixed(2)} ms (one fixed differencing): NADIR ${(theirs / ours).toFixed(1)}× faster`,
  );
}

async function importSpeed(): Promise<void> {
  const keys = 1000;
  const series = makeSeries(keys, 9);
  const file = join(tmpdir(), `nadir-series-import-${process.pid}.csv`);
  const lines = ['timestamp,key,metric,value'];
  const steps = series[0].values.length;
  for (let i = 0; i < steps; i++) {
    const ts = new Date(T0 + i * H).toISOString();
    for (const s of series) lines.push(`${ts},${s.key},flows,${s.values[i]}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  const a = performance.now();
  const im = await importSeries([file], { key: ['key'] });
  const s = (performance.now() - a) / 1000;
  console.log(
    `\nImport: ${im.rows.toLocaleString('en-US')} long-format rows (${keys} keys) in ${s.toFixed(2)} s = ${Math.round(im.rows / s).toLocaleString('en-US')} rows/s`,
  );
}

console.log(
  `Series bench: ${N.toLocaleString('en-US')} hourly series × ${WEEKS} weeks; train 6 weeks, score 2 weeks in live order\n`,
);
console.log(
  '| detector | series | train ms per series | points/s scored | ms per time step (all series) p50 / p99 | flagged | peak RSS MB |',
);
console.log('|---|---|---|---|---|---|---|');
const all = makeSeries(N, 1);
for (const d of DETECTORS) run(d, all);
if (LSTM_N > 0) run('lstm', all.slice(0, LSTM_N));
statsmodelsPeer(all.slice(0, 200));
await importSpeed();
