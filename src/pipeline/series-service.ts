/**
 * Series detection inside `nadir serve`: a set of per-series models (from `nadir series train`)
 * scores points as they arrive (`POST /api/v1/series/points`), each point then learned, so the
 * state streams on without refits. Anomalies become predictions in the store (source `series`,
 * flow id `series:<key>/<metric>`, the value / expected / band as features and the metric as the
 * contribution) and go through the alert engine like flow anomalies. On shutdown the advanced
 * state is saved as a new version of the set, so a restart continues where it stopped.
 *
 * Points are placed on their model's grid (time rounded down to the step). A point for a step
 * already scored is refused as `late` (send one value per step; aggregate upstream), steps
 * skipped between points count as missing, and points of series without a model are `no-model`.
 *
 * Series from the service's own flows: when the set was trained on `nadir series aggregate`
 * output (its key column is one of the aggregate keys, its metrics aggregate metrics, one step),
 * every flow the service receives (`/detect`, collectors, learning mode too) is counted into the
 * bucket of its arrival; each bucket, once closed (its end plus a grace of a quarter bucket, at
 * most 15 s), is scored for every key with a model — a key that fell silent scores 0 flows. The
 * bucket the service started in is partial and is not scored.
 */
import type { Contribution } from '../core/records.js';
import type { DecodedRecords } from '../ingest/json-records.js';
import {
  AGGREGATE_KEYS,
  AGGREGATE_METRICS,
  type AggregateKey,
  FlowAggregator,
  newFlowObs,
} from '../series/aggregate.js';
import { parseTime } from '../series/import.js';
import { newPoint, type SavedSeriesModel, SeriesModel } from '../series/model.js';
import { loadSeriesSet, type SeriesSet, saveSeriesSet, seriesId } from '../series/registry.js';
import type { PredictionInput } from '../store/store.js';
import type { BatchWriter } from '../store/writer.js';
import type { ApiVerdict, Log } from './service.js';

export interface SeriesPointIn {
  time: string | number;
  key?: string;
  metric: string;
  value: number | null;
}

export type SeriesPointStatus = 'scored' | 'warming-up' | 'missing' | 'late' | 'no-model' | 'bad-time';

export interface SeriesPointOut {
  key: string;
  metric: string;
  /** The step the point was placed on (ISO 8601), or the time as sent when it could not be. */
  time: string;
  status: SeriesPointStatus;
  value: number | null;
  expected: number | null;
  lower: number | null;
  upper: number | null;
  score: number | null;
  is_anomaly: boolean;
  direction: 'spike' | 'drop' | null;
  /** Prediction id in the store (anomalies only). */
  id: number | null;
}

/** Most missing steps filled between two points of one series (beyond: the state jumps). */
const MAX_FILL = 100_000;

/** How a series set was made from flows, when it was (`nadir series aggregate` output). */
export interface LiveFlows {
  key: AggregateKey;
  bucketMs: number;
}

export function liveFlowsOf(set: SeriesSet): LiveFlows | null {
  const d = set.manifest.data;
  if (d.format !== 'long' || d.keyColumns.length !== 1 || !set.models.length) return null;
  const col = d.keyColumns[0];
  const key = (col === 'key' ? 'none' : col) as AggregateKey;
  if (!AGGREGATE_KEYS.includes(key)) return null;
  if (!d.metrics.every((m) => (AGGREGATE_METRICS as readonly string[]).includes(m))) return null;
  const step = set.models[0].step;
  if (!set.models.every((m) => m.step === step)) return null;
  return { key, bucketMs: step };
}

