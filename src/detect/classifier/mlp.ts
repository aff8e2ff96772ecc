/**
 * Supervised MLP classifier (`mlp`): learns the threat type from labelled flows. Its anomaly
 * score is the probability that a flow is *not* BENIGN (summed over the attack classes, so a
 * confident benign verdict keeps its precision), which plugs into the same thresholds, bundles
 * and evaluation as the unsupervised detectors; `classify` names the most likely threat type.
 *
 * Probabilities are calibrated by temperature scaling (Guo et al. 2017): one scalar T dividing
 * the logits, fitted on the held-out calibration rows by minimising their negative
 * log-likelihood; the expected calibration error (15 confidence bins) is kept before and after.
 */
import type { ActName } from '../../nn/engine.js';
import {
  checkFinite,
  DEFAULT_TRAINING,
  type EpochReport,
  fitLoop,
  fitOptionsFor,
  type TrainingParams,
} from '../../nn/fit.js';
import { type LayerSpec, Mlp } from '../../nn/mlp.js';
import { classifierToOnnx, OrtRuntime } from '../../nn/onnx.js';
import { type Detector, type Matrix, registerDetector, type WeightArray, withDefaults } from '../detector.js';
import {
  attackProbability,
  classifyLogits,
  fitTemperature,
  type ProbabilityCalibration,
  softmaxT,
} from './temperature.js';

export interface MlpParams extends TrainingParams {
  layers: number[];
  activation: ActName;
  dropout: number;
}

export const DEFAULT_MLP: MlpParams = {
  ...DEFAULT_TRAINING,
  layers: [64, 32],
  activation: 'relu',
  dropout: 0,
};

const SCORE_BATCH = 4096;

export function classifierSpecs(
  classes: number,
  p: Pick<MlpParams, 'layers' | 'activation'> & Partial<Pick<MlpParams, 'dropout'>>,
): LayerSpec[] {
  return [
    ...p.layers.map((units) => ({ units, act: p.activation, dropout: p.dropout || undefined })),
    { units: classes, act: 'none' as const },
  ];
}

export class MlpClassifier implements Detector {
  readonly kind = 'mlp';
  readonly p: MlpParams;
  private net: Mlp | null = null;
  private cols = 0;
  classes: string[] = [];
  temperature = 1;
  calibration: {
    eceBefore: number;
    eceAfter: number;
    nllBefore: number;
    nllAfter: number;
    rows: number;
  } | null = null;
  history: EpochReport[] = [];
  bestEpoch = 0;
  onFitProgress?: (done: number, total: number, note: string) => void;
  private readonly ort = new OrtRuntime(() => this.onnx());

  constructor(params: Partial<MlpParams> = {}) {
    const p = withDefaults(DEFAULT_MLP, params);
    if (!Array.isArray(p.layers) || p.layers.some((u) => !(Number.isInteger(u) && u > 0)))
      throw new Error(`mlp: layers must be positive integers (got ${p.layers})`);
    this.p = p;
  }

  fit(): void {
    throw new Error('mlp is a supervised detector: it needs labels (train it with `nadir train`)');
  }

  fitSupervised(x: Matrix, y: Int32Array, classes: string[], calib: { x: Matrix; y: Int32Array }): void {
    checkFinite(x.data, x.rows, x.cols);
    this.cols = x.cols;
    this.classes = classes;
    const C = classes.length;
    const specs = classifierSpecs(C, this.p);
    const bs = Math.max(1, Math.min(this.p.batchSize, x.rows));
    const net = new Mlp(x.cols, specs, bs);
    net.init(this.p.seed);
    const e = net.engine;
    const k = e.kernels;
    const data = e.tensor(x.rows, x.cols);
    data.data.set(x.data.subarray(0, x.rows * x.cols));
    const labels = e.int32(x.rows);
    labels.data().set(y);
    const targets = e.int32(bs);
    const probs = e.tensor(bs, C);
    const r = fitLoop(
      {
        engine: e,
        rows: x.rows,
        maxBatch: bs,
        params: net.params(),
        batchLoss: (idx, m, train) => {
          k.gatherRows(m, x.cols, data.ptr, idx, net.input.ptr);
          k.gatherRows(m, 1, labels.ptr, idx, targets.ptr);
          net.forward(m, net.input, train);
          const loss = k.softmaxCe(m, C, net.output.ptr, targets.ptr, probs.ptr, train ? net.dOutput.ptr : 0);
          if (train) net.backward(m);
          return loss;
        },
      },
      fitOptionsFor(this.p, bs, this.onFitProgress),
    );
    this.history = r.epochs;
    this.bestEpoch = r.bestEpoch;
    this.net = new Mlp(x.cols, specs, SCORE_BATCH);
    this.net.importWeights(net.exportWeights());
    this.fitTemperature(calib.x, calib.y);
  }

  /** Logits of all rows (n × C). */
  private logits(x: Matrix): Float32Array {
    const net = this.ready(x);
    const C = this.classes.length;
    const out = new Float32Array(x.rows * C);
    const d = this.cols;
    for (let s = 0; s < x.rows; s += SCORE_BATCH) {
      const m = Math.min(SCORE_BATCH, x.rows - s);
      net.input.data.set(x.data.subarray(s * d, (s + m) * d));
      net.forward(m);
      out.set(net.output.data.subarray(0, m * C), s * C);
    }
    return out;
  }

