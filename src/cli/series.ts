/**
 * `nadir series train|detect|features`: one model per series (a key × a metric), versioned in a
 * directory; detection over every key in one command with a per-point output and a summary table.
 */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Diagnostics, formatProblem, UserError } from '../core/diagnostics.js';
import { expandPaths } from '../ingest/table.js';
import { aggregateFiles } from '../pipeline/aggregate-files.js';
import { AGGREGATE_KEYS, type AggregateKey, FlowAggregator } from '../series/aggregate.js';
import { SERIES_DETECTORS, type SeriesDetectorKind } from '../series/detectors.js';
import {
  type Calendar,
  checkTimeZone,
  loadHolidays,
  seriesFeatureHeader,
  seriesFeatureRows,
} from '../series/features.js';
import { importSeries, parseTime, type SeriesImport, type SeriesImportOptions } from '../series/import.js';
import {
  fitSeriesModel,
  newPoint,
  parseSeriesThreshold,
  type SavedSeriesModel,
  type ScoredPoint,
  SeriesModel,
  type SeriesTrainOptions,
} from '../series/model.js';
import {
  fingerprintOf,
  loadSeriesSet,
  type SkippedSeries,
  saveSeriesSet,
  seriesId,
} from '../series/registry.js';
import {
  COMBINE_RULES,
  type CombineRule,
  formatDuration,
  label,
  parseDuration,
  type Series,
} from '../series/series.js';
import { list, positiveInt } from './args.js';
import { compact, csvCell, int, table } from './format.js';
import { Progress } from './progress.js';

interface ImportFlags {
  data: string[];
  key?: string[];
  metric?: string[];
  time?: string;
  layout: 'auto' | 'long' | 'wide';
  step?: string;
  combine: CombineRule;
  from?: string;
  until?: string;
  rate?: boolean;
  quiet?: boolean;
}

function timeFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = parseTime(v);
  if (!Number.isFinite(t))
    throw new UserError(
      `${flag} '${v}' is not a time`,
      'use ISO 8601 (2024-05-01T00:00:00Z) or epoch seconds',
      2,
    );
  return t;
}

function withImportFlags(cmd: Command): Command {
  return cmd
    .requiredOption('-d, --data <paths...>', 'series files: CSV (.csv, .csv.gz) or JSON lines (.jsonl)')
    .option(
      '-k, --key <columns>',
      'key column(s): one series per distinct value (e.g. country, interface)',
      list,
    )
    .option('--metric <names>', 'only these metrics (wide: columns; long: values of the metric column)', list)
    .option('--time <column>', 'time column (default: timestamp/time/ts/date, else the first column)')
    .addOption(
      new Option('--layout <layout>', 'long (time,key,metric,value) or wide (time,key,metric columns…)')
        .choices(['auto', 'long', 'wide'])
        .default('auto'),
    )
    .option('--step <duration>', 'sampling step, e.g. 10s, 5m, 1h (default: inferred per series)')
    .addOption(
      new Option('--combine <rule>', 'how points falling in one step are combined')
        .choices(COMBINE_RULES)
        .default('mean'),
    )
    .option('--rate', 'values are cumulative counters (octets since boot): use the increase per second')
    .option('--from <time>', 'only points at or after this time')
    .option('--until <time>', 'only points before this time')
    .option('-q, --quiet', 'no progress bar or warnings');
}

function importOptions(o: ImportFlags): SeriesImportOptions {
  return {
    key: o.key,
    metrics: o.metric,
    time: o.time,
    format: o.layout,
    step: o.step ? parseDuration(o.step, '--step') : undefined,
    combine: o.combine,
    rate: o.rate,
    from: timeFlag('--from', o.from),
    until: timeFlag('--until', o.until),
    onProblem: o.quiet ? undefined : (p) => process.stderr.write(`${formatProblem(p)}\n`),
  };
}

function checkInputs(paths: string[]): void {
  for (const p of paths)
    if (!existsSync(p)) throw new UserError(`${p}: no such file or directory`, undefined, 2);
}

