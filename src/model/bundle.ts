/**
 * Model bundles: a directory holding `manifest.json` (format version, feature schema, detector
 * hyper-parameters, threshold, training-data fingerprint, metrics) and `weights.bin` (the
 * detector's typed arrays, little-endian, each 8-byte aligned, listed with offsets in the
 * manifest and guarded by a SHA-256). `Model` ties pipeline + detector + threshold together.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../core/diagnostics.js';
import type { Contribution, Verdict } from '../core/records.js';
import type { Threshold } from '../detect/calibration.js';
import { type Detector, detectorFactory, type Matrix, type WeightArray } from '../detect/detector.js';
import { missingForNetflow, netflowFromCic } from '../features/netflow.js';
import {
  FeaturePipeline,
  type FeatureSchema,
  type Layout,
  MissingColumnsError,
  type Rows,
} from '../features/pipeline.js';
import type { IngestOptions } from '../ingest/table.js';
// Detectors register themselves on import.
import '../detect/autoencoder/autoencoder.js';
import '../detect/autoencoder/hybrid.js';
import '../detect/classifier/ae-classifier.js';
import '../detect/classifier/mlp.js';
import '../detect/iforest/iforest.js';
import '../detect/ocsvm/ocsvm.js';
import '../detect/ensemble/ensemble.js';

export const MODEL_FORMAT = 'nadir-model';
export const MODEL_FORMAT_VERSION = 1;

export interface WeightEntry {
  name: string;
  dtype: 'float32' | 'float64' | 'int32' | 'uint32' | 'uint8';
  offset: number;
  length: number;
}

export interface TrainingFile {
  name: string;
  bytes: number;
  /** Size + SHA-256 of the first and last MiB: recognises the same file cheaply. */
  fingerprint: string;
  sha256: string;
  /** Rows of this file used for fitting or calibration. */
  trainingRows: number;
}

export type SplitSpec = { kind: 'ratio'; ratio: number; seed: number } | { kind: 'none' };

export interface Manifest {
  format: typeof MODEL_FORMAT;
  formatVersion: number;
  id: string;
  createdAt: string;
  nadirVersion: string;
  detector: {
    kind: string;
    params: Record<string, unknown>;
    weights: { file: string; sha256: string; bytes: number; arrays: WeightEntry[] };
    /** Extra files of the bundle (e.g. `model.onnx`), derived from the weights. */
    artifacts?: { file: string; sha256: string; bytes: number; description: string }[];
  };
  features: FeatureSchema;
  /**
   * Feature set the model reads: `cic` (default, the columns as given) or `netflow` (the NetFlow
   * feature set, mapped from CIC columns when the input has them; features/netflow.ts).
   */
  featureSet?: FeatureSet;
  threshold: Threshold;
  /** Ingest options the model was trained with; reused when it reads data. */
  ingest: Pick<IngestOptions, 'label' | 'benign' | 'drop' | 'keep' | 'categorical' | 'header'>;
  training: {
    files: TrainingFile[];
    split: SplitSpec;
    /**
     * Supervised: every labelled row of the training part was used (not only benign ones), so
     * `evaluate` leaves out all of them.
     */
    supervised?: boolean;
    /** Rows eligible for training in the training part (before any row cap). */
    candidateRows: number;
    fitRows: number;
    calibrationRows: number;
    calibrationFraction: number;
    labelCounts: Record<string, number>;
    seconds: number;
  };
  /** Score statistics on the calibration rows. */
  calibration: { min: number; median: number; p99: number; max: number };
  /**
   * Mean explanation credit of each feature dimension over normal (calibration) rows. Explanations
   * report what a row has beyond this baseline, so features that every row uses alike (random
   * splits touch them all) do not crowd out the ones that set this row apart.
   */
  explainBaseline?: number[];
}

const DTYPES = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
} as const;

function dtypeOf(a: WeightArray): WeightEntry['dtype'] {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  return 'uint8';
}

