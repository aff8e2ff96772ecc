/**
 * The training job: stream labelled or unlabelled flow files, keep the benign rows of the
 * training part (a seeded reservoir caps memory), fit the feature pipeline and the detector on
 * them, calibrate the threshold on held-out benign rows, and write a model bundle.
 *
 * Protocol (DESIGN.md §5): unsupervised detectors see only benign rows; rows without a label
 * column count as normal traffic (the file-level warning says so).
 */
import { basename } from 'node:path';
import { type Diagnostics, UserError } from '../core/diagnostics.js';
import { BENIGN } from '../core/labels.js';
import { Rng } from '../core/rng.js';
import { NADIR_VERSION } from '../core/version.js';
import { calibrate, parseThresholdMethod } from '../detect/calibration.js';
import { detectorFactory } from '../detect/detector.js';
import { missingForNetflow, netflowFromCic } from '../features/netflow.js';
import { type FeatureOptions, FeaturePipeline, type Layout, type Rows } from '../features/pipeline.js';
import { FlowReader, type IngestOptions } from '../ingest/table.js';
import {
  type FeatureSet,
  type Manifest,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  Model,
  newModelId,
  type SplitSpec,
} from '../model/bundle.js';
import { inCalibration, inTrainPart, quickFingerprint } from './split.js';

export interface TrainOptions {
  data: string[];
  detector: string;
  detectorParams: Record<string, unknown>;
  split: SplitSpec;
  threshold: string;
  /** Share of training rows held out to calibrate the threshold. */
  calibrationFraction: number;
  /** Reservoir size: at most this many training rows are kept in memory. */
  maxRows: number;
  seed: number;
  ingest: IngestOptions;
  features: Partial<FeatureOptions>;
  /** `netflow`: train on the NetFlow feature set (features/netflow.ts), mapped from CIC columns. */
  featureSet?: FeatureSet;
  out?: string;
  diag: Diagnostics;
  onProgress?: (bytes: number, total: number) => void;
  onPhase?: (phase: string) => void;
  /** Step progress of detectors that train in epochs. */
  onFitProgress?: (done: number, total: number, note: string) => void;
  /** Called with the reader once it exists (to report per-file figures even when the job fails). */
  onReader?: (r: FlowReader) => void;
}

export interface TrainResult {
  model: Model;
  reader: FlowReader;
}

/** Growable reservoir of rows in one reference layout. */
class Reservoir {
  numeric: Float64Array;
  strings: string[][];
  calib: Uint8Array;
  /** Canonical label of each kept row. */
  labels: string[] = [];
  n = 0;
  seen = 0;
  private readonly k: number;

  constructor(
    readonly layout: Layout,
    readonly cap: number,
    private readonly rng: Rng,
  ) {
    this.k = layout.numericNames.length;
    const initial = Math.min(cap, 65536);
    this.numeric = new Float64Array(initial * this.k);
    this.strings = layout.stringNames.map(() => []);
    this.calib = new Uint8Array(initial);
  }

  /** Offers a row; returns the slot to fill, or -1 when the reservoir keeps its current rows. */
  slot(): number {
    this.seen++;
    if (this.n < this.cap) {
      if (this.n >= this.calib.length) {
        const rows = Math.min(this.cap, this.n * 2);
        const bigger = new Float64Array(rows * this.k);
        bigger.set(this.numeric);
        this.numeric = bigger;
        const c = new Uint8Array(rows);
        c.set(this.calib);
        this.calib = c;
      }
      return this.n++;
    }
    const j = Math.floor(this.rng.next() * this.seen);
    return j < this.cap ? j : -1;
  }

