/**
 * The detection service behind `nadir serve`: flow records in (from the HTTP API today, from
 * collectors later), verdicts out, everything accepted committed to the store before it is
 * acknowledged, anomalies handed to the alert engine and to live listeners.
 *
 * Models: the registry's active model scores; `activate(id)` loads the new one completely and
 * then swaps a single reference, so requests in flight finish on the model they started with and
 * none is refused. With no model, the service learns: it collects a baseline of flows (from
 * `/detect` and `/ingest`), fits an unsupervised detector on it (config `learning`), registers
 * and activates that model, and from then on scores; such learned models are refitted on recent
 * normal traffic every `learning.refitHours`.
 */
import { EventEmitter } from 'node:events';
import { hashBytes } from '../core/hash.js';
import { BENIGN } from '../core/labels.js';
import type { Contribution } from '../core/records.js';
import { NETFLOW_FEATURES } from '../features/netflow.js';
import type { Layout, Rows } from '../features/pipeline.js';
import { CIC_CATEGORICAL, CIC_FEATURES } from '../ingest/columns.js';
import {
  type DecodedRecords,
  RecordDecoder,
  type RecordInput,
  type RecordProblem,
  recordObjects,
} from '../ingest/json-records.js';
import type { Model } from '../model/bundle.js';
import type { ModelRegistry } from '../model/registry.js';
import type { ServiceConfig } from '../server/config.js';
import type { Metrics } from '../server/metrics.js';
import type { IngestedInput, ModelRecord, PredictionInput, Store } from '../store/store.js';
import { BatchWriter } from '../store/writer.js';
import { fitModel } from '../train/train.js';

export interface Log {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/**
 * Every CIC flow column and the NetFlow feature set's own columns: what a baseline is collected in
 * before its columns are chosen (flows from the collectors carry the NetFlow set, so a service fed
 * only by exporters learns on that set; mixed traffic learns on the columns both have).
 */
const LEARN_NUMERIC = CIC_FEATURES.filter((c) => !CIC_CATEGORICAL.has(c));
const LEARN_LAYOUT: Layout = {
  numericNames: [
    ...LEARN_NUMERIC,
    ...NETFLOW_FEATURES.filter((c) => c !== 'Protocol' && !(LEARN_NUMERIC as string[]).includes(c)),
  ],
  stringNames: CIC_FEATURES.filter((c) => CIC_CATEGORICAL.has(c)),
  key: 'learn:cic+netflow',
};

/** No model to score with and learning disabled: the caller answers 503. */
export class NoModelError extends Error {}

/** Bad records in a request: the caller answers 400 with these. */
export class RecordsError extends Error {
  constructor(readonly problems: RecordProblem[]) {
    super(
      `${problems.length} problem(s) in the records, first: ${problems[0]?.path}: ${problems[0]?.message}`,
    );
  }
}

/** One verdict as the API returns it (and live listeners receive it). */
export interface ApiVerdict {
  /** Prediction id in the store (null when normal verdicts are not stored). */
  id: number | null;
  /** The client's own id of the record, when it had one. */
  client_id?: string | number;
  status: 'scored' | 'learning';
  score: number | null;
  threshold: number | null;
  is_anomaly: boolean;
  threat_type: string | null;
  model: string | null;
  flow_id: string | null;
  src_ip: string | null;
  src_port: number | null;
  dst_ip: string | null;
  dst_port: number | null;
  protocol: number | null;
  contributions?: Contribution[];
}

export interface DetectResult {
  model: string | null;
  status: 'detecting' | 'learning';
  verdicts: ApiVerdict[];
}

interface Active {
  model: Model;
  record: ModelRecord;
  decoder: RecordDecoder;
  /** Learned by the service (refitted on schedule), not imported. */
  auto: boolean;
}

/** Rows kept for fitting, in one layout, as a ring (newest replace oldest). */
class RowRing {
  readonly numeric: Float64Array;
  readonly strings: string[][];
  n = 0;
  next = 0;

