/**
 * The detector contract (DESIGN.md §5), in the spirit of PyOD: `fit` on normal data, `score`
 * a batch (higher = more anomalous), `explain` one row. Calibration of the threshold and the
 * feature pipeline live outside the detector (detect/calibration.ts, features/pipeline.ts), so
 * every detector gets them the same way; the model bundle (model/bundle.ts) ties them together.
 */

import type { Encoding, FeatureSchema } from '../features/pipeline.js';

/** Row-major matrix of float32 features. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export type WeightArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

export interface Detector {
  readonly kind: string;
  /**
   * Supervised detectors train on labelled rows of every class instead (class 0 is BENIGN);
   * `calib` (held-out rows) serves for early stopping and probability calibration.
   */
  fitSupervised?(x: Matrix, y: Int32Array, classes: string[], calib: { x: Matrix; y: Int32Array }): void;
  /** Most likely class of each row (supervised detectors), with its probability. */
  classify?(x: Matrix): { classes: string[]; ids: Int32Array; confidence: Float32Array };
  /** Told the feature layout before `fit`, by detectors that treat column kinds differently. */
  configure?(schema: FeatureSchema): void;
  fit(x: Matrix): void;
  /** One score per row; higher = more anomalous. */
  score(x: Matrix, out?: Float32Array): Float32Array;
  /** The same scores through a batch runtime (ONNX Runtime), where the detector has one. */
  scoreAsync?(x: Matrix): Promise<Float32Array>;
  /** Files saved with the bundle besides the weights (an ONNX graph), derived from them. */
  artifacts?(): { file: string; bytes: Uint8Array; description: string }[];
  /**
   * How much each feature column (output of the pipeline) is responsible for row `row`'s score:
   * non-negative weights, larger = more responsible. The model turns them into shares.
   */
  explain(x: Matrix, row: number): Float64Array;
  /** Called during `fit` by detectors that train in steps (epochs), to drive a progress bar. */
  onFitProgress?: (done: number, total: number, note: string) => void;
  /** Hyper-parameters, as saved in the manifest. */
  params(): Record<string, unknown>;
  /** Fitted state as named typed arrays, saved as binary weights. */
  weights(): Record<string, WeightArray>;
}

export interface DetectorFactory {
  kind: string;
  description: string;
  /** Trains on all labelled classes (see Detector.fitSupervised). */
  supervised?: boolean;
  /** Categorical encoding the detector needs (overrides --encoding). */
  encoding?: Encoding;
  create(params: Record<string, unknown>): Detector;
  restore(params: Record<string, unknown>, weights: Record<string, WeightArray>): Detector;
}

const registry = new Map<string, DetectorFactory>();

export function registerDetector(f: DetectorFactory): void {
  registry.set(f.kind, f);
}

export function detectorFactory(kind: string): DetectorFactory {
  const f = registry.get(kind);
  if (!f) throw new Error(`unknown detector '${kind}'; available: ${[...registry.keys()].join(', ')}`);
  return f;
}

export function detectorKinds(): string[] {
  return [...registry.keys()];
}

/**
 * Hyper-parameters: the defaults, overridden by the given values that are not undefined. Keys the
 * defaults do not have are ignored (a manifest's params also carry fitted facts such as `cols`).
 */
export function withDefaults<T extends object>(defaults: T, params: Partial<T>): T {
  const p = { ...defaults };
  for (const key of Object.keys(p) as (keyof T)[])
    if (params[key] !== undefined) p[key] = params[key] as T[keyof T];
  return p;
}