  private fitTemperature(x: Matrix, y: Int32Array): void {
    if (x.rows === 0) return;
    const r = fitTemperature(this.logits(x), y, this.classes.length);
    this.temperature = r.temperature;
    this.calibration = r.calibration;
  }

  private ready(x: Matrix): Mlp {
    if (!this.net) throw new Error('mlp: not fitted');
    if (x.cols !== this.cols)
      throw new Error(`mlp: model expects ${this.cols} feature columns, got ${x.cols}`);
    return this.net;
  }

  /** Probability that the row is not BENIGN (class 0), at the calibrated temperature. */
  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const z = this.logits(x);
    const C = this.classes.length;
    const p = new Float64Array(C);
    for (let i = 0; i < x.rows; i++) out[i] = attackProbability(z, i * C, C, this.temperature, p);
    return out;
  }

  async scoreAsync(x: Matrix): Promise<Float32Array> {
    this.ready(x);
    return this.ort.score(x, (m) => this.score(m));
  }

  classify(x: Matrix): { classes: string[]; ids: Int32Array; confidence: Float32Array } {
    const r = classifyLogits(this.logits(x), x.rows, this.classes.length, this.temperature);
    return { classes: this.classes, ...r };
  }

  /**
   * Gradient × input of the attack log-odds, log(P(attack) / P(BENIGN)): how much each feature's
   * value pushes the row away from BENIGN (negative pushes are ignored). The log-odds, unlike the
   * probability, does not saturate, so confident verdicts are explained too.
   */
  explain(x: Matrix, row: number): Float64Array {
    const net = this.ready(x);
    const d = this.cols;
    const C = this.classes.length;
    const grad = this.gradNet(net);
    grad.input.data.set(x.data.subarray(row * d, row * d + d));
    grad.forward(1);
    const z = grad.output.data;
    // log-odds = LSE_{j≥1}(z_j/T) − z_0/T; d/dz_0 = −1/T, d/dz_j = q_j/T with q the softmax of
    // the attack logits alone.
    const T = this.temperature;
    let mx = Number.NEGATIVE_INFINITY;
    for (let j = 1; j < C; j++) mx = Math.max(mx, z[j] / T);
    let s = 0;
    for (let j = 1; j < C; j++) s += Math.exp(z[j] / T - mx);
    const dz = grad.dOutput.data;
    dz[0] = -1 / T;
    for (let j = 1; j < C; j++) dz[j] = Math.exp(z[j] / T - mx) / s / T;
    grad.backward(1);
    const gx = grad.dInput!.data;
    const xin = grad.input.data;
    const out = new Float64Array(d);
    for (let j = 0; j < d; j++) out[j] = Math.max(0, gx[j] * xin[j]);
    return out;
  }

  private gradNetCache: Mlp | null = null;
  private gradNet(net: Mlp): Mlp {
    if (!this.gradNetCache) {
      this.gradNetCache = new Mlp(this.cols, net.specs, 1, { inputGradient: true });
      this.gradNetCache.importWeights(net.exportWeights());
    }
    return this.gradNetCache;
  }

  onnx(): Uint8Array {
    if (!this.net) throw new Error('mlp: not fitted');
    return classifierToOnnx({
      inDim: this.cols,
      specs: this.net.specs,
      weights: this.net.exportWeights(),
      temperature: this.temperature,
      classes: this.classes,
    });
  }

  artifacts(): { file: string; bytes: Uint8Array; description: string }[] {
    return [
      { file: 'model.onnx', bytes: this.onnx(), description: 'ONNX graph: features → score, probabilities' },
    ];
  }

  params(): Record<string, unknown> {
    return {
      ...this.p,
      cols: this.cols,
      classes: this.classes,
      temperature: this.temperature,
      calibration: this.calibration,
      parameters: this.net?.parameterCount ?? 0,
      bestEpoch: this.bestEpoch,
      epochsRun: this.history.length,
    };
  }

  weights(): Record<string, WeightArray> {
    if (!this.net) throw new Error('mlp: not fitted');
    return this.net.exportWeights();
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): MlpClassifier {
    const c = new MlpClassifier(params as Partial<MlpParams>);
    c.cols = Number(params.cols);
    c.classes = params.classes as string[];
    c.temperature = Number(params.temperature ?? 1);
    c.calibration = (params.calibration as MlpClassifier['calibration']) ?? null;
    if (!(c.cols > 0) || !Array.isArray(c.classes) || c.classes.length < 2)
      throw new Error('mlp: manifest lacks the column count or the classes');
    c.net = new Mlp(c.cols, classifierSpecs(c.classes.length, c.p), SCORE_BATCH);
    c.net.importWeights(w as Record<string, Float32Array>);
    c.bestEpoch = Number(params.bestEpoch ?? 0);
    return c;
  }
}

registerDetector({
  kind: 'mlp',
  description: 'supervised MLP classifier of threat types, temperature-calibrated (needs labels)',
  supervised: true,
  create: (params) => new MlpClassifier(params as Partial<MlpParams>),
  restore: (params, weights) => MlpClassifier.restore(params, weights),
});