  constructor(
    readonly layout: Layout,
    readonly cap: number,
  ) {
    this.numeric = new Float64Array(cap * layout.numericNames.length);
    this.strings = layout.stringNames.map(() => new Array<string>(cap).fill(''));
  }

  add(rows: Rows, i: number): void {
    const k = this.layout.numericNames.length;
    const slot = this.next;
    this.numeric.set(rows.numeric.subarray(i * k, i * k + k), slot * k);
    for (let s = 0; s < this.strings.length; s++) this.strings[s][slot] = rows.strings[s][i];
    this.next = (this.next + 1) % this.cap;
    if (this.n < this.cap) this.n++;
  }

  /** The same rows in a ring of another capacity (at least the rows it holds). */
  resized(cap: number): RowRing {
    const out = this.project(this.layout);
    const bigger = new RowRing(this.layout, Math.max(cap, this.n));
    bigger.numeric.set(out.numeric.subarray(0, this.n * this.layout.numericNames.length));
    for (let s = 0; s < bigger.strings.length; s++)
      for (let i = 0; i < this.n; i++) bigger.strings[s][i] = out.strings[s][i];
    bigger.n = this.n;
    bigger.next = this.n % bigger.cap;
    return bigger;
  }

  /** The layout of the columns with a value (not NaN / empty) in at least `share` of the rows. */
  present(share: number): Layout {
    const k = this.layout.numericNames.length;
    const need = Math.ceil(share * this.n);
    const numericNames = this.layout.numericNames.filter((_, j) => {
      let c = 0;
      for (let i = 0; i < this.n; i++) if (!Number.isNaN(this.numeric[i * k + j])) c++;
      return c >= need;
    });
    const stringNames = this.layout.stringNames.filter(
      (_, s) => this.strings[s].slice(0, this.n).filter((v) => v !== '').length >= need,
    );
    return { numericNames, stringNames, key: `learned:${numericNames.join('|')}#${stringNames.join('|')}` };
  }

  /** The same rows in a sub-layout. */
  project(layout: Layout): RowRing {
    const out = new RowRing(layout, Math.max(1, this.n));
    const k = this.layout.numericNames.length;
    const k2 = layout.numericNames.length;
    const nIdx = layout.numericNames.map((name) => this.layout.numericNames.indexOf(name));
    const sIdx = layout.stringNames.map((name) => this.layout.stringNames.indexOf(name));
    for (let i = 0; i < this.n; i++) {
      for (let j = 0; j < k2; j++) out.numeric[i * k2 + j] = this.numeric[i * k + nIdx[j]];
      for (let s = 0; s < sIdx.length; s++) out.strings[s][i] = this.strings[sIdx[s]][i];
    }
    out.n = this.n;
    return out;
  }

  /** Fit and calibration parts (every 5th row calibrates). */
  parts(): { fit: Rows & { labels: string[] }; cal: Rows & { labels: string[] } } {
    const k = this.layout.numericNames.length;
    const take = (cal: boolean) => {
      const idx: number[] = [];
      for (let i = 0; i < this.n; i++) if ((i % 5 === 4) === cal) idx.push(i);
      const numeric = new Float64Array(idx.length * k);
      idx.forEach((r, j) => {
        numeric.set(this.numeric.subarray(r * k, r * k + k), j * k);
      });
      return {
        plan: this.layout,
        n: idx.length,
        numeric,
        strings: this.strings.map((col) => idx.map((r) => col[r])),
        labels: idx.map(() => BENIGN),
      };
    };
    return { fit: take(false), cal: take(true) };
  }
}

export interface ServiceOptions {
  store: Store;
  registry: ModelRegistry;
  metrics: Metrics;
  config: ServiceConfig;
  log: Log;
  /** Called with every decoded batch of flows (scored or learned from), at its arrival time. */
  onFlows?: (dec: DecodedRecords, now: number) => void;
  /** Called with every new anomaly batch (the alert engine). */
  onAnomalies?: (
    anomalies: { verdict: ApiVerdict; ts: number; features: Record<string, number> | null }[],
  ) => void;
}

export class DetectionService extends EventEmitter {
  config: ServiceConfig;
  private current: Active | null = null;
  private baseline: { ring: RowRing; decoder: RecordDecoder } | null = null;
  /** Recent normal flows of a learned model, for refits. */
  private recent: RowRing | null = null;
  private fitting = false;
  private swapLock: Promise<unknown> = Promise.resolve();
  private refitTimer: NodeJS.Timeout | null = null;
  readonly predictions: BatchWriter<PredictionInput>;
  readonly ingested: BatchWriter<IngestedInput>;
  private readonly store: Store;
  private readonly registry: ModelRegistry;
  private readonly metrics: Metrics;
  private readonly log: Log;

