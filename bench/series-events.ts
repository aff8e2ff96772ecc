/**
 * Event detection on router telemetry (cisco-ie/telemetry dataset 11, leaf7): the per-interface
 * data rates (latest/data-rate, 36 interfaces × input/output bytes and packets, ~10 s cadence) are
 * trained on the stretch before the first labelled event and then scored point by point. The
 * labelled events are the interface shutdowns/enables (leaf7 Hu0/0/0/10) and the BFD breaks/
 * enables (spine4 eth1/25) of events.csv.gz that fall inside the data; an alarm within
 * [event − 30 s, event + 120 s] is a hit (telemetry is averaged and sampled every ~10 s).
 *
 *   npm run build && node dist/bench/series-events.js [--detectors baseline,arima,lstm]
 *
 * Prints per detector and event: hit or miss, delay, the series that alarmed; then false alarms
 * per series-episode and per incident (alarms merged across series within 60 s).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { detectSeries } from '../src/cli/series.js';
import type { SeriesDetectorKind } from '../src/series/detectors.js';
import { type Alarm, type EventReport, evaluateEvents, type LabelledEvent } from '../src/series/evaluate.js';
import { importSeries } from '../src/series/import.js';
import { fitSeriesModel, type SavedSeriesModel } from '../src/series/model.js';
import { seriesId } from '../src/series/registry.js';

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
export const TELEMETRY_DIR = join(
  process.env.NADIR_DATASETS ?? resolve(root, '..', 'shared', 'datasets'),
  'cisco_telemetry_leaf7_events',
  'Dataset',
);
const RATES = 'Cisco-IOS-XR-infra-statsd-oper__infra-statistics_interfaces_interface_latest_data-rate.csv.gz';
export const TELEMETRY_METRICS = [
  'input-data-rate',
  'output-data-rate',
  'input-packet-rate',
  'output-packet-rate',
];
/** Network changes (not telemetry housekeeping or the traffic generator). */
const NETWORK_EVENTS = new Set(['shutdown_interface', 'enable_interface', 'break_bfd', 'enable_bfd']);
const BEFORE = 30_000;
const AFTER = 120_000;

export interface TelemetryRun {
  detector: SeriesDetectorKind;
  trainedUntil: number;
  dataEnd: number;
  events: LabelledEvent[];
  excluded: LabelledEvent[];
  report: EventReport;
  series: number;
  points: number;
  trainSeconds: number;
}

/** The labelled network events, split into those inside [train end, data end − 120 s] and the rest. */
export function telemetryEvents(
  trainedUntil: number,
  dataEnd: number,
): { inside: LabelledEvent[]; outside: LabelledEvent[] } {
  const text = gunzipSync(readFileSync(join(TELEMETRY_DIR, 'events.csv.gz')))
    .toString('utf8')
    .trim()
    .split('\n');
  const inside: LabelledEvent[] = [];
  const outside: LabelledEvent[] = [];
  for (const line of text.slice(1)) {
    const f = line.split(',');
    if (!NETWORK_EVENTS.has(f[1])) continue;
    const e = { t: Math.round(Number(f[0]) * 1000), name: `${f[1]} ${f[3]} ${f[4]}`.trim() };
    (e.t > trainedUntil && e.t <= dataEnd - AFTER ? inside : outside).push(e);
  }
  return { inside, outside };
}

export async function runTelemetry(detector: SeriesDetectorKind, minChange = 0): Promise<TelemetryRun> {
  const file = join(TELEMETRY_DIR, RATES);
  const all = await importSeries([file], { key: ['interface-name'], metrics: TELEMETRY_METRICS });
  const dataEnd = Math.max(...all.series.map((s) => s.start + (s.values.length - 1) * s.step));
  const dataStart = Math.min(...all.series.map((s) => s.start));
  const { inside } = telemetryEvents(Number.NEGATIVE_INFINITY, dataEnd);
  // Train on everything before the first event (minus a minute).
  const trainedUntil = Math.min(...inside.filter((e) => e.t > dataStart).map((e) => e.t)) - 60_000;
  const train = await importSeries([file], {
    key: ['interface-name'],
    metrics: TELEMETRY_METRICS,
    until: trainedUntil,
  });
  const t0 = performance.now();
  const models = new Map<string, SavedSeriesModel>();
  for (const s of train.series)
    models.set(
      seriesId(s.key, s.metric),
      fitSeriesModel(s, { detector, period: 'none', epochs: 40, minChange }).save(),
    );
  const trainSeconds = (performance.now() - t0) / 1000;
  const alarms: Alarm[] = [];
  const prevAnomaly = new Map<string, boolean>();
  let points = 0;
  detectSeries(all.series, models, (s, p) => {
    const id = `${s.key} ${s.metric}`;
    if (p.scored) points++;
    const was = prevAnomaly.get(id) ?? false;
    if (p.anomaly && !was) alarms.push({ t: p.t, series: id, score: p.score });
    // A missing point neither starts nor ends an episode.
    if (p.scored) prevAnomaly.set(id, p.anomaly);
  });
  const events = telemetryEvents(trainedUntil, dataEnd);
  return {
    detector,
    trainedUntil,
    dataEnd,
    events: events.inside,
    excluded: events.outside,
    report: evaluateEvents(alarms, events.inside, { before: BEFORE, after: AFTER, mergeMs: 60_000 }),
    series: models.size,
    points,
    trainSeconds,
  };
}

function hhmmss(t: number): string {
  return new Date(t).toISOString().slice(11, 19);
}

async function main(): Promise<void> {
  if (!existsSync(join(TELEMETRY_DIR, RATES))) {
    console.log(`telemetry dataset not found at ${TELEMETRY_DIR}; nothing to do`);
    return;
  }
  const args = process.argv.slice(2);
  const i = args.indexOf('--detectors');
  const detectors = (i >= 0 ? args[i + 1] : 'baseline,arima,lstm').split(',') as SeriesDetectorKind[];
  const j = args.indexOf('--min-change');
  const minChange = j >= 0 ? Number(args[j + 1]) : 0;
  const runs: TelemetryRun[] = [];
  for (const d of detectors) {
    const r = await runTelemetry(d, minChange);
    runs.push(r);
    console.log(
      `\n${d} (min change ${minChange * 100}%): trained ${r.series} series until ${hhmmss(r.trainedUntil)} in ${r.trainSeconds.toFixed(1)} s; scored ${r.points} points to ${hhmmss(r.dataEnd)}`,
    );
    for (const o of r.report.events)
      console.log(
        `  ${hhmmss(o.event.t)} ${o.event.name.padEnd(44)} ${o.hit ? `HIT  +${((o.delay ?? 0) / 1000).toFixed(0)}s` : 'miss'}  ${o.series.slice(0, 4).join('; ')}`,
      );
    console.log(
      `  hits ${r.report.hits}/${r.events.length}; alarms ${r.report.alarms}, false ${r.report.falseAlarms}; incidents ${r.report.incidents}, false ${r.report.falseIncidents}`,
    );
  }
  if (runs[0]?.excluded.length)
    console.log(
      `\nNot scored (before training ended or within 120 s of the data's end): ${runs[0].excluded.map((e) => `${hhmmss(e.t)} ${e.name}`).join(', ')}`,
    );
  console.log(
    '\n| detector | events hit | false alarms (series episodes) | false incidents | incidents | train s |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of runs)
    console.log(
      `| ${r.detector} | ${r.report.hits}/${r.events.length} | ${r.report.falseAlarms} of ${r.report.alarms} | ${r.report.falseIncidents} | ${r.report.incidents} | ${r.trainSeconds.toFixed(1)} |`,
    );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