/** What import did, in a few lines (stderr). */
function importSummary(im: SeriesImport): string {
  const c = im.counts;
  const lines = [
    `Read ${int(im.rows)} rows (${im.format}; time '${im.timeColumn}'${im.keyColumns.length ? `, key ${im.keyColumns.join('+')}` : ''}) → ${int(im.series.length)} series`,
  ];
  const notes: string[] = [];
  if (im.badRows) notes.push(`${int(im.badRows)} rows skipped (unreadable time or field count)`);
  if (im.outside) notes.push(`${int(im.outside)} rows outside --from/--until`);
  if (c.outOfOrder) notes.push(`${int(c.outOfOrder)} points out of time order (sorted)`);
  if (c.duplicates) notes.push(`${int(c.duplicates)} duplicate timestamps`);
  if (c.combined) notes.push(`${int(c.combined)} points combined into a step they shared`);
  if (c.missing) notes.push(`${int(c.missing)} missing values (empty, NaN or text)`);
  if (c.gaps) notes.push(`${int(c.gaps)} steps without a point (gaps)`);
  if (im.resets) notes.push(`${int(im.resets)} counter decreases (reset or wrap) made missing`);
  if (im.single.length)
    notes.push(`${int(im.single.length)} series with one timestamp only (no step; ignored)`);
  if (im.ignored.length) notes.push(`text columns ignored: ${im.ignored.join(', ')}`);
  for (const u of im.unusable.slice(0, 10)) notes.push(`${u.series} left out: ${u.reason}`);
  if (im.unusable.length > 10) notes.push(`… and ${int(im.unusable.length - 10)} more series left out`);
  for (const n of notes) lines.push(`  ${n}`);
  return lines.join('\n');
}