  constructor(private readonly opts: ServiceOptions) {
    super();
    this.setMaxListeners(1000);
    this.store = opts.store;
    this.registry = opts.registry;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.config = opts.config;
    this.predictions = new BatchWriter(
      (rows) => this.store.insertPredictions(rows),
      20_000,
      (n, s) => {
        this.metrics.storeSeconds.observe({ op: 'predictions' }, s);
        this.metrics.storeRows.inc({ table: 'predictions' }, n);
      },
    );
    this.ingested = new BatchWriter(
      (rows) => this.store.insertIngested(rows),
      20_000,
      (n, s) => {
        this.metrics.storeSeconds.observe({ op: 'ingested' }, s);
        this.metrics.storeRows.inc({ table: 'ingested' }, n);
      },
    );
  }

  /** Loads the registry's active model, if any; otherwise the service starts learning. */
  async start(): Promise<void> {
    const rec = await this.registry.active();
    if (rec) {
      try {
        await this.use(rec);
      } catch (e) {
        this.log.error(
          `active model ${rec.id} could not be loaded (${(e as Error).message}); learning instead`,
        );
      }
    }
    this.refitTimer = setInterval(() => void this.maybeRefit(), 60_000);
    this.refitTimer.unref();
  }

  get model(): Model | null {
    return this.current?.model ?? null;
  }

  get modelRecord(): ModelRecord | null {
    return this.current?.record ?? null;
  }

  status(): {
    mode: 'detecting' | 'learning' | 'idle';
    model: string | null;
    baseline: { collected: number; needed: number } | null;
  } {
    if (this.current) return { mode: 'detecting', model: this.current.model.id, baseline: null };
    const needed = this.config.learning.baselineFlows;
    if (!this.config.learning.enabled) return { mode: 'idle', model: null, baseline: null };
    return {
      mode: 'learning',
      model: null,
      baseline: { collected: Math.min(this.baseline?.ring.n ?? 0, needed), needed },
    };
  }

  /** Loads and activates model `id` (hot swap: in-flight requests finish on the old one). */
  async activate(id: string): Promise<ModelRecord> {
    // One activation at a time: the model serving and the store's active one stay the same.
    const run = this.swapLock
      .catch(() => undefined)
      .then(async () => {
        const rec = await this.registry.get(id);
        if (!rec) throw new Error(`no model '${id}'`);
        await this.use(rec);
        await this.registry.activate(id);
        this.log.info(`model ${id} activated`);
        return { ...rec, active: true };
      });
    this.swapLock = run;
    return run;
  }

  /** Activates a model the service learned, unless another was activated while it was fitted. */
  private async activateLearned(id: string, expected: Active | null): Promise<void> {
    if (this.current !== expected) {
      this.log.warn(
        `learned model ${id} registered but not activated: model ${this.current?.model.id} was activated meanwhile`,
      );
      return;
    }
    await this.activate(id);
  }