export class SeriesService {
  private readonly models = new Map<string, SeriesModel>();
  private scored = 0;
  readonly set: SeriesSet;
  /** Flows counted into series (when the set was made from flows). */
  readonly live: LiveFlows | null;
  private readonly agg: FlowAggregator | null;
  private readonly liveKeys: string[];
  private readonly obs = newFlowObs();
  private timer: NodeJS.Timeout | null = null;
  /** The first bucket that is scored (the one after the service saw its first flow). */
  private firstFull: number | null = null;
  private draining: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly predictions: BatchWriter<PredictionInput>,
    private readonly log: Log,
    private readonly onAnomalies?: (
      anomalies: { verdict: ApiVerdict; ts: number; features: Record<string, number> | null }[],
    ) => void,
  ) {
    this.set = loadSeriesSet(dir);
    for (const m of this.set.models) this.models.set(seriesId(m.key, m.metric), SeriesModel.restore(m));
    this.live = liveFlowsOf(this.set);
    this.agg = this.live ? new FlowAggregator(this.live.bucketMs, this.live.key) : null;
    this.liveKeys = [...new Set(this.set.models.map((m) => m.key))];
    if (this.live) {
      const every = Math.max(250, Math.min(5_000, this.live.bucketMs / 4));
      this.timer = setInterval(() => void this.tick(), every);
      this.timer.unref();
    }
  }

  /** Counts decoded flows (the service's /detect and collector batches) into the live buckets. */
  observe(dec: DecodedRecords, now: number): void {
    const agg = this.agg;
    if (!agg || !this.live) return;
    if (this.firstFull === null) this.firstFull = Math.floor(now / this.live.bucketMs) + 1;
    const names = dec.rows.plan.numericNames;
    const k = names.length;
    const col = (...cands: string[]) => {
      for (const c of cands) {
        const i = names.indexOf(c);
        if (i >= 0) return i;
      }
      return -1;
    };
    const fwd = col('Total Fwd Packet');
    const bwd = col('Total Bwd packets');
    const fb = col('Fwd IP Bytes', 'Total Length of Fwd Packet');
    const bb = col('Bwd IP Bytes', 'Total Length of Bwd Packet');
    const syn = col('SYN Flag', 'SYN Flag Count');
    const ack = col('ACK Flag', 'ACK Flag Count');
    const v = (i: number, j: number) => {
      if (j < 0) return 0;
      const x = dec.rows.numeric[i * k + j];
      return Number.isFinite(x) ? x : 0;
    };
    const f = this.obs;
    for (let i = 0; i < dec.rows.n; i++) {
      f.startMs = now;
      f.srcIp = dec.ids.srcIp[i] ?? '';
      f.dstIp = dec.ids.dstIp[i] ?? '';
      f.dstPort = dec.ids.dstPort[i] ?? 0;
      f.protocol = dec.ids.protocol[i] ?? 0;
      f.packets = v(i, fwd) + v(i, bwd);
      f.bytes = v(i, fb) + v(i, bb);
      f.syn = v(i, syn) > 0;
      f.ack = v(i, ack) > 0;
      f.exporter = '';
      agg.add(f);
    }
  }

  /** Scores the live buckets that have closed. Serialised: one drain at a time. */
  tick(now = Date.now()): Promise<unknown> {
    const run = this.draining.then(async () => {
      if (!this.agg || !this.live || this.firstFull === null) return;
      const grace = Math.min(15_000, this.live.bucketMs / 4);
      const end = Math.floor((now - grace) / this.live.bucketMs);
      // The bucket the service started in is partial: forgotten, never scored.
      this.agg.discard(this.firstFull);
      if (end <= this.firstFull) return;
      const points: SeriesPointIn[] = [];
      for (const [time, key, metric, value] of this.agg.drain(end, this.liveKeys))
        if (this.models.has(seriesId(key, metric))) points.push({ time, key, metric, value });
      if (points.length) await this.score(points);
    });
    this.draining = run.catch((e) => this.log.error(`series from flows: ${(e as Error).message}`));
    return this.draining;
  }

  get version(): number {
    return this.set.manifest.version;
  }

  /** The models without their state. */
  list(): Omit<SavedSeriesModel, 'detector'>[] {
    return [...this.models.values()].map((m) => ({ ...m.info }));
  }

  /** Scores points in the order given; anomalies are committed before this resolves. */
  async score(points: SeriesPointIn[]): Promise<SeriesPointOut[]> {
    const out: SeriesPointOut[] = [];
    const anomalies: {
      i: number;
      row: PredictionInput;
      verdict: ApiVerdict;
      features: Record<string, number>;
    }[] = [];
    const p = newPoint();
    const now = Date.now();
    for (const pt of points) {
      const key = pt.key ?? '';
      const base: SeriesPointOut = {
        key,
        metric: pt.metric,
        time: String(pt.time),
        status: 'no-model',
        value: pt.value,
        expected: null,
        lower: null,
        upper: null,
        score: null,
        is_anomaly: false,
        direction: null,
        id: null,
      };
      out.push(base);
      const t = parseTime(pt.time);
      if (!Number.isFinite(t)) {
        base.status = 'bad-time';
        continue;
      }
      const m = this.models.get(seriesId(key, pt.metric));
      if (!m) continue;
      const step = m.info.step;
      const bucket = Math.floor(t / step) * step;
      base.time = new Date(bucket).toISOString();
      if (bucket < m.next) {
        base.status = 'late';
        continue;
      }
      const gap = Math.round((bucket - m.next) / step);
      for (let g = 0; g < Math.min(gap, MAX_FILL); g++) m.step(Number.NaN, p);
      if (gap > MAX_FILL) m.info.next = bucket;
      const v = pt.value === null ? Number.NaN : pt.value;
      m.step(v, p);
      this.scored++;
      const fin = (x: number) => (Number.isFinite(x) ? x : null);
      base.expected = fin(p.expected);
      base.lower = fin(p.lower);
      base.upper = fin(p.upper);
      base.score = p.scored ? fin(p.score) : null;
      base.status = p.scored ? 'scored' : Number.isNaN(v) ? 'missing' : 'warming-up';
      if (p.anomaly) {
        base.is_anomaly = true;
        base.direction = p.value > p.expected ? 'spike' : 'drop';
        const flowId = `series:${key ? `${key}/` : ''}${pt.metric}`;
        const contributions: Contribution[] = [
          { feature: pt.metric, value: p.value, typical: p.expected, share: 1 },
        ];
        const features = { value: p.value, expected: p.expected, lower: p.lower, upper: p.upper };
        const verdict: ApiVerdict = {
          id: null,
          status: 'scored',
          score: p.score,
          threshold: m.info.threshold,
          is_anomaly: true,
          threat_type: base.direction === 'spike' ? 'series spike' : 'series drop',
          model: `series-v${this.version}`,
          flow_id: flowId,
          src_ip: null,
          src_port: null,
          dst_ip: null,
          dst_port: null,
          protocol: null,
          contributions,
        };
        anomalies.push({
          i: out.length - 1,
          verdict,
          features,
          row: {
            ts: now,
            source: 'series',
            model: verdict.model,
            score: p.score,
            threshold: m.info.threshold,
            isAnomaly: true,
            threatType: verdict.threat_type,
            label: null,
            flowId,
            srcIp: null,
            srcPort: null,
            dstIp: null,
            dstPort: null,
            protocol: null,
            flowTimestamp: base.time,
            contributions,
            features,
          },
        });
      }
    }
    if (anomalies.length) {
      const ids = await this.predictions.write(anomalies.map((a) => a.row));
      anomalies.forEach((a, j) => {
        out[a.i].id = ids[j];
        a.verdict.id = ids[j];
      });
      this.onAnomalies?.(anomalies.map((a) => ({ verdict: a.verdict, ts: now, features: a.features })));
    }
    return out;
  }

  /** Saves the advanced state as a new version when points were scored since loading. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.draining;
    if (!this.scored) return;
    const models = [...this.models.values()].map((m) => m.save());
    const saved = saveSeriesSet(
      this.dir,
      { ...this.set.manifest, parent: this.set.manifest.version, series: models.length },
      models,
    );
    this.log.info(`series state after ${this.scored} points saved as ${saved.path}`);
  }
}
