/**
 * Batch detection over flow files: stream rows through a model's pipeline and detector and hand
 * each verdict (with the flow's identity and, for anomalies, the explanation) to a sink.
 */

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Diagnostics } from '../core/diagnostics.js';
import { batchRow, type FlowBatch, type FlowRecord, type Verdict } from '../core/records.js';
import { ExportBatcher, type ExportRow } from '../features/netflow.js';
import { MissingColumnsError, missingText } from '../features/pipeline.js';
import { capturePlan, FlowBatcher } from '../flow/batch.js';
import type { FlowMeterOptions, FlowRow } from '../flow/meter.js';
import { type FlowLogSummary, readFlowLog } from '../ingest/flow-logs.js';
import { RecordDecoder } from '../ingest/json-records.js';
import { FlowReader, type IngestOptions } from '../ingest/table.js';
import type { Model } from '../model/bundle.js';
import { type CaptureFlowsResult, captureFlows } from './capture-flows.js';

export interface DetectedFlow {
  flow: FlowRecord;
  verdict: Verdict;
}

export interface DetectOptions {
  data: string[];
  /** Called with the reader once it exists (to report per-file figures even when the job fails). */
  onReader?: (r: FlowReader) => void;
  ingest?: Partial<IngestOptions>;
  /** Explain every row, not only anomalies. */
  explainAll?: boolean;
  /** Number of contributing features to report. */
  topFeatures?: number;
  /** Called for every anomaly, and for every row when `all` is set. */
  onFlow: (f: DetectedFlow) => void;
  all?: boolean;
  diag: Diagnostics;
  onProgress?: (bytes: number, total: number) => void;
}

export interface DetectSummary {
  rows: number;
  anomalies: number;
  /** Per true label, when the data is labelled. */
  byLabel: Record<string, { rows: number; anomalies: number }>;
  files: FlowReader['files'];
  seconds: number;
}