  private async use(rec: ModelRecord): Promise<void> {
    const model = await this.registry.load(rec.id);
    const layout = model.inputLayout();
    model.check(layout);
    const decoder = new RecordDecoder(layout);
    // Warm the scorer (ONNX sessions load lazily) before the swap.
    await model.scoreAsync(decoder.decode([{}], '', false).rows);
    const auto = rec.info.auto === true;
    this.current = { model, record: { ...rec, active: true }, decoder, auto };
    this.recent = auto ? new RowRing(layout, this.config.learning.baselineFlows) : null;
    this.metrics.learning.set(0);
  }

  /** Scores records; resolves after the verdicts are committed. Throws RecordsError on bad input. */
  async detect(records: RecordInput, basePath: string, source: string): Promise<DetectResult> {
    const cur = this.current;
    if (!cur) return this.learn(records, basePath, source, true);
    const dec = cur.decoder.decode(records, basePath);
    if (dec.problems.length) throw new RecordsError(dec.problems);
    this.opts.onFlows?.(dec, Date.now());
    const res = await cur.model.scoreAsync(dec.rows);
    const thr = this.config.detection.threshold ?? cur.model.threshold;
    const cls = cur.model.detector.classify?.(res.x);
    const k = this.config.detection.topFeatures;
    const now = Date.now();
    const n = dec.rows.n;
    const verdicts: ApiVerdict[] = new Array(n);
    const rows: PredictionInput[] = [];
    const stored: number[] = [];
    const anomalies: number[] = [];
    const featureSets: (Record<string, number> | null)[] = new Array(n).fill(null);
    for (let i = 0; i < n; i++) {
      const s = res.scores[i];
      const isAnomaly = s > thr;
      const threat = cls ? cls.classes[cls.ids[i]] : null;
      const v = this.verdictOf(dec, i, cur.model.id, s, thr, isAnomaly, threat);
      if (isAnomaly) {
        v.contributions = finiteContributions(cur.model.explain(res.x, res.rows, i, k));
        anomalies.push(i);
        featureSets[i] = featuresOf(dec.rows, i);
      } else if (this.recent) this.recent.add(dec.rows, i);
      verdicts[i] = v;
      if (isAnomaly || this.config.detection.storeNormal) {
        stored.push(i);
        rows.push(
          predictionOf(v, now, source, {
            label: dec.ids.label[i],
            flowTimestamp: dec.ids.timestamp[i],
            features: featureSets[i],
          }),
        );
      }
    }
    const ids = await this.predictions.write(rows);
    for (let j = 0; j < stored.length; j++) verdicts[stored[j]].id = ids[j];
    this.metrics.flows.inc({ source, kind: 'detect' }, n);
    this.metrics.verdicts.inc({ model: cur.model.id }, n);
    if (anomalies.length) this.metrics.anomalies.inc({ model: cur.model.id }, anomalies.length);
    this.emit('verdicts', verdicts);
    if (anomalies.length && this.opts.onAnomalies)
      this.opts.onAnomalies(
        anomalies.map((i) => ({ verdict: verdicts[i], ts: now, features: featureSets[i] })),
      );
    return { model: cur.model.id, status: 'detecting', verdicts };
  }

  /** Records flows for later training, without scoring. Resolves after they are committed. */
  async ingest(records: RecordInput, basePath: string, source: string): Promise<number[]> {
    // Validate as the active model (or the baseline) would read them.
    const decoder = this.current?.decoder ?? this.baselineDecoder();
    const dec = decoder.decode(records, basePath, false);
    if (dec.problems.length) throw new RecordsError(dec.problems);
    const now = Date.now();
    const ids = await this.ingested.write(
      recordObjects(records).map((record) => ({ ts: now, source, record })),
    );
    this.metrics.flows.inc({ source, kind: 'ingest' }, dec.rows.n);
    if (!this.current) this.addToBaseline(dec);
    return ids;
  }