  /** Rows with calib flag equal to `calibration`, with their labels. */
  part(calibration: boolean): Rows & { labels: string[] } {
    const k = this.k;
    let m = 0;
    for (let i = 0; i < this.n; i++) if ((this.calib[i] === 1) === calibration) m++;
    const numeric = new Float64Array(m * k);
    const strings = this.layout.stringNames.map(() => new Array<string>(m));
    const labels = new Array<string>(m);
    let r = 0;
    for (let i = 0; i < this.n; i++) {
      if ((this.calib[i] === 1) !== calibration) continue;
      numeric.set(this.numeric.subarray(i * k, i * k + k), r * k);
      for (let s = 0; s < strings.length; s++) strings[s][r] = this.strings[s][i];
      labels[r] = this.labels[i];
      r++;
    }
    return { plan: this.layout, n: m, numeric, strings, labels };
  }
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  parseThresholdMethod(opts.threshold);
  const factory = detectorFactory(opts.detector);
  const supervised = factory.supervised === true;
  const diag = opts.diag;
  const ingest: IngestOptions = { ...opts.ingest, withIds: false, seed: 0 };
  const reader = new FlowReader(opts.data, ingest, diag, (b) => opts.onProgress?.(b, reader.totalBytes));
  opts.onReader?.(reader);
  const fingerprints = reader.paths.map(quickFingerprint);
  const rng = new Rng(opts.seed);
  let reservoir: Reservoir | null = null;
  /** Per plan: reference numeric slot ← batch slot, or null when the file cannot be used. */
  const maps = new Map<string, { num: Int32Array; str: Int32Array } | null>();
  const labelCounts: Record<string, number> = {};
  const perFileRows = new Array<number>(reader.paths.length).fill(0);
  let candidates = 0;
  let nonBenignSeen = 0;
  const labelsSeen = new Map<string, number>();

  opts.onPhase?.('reading');
  const netflow = opts.featureSet === 'netflow';
  const unmappable = new Set<string>();
  for await (const raw of reader.batches()) {
    if (unmappable.has(raw.plan.key)) continue;
    if (netflow) {
      const missing = missingForNetflow(raw.plan);
      if (missing.length) {
        unmappable.add(raw.plan.key);
        diag.report({
          severity: 'error',
          reason: 'columns',
          file: raw.plan.file,
          line: 1,
          message: `--features netflow needs ${missing.join(', ')}; file skipped`,
        });
        reader.skipFile(raw.fileIndex, 'missing columns');
        continue;
      }
    }
    const batch = netflow ? netflowFromCic(raw) : raw;
    if (!reservoir) {
      const p = batch.plan;
      reservoir = new Reservoir(
        { numericNames: p.numericNames, stringNames: p.stringNames, key: 'training', file: 'training data' },
        opts.maxRows,
        rng,
      );
    }
    let map = maps.get(batch.plan.key);
    if (map === undefined) {
      map = mapLayout(reservoir.layout, batch.plan.numericNames, batch.plan.stringNames);
      if (!map) {
        const missing = reservoir.layout.numericNames
          .filter((n) => !batch.plan.numericNames.includes(n))
          .concat(reservoir.layout.stringNames.filter((n) => !batch.plan.stringNames.includes(n)));
        diag.report({
          severity: 'error',
          reason: 'columns',
          file: batch.plan.file,
          line: 1,
          message: `lacks ${missing.length} column(s) present in ${basename(reader.paths[0])}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}; file skipped`,
        });
      }
      maps.set(batch.plan.key, map);
    }
    if (!map) {
      reader.skipFile(batch.fileIndex, 'missing columns');
      continue;
    }
    const k = reservoir.layout.numericNames.length;
    const bk = batch.plan.numericNames.length;
    for (let i = 0; i < batch.n; i++) {
      const label = batch.labels ? batch.labels[i] : BENIGN;
      labelsSeen.set(label, (labelsSeen.get(label) ?? 0) + 1);
      if (label !== BENIGN) {
        nonBenignSeen++;
        if (!supervised) continue;
      }
      const h = batch.rowHash[i];
      if (!inTrainPart(h, opts.split)) continue;
      candidates++;
      labelCounts[label] = (labelCounts[label] ?? 0) + 1;
      perFileRows[batch.fileIndex]++;
      const slot = reservoir.slot();
      if (slot < 0) continue;
      for (let j = 0; j < k; j++) reservoir.numeric[slot * k + j] = batch.numeric[i * bk + map.num[j]];
      for (let s = 0; s < map.str.length; s++) reservoir.strings[s][slot] = batch.strings[map.str[s]][i];
      reservoir.labels[slot] = label;
      reservoir.calib[slot] = inCalibration(h, opts.calibrationFraction, opts.seed) ? 1 : 0;
    }
  }

