/**
 * Autoencoder + classifier (`ae-classifier`), the "autoencoder with a classifier head" pattern:
 * one encoder feeds a decoder that rebuilds the row and a classifier head that names its threat
 * type; both are trained together (loss = MSE + ceWeight · cross-entropy), so the code learns what
 * normal traffic looks like *and* what separates the known attacks. The score joins the two:
 *
 *   score = P(attack) + (1 − P(attack)) · novelty,   novelty = 1 − exp(−error / s)
 *
 * where P(attack) is the temperature-calibrated classifier probability of any attack class, error
 * the row's reconstruction error, and s is set on held-out benign rows so that their 99th-percentile
 * error gives novelty ½. Known attacks score through the classifier, unknown ones through the
 * reconstruction, and a row the classifier calls benign but the decoder cannot rebuild still
 * stands out.
 */
import type { ActName, Tensor } from '../../nn/engine.js';
import {
  checkFinite,
  DEFAULT_TRAINING,
  type EpochReport,
  fitLoop,
  fitOptionsFor,
  type TrainingParams,
} from '../../nn/fit.js';
import { type LayerSpec, Mlp } from '../../nn/mlp.js';
import { aeClassifierToOnnx, OrtRuntime } from '../../nn/onnx.js';
import { type Detector, type Matrix, registerDetector, type WeightArray, withDefaults } from '../detector.js';
import {
  attackProbability,
  classifyLogits,
  fitTemperature,
  type ProbabilityCalibration,
  softmaxT,
} from './temperature.js';

export interface AeClassifierParams extends TrainingParams {
  /** Encoder widths, the last being the code; the decoder mirrors them. */
  layers: number[];
  /** Hidden widths of the classifier head on the code. */
  headLayers: number[];
  activation: ActName;
  /** Weight of the cross-entropy against the reconstruction MSE. */
  ceWeight: number;
  /** Standard deviation of Gaussian input noise while training. */
  noise: number;
}

export const DEFAULT_AE_CLASSIFIER: AeClassifierParams = {
  ...DEFAULT_TRAINING,
  layers: [64, 32, 16],
  headLayers: [32],
  activation: 'relu',
  ceWeight: 1,
  noise: 0,
};

const SCORE_BATCH = 4096;

export interface AeClassifierShapes {
  enc: LayerSpec[];
  dec: LayerSpec[];
  cls: LayerSpec[];
}

export function aeClassifierShapes(cols: number, classes: number, p: AeClassifierParams): AeClassifierShapes {
  const L = p.layers;
  const enc: LayerSpec[] = L.map((units, i) => ({ units, act: i === L.length - 1 ? 'none' : p.activation }));
  const dec: LayerSpec[] = [];
  for (let i = L.length - 2; i >= 0; i--) dec.push({ units: L[i], act: p.activation });
  dec.push({ units: cols, act: 'none' });
  const cls: LayerSpec[] = [
    ...p.headLayers.map((units) => ({ units, act: p.activation })),
    { units: classes, act: 'none' },
  ];
  return { enc, dec, cls };
}

/** Encoder, decoder and classifier head in one engine. */
class Joint {
  readonly enc: Mlp;
  readonly dec: Mlp;
  readonly cls: Mlp;

  constructor(
    readonly cols: number,
    readonly shapes: AeClassifierShapes,
    readonly maxBatch: number,
  ) {
    this.enc = new Mlp(cols, shapes.enc, maxBatch);
    const code = shapes.enc[shapes.enc.length - 1].units;
    this.dec = new Mlp(code, shapes.dec, maxBatch, { engine: this.enc.engine, inputGradient: true });
    this.cls = new Mlp(code, shapes.cls, maxBatch, { engine: this.enc.engine, inputGradient: true });
  }

  forward(m: number, train = false): void {
    this.enc.forward(m, this.enc.input, train);
    this.dec.forward(m, this.enc.output, train);
    this.cls.forward(m, this.enc.output, train);
  }

  /** Back-propagates dec.dOutput and cls.dOutput through both heads into the encoder. */
  backward(m: number): void {
    const k = this.enc.engine.kernels;
    this.dec.backward(m, this.enc.output);
    this.cls.backward(m, this.enc.output);
    const code = this.enc.outDim;
    k.copy(m * code, this.dec.dInput!.ptr, this.enc.dOutput.ptr);
    k.addInPlace(m * code, this.enc.dOutput.ptr, this.cls.dInput!.ptr);
    this.enc.backward(m);
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return [
      ...this.enc.params().map((q) => ({ ...q, name: `enc.${q.name}` })),
      ...this.dec.params().map((q) => ({ ...q, name: `dec.${q.name}` })),
      ...this.cls.params().map((q) => ({ ...q, name: `cls.${q.name}` })),
    ];
  }