export function newModelId(kind: string): string {
  const ts = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${kind}-${ts}-${randomBytes(3).toString('hex')}`;
}

export type FeatureSet = 'cic' | 'netflow';

export class Model {
  readonly pipeline: FeaturePipeline;

  constructor(
    readonly manifest: Manifest,
    readonly detector: Detector,
    pipeline?: FeaturePipeline,
  ) {
    this.pipeline = pipeline ?? new FeaturePipeline(manifest.features);
  }

  get id(): string {
    return this.manifest.id;
  }

  /** Throws when a loaded manifest lacks what scoring needs (a hand-edited or truncated file). */
  checkComplete(): void {
    const m = this.manifest;
    if (typeof m.id !== 'string') throw new Error('manifest has no id');
    if (typeof m.threshold?.value !== 'number') throw new Error('manifest has no threshold value');
    if (!(this.pipeline.width > 0)) throw new Error('manifest has no feature pipeline');
    if (m.explainBaseline && m.explainBaseline.length !== this.pipeline.width)
      throw new Error('explanation baseline does not match the feature pipeline');
    const cols = this.detector.params().cols;
    if (typeof cols === 'number' && cols !== this.pipeline.width)
      throw new Error(`detector expects ${cols} features, the pipeline makes ${this.pipeline.width}`);
  }

  get threshold(): number {
    return this.manifest.threshold.value;
  }

  get featureSet(): FeatureSet {
    return this.manifest.featureSet ?? 'cic';
  }

  /** Rows in the model's feature set (the NetFlow set is derived from CIC columns when needed). */
  prepare<T extends Rows>(rows: T): T {
    return this.featureSet === 'netflow' && !this.readsDirectly(rows.plan) ? netflowFromCic(rows) : rows;
  }

  /** Whether rows in `layout` already carry every column the pipeline reads. */
  private readsDirectly(layout: Layout): boolean {
    try {
      this.pipeline.check(layout);
      return true;
    } catch {
      return false;
    }
  }

  /** The layout of the model's own inputs (numeric and categorical columns, by name). */
  inputLayout(): Layout {
    const inputs = this.manifest.features.inputs;
    return {
      numericNames: inputs.filter((f) => f.kind === 'numeric').map((f) => f.name),
      stringNames: inputs.filter((f) => f.kind === 'categorical').map((f) => f.name),
      key: `model:${this.id}`,
    };
  }

  /** Throws MissingColumnsError (naming the columns) when rows in `layout` cannot be scored. */
  check(layout: Layout): void {
    if (this.featureSet === 'netflow' && !this.readsDirectly(layout)) {
      const missing = missingForNetflow(layout);
      if (missing.length) throw new MissingColumnsError(layout.file, missing);
      return;
    }
    this.pipeline.check(layout);
  }

  /**
   * As `score`, through the detector's batch runtime where it has one (ONNX Runtime for neural
   * detectors); the same scores within float32 rounding.
   */
  async scoreAsync<T extends Rows>(input: T): Promise<{ x: Matrix; scores: Float32Array; rows: T }> {
    const rows = this.prepare(input);
    const data = this.pipeline.transform(rows);
    const x = { data, rows: rows.n, cols: this.pipeline.width };
    const scores = this.detector.scoreAsync ? await this.detector.scoreAsync(x) : this.detector.score(x);
    return { x, scores, rows };
  }

  /**
   * Features and scores for a set of rows, and the rows in the model's feature set (what `explain`
   * reads). Throws MissingColumnsError when columns are absent.
   */
  score<T extends Rows>(input: T): { x: Matrix; scores: Float32Array; rows: T } {
    const rows = this.prepare(input);
    const data = this.pipeline.transform(rows);
    const x = { data, rows: rows.n, cols: this.pipeline.width };
    return { x, scores: this.detector.score(x), rows };
  }

  /** The top-k input features behind row i's score, with observed and typical values. */
  explain(x: Matrix, rows: Rows, i: number, k = 5): Contribution[] {
    const credit = this.detector.explain(x, i);
    const inputs = this.pipeline.schema.inputs;
    const byInput = new Float64Array(inputs.length);
    const map = this.pipeline.schema.outputInput;
    const base = this.manifest.explainBaseline;
    let total = 0;
    for (let j = 0; j < credit.length; j++) {
      const c = base ? Math.max(0, credit[j] - base[j]) : credit[j];
      byInput[map[j]] += c;
      total += c;
    }
    const order = [...byInput.keys()].sort((a, b) => byInput[b] - byInput[a]).slice(0, k);
    return order
      .filter((f) => byInput[f] > 0)
      .map((f) => ({
        feature: inputs[f].name,
        value: this.pipeline.rawValue(rows, i, f),
        typical: this.pipeline.typical(f),
        share: total > 0 ? byInput[f] / total : 0,
      }));
  }

  verdict(score: number, contributions?: Contribution[], threatType: string | null = null): Verdict {
    const v: Verdict = {
      score,
      threshold: this.threshold,
      isAnomaly: score > this.threshold,
      threatType,
      model: this.id,
    };
    if (contributions) v.contributions = contributions;
    return v;
  }

  /** Writes the bundle to `dir` (created if needed; an existing bundle is replaced atomically per file). */
  save(dir: string): void {
    if (endianness() !== 'LE') throw new Error('model bundles are little-endian; this host is big-endian');
    mkdirSync(dir, { recursive: true });
    const arrays: WeightEntry[] = [];
    const parts: Buffer[] = [];
    let offset = 0;
    for (const [name, a] of Object.entries(this.detector.weights())) {
      const pad = (8 - (offset % 8)) % 8;
      if (pad) parts.push(Buffer.alloc(pad));
      offset += pad;
      const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      parts.push(bytes);
      arrays.push({ name, dtype: dtypeOf(a), offset, length: a.length });
      offset += bytes.length;
    }
    const blob = Buffer.concat(parts);
    const m = this.manifest;
    m.detector.params = this.detector.params();
    m.detector.weights = {
      file: 'weights.bin',
      sha256: createHash('sha256').update(blob).digest('hex'),
      bytes: blob.length,
      arrays,
    };
    writeAtomic(join(dir, 'weights.bin'), blob);
    const artifacts = this.detector.artifacts?.() ?? [];
    m.detector.artifacts = artifacts.map((a) => {
      writeAtomic(join(dir, a.file), Buffer.from(a.bytes));
      return {
        file: a.file,
        sha256: createHash('sha256').update(a.bytes).digest('hex'),
        bytes: a.bytes.length,
        description: a.description,
      };
    });
    if (m.detector.artifacts.length === 0) delete m.detector.artifacts;
    writeAtomic(join(dir, 'manifest.json'), Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
  }

  static load(dir: string): Model {
    const mpath = join(dir, 'manifest.json');
    if (!existsSync(mpath))
      throw new UserError(
        `${dir} is not a model bundle (no manifest.json)`,
        'train one with `nadir train --out DIR`',
      );
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
    } catch (e) {
      throw new UserError(`${mpath}: not valid JSON (${(e as Error).message})`);
    }
    if (m.format !== MODEL_FORMAT) throw new UserError(`${mpath}: not a NADIR model manifest`);
    if (m.formatVersion > MODEL_FORMAT_VERSION)
      throw new UserError(
        `${mpath}: model format ${m.formatVersion} is newer than this NADIR understands (${MODEL_FORMAT_VERSION})`,
        'upgrade NADIR',
      );
    try {
      const w = m.detector.weights;
      const blob = readFileSync(join(dir, w.file));
      const digest = createHash('sha256').update(blob).digest('hex');
      if (digest !== w.sha256)
        throw new UserError(`${join(dir, w.file)}: checksum mismatch; the bundle is corrupt`);
      const weights: Record<string, WeightArray> = {};
      for (const e of w.arrays) {
        const Ctor = DTYPES[e.dtype];
        if (!Ctor) throw new UserError(`${mpath}: unknown weight dtype ${e.dtype}`);
        const end = e.offset + e.length * Ctor.BYTES_PER_ELEMENT;
        if (e.offset < 0 || end > blob.length)
          throw new UserError(`${mpath}: weight '${e.name}' lies outside weights.bin`);
        // Copy into an aligned buffer of its own.
        const copy = new Uint8Array(end - e.offset);
        copy.set(blob.subarray(e.offset, end));
        weights[e.name] = new Ctor(copy.buffer);
      }
      const detector = detectorFactory(m.detector.kind).restore(m.detector.params, weights);
      const model = new Model(m, detector);
      model.checkComplete();
      return model;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(
        `${dir}: the model bundle is incomplete or damaged (${(e as Error).message})`,
        'train it again with `nadir train --out DIR`',
      );
    }
  }
}

function writeAtomic(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