  if (!reservoir || candidates === 0) {
    const seen = [...labelsSeen.entries()].map(([l, c]) => `${l} (${c})`).join(', ');
    throw new UserError(
      reservoir
        ? `no benign rows to train on; labels seen: ${seen || 'none'}`
        : 'no usable rows in the data (see the messages above)',
      reservoir && nonBenignSeen > 0
        ? 'if normal traffic is labelled differently, name it with --benign VALUE'
        : 'check the files given to --data',
    );
  }
  let fitRows = reservoir.part(false);
  let calRows = reservoir.part(true);
  if (calRows.n < 20) {
    diag.report({
      severity: 'warning',
      reason: 'calibration',
      file: 'training data',
      line: 0,
      message: `only ${calRows.n} rows held out for calibration; calibrating on the fitting rows (scores are optimistic)`,
    });
    if (calRows.n > 0) fitRows = concatRows(fitRows, calRows);
    calRows = fitRows;
  }
  if (fitRows.n < 2) throw new UserError(`only ${fitRows.n} benign training row(s); need at least 2`);

  const model = fitModel(fitRows, calRows, {
    detector: opts.detector,
    detectorParams: opts.detectorParams,
    threshold: opts.threshold,
    seed: opts.seed,
    features: opts.features,
    featureSet: opts.featureSet,
    onPhase: opts.onPhase,
    onFitProgress: opts.onFitProgress,
    ingest: {
      label: opts.ingest.label,
      benign: opts.ingest.benign,
      drop: opts.ingest.drop,
      keep: opts.ingest.keep,
      categorical: opts.ingest.categorical,
      header: opts.ingest.header,
    },
    training: {
      files: reader.files.map((f, i) => ({
        name: basename(f.file),
        bytes: f.bytes,
        fingerprint: fingerprints[i],
        sha256: f.sha256,
        trainingRows: perFileRows[i],
      })),
      split: opts.split,
      candidateRows: candidates,
      calibrationFraction: opts.calibrationFraction,
      labelCounts,
    },
    startedAt: t0,
  });
  if (opts.out) {
    opts.onPhase?.('saving');
    model.save(opts.out);
  }
  return { model, reader };
}

export interface FitOptions {
  detector: string;
  detectorParams: Record<string, unknown>;
  threshold: string;
  seed: number;
  features: Partial<FeatureOptions>;
  featureSet?: FeatureSet;
  onPhase?: (phase: string) => void;
  onFitProgress?: (done: number, total: number, note: string) => void;
  ingest: Manifest['ingest'];
  /** What the manifest records of the training data; row counts and seconds are filled in. */
  training: Omit<Manifest['training'], 'supervised' | 'fitRows' | 'calibrationRows' | 'seconds'>;
  /** performance.now() when the job started (for the recorded training time). */
  startedAt?: number;
}

/**
 * Fits the feature pipeline and the detector on rows already in memory, calibrates the threshold
 * on `calRows` (their benign rows, for supervised detectors) and returns the model, unsaved.
 * Used by `train` and by the service's learn-then-detect default.
 */