  private baselineDecoder(): RecordDecoder {
    if (!this.baseline) {
      const ring = new RowRing(LEARN_LAYOUT, this.config.learning.baselineFlows);
      this.baseline = { ring, decoder: new RecordDecoder(LEARN_LAYOUT) };
    }
    return this.baseline.decoder;
  }

  private async learn(
    records: RecordInput,
    basePath: string,
    source: string,
    store: boolean,
  ): Promise<DetectResult> {
    if (!this.config.learning.enabled)
      throw new NoModelError(
        'no active model and learning is disabled: activate a model (POST /api/v1/models/{id}/activate) or enable learning in the configuration',
      );
    const dec = this.baselineDecoder().decode(records, basePath, false);
    if (dec.problems.length) throw new RecordsError(dec.problems);
    const n = dec.rows.n;
    const now = Date.now();
    this.opts.onFlows?.(dec, now);
    const verdicts: ApiVerdict[] = [];
    for (let i = 0; i < n; i++) verdicts.push(this.verdictOf(dec, i, null, null, null, false, null));
    if (store && this.config.detection.storeNormal) {
      const ids = await this.predictions.write(
        verdicts.map((v, i) =>
          predictionOf(v, now, source, {
            label: dec.ids.label[i],
            flowTimestamp: dec.ids.timestamp[i],
            features: null,
          }),
        ),
      );
      ids.forEach((id, i) => {
        verdicts[i].id = id;
      });
    }
    this.metrics.flows.inc({ source, kind: 'detect' }, n);
    this.addToBaseline(dec);
    this.emit('verdicts', verdicts);
    return { model: null, status: 'learning', verdicts };
  }

  private addToBaseline(dec: DecodedRecords): void {
    if (!this.config.learning.enabled || !this.baseline) return;
    // The baseline size may have been changed (PUT /config) while collecting.
    const need = this.config.learning.baselineFlows;
    if (need > this.baseline.ring.cap) this.baseline.ring = this.baseline.ring.resized(need);
    const ring = this.baseline.ring;
    for (let i = 0; i < dec.rows.n; i++) {
      // Rows labelled as attacks never enter the baseline.
      const label = dec.ids.label[i];
      if (label !== null && label !== BENIGN) continue;
      if (ring.n >= need) break;
      ring.add(dec.rows, i);
    }
    this.metrics.learning.set(ring.n);
    if (ring.n >= need && !this.fitting) {
      this.fitting = true;
      setImmediate(() => void this.fitBaseline(ring).finally(() => (this.fitting = false)));
    }
  }

  private async fitBaseline(all: RowRing): Promise<void> {
    try {
      // The model uses the columns present in (nearly) every baseline flow, whatever the first
      // requests happened to carry; a few rows lacking one get the median (feature pipeline).
      const ring = all.project(all.present(0.95));
      if (ring.layout.numericNames.length === 0)
        throw new Error('no numeric CIC column is present in 95% of the baseline flows');
      const rec = await this.fitAndRegister(ring, 'baseline');
      this.baseline = null;
      await this.activateLearned(rec.id, null);
    } catch (e) {
      this.log.error(`learning the baseline failed: ${(e as Error).message}; collecting again`);
      this.baseline = null;
    }
  }

  private async fitAndRegister(ring: RowRing, why: string): Promise<ModelRecord> {
    const { fit, cal } = ring.parts();
    const t0 = performance.now();
    const l = this.config.learning;
    const model = fitModel(fit, cal, {
      detector: l.detector,
      detectorParams: {},
      threshold: l.thresholdMethod,
      seed: 42,
      features: {},
      ingest: {},
      training: {
        files: [],
        split: { kind: 'none' },
        candidateRows: ring.n,
        calibrationFraction: 0.2,
        labelCounts: { [BENIGN]: ring.n },
      },
    });
    const fp = hashBytes(new Uint8Array(fit.numeric.buffer), 0, fit.numeric.byteLength, 7).toString(16);
    const rec = await this.registry.register(model, {
      auto: true,
      learnedFrom: why,
      fingerprint: `traffic:${fp}`,
    });
    this.log.info(
      `learned model ${model.id} from ${ring.n} flows (${why}) in ${((performance.now() - t0) / 1000).toFixed(2)} s; threshold ${model.threshold.toPrecision(4)}`,
    );
    return rec;
  }