  exportWeights(): Record<string, Float32Array> {
    const w: Record<string, Float32Array> = {};
    for (const q of this.params()) w[q.name] = q.p.data.slice();
    return w;
  }

  importWeights(w: Record<string, Float32Array>): void {
    for (const q of this.params()) {
      const src = w[q.name];
      if (!src || src.length !== q.p.size) throw new Error(`weight ${q.name}: expected ${q.p.size} values`);
      q.p.data.set(src);
    }
  }
}

export class AeClassifier implements Detector {
  readonly kind = 'ae-classifier';
  readonly p: AeClassifierParams;
  private net: Joint | null = null;
  private cols = 0;
  classes: string[] = [];
  temperature = 1;
  /** Error scale s of the novelty term. */
  noveltyScale = 1;
  calibration: ProbabilityCalibration | null = null;
  history: EpochReport[] = [];
  bestEpoch = 0;
  onFitProgress?: (done: number, total: number, note: string) => void;
  private readonly ort = new OrtRuntime(() => this.onnx());

  constructor(params: Partial<AeClassifierParams> = {}) {
    const p = withDefaults(DEFAULT_AE_CLASSIFIER, params);
    for (const k of ['layers', 'headLayers'] as const)
      if (!Array.isArray(p[k]) || p[k].some((u) => !(Number.isInteger(u) && u > 0)))
        throw new Error(`ae-classifier: ${k} must be positive integers (got ${p[k]})`);
    if (p.layers.length === 0) throw new Error('ae-classifier: layers needs at least the code width');
    this.p = p;
  }

  fit(): void {
    throw new Error('ae-classifier is a supervised detector: it needs labels (train it with `nadir train`)');
  }

  fitSupervised(x: Matrix, y: Int32Array, classes: string[], calib: { x: Matrix; y: Int32Array }): void {
    checkFinite(x.data, x.rows, x.cols);
    this.cols = x.cols;
    this.classes = classes;
    const C = classes.length;
    const d = x.cols;
    const shapes = aeClassifierShapes(d, C, this.p);
    const bs = Math.max(1, Math.min(this.p.batchSize, x.rows));
    const net = new Joint(d, shapes, bs);
    net.enc.init(this.p.seed);
    net.dec.init(this.p.seed + 1);
    net.cls.init(this.p.seed + 2);
    const e = net.enc.engine;
    const k = e.kernels;
    const data = e.tensor(x.rows, d);
    data.data.set(x.data.subarray(0, x.rows * d));
    const labels = e.int32(x.rows);
    labels.data().set(y);
    const targets = e.int32(bs);
    const probs = e.tensor(bs, C);
    const clean = e.tensor(bs, d);
    const state = e.rngState(this.p.seed ^ 0x2545f491);
    const w = this.p.ceWeight;
    const r = fitLoop(
      {
        engine: e,
        rows: x.rows,
        maxBatch: bs,
        params: net.params(),
        batchLoss: (idx, m, train) => {
          k.gatherRows(m, d, data.ptr, idx, clean.ptr);
          k.gatherRows(m, 1, labels.ptr, idx, targets.ptr);
          if (train && this.p.noise > 0)
            k.addGaussian(m * d, clean.ptr, this.p.noise, state, net.enc.input.ptr);
          else k.copy(m * d, clean.ptr, net.enc.input.ptr);
          net.forward(m, train);
          const g = train ? 1 : 0;
          const lr = k.mse(m, d, net.dec.output.ptr, clean.ptr, g ? net.dec.dOutput.ptr : 0);
          const lc = k.softmaxCe(
            m,
            C,
            net.cls.output.ptr,
            targets.ptr,
            probs.ptr,
            g ? net.cls.dOutput.ptr : 0,
          );
          if (train) {
            if (w !== 1) k.scale(m * C, net.cls.dOutput.ptr, w);
            net.backward(m);
          }
          return lr + w * lc;
        },
      },
      fitOptionsFor(this.p, bs, this.onFitProgress),
    );
    this.history = r.epochs;
    this.bestEpoch = r.bestEpoch;
    this.net = new Joint(d, shapes, SCORE_BATCH);
    this.net.importWeights(net.exportWeights());
    this.calibrate(calib.x, calib.y);
  }

  /** Temperature on held-out rows; novelty scale from their benign rows' reconstruction errors. */
  private calibrate(x: Matrix, y: Int32Array): void {
    if (x.rows === 0) return;
    const { logits, errors } = this.forwardAll(x);
    const t = fitTemperature(logits, y, this.classes.length);
    this.temperature = t.temperature;
    this.calibration = t.calibration;
    const benign = Array.from(errors)
      .filter((_, i) => y[i] === 0)
      .sort((a, b) => a - b);
    if (benign.length) {
      const p99 = benign[Math.min(benign.length - 1, Math.floor(benign.length * 0.99))];
      this.noveltyScale = Math.max(p99, 1e-12) / Math.LN2;
    }
  }

