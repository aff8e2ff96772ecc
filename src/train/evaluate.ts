/**
 * The evaluation job: score labelled data with a model and report honest metrics.
 *
 * Rows the model was trained or calibrated on are left out: for a file the model was trained on
 * (recognised by fingerprint), the rows its split put in the training part are skipped when they
 * are benign, which is exactly the set the unsupervised protocol could have trained on. Files the
 * model never saw are evaluated whole ("split by file").
 */
import { basename } from 'node:path';
import { type Diagnostics, UserError } from '../core/diagnostics.js';
import { BENIGN, THREAT_TYPES } from '../core/labels.js';
import { MissingColumnsError, missingText } from '../features/pipeline.js';
import { type FileSummary, FlowReader, type IngestOptions } from '../ingest/table.js';
import type { Model } from '../model/bundle.js';
import {
  auroc,
  averagePrecision,
  countsAt,
  detectionAtFpr,
  expectedCalibrationError,
  precisionRecallF1,
  rocCurve,
} from './metrics.js';
import { histogram, type PlotData } from './plots.js';
import { inTrainPart, quickFingerprint } from './split.js';

export interface EvaluateOptions {
  data: string[];
  /** Called with the reader once it exists (to report per-file figures even when the job fails). */
  onReader?: (r: FlowReader) => void;
  ingest?: Partial<IngestOptions>;
  /** Evaluate every row, even rows the model may have trained on. */
  includeTrainingRows?: boolean;
  /** False-positive budgets for the detection-rate figures. */
  fprs?: number[];
  /** Also return the data for the evaluation plot (ROC curves, score distributions). */
  plot?: boolean;
  diag: Diagnostics;
  onProgress?: (bytes: number, total: number) => void;
}

export interface ClassReport {
  label: string;
  rows: number;
  /** Share of rows flagged at the model's calibrated threshold (for BENIGN: the false-positive rate). */
  flaggedAtThreshold: number;
  /** Class vs BENIGN. NaN for BENIGN itself. */
  auroc: number;
  /** Detection rate at each FPR budget (thresholds set on all benign rows). */
  detectionAtFpr: Record<string, number>;
  meanScore: number;
}

export interface EvaluationReport {
  model: { id: string; detector: string; threshold: number; thresholdMethod: string };
  data: {
    files: { name: string; evaluatedRows: number; skippedTrainingRows: number }[];
    rows: number;
    benign: number;
    attack: number;
    skippedTrainingRows: number;
  };
  overall: {
    auroc: number;
    prAuc: number;
    detectionAtFpr: Record<string, { detectionRate: number; fpr: number; threshold: number }>;
    atThreshold: {
      threshold: number;
      precision: number;
      recall: number;
      f1: number;
      fpr: number;
      tp: number;
      fp: number;
      tn: number;
      fn: number;
    };
  };
  perClass: ClassReport[];
  /** Rows: true class; columns: predicted normal / anomaly at the calibrated threshold. */
  confusion: { labels: string[]; columns: ['normal', 'anomaly']; counts: [number, number][] };
  /** Supervised models: how well the predicted threat type matches the label. */
  classification?: {
    accuracy: number;
    macroF1: number;
    /** Expected calibration error of the top-class probability (15 bins). */
    ece: number;
    perClass: { label: string; precision: number; recall: number; f1: number; support: number }[];
  };
  seconds: number;
}