export function addSeriesCommand(program: Command): void {
  const series = program
    .command('series')
    .description('time series: one model per key and metric (traffic per country, per link, counters)');

  withImportFlags(
    series
      .command('train')
      .description('train one model per series and save them as a new version in a directory'),
  )
    .addOption(
      new Option('--detector <kind>', 'baseline (seasonal median), arima or lstm')
        .choices(SERIES_DETECTORS)
        .default('baseline'),
    )
    .option(
      '--period <period>',
      'season: auto (a day or a week if the data shows one), none, 1d, 1w or steps',
      'auto',
    )
    .option(
      '--threshold <method>',
      'pNN (quantile of training scores, kept within 4–6) or a fixed score',
      'p99.5',
    )
    .option(
      '--min-change <share>',
      'smallest change that can be an anomaly, e.g. 10% (default: none)',
      (v: string) => {
        const n = v.trim().endsWith('%') ? Number(v.trim().slice(0, -1)) / 100 : Number(v);
        if (!(n >= 0 && n < 100))
          throw new InvalidArgumentError('--min-change takes a share such as 10% or 0.1');
        return n;
      },
    )
    .addOption(
      new Option(
        '--transform <kind>',
        'model log(1 + value) for skewed non-negative series (auto) or always/never',
      )
        .choices(['auto', 'log', 'none'])
        .default('auto'),
    )
    .option(
      '--seasons <n>',
      'baseline: past seasons looked at (default: 4 weeks, or 28 days for a daily season)',
      positiveInt('--seasons'),
    )
    .option('--max-p <n>', 'arima: highest AR order tried (default 5)', positiveInt('--max-p'))
    .option(
      '--max-q <n>',
      'arima: highest MA order tried (default 1; 0 for a pure AR model)',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 5)
          throw new InvalidArgumentError('--max-q must be an integer from 0 to 5');
        return n;
      },
    )
    .option('--window <n>', 'lstm: past steps per input (default 24)', positiveInt('--window'))
    .option('--units <n>', 'lstm: units (default 24)', positiveInt('--units'))
    .option('--epochs <n>', 'lstm: training epochs at most (default 30)', positiveInt('--epochs'))
    .option('-o, --out <dir>', 'model directory (versions v1, v2, … are kept)', 'models/series')
    .option('--json', 'print the manifest as JSON')
    .addHelpText(
      'after',
      `
Each series gets its own model; --period auto looks for a daily or weekly rhythm per series.
The threshold is calibrated per series on its own out-of-sample training scores. Series that
cannot be trained (too short, every value missing) are listed with the reason and skipped.

Examples:
  nadir series train -d traffic.csv --key country --detector baseline
  nadir series train -d rates.csv.gz --key interface-name --metric input-data-rate --period none
  nadir series train -d links.csv --key link --detector arima --until 2024-06-01 -o models/links`,
    )
    .action(async (o: ImportFlags & Record<string, string | number | boolean | undefined>) => {
      checkInputs(o.data);
      parseSeriesThreshold(String(o.threshold));
      const progress = Progress.forCli(!!o.quiet);
      progress.setPhase('reading');
      const im = await importSeries(o.data, importOptions(o));
      if (!o.quiet) process.stderr.write(`${importSummary(im)}\n`);
      if (!im.series.length) throw new UserError('no series to train', 'check --key, --metric and --time');
      const opts: SeriesTrainOptions = {
        detector: o.detector as SeriesDetectorKind,
        period: String(o.period),
        threshold: String(o.threshold),
        minChange: o.minChange as number | undefined,
        transform: o.transform as 'auto' | 'log' | 'none',
        seasons: o.seasons as number | undefined,
        maxP: o.maxP as number | undefined,
        maxQ: o.maxQ as number | undefined,
        window: o.window as number | undefined,
        units: o.units as number | undefined,
        epochs: o.epochs as number | undefined,
      };
      const started = performance.now();
      const models: SavedSeriesModel[] = [];
      const skipped: SkippedSeries[] = [];
      progress.setPhase('training');
      im.series.forEach((s, i) => {
        try {
          models.push(fitSeriesModel(s, opts).save());
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          skipped.push({ key: s.key, metric: s.metric, reason: e.message });
        }
        progress.count(i + 1, im.series.length, 'series');
      });
      progress.stop();
      const seconds = (performance.now() - started) / 1000;
      const saved = saveSeriesSet(
        String(o.out),
        {
          parent: null,
          detector: opts.detector,
          options: {
            ...opts,
            step: o.step ?? 'inferred',
            combine: o.combine,
            rate: !!o.rate,
            from: o.from,
            until: o.until,
          },
          data: {
            files: im.files,
            format: im.format,
            timeColumn: im.timeColumn,
            keyColumns: im.keyColumns,
            metrics: im.metrics,
            fingerprint: fingerprintOf(im.series),
          },
          series: models.length,
          skipped,
          seconds,
        },
        models,
      );
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify(loadSeriesSet(String(o.out), saved.version).manifest, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(renderTrained(models, skipped, saved.path, seconds));
    });

  withImportFlags(
    series
      .command('detect')
      .description('score new points of every series against its model; anomalies per point and per key'),
  )
    .requiredOption('-m, --model <dir>', 'series model directory (from `nadir series train`)')
    .option('--version <n>', 'model version (default: the latest)', positiveInt('--version'))
    .option('--all', 'output every point, not only anomalies')
    .addOption(
      new Option('-f, --format <format>', 'per-point output format').choices(['csv', 'jsonl']).default('csv'),
    )
    .option('-o, --output <file>', 'write the per-point output here (default: only the summary is printed)')
    .option('--top <n>', 'rows of the summary table', positiveInt('--top'), 20)
    .option(
      '--update',
      'save the advanced state as a new version (streaming: the next run continues from here)',
    )
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      `
Points up to the end of the model's training are skipped (the model has learned them); the rest
are scored in time order, each one then learned, so nothing is refitted. A point is an anomaly
when it lies outside its band: expected ∓ threshold × scale. Output columns: time, key, metric,
value, expected, lower, upper, score, anomaly, direction (spike/drop).

Examples:
  nadir series detect -m models/series -d traffic-today.csv -o anomalies.csv
  nadir series detect -m models/series -d new.csv --all -f jsonl -o points.jsonl --update`,
    )
    .action(async (o: ImportFlags & Record<string, string | number | boolean | undefined>) => {
      checkInputs(o.data);
      const set = loadSeriesSet(String(o.model), o.version as number | undefined);
      const byId = new Map(set.models.map((m) => [seriesId(m.key, m.metric), m]));
      const progress = Progress.forCli(!!o.quiet);
      progress.setPhase('reading');
      const base = importOptions(o);
      const im = await importSeries(o.data, {
        ...base,
        key: o.key ?? set.manifest.data.keyColumns,
        metrics: o.metric ?? set.manifest.data.metrics,
        time:
          o.time ??
          (set.manifest.data.timeColumn === '(first column)' ? undefined : set.manifest.data.timeColumn),
        format: o.layout === 'auto' ? set.manifest.data.format : o.layout,
        // Counter models score rates: the data is read as it was for training.
        rate: o.rate ?? set.manifest.options.rate === true,
        stepFor: (k, m) => byId.get(seriesId(k, m))?.step,
      });
      if (!o.quiet) process.stderr.write(`${importSummary(im)}\n`);
      const out = o.output ? createWriteStream(String(o.output)) : null;
      if (out && o.format === 'csv')
        out.write('time,key,metric,value,expected,lower,upper,score,anomaly,direction\n');
      progress.setPhase('detecting');
      const result = detectSeries(
        im.series,
        byId,
        (s, p) => {
          if (!out || !(o.all || p.anomaly)) return;
          out.write(`${o.format === 'csv' ? pointCsv(s, p) : pointJson(s, p)}\n`);
        },
        (i, n) => progress.count(i, n, 'series'),
      );
      progress.stop();
      if (out) await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
      let saved: { version: number; path: string } | null = null;
      if (o.update) {
        const models = [...byId.values()].map((m) => result.advanced.get(seriesId(m.key, m.metric)) ?? m);
        saved = saveSeriesSet(
          String(o.model),
          { ...set.manifest, parent: set.manifest.version, series: models.length },
          models,
        );
      }
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              ...result.summary,
              rows: result.rows.map((r) => ({
                ...r,
                worst: r.worst
                  ? { time: iso(r.worst.t), value: r.worst.value, expected: r.worst.expected }
                  : null,
              })),
              savedVersion: saved?.version ?? null,
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      process.stdout.write(renderDetected(result, Number(o.top), set.manifest.version, saved));
    });

  series
    .command('aggregate')
    .description('series from flows: counts per time bucket and key, from captures, flow logs or flow CSVs')
    .requiredOption(
      '-d, --data <paths...>',
      'pcap/pcapng, Zeek conn.log, Suricata eve.json, JSON lines of flow records, or flow CSVs',
    )
    .addOption(
      new Option(
        '-k, --key <key>',
        'one series per: destination, source, their /24, protocol, port, exporter',
      )
        .choices([...AGGREGATE_KEYS])
        .default('dst'),
    )
    .option('--bucket <duration>', 'bucket length, e.g. 1m, 5m, 1h', '5m')
    .option('-o, --output <file>', 'write the long-format CSV here instead of stdout')
    .option('-q, --quiet', 'no progress bar or summary')
    .addHelpText(
      'after',
      `
Writes long-format series (timestamp,<key>,metric,value) with the metrics flows, packets, bytes,
sources, dst_ports, syn_only_ratio (TCP flows with SYN and no ACK), src_entropy and dst_entropy
(bits, over flow counts per address). A flow counts in the bucket of its start; every key gets a
row in every bucket, so a key that falls silent reads as a drop to 0. Feed the file to
\`nadir series train --key <key>\`.

Examples:
  nadir series aggregate -d capture.pcap --key dst --bucket 1m -o per-host.csv
  nadir series aggregate -d conn.log --key dport --bucket 5m -o per-port.csv
  nadir series train -d per-host.csv --key dst --metric flows,syn_only_ratio`,
    )
    .action(
      async (o: { data: string[]; key: AggregateKey; bucket: string; output?: string; quiet?: boolean }) => {
        checkInputs(o.data);
        const bucket = parseDuration(o.bucket, '--bucket');
        const agg = new FlowAggregator(bucket, o.key);
        const diag = new Diagnostics(
          o.quiet ? () => {} : (p) => process.stderr.write(`${formatProblem(p)}\n`),
        );
        const progress = Progress.forCli(!!o.quiet);
        progress.setPhase('reading');
        const files = o.data.flatMap((p) => (statSync(p).isDirectory() ? expandPaths([p]) : [p]));
        const sizes = files.reduce((n, f) => n + statSync(f).size, 0);
        let doneBefore = 0;
        let current = '';
        let last = 0;
        const summary = await aggregateFiles(files, agg, diag, (file, b) => {
          if (file !== current) {
            doneBefore += last;
            current = file;
          }
          last = b;
          progress.update(doneBefore + b, sizes);
        });
        progress.stop();
        const out = o.output ? createWriteStream(o.output) : process.stdout;
        const keyName = o.key === 'none' ? 'key' : o.key;
        out.write(`timestamp,${keyName},metric,value\n`);
        let rows = 0;
        for (const [t, k, m, v] of agg.rows()) {
          out.write(`${t},${csvCell(k)},${m},${Number.isInteger(v) ? v : Number(v.toPrecision(6))}\n`);
          rows++;
        }
        if (out !== process.stdout)
          await new Promise<void>((res) => (out as ReturnType<typeof createWriteStream>).end(res));
        if (!o.quiet)
          process.stderr.write(
            `${int(agg.flows)} flows from ${summary.files.length} file(s) → ${int(rows)} rows (${formatDuration(bucket)} buckets, key ${o.key})` +
              (agg.noTime ? `; ${int(agg.noTime)} flows without a start time not counted` : '') +
              '\n',
          );
      },
    );

  withImportFlags(
    series
      .command('features')
      .description('time features per point (calendar, rolling statistics, robust z, decomposition) as CSV'),
  )
    .option('--holidays <file>', 'dates (YYYY-MM-DD, one per line) that count as holidays')
    .option('--timezone <zone>', 'calendar columns in this IANA time zone, e.g. Europe/Prague (default UTC)')
    .option('--windows <steps>', 'rolling windows in steps, comma-separated (default 6,24,168)', list)
    .option('--period <period>', 'season for the decomposition: auto, none, 1d, 1w or steps', 'auto')
    .option('-o, --output <file>', 'write here instead of stdout')
    .addHelpText(
      'after',
      `
Columns: Timestamp, key, metric, value, weekday, hour, segment (night/morning/afternoon/evening),
weekend, holiday, then per window W: mean_W, std_W, robust_z_W (against the W points before), then
trend, seasonal, remainder (classical decomposition with the median per phase). The calendar
columns are categories: \`nadir train --data features.csv --detector hybrid-autoencoder --categorical
weekday,segment,weekend,holiday\` trains the hybrid autoencoder on them.`,
    )
    .action(async (o: ImportFlags & Record<string, string | string[] | boolean | undefined>) => {
      checkInputs(o.data);
      const im = await importSeries(o.data, importOptions(o));
      if (!o.quiet) process.stderr.write(`${importSummary(im)}\n`);
      const windows = ((o.windows as string[] | undefined) ?? ['6', '24', '168']).map((w) => {
        const n = Number(w);
        if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError('--windows takes integers ≥ 2');
        return n;
      });
      const cal: Calendar = {
        holidays: o.holidays ? loadHolidays(String(o.holidays)) : new Set(),
        timeZone: o.timezone ? checkTimeZone(String(o.timezone)) : undefined,
      };
      const out = o.output ? createWriteStream(String(o.output)) : process.stdout;
      out.write(`${seriesFeatureHeader(windows).join(',')}\n`);
      for (const s of im.series)
        for (const row of seriesFeatureRows(s, windows, cal, String(o.period)))
          out.write(`${row.map(csvCell).join(',')}\n`);
      if (out !== process.stdout)
        await new Promise<void>((res) => (out as ReturnType<typeof createWriteStream>).end(res));
    });
}