  private async maybeRefit(): Promise<void> {
    const cur = this.current;
    const hours = this.config.learning.refitHours;
    if (!cur?.auto || !this.recent || hours <= 0 || this.fitting) return;
    if (Date.now() - cur.record.createdAt < hours * 3_600_000) return;
    if (this.recent.n < Math.min(this.recent.cap, 100)) return;
    this.fitting = true;
    try {
      const rec = await this.fitAndRegister(this.recent, 'refit');
      await this.activateLearned(rec.id, cur);
    } catch (e) {
      this.log.error(`refit failed: ${(e as Error).message}`);
    } finally {
      this.fitting = false;
    }
  }

  private verdictOf(
    dec: DecodedRecords,
    i: number,
    model: string | null,
    score: number | null,
    threshold: number | null,
    isAnomaly: boolean,
    threat: string | null,
  ): ApiVerdict {
    const ids = dec.ids;
    const v: ApiVerdict = {
      id: null,
      status: model ? 'scored' : 'learning',
      score,
      threshold,
      is_anomaly: isAnomaly,
      threat_type: threat,
      model,
      flow_id: ids.flowId[i],
      src_ip: ids.srcIp[i],
      src_port: ids.srcPort[i],
      dst_ip: ids.dstIp[i],
      dst_port: ids.dstPort[i],
      protocol: ids.protocol[i],
    };
    const cid = ids.clientId[i];
    if (cid !== null) v.client_id = cid;
    return v;
  }

  /** Commits everything accepted so far. */
  async flush(): Promise<void> {
    await this.predictions.flush();
    await this.ingested.flush();
  }

  async close(): Promise<void> {
    if (this.refitTimer) clearInterval(this.refitTimer);
    await this.flush();
  }
}

/** JSON has no NaN or Infinity: such observed values are written as text (`"Infinity"`). */
function finiteContributions(cs: Contribution[]): Contribution[] {
  for (const c of cs) {
    if (typeof c.value === 'number' && !Number.isFinite(c.value)) c.value = String(c.value);
    if (typeof c.typical === 'number' && !Number.isFinite(c.typical)) c.typical = String(c.typical);
  }
  return cs;
}

function featuresOf(rows: Rows, i: number): Record<string, number> {
  const k = rows.plan.numericNames.length;
  const out: Record<string, number> = {};
  for (let j = 0; j < k; j++) {
    const v = rows.numeric[i * k + j];
    // JSON cannot hold NaN/Infinity: they are left out.
    if (Number.isFinite(v)) out[rows.plan.numericNames[j]] = v;
  }
  return out;
}

/** The store row of a verdict; `label` and `flowTimestamp` come from the input record. */
export function predictionOf(
  v: ApiVerdict,
  ts: number,
  source: string,
  record: { label: string | null; flowTimestamp: string | null; features: Record<string, number> | null },
): PredictionInput {
  return {
    ts,
    source,
    model: v.model,
    score: v.score,
    threshold: v.threshold,
    isAnomaly: v.is_anomaly,
    threatType: v.threat_type,
    label: record.label,
    flowId: v.flow_id,
    srcIp: v.src_ip,
    srcPort: v.src_port,
    dstIp: v.dst_ip,
    dstPort: v.dst_port,
    protocol: v.protocol,
    flowTimestamp: record.flowTimestamp,
    contributions: v.contributions ?? null,
    features: record.features,
  };
}