export async function evaluate(
  model: Model,
  opts: EvaluateOptions,
): Promise<{ report: EvaluationReport; files: FileSummary[]; plot?: PlotData }> {
  const t0 = performance.now();
  const m = model.manifest;
  const diag = opts.diag;
  const fprs = opts.fprs ?? [0.01, 0.001];
  const kinds: Record<string, 'numeric' | 'categorical'> = {};
  for (const f of m.features.inputs) kinds[f.name] = f.kind;
  const ingest: IngestOptions = { ...m.ingest, ...opts.ingest, kinds, withIds: false, seed: 0 };
  const reader = new FlowReader(opts.data, ingest, diag, (b) => opts.onProgress?.(b, reader.totalBytes));
  opts.onReader?.(reader);
  const trainedOn = new Set(m.training.files.map((f) => f.fingerprint));
  const heldOutFiles = reader.paths.map(
    (p) => !opts.includeTrainingRows && trainedOn.has(quickFingerprint(p)),
  );
  const split = m.training.split;
  const supervised = m.training.supervised === true;

  let scores = new Float32Array(1 << 16);
  let classes = new Uint16Array(1 << 16);
  let n = 0;
  const classIds = new Map<string, number>();
  const classNames: string[] = [];
  const perFile = reader.paths.map((p) => ({ name: basename(p), evaluatedRows: 0, skippedTrainingRows: 0 }));
  const unusable = new Set<string>();
  // Supervised models: predicted class name and its probability per evaluated row.
  const predicted: string[] = [];
  const truth: string[] = [];
  const confidence: number[] = [];

  for await (const batch of reader.batches()) {
    const file = batch.plan.file;
    if (!batch.labels) continue; // reported by the reader as 'no-label'
    if (unusable.has(batch.plan.key)) continue;
    let result: ReturnType<Model['score']>;
    try {
      result = await model.scoreAsync(batch);
    } catch (e) {
      if (!(e instanceof MissingColumnsError)) throw e;
      unusable.add(batch.plan.key);
      reader.skipFile(batch.fileIndex, 'missing columns');
      diag.report({
        severity: 'error',
        reason: 'columns',
        file,
        line: 1,
        message: `${missingText(e.missing)}; file skipped`,
      });
      continue;
    }
    const held = heldOutFiles[batch.fileIndex];
    const cls = model.detector.classify?.(result.x);
    for (let i = 0; i < batch.n; i++) {
      const label = batch.labels[i];
      if (held && (supervised || label === BENIGN) && inTrainPart(batch.rowHash[i], split)) {
        perFile[batch.fileIndex].skippedTrainingRows++;
        continue;
      }
      let c = classIds.get(label);
      if (c === undefined) {
        c = classNames.length;
        classIds.set(label, c);
        classNames.push(label);
      }
      if (n === scores.length) {
        const s2 = new Float32Array(n * 2);
        s2.set(scores);
        scores = s2;
        const c2 = new Uint16Array(n * 2);
        c2.set(classes);
        classes = c2;
      }
      scores[n] = result.scores[i];
      classes[n] = c;
      if (cls) {
        predicted.push(cls.classes[cls.ids[i]]);
        truth.push(label);
        confidence.push(cls.confidence[i]);
      }
      n++;
      perFile[batch.fileIndex].evaluatedRows++;
    }
  }
  scores = scores.subarray(0, n);
  classes = classes.subarray(0, n);
  if (n === 0)
    throw new UserError(
      'nothing to evaluate: no labelled rows could be scored (see the messages above)',
      'evaluation needs a label column; name it with --label COLUMN',
    );
  const benignId = classIds.get(BENIGN) ?? -1;
  const positive = new Uint8Array(n);
  for (let i = 0; i < n; i++) positive[i] = classes[i] !== benignId ? 1 : 0;
  const nBenign = n - positive.reduce((a, b) => a + b, 0);
  if (nBenign === 0)
    diag.report({
      severity: 'warning',
      reason: 'no-benign',
      file: 'evaluation',
      line: 0,
      message: 'no benign rows: AUROC and false-positive figures are undefined',
    });
  if (nBenign === n)
    diag.report({
      severity: 'warning',
      reason: 'no-attack',
      file: 'evaluation',
      line: 0,
      message: 'no attack rows: detection figures are undefined',
    });

  const thr = model.threshold;
  const counts = countsAt(scores, positive, thr);
  const prf = precisionRecallF1(counts);
  const overallDr: EvaluationReport['overall']['detectionAtFpr'] = {};
  for (const f of fprs) {
    const r = detectionAtFpr(scores, positive, f);
    overallDr[fprKey(f)] = { detectionRate: r.tpr, fpr: r.fpr, threshold: r.threshold };
  }

  // Per class: class rows vs benign rows.
  const order = classNames
    .map((name, id) => ({ name, id }))
    .sort((a, b) => rankOf(a.name) - rankOf(b.name) || (a.name < b.name ? -1 : 1));
  const perClass: ClassReport[] = [];
  const confusion: [number, number][] = [];
  for (const { name, id } of order) {
    let rows = 0;
    let flagged = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      if (classes[i] !== id) continue;
      rows++;
      sum += scores[i];
      if (scores[i] > thr) flagged++;
    }
    const dr: Record<string, number> = {};
    for (const f of fprs) {
      const t = overallDr[fprKey(f)].threshold;
      let hit = 0;
      for (let i = 0; i < n; i++) if (classes[i] === id && scores[i] >= t) hit++;
      dr[fprKey(f)] = rows > 0 && !Number.isNaN(t) ? hit / rows : Number.NaN;
    }
    let classAuroc = Number.NaN;
    if (id !== benignId && benignId >= 0) {
      const idx: number[] = [];
      for (let i = 0; i < n; i++) if (classes[i] === id || classes[i] === benignId) idx.push(i);
      classAuroc = auroc(
        idx.map((i) => scores[i]),
        idx.map((i) => classes[i] === id),
      );
    }
    perClass.push({
      label: name,
      rows,
      flaggedAtThreshold: rows > 0 ? flagged / rows : Number.NaN,
      auroc: classAuroc,
      detectionAtFpr: dr,
      meanScore: rows > 0 ? sum / rows : Number.NaN,
    });
    confusion.push([rows - flagged, flagged]);
  }

  const skipped = perFile.reduce((s, f) => s + f.skippedTrainingRows, 0);
  const report: EvaluationReport = {
    model: { id: m.id, detector: m.detector.kind, threshold: thr, thresholdMethod: m.threshold.method },
    data: { files: perFile, rows: n, benign: nBenign, attack: n - nBenign, skippedTrainingRows: skipped },
    overall: {
      auroc: auroc(scores, positive),
      prAuc: averagePrecision(scores, positive),
      detectionAtFpr: overallDr,
      atThreshold: { threshold: thr, ...prf, ...counts },
    },
    perClass,
    confusion: { labels: order.map((o) => o.name), columns: ['normal', 'anomaly'], counts: confusion },
    seconds: Number(((performance.now() - t0) / 1000).toFixed(3)),
  };
  if (predicted.length) report.classification = classificationReport(truth, predicted, confidence);
  if (!opts.plot) return { report, files: reader.files };
  const roc: PlotData['roc'] = [{ name: 'all attacks', points: rocCurve(scores, positive) }];
  for (const { name, id } of order) {
    if (id === benignId || benignId < 0) continue;
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (classes[i] === id || classes[i] === benignId) idx.push(i);
    roc.push({
      name,
      points: rocCurve(
        idx.map((i) => scores[i]),
        idx.map((i) => classes[i] === id),
      ),
    });
  }
  const plot: PlotData = {
    title: `${m.id}: AUROC ${report.overall.auroc.toFixed(4)}`,
    threshold: thr,
    roc,
    histogram: histogram(scores, (i) => positive[i], ['BENIGN', 'attack']),
  };
  return { report, files: reader.files, plot };
}

