/**
 * Seasonality check on real traffic series with synthetic anomalies of known size: CESNET-
 * TimeSeries24 (one IP address's hourly flows, 9 months, weekly rhythm) and an ISP's transatlantic
 * link (hourly bits, 7 weeks, daily rhythm). Each series is trained on its first part; the rest is
 * scored point by point twice: untouched (every flag there is a false alarm) and with injected
 * drops (value × dropFactor for 6 h: an outage) and spikes (value × spikeFactor for 2 h: a flood)
 * at seeded random places at least two days apart. An injection is detected when at least one of
 * its points is flagged.
 *
 *   npm run build && node dist/bench/series-inject.js [--detectors baseline,arima,lstm]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/core/rng.js';
import type { SeriesDetectorKind } from '../src/series/detectors.js';
import { importSeries } from '../src/series/import.js';
import { fitSeriesModel, newPoint, type SavedSeriesModel, SeriesModel } from '../src/series/model.js';
import type { Series } from '../src/series/series.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
export const UNLABELLED_DIR = join(
  process.env.NADIR_DATASETS ?? resolve(root, '..', 'shared', 'datasets'),
  'timeseries_network_unlabeled',
);

/** CESNET's 103.csv keys rows by id_time; times_1_hour.csv maps id_time to UTC. Joined into a long CSV. */
export async function cesnetSeries(metric = 'n_flows'): Promise<Series> {
  const dir = join(UNLABELLED_DIR, 'cesnet_timeseries24_ip103');
  const times = new Map(
    readFileSync(join(dir, 'times_1_hour.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',') as [string, string]),
  );
  const rows = readFileSync(join(dir, '103.csv'), 'utf8').trim().split('\n');
  const head = rows[0].split(',');
  const col = head.indexOf(metric);
  const out = ['timestamp,metric,value'];
  for (const r of rows.slice(1)) {
    const f = r.split(',');
    out.push(`${times.get(f[0])},${metric},${f[col]}`);
  }
  const file = join(tmpdir(), `nadir-cesnet-${process.pid}-${metric}.csv`);
  writeFileSync(file, `${out.join('\n')}\n`);
  const im = await importSeries([file]);
  return im.series[0];
}

export async function ispSeries(): Promise<Series> {
  const im = await importSeries([
    join(UNLABELLED_DIR, 'isp_transatlantic_link_2005', 'internet-traffic-data-in-bits-fr.csv'),
  ]);
  return im.series[0];
}

export interface InjectionResult {
  detector: SeriesDetectorKind;
  period: number;
  threshold: number;
  trainPoints: number;
  /** Untouched test stretch: flagged / scored points. */
  untouchedFlagged: number;
  untouchedScored: number;
  drops: { hit: number; total: number };
  spikes: { hit: number; total: number };
  /** Flags in the injected run away from any injection (and the day after it). */
  falseFlagged: number;
  falseScored: number;
}

interface Injection {
  pos: number;
  len: number;
  kind: 'drop' | 'spike';
}

function run(saved: SavedSeriesModel, values: Float64Array): { flags: Uint8Array; scored: Uint8Array } {
  const m = SeriesModel.restore(structuredClone(saved));
  const p = newPoint();
  const flags = new Uint8Array(values.length);
  const scored = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    m.step(values[i], p);
    flags[i] = p.anomaly ? 1 : 0;
    scored[i] = p.scored ? 1 : 0;
  }
  return { flags, scored };
}

export function injectAndDetect(
  s: Series,
  detector: SeriesDetectorKind,
  o: { trainFraction: number; dropFactor: number; spikeFactor: number; seeds: number[]; perSeed?: number },
): InjectionResult {
  const cut = Math.floor(s.values.length * o.trainFraction);
  const model = fitSeriesModel({ ...s, values: s.values.slice(0, cut) }, { detector });
  const saved = model.save();
  const test = s.values.slice(cut);
  const base = run(saved, test);
  const res: InjectionResult = {
    detector,
    period: model.info.period,
    threshold: model.info.threshold,
    trainPoints: cut,
    untouchedFlagged: base.flags.reduce((a, b) => a + b, 0),
    untouchedScored: base.scored.reduce((a, b) => a + b, 0),
    drops: { hit: 0, total: 0 },
    spikes: { hit: 0, total: 0 },
    falseFlagged: 0,
    falseScored: 0,
  };
  for (const seed of o.seeds) {
    const rng = new Rng(seed);
    const inj: Injection[] = [];
    for (let tries = 0; inj.length < (o.perSeed ?? 10) && tries < 1000; tries++) {
      const pos = Math.floor(rng.next() * (test.length - 30));
      if (inj.some((x) => Math.abs(x.pos - pos) < 48)) continue;
      const kind = inj.length % 2 ? 'spike' : 'drop';
      inj.push({ pos, len: kind === 'drop' ? 6 : 2, kind });
    }
    const v = Float64Array.from(test);
    for (const x of inj)
      for (let j = x.pos; j < x.pos + x.len; j++) v[j] *= x.kind === 'drop' ? o.dropFactor : o.spikeFactor;
    const r = run(saved, v);
    for (const x of inj) {
      let hit = false;
      for (let j = x.pos; j < x.pos + x.len; j++) if (r.flags[j]) hit = true;
      const c = x.kind === 'drop' ? res.drops : res.spikes;
      c.total++;
      if (hit) c.hit++;
    }
    for (let i = 0; i < v.length; i++) {
      if (!r.scored[i] || inj.some((x) => i >= x.pos && i < x.pos + x.len + 24)) continue;
      res.falseScored++;
      if (r.flags[i]) res.falseFlagged++;
    }
  }
  return res;
}

export const CESNET_PLAN = { trainFraction: 0.6, dropFactor: 0.1, spikeFactor: 5, seeds: [1, 2, 3] };
export const ISP_PLAN = { trainFraction: 0.5, dropFactor: 0.3, spikeFactor: 2, seeds: [1, 2, 3], perSeed: 6 };

function pct(a: number, b: number): string {
  return `${((100 * a) / Math.max(1, b)).toFixed(2)}%`;
}

async function main(): Promise<void> {
  if (!existsSync(UNLABELLED_DIR)) {
    console.log(`dataset not found at ${UNLABELLED_DIR}; nothing to do`);
    return;
  }
  const args = process.argv.slice(2);
  const i = args.indexOf('--detectors');
  const detectors = (i >= 0 ? args[i + 1] : 'baseline,arima,lstm').split(',') as SeriesDetectorKind[];
  const sets: [string, Series, typeof CESNET_PLAN][] = [
    ['CESNET ip103 n_flows', await cesnetSeries('n_flows'), CESNET_PLAN],
    ['CESNET ip103 n_bytes', await cesnetSeries('n_bytes'), CESNET_PLAN],
    ['ISP link bits', await ispSeries(), ISP_PLAN],
  ];
  console.log(
    '| series | detector | season | threshold | untouched false-alarm rate | drops found | spikes found | false alarms beside injections |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [name, s, plan] of sets)
    for (const d of detectors) {
      const r = injectAndDetect(s, d, plan);
      console.log(
        `| ${name} (drop ×${plan.dropFactor} 6 h, spike ×${plan.spikeFactor} 2 h) | ${d} | ${r.period} steps | ${r.threshold.toFixed(2)} | ${pct(r.untouchedFlagged, r.untouchedScored)} (${r.untouchedFlagged}/${r.untouchedScored}) | ${r.drops.hit}/${r.drops.total} | ${r.spikes.hit}/${r.spikes.total} | ${pct(r.falseFlagged, r.falseScored)} |`,
      );
    }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