export function fitModel(
  fitRows: Rows & { labels: string[] },
  calRows: Rows & { labels: string[] },
  opts: FitOptions,
): Model {
  const t0 = opts.startedAt ?? performance.now();
  const factory = detectorFactory(opts.detector);
  const supervised = factory.supervised === true;
  opts.onPhase?.('fitting');
  const features = factory.encoding ? { ...opts.features, encoding: factory.encoding } : opts.features;
  const pipeline = FeaturePipeline.fit(fitRows, features);
  if (pipeline.width === 0)
    throw new UserError('no usable feature columns: every column is an identifier, dropped or constant');
  const x = { data: pipeline.transform(fitRows), rows: fitRows.n, cols: pipeline.width };
  const detector = factory.create({ seed: opts.seed, ...opts.detectorParams });
  detector.onFitProgress = opts.onFitProgress;
  detector.configure?.(pipeline.schema);
  const cx = { data: pipeline.transform(calRows), rows: calRows.n, cols: pipeline.width };
  if (supervised) {
    if (!detector.fitSupervised)
      throw new Error(`${opts.detector} declares itself supervised but cannot fit labels`);
    const classes = [BENIGN, ...[...new Set(fitRows.labels)].filter((l) => l !== BENIGN).sort()];
    if (classes.length < 2 || !fitRows.labels.includes(BENIGN))
      throw new UserError(
        `a supervised detector needs BENIGN rows and at least one other class; the training part has: ${[...new Set(fitRows.labels)].join(', ')}`,
        'train on labelled data with normal and attack rows, or use an unsupervised detector (iforest, autoencoder)',
      );
    const ids = (labels: string[]) => Int32Array.from(labels, (l) => Math.max(0, classes.indexOf(l)));
    detector.fitSupervised(x, ids(fitRows.labels), classes, { x: cx, y: ids(calRows.labels) });
  } else detector.fit(x);

  opts.onPhase?.('calibrating');
  // The threshold is set on held-out normal rows, whatever the detector trained on.
  const benignCal = calRows.labels.map((l, i) => (l === BENIGN ? i : -1)).filter((i) => i >= 0);
  const allCalScores = detector.score(cx);
  const calScores = supervised ? Float32Array.from(benignCal, (i) => allCalScores[i]) : allCalScores;
  const threshold = calibrate(calScores, opts.threshold);
  const sorted = Float64Array.from(calScores).sort();

  const manifest: Manifest = {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    id: newModelId(opts.detector),
    createdAt: new Date().toISOString(),
    nadirVersion: NADIR_VERSION,
    detector: { kind: opts.detector, params: {}, weights: { file: '', sha256: '', bytes: 0, arrays: [] } },
    features: pipeline.schema,
    featureSet: opts.featureSet && opts.featureSet !== 'cic' ? opts.featureSet : undefined,
    threshold,
    ingest: opts.ingest,
    training: {
      ...opts.training,
      supervised: supervised || undefined,
      fitRows: fitRows.n,
      calibrationRows: calRows.n,
      seconds: 0,
    },
    calibration: {
      min: sorted[0],
      median: sorted[Math.floor(sorted.length / 2)],
      p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))],
      max: sorted[sorted.length - 1],
    },
  };
  manifest.training.seconds = Number(((performance.now() - t0) / 1000).toFixed(3));
  // Explanation baseline: mean credit per feature dimension over (up to 1,000) calibration rows.
  const normalRows = supervised ? benignCal : Array.from({ length: calRows.n }, (_, i) => i);
  const nBase = Math.min(normalRows.length, 1000);
  const baseline = new Float64Array(pipeline.width);
  for (let i = 0; i < nBase; i++) {
    const c = detector.explain(cx, normalRows[Math.floor((i * normalRows.length) / nBase)]);
    for (let j = 0; j < c.length; j++) baseline[j] += c[j] / nBase;
  }
  manifest.explainBaseline = Array.from(baseline, (v) => Number(v.toPrecision(6)));
  return new Model(manifest, detector, pipeline);
}

function mapLayout(
  ref: Layout,
  numericNames: string[],
  stringNames: string[],
): { num: Int32Array; str: Int32Array } | null {
  const num = new Int32Array(ref.numericNames.length);
  const str = new Int32Array(ref.stringNames.length);
  for (let j = 0; j < num.length; j++) {
    num[j] = numericNames.indexOf(ref.numericNames[j]);
    if (num[j] < 0) return null;
  }
  for (let j = 0; j < str.length; j++) {
    str[j] = stringNames.indexOf(ref.stringNames[j]);
    if (str[j] < 0) return null;
  }
  return { num, str };
}

function concatRows(
  a: Rows & { labels: string[] },
  b: Rows & { labels: string[] },
): Rows & { labels: string[] } {
  const numeric = new Float64Array(a.numeric.length + b.numeric.length);
  numeric.set(a.numeric);
  numeric.set(b.numeric, a.numeric.length);
  return {
    plan: a.plan,
    n: a.n + b.n,
    numeric,
    strings: a.strings.map((s, i) => s.concat(b.strings[i])),
    labels: a.labels.concat(b.labels),
  };
}