export function fprKey(f: number): string {
  return `${Number((f * 100).toPrecision(6))}%`;
}

function rankOf(label: string): number {
  const i = (THREAT_TYPES as readonly string[]).indexOf(label);
  return i < 0 ? THREAT_TYPES.length : i;
}

/** Accuracy, per-class precision/recall/F1 and macro-F1 of predicted threat types. */
export function classificationReport(
  truth: string[],
  predicted: string[],
  confidence: number[],
): NonNullable<EvaluationReport['classification']> {
  const labels = [...new Set([...truth, ...predicted])].sort(
    (a, b) => rankOf(a) - rankOf(b) || (a < b ? -1 : 1),
  );
  let correct = 0;
  const tp = new Map<string, number>();
  const predCount = new Map<string, number>();
  const trueCount = new Map<string, number>();
  for (let i = 0; i < truth.length; i++) {
    if (truth[i] === predicted[i]) {
      correct++;
      tp.set(truth[i], (tp.get(truth[i]) ?? 0) + 1);
    }
    predCount.set(predicted[i], (predCount.get(predicted[i]) ?? 0) + 1);
    trueCount.set(truth[i], (trueCount.get(truth[i]) ?? 0) + 1);
  }
  const perClass = labels
    .filter((l) => (trueCount.get(l) ?? 0) > 0)
    .map((label) => {
      const t = tp.get(label) ?? 0;
      const p = predCount.get(label) ?? 0;
      const s = trueCount.get(label) ?? 0;
      const precision = p > 0 ? t / p : 0;
      const recall = s > 0 ? t / s : 0;
      const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
      return { label, precision, recall, f1, support: s };
    });
  return {
    accuracy: correct / truth.length,
    macroF1: perClass.reduce((a, c) => a + c.f1, 0) / Math.max(1, perClass.length),
    ece: expectedCalibrationError(
      confidence,
      truth.map((t, i) => t === predicted[i]),
    ),
    perClass,
  };
}