export async function detectFiles(model: Model, opts: DetectOptions): Promise<DetectSummary> {
  const t0 = performance.now();
  const kinds: Record<string, 'numeric' | 'categorical'> = {};
  for (const f of model.manifest.features.inputs) kinds[f.name] = f.kind;
  const ingest: IngestOptions = {
    ...model.manifest.ingest,
    ...opts.ingest,
    kinds,
    withIds: true,
    keepUnlabelled: true,
    seed: 0,
  };
  const reader = new FlowReader(opts.data, ingest, opts.diag, (b) => opts.onProgress?.(b, reader.totalBytes));
  opts.onReader?.(reader);
  const k = opts.topFeatures ?? 5;
  const summary: DetectSummary = { rows: 0, anomalies: 0, byLabel: {}, files: reader.files, seconds: 0 };
  const unusable = new Set<string>();
  for await (const batch of reader.batches()) {
    if (unusable.has(batch.plan.key)) continue;
    let res: ReturnType<Model['score']>;
    try {
      res = await model.scoreAsync(batch);
    } catch (e) {
      if (!(e instanceof MissingColumnsError)) throw e;
      unusable.add(batch.plan.key);
      reader.skipFile(batch.fileIndex, 'missing columns');
      opts.diag.report({
        severity: 'error',
        reason: 'columns',
        file: batch.plan.file,
        line: 1,
        message: `${missingText(e.missing)}; file skipped`,
      });
      continue;
    }
    deliver(model, batch, res, summary, opts, k);
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

/** Verdicts of one scored batch: counts into `summary`, anomalies (or all rows) to `onFlow`. */
function deliver(
  model: Model,
  batch: FlowBatch,
  res: ReturnType<Model['score']>,
  summary: { rows: number; anomalies: number; byLabel: DetectSummary['byLabel'] },
  opts: Pick<DetectOptions, 'all' | 'explainAll' | 'onFlow'>,
  k: number,
): void {
  const thr = model.threshold;
  // Supervised models also name the threat type.
  const cls = model.detector.classify?.(res.x);
  for (let i = 0; i < batch.n; i++) {
    const s = res.scores[i];
    const anomalous = s > thr;
    summary.rows++;
    if (anomalous) summary.anomalies++;
    if (batch.labels && batch.labels[i] !== '') {
      const l = batch.labels[i];
      const e = summary.byLabel[l] ?? { rows: 0, anomalies: 0 };
      e.rows++;
      if (anomalous) e.anomalies++;
      summary.byLabel[l] = e;
    }
    if (!anomalous && !opts.all) continue;
    const contributions = anomalous || opts.explainAll ? model.explain(res.x, res.rows, i, k) : undefined;
    const threat = cls ? cls.classes[cls.ids[i]] : null;
    opts.onFlow({ flow: batchRow(batch, i, false), verdict: model.verdict(s, contributions, threat) });
  }
}

/** Totals of a detection run over flows that are not read as CSV tables. */
export interface FlowDetectSummary {
  rows: number;
  anomalies: number;
  byLabel: DetectSummary['byLabel'];
  seconds: number;
}

export interface CaptureDetectSummary extends FlowDetectSummary {
  capture: CaptureFlowsResult;
}

/**
 * Scores flows as they finish, in batches, delivering verdicts: flow-meter rows (captures) or
 * export rows (NetFlow/IPFIX/sFlow collectors, Zeek and Suricata logs).
 */
export class FlowScorer<R = FlowRow> {
  readonly summary = { rows: 0, anomalies: 0, byLabel: {} as DetectSummary['byLabel'] };
  private readonly batcher: { add(r: R): void; flush(): void; ready: FlowBatch[] };
  private readonly k: number;

  constructor(
    private readonly model: Model,
    private readonly opts: Pick<DetectOptions, 'all' | 'explainAll' | 'onFlow' | 'topFeatures'>,
    source: string,
    batchSize = 4096,
    kind: 'capture' | 'export' = 'capture',
  ) {
    if (kind === 'export') {
      const b = new ExportBatcher(source, batchSize);
      model.check(b.plan);
      this.batcher = b as unknown as typeof this.batcher;
    } else {
      const plan = capturePlan(source);
      model.check(plan);
      this.batcher = new FlowBatcher(plan, batchSize) as unknown as typeof this.batcher;
    }
    this.k = opts.topFeatures ?? 5;
  }

  /** Rows waiting in full batches (callers drain when this grows). */
  get waiting(): number {
    return this.batcher.ready.length;
  }

  add = (f: R): void => {
    this.batcher.add(f);
  };

  /** Scores the full batches collected so far; with `all`, the partial one too. */
  drain = async (all = false): Promise<void> => {
    if (all) this.batcher.flush();
    while (this.batcher.ready.length) {
      const batch = this.batcher.ready.shift()!;
      deliver(this.model, batch, await this.model.scoreAsync(batch), this.summary, this.opts, this.k);
    }
  };
}

/**
 * Detection over flow logs (Zeek conn.log, Suricata eve.json): rows in the NetFlow feature set,
 * scored as they are read. The model must read that set (`nadir train --features netflow`).
 */
export async function detectFlowLogs(
  model: Model,
  files: string[],
  opts: Pick<DetectOptions, 'all' | 'explainAll' | 'onFlow' | 'topFeatures' | 'diag'> & {
    onProgress?: (bytes: number) => void;
  },
): Promise<FlowDetectSummary & { logs: FlowLogSummary[] }> {
  const t0 = performance.now();
  const scorer = new FlowScorer<ExportRow>(
    model,
    opts,
    files.length === 1 ? files[0] : `${files.length} logs`,
    4096,
    'export',
  );
  const logs: FlowLogSummary[] = [];
  let done = 0;
  for (const file of files) {
    let last = 0;
    logs.push(
      await readFlowLog(
        file,
        opts.diag,
        scorer.add,
        (b) => {
          last = b;
          opts.onProgress?.(done + b);
        },
        // Score the full batches after every chunk: memory stays bounded whatever the file size.
        () => scorer.drain(),
      ),
    );
    done += last;
  }
  await scorer.drain(true);
  return { ...scorer.summary, logs, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Detection straight from packet captures: packets → flows (the flow meter) → batches → the
 * model, scoring as the flows finish, with per-capture totals.
 */
export async function detectCaptures(
  model: Model,
  files: string[],
  opts: Pick<DetectOptions, 'all' | 'explainAll' | 'onFlow' | 'topFeatures'> & {
    meter?: Partial<FlowMeterOptions>;
    onProgress?: (bytes: number) => void;
  },
): Promise<CaptureDetectSummary> {
  const t0 = performance.now();
  const scorer = new FlowScorer(model, opts, files.length === 1 ? files[0] : `${files.length} captures`);
  const capture = await captureFlows(files, scorer.add, opts.meter, opts.onProgress, () => scorer.drain());
  // The meter's last flows (flushed at the end of input) make a final partial batch.
  await scorer.drain(true);
  return { ...scorer.summary, capture, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Detection over JSON lines of flow records (the API's FlowRecord objects, or objects keyed by
 * column names): decoded as the service decodes `/detect` bodies, for the model's columns. A record
 * that cannot be parsed is counted and reported with its line, and reading goes on.
 */
export async function detectRecordFiles(
  model: Model,
  files: string[],
  opts: Pick<DetectOptions, 'all' | 'explainAll' | 'onFlow' | 'topFeatures' | 'diag'> & {
    onProgress?: (bytes: number) => void;
  },
): Promise<FlowDetectSummary & { rejected: number }> {
  const t0 = performance.now();
  const decoder = new RecordDecoder(model.inputLayout());
  const k = opts.topFeatures ?? 5;
  const summary = { rows: 0, anomalies: 0, byLabel: {} as DetectSummary['byLabel'] };
  let rejected = 0;
  let done = 0;
  for (const file of files) {
    let batch: unknown[] = [];
    let lines: number[] = [];
    const score = async () => {
      if (batch.length === 0) return;
      const dec = decoder.decode(batch, '', true, 1000);
      for (const p of dec.problems) {
        const i = Number(/^\/(\d+)/.exec(p.path)?.[1] ?? -1);
        opts.diag.report({
          severity: 'warning',
          reason: 'record',
          file,
          line: i >= 0 ? lines[i] : 0,
          message: `${p.path.replace(/^\/\d+/, '') || '/'}: ${p.message} (scored with the value missing)`,
        });
      }
      const res = await model.scoreAsync(dec.rows);
      const cls = model.detector.classify?.(res.x);
      for (let i = 0; i < dec.rows.n; i++) {
        const s = res.scores[i];
        const anomalous = s > model.threshold;
        summary.rows++;
        if (anomalous) summary.anomalies++;
        const label = dec.ids.label[i];
        if (label) {
          const e = summary.byLabel[label] ?? { rows: 0, anomalies: 0 };
          e.rows++;
          if (anomalous) e.anomalies++;
          summary.byLabel[label] = e;
        }
        if (!anomalous && !opts.all) continue;
        const contributions = anomalous || opts.explainAll ? model.explain(res.x, res.rows, i, k) : undefined;
        const flow: FlowRecord = { features: {}, origin: { file, line: lines[i] } };
        const ids = dec.ids;
        if (ids.flowId[i] !== null) flow.flowId = ids.flowId[i]!;
        if (ids.srcIp[i] !== null) flow.srcIp = ids.srcIp[i]!;
        if (ids.srcPort[i] !== null) flow.srcPort = ids.srcPort[i]!;
        if (ids.dstIp[i] !== null) flow.dstIp = ids.dstIp[i]!;
        if (ids.dstPort[i] !== null) flow.dstPort = ids.dstPort[i]!;
        if (ids.protocol[i] !== null) flow.protocol = ids.protocol[i]!;
        if (ids.timestamp[i] !== null) flow.timestamp = ids.timestamp[i]!;
        if (label) flow.label = label;
        const threat = cls ? cls.classes[cls.ids[i]] : null;
        opts.onFlow({ flow, verdict: model.verdict(s, contributions, threat) });
      }
      batch = [];
      lines = [];
    };
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
    let no = 0;
    for await (const line of rl) {
      no++;
      done += Buffer.byteLength(line) + 1;
      if (line.trim() === '') continue;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch (e) {
        rejected++;
        opts.diag.report({
          severity: 'error',
          reason: 'json',
          file,
          line: no,
          message: `not JSON: ${(e as Error).message}`,
        });
        continue;
      }
      if (!o || typeof o !== 'object' || Array.isArray(o)) {
        rejected++;
        opts.diag.report({ severity: 'error', reason: 'json', file, line: no, message: 'not a JSON object' });
        continue;
      }
      batch.push(o);
      lines.push(no);
      if (batch.length >= 4096) {
        await score();
        opts.onProgress?.(done);
      }
    }
    await score();
    opts.onProgress?.(done);
  }
  return { ...summary, rejected, seconds: (performance.now() - t0) / 1000 };
}