  private ready(x: Matrix): Joint {
    if (!this.net) throw new Error('ae-classifier: not fitted');
    if (x.cols !== this.cols)
      throw new Error(`ae-classifier: model expects ${this.cols} feature columns, got ${x.cols}`);
    return this.net;
  }

  /** Class logits (n × C) and reconstruction errors (n) of every row. */
  private forwardAll(x: Matrix): { logits: Float32Array; errors: Float32Array } {
    const net = this.ready(x);
    const k = net.enc.engine.kernels;
    const C = this.classes.length;
    const d = this.cols;
    const logits = new Float32Array(x.rows * C);
    const errors = new Float32Array(x.rows);
    this.errs ??= net.enc.engine.tensor(SCORE_BATCH, 1);
    for (let s = 0; s < x.rows; s += SCORE_BATCH) {
      const m = Math.min(SCORE_BATCH, x.rows - s);
      net.enc.input.data.set(x.data.subarray(s * d, (s + m) * d));
      net.forward(m);
      k.rowMse(m, d, net.dec.output.ptr, net.enc.input.ptr, this.errs.ptr);
      errors.set(this.errs.data.subarray(0, m), s);
      logits.set(net.cls.output.data.subarray(0, m * C), s * C);
    }
    return { logits, errors };
  }

  private errs: Tensor | null = null;

  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const { logits, errors } = this.forwardAll(x);
    const C = this.classes.length;
    const p = new Float64Array(C);
    for (let i = 0; i < x.rows; i++) {
      const attack = attackProbability(logits, i * C, C, this.temperature, p);
      const novelty = -Math.expm1(-errors[i] / this.noveltyScale);
      out[i] = attack + (1 - attack) * novelty;
    }
    return out;
  }

  async scoreAsync(x: Matrix): Promise<Float32Array> {
    this.ready(x);
    return this.ort.score(x, (m) => this.score(m));
  }

  classify(x: Matrix): { classes: string[]; ids: Int32Array; confidence: Float32Array } {
    const r = classifyLogits(this.forwardAll(x).logits, x.rows, this.classes.length, this.temperature);
    return { classes: this.classes, ...r };
  }

  /** Each feature's squared reconstruction error: what the decoder could not rebuild. */
  explain(x: Matrix, row: number): Float64Array {
    const net = this.ready(x);
    const d = this.cols;
    net.enc.input.data.set(x.data.subarray(row * d, row * d + d));
    net.forward(1);
    const y = net.dec.output.data;
    const inp = net.enc.input.data;
    const out = new Float64Array(d);
    for (let j = 0; j < d; j++) out[j] = (y[j] - inp[j]) ** 2;
    return out;
  }

  onnx(): Uint8Array {
    if (!this.net) throw new Error('ae-classifier: not fitted');
    return aeClassifierToOnnx({
      inDim: this.cols,
      shapes: this.net.shapes,
      weights: this.net.exportWeights(),
      temperature: this.temperature,
      noveltyScale: this.noveltyScale,
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
      noveltyScale: this.noveltyScale,
      calibration: this.calibration,
      parameters: this.net ? this.net.params().reduce((s, q) => s + q.p.size, 0) : 0,
      bestEpoch: this.bestEpoch,
      epochsRun: this.history.length,
    };
  }

  weights(): Record<string, WeightArray> {
    if (!this.net) throw new Error('ae-classifier: not fitted');
    return this.net.exportWeights();
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): AeClassifier {
    const a = new AeClassifier(params as Partial<AeClassifierParams>);
    a.cols = Number(params.cols);
    a.classes = params.classes as string[];
    a.temperature = Number(params.temperature ?? 1);
    a.noveltyScale = Number(params.noveltyScale ?? 1);
    a.calibration = (params.calibration as ProbabilityCalibration) ?? null;
    if (!(a.cols > 0) || !Array.isArray(a.classes) || a.classes.length < 2)
      throw new Error('ae-classifier: manifest lacks the column count or the classes');
    a.net = new Joint(a.cols, aeClassifierShapes(a.cols, a.classes.length, a.p), SCORE_BATCH);
    a.net.importWeights(w as Record<string, Float32Array>);
    a.bestEpoch = Number(params.bestEpoch ?? 0);
    return a;
  }
}

registerDetector({
  kind: 'ae-classifier',
  description: 'autoencoder with a classifier head on its code (supervised; known and unknown attacks)',
  supervised: true,
  create: (params) => new AeClassifier(params as Partial<AeClassifierParams>),
  restore: (params, weights) => AeClassifier.restore(params, weights),
});