// ---------------------------------------------------------------------------------------------
// Detection over many series (also used by tests and the bench).

export interface SeriesSummaryRow {
  key: string;
  metric: string;
  scored: number;
  anomalies: number;
  /** Runs of consecutive anomalous points. */
  episodes: number;
  spikes: number;
  drops: number;
  maxScore: number;
  /** The highest-scoring point. */
  worst: { t: number; value: number; expected: number } | null;
}

export interface SeriesDetectResult {
  rows: SeriesSummaryRow[];
  summary: {
    series: number;
    scored: number;
    anomalies: number;
    episodes: number;
    /** Points at or before the end of training (already learned). */
    alreadyLearned: number;
    /** Series in the data without a model (their names, at most 20). */
    noModel: string[];
    noModelCount: number;
  };
  advanced: Map<string, SavedSeriesModel>;
}

/**
 * Scores each series' points after its model's last learned step, in time order, calling
 * `onPoint` for every step (missing values included, `scored` false).
 */
export function detectSeries(
  series: Series[],
  models: Map<string, SavedSeriesModel>,
  onPoint: (s: Series, p: ScoredPoint) => void,
  onProgress: (done: number, total: number) => void = () => {},
): SeriesDetectResult {
  const rows: SeriesSummaryRow[] = [];
  const advanced = new Map<string, SavedSeriesModel>();
  const summary: SeriesDetectResult['summary'] = {
    series: 0,
    scored: 0,
    anomalies: 0,
    episodes: 0,
    alreadyLearned: 0,
    noModel: [],
    noModelCount: 0,
  };
  const p = newPoint();
  series.forEach((s, idx) => {
    onProgress(idx, series.length);
    const saved = models.get(seriesId(s.key, s.metric));
    if (!saved) {
      summary.noModelCount++;
      if (summary.noModel.length < 20) summary.noModel.push(label(s.key, s.metric));
      return;
    }
    if (saved.step !== s.step)
      throw new Error(
        `series ${label(s.key, s.metric)}: step ${s.step} differs from its model's ${saved.step}`,
      );
    const m = SeriesModel.restore(saved);
    const row: SeriesSummaryRow = {
      key: s.key,
      metric: s.metric,
      scored: 0,
      anomalies: 0,
      episodes: 0,
      spikes: 0,
      drops: 0,
      maxScore: 0,
      worst: null,
    };
    let i = Math.max(0, Math.round((m.next - s.start) / s.step));
    summary.alreadyLearned += Math.min(i, s.values.length);
    if (i < s.values.length) {
      // Steps between the end of training and the first new point: missing.
      const firstT = s.start + i * s.step;
      const gap = Math.round((firstT - m.next) / s.step);
      const fill = Math.min(gap, 100_000);
      for (let g = 0; g < fill; g++) m.step(Number.NaN, p);
      if (gap > fill) m.info.next = firstT;
    }
    let inEpisode = false;
    for (; i < s.values.length; i++) {
      m.step(s.values[i], p);
      onPoint(s, p);
      if (!p.scored) continue;
      row.scored++;
      if (p.anomaly) {
        row.anomalies++;
        if (p.value > p.expected) row.spikes++;
        else row.drops++;
        if (!inEpisode) row.episodes++;
        if (p.score > row.maxScore) {
          row.maxScore = p.score;
          row.worst = { t: p.t, value: p.value, expected: p.expected };
        }
      }
      inEpisode = p.anomaly;
    }
    summary.series++;
    summary.scored += row.scored;
    summary.anomalies += row.anomalies;
    summary.episodes += row.episodes;
    rows.push(row);
    advanced.set(seriesId(s.key, s.metric), m.save());
  });
  onProgress(series.length, series.length);
  rows.sort((a, b) => b.maxScore - a.maxScore);
  return { rows, summary, advanced };
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

function num(v: number): string | number {
  return Number.isFinite(v) ? Number(v.toPrecision(8)) : '';
}

export function pointCsv(s: Series, p: ScoredPoint): string {
  return [
    iso(p.t),
    csvCell(s.key),
    csvCell(s.metric),
    num(p.value),
    num(p.expected),
    num(p.lower),
    num(p.upper),
    p.scored ? num(p.score) : '',
    p.anomaly ? 1 : 0,
    p.anomaly ? (p.value > p.expected ? 'spike' : 'drop') : '',
  ].join(',');
}

export function pointJson(s: Series, p: ScoredPoint): string {
  const f = (v: number) => (Number.isFinite(v) ? v : null);
  return JSON.stringify({
    time: iso(p.t),
    key: s.key,
    metric: s.metric,
    value: f(p.value),
    expected: f(p.expected),
    lower: f(p.lower),
    upper: f(p.upper),
    score: p.scored ? f(p.score) : null,
    anomaly: p.anomaly,
    direction: p.anomaly ? (p.value > p.expected ? 'spike' : 'drop') : null,
  });
}

function renderTrained(
  models: SavedSeriesModel[],
  skipped: SkippedSeries[],
  path: string,
  seconds: number,
): string {
  const lines: string[] = [];
  const kinds = new Map<string, number>();
  for (const m of models) kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
  lines.push(
    `Trained ${int(models.length)} series (${[...kinds].map(([k, n]) => `${k} ${int(n)}`).join(', ') || 'none'}) in ${seconds.toFixed(1)} s; saved to ${path}`,
  );
  const shown = models.slice(0, 20);
  if (shown.length)
    lines.push(
      table(
        ['series', 'detector', 'points', 'step', 'season', 'threshold', 'flagged in training'],
        shown.map((m) => [
          label(m.key, m.metric),
          m.kind + (m.constant ? ' (constant)' : ''),
          int(m.trained),
          formatDuration(m.step),
          m.period > 1 ? formatDuration(m.period * m.step) : 'none',
          m.threshold.toFixed(2),
          m.trainScored ? `${((100 * m.trainFlagged) / m.trainScored).toFixed(2)}%` : '–',
        ]),
      ),
    );
  if (models.length > shown.length) lines.push(`… and ${int(models.length - shown.length)} more`);
  if (skipped.length) {
    lines.push(`Skipped ${int(skipped.length)} series:`);
    for (const s of skipped.slice(0, 20)) lines.push(`  ${label(s.key, s.metric)}: ${s.reason}`);
    if (skipped.length > 20) lines.push(`  … and ${int(skipped.length - 20)} more`);
  }
  return `${lines.join('\n')}\n`;
}

function renderDetected(
  r: SeriesDetectResult,
  top: number,
  version: number,
  saved: { version: number; path: string } | null,
): string {
  const s = r.summary;
  const lines: string[] = [];
  lines.push(
    `Scored ${int(s.scored)} points of ${int(s.series)} series (model v${version}): ${int(s.anomalies)} anomalous points in ${int(s.episodes)} episodes`,
  );
  if (s.alreadyLearned)
    lines.push(
      `  ${int(s.alreadyLearned)} points at or before the end of training skipped (already learned)`,
    );
  if (s.noModelCount)
    lines.push(
      `  ${int(s.noModelCount)} series without a model: ${s.noModel.join(', ')}${s.noModelCount > s.noModel.length ? ', …' : ''}`,
    );
  const flagged = r.rows.filter((x) => x.anomalies > 0);
  if (flagged.length) {
    lines.push(
      table(
        [
          'series',
          'scored',
          'anomalies',
          'episodes',
          'spikes',
          'drops',
          'max score',
          'worst at',
          'value',
          'expected',
        ],
        flagged
          .slice(0, top)
          .map((x) => [
            label(x.key, x.metric),
            int(x.scored),
            int(x.anomalies),
            int(x.episodes),
            int(x.spikes),
            int(x.drops),
            compact(x.maxScore),
            x.worst ? iso(x.worst.t).replace('.000Z', 'Z') : '',
            x.worst ? compact(x.worst.value) : '',
            x.worst ? compact(x.worst.expected) : '',
          ]),
      ),
    );
    if (flagged.length > top)
      lines.push(`… and ${int(flagged.length - top)} more series with anomalies (--top)`);
  } else lines.push('No anomalies.');
  if (saved) lines.push(`Advanced state saved as v${saved.version} (${saved.path})`);
  return `${lines.join('\n')}\n`;
}
