/**
 * Autoencoder detector: a dense network squeezes each row through a narrow code and rebuilds it;
 * trained on normal traffic only, it rebuilds normal rows well and anomalies badly. The score is
 * the mean squared reconstruction error of the row, and the explanation is each feature's share of
 * that error. Encoder widths default to 64-32 with a 16-wide code (decoder mirrored), ReLU inside,
 * linear code and output; optionally denoising (Gaussian input noise while training).
 */
import type { ActName, Tensor } from '../../nn/engine.js';
import {
  DEFAULT_TRAINING,
  type EpochReport,
  fitAutoencoder,
  fitOptionsFor,
  type TrainingParams,
} from '../../nn/fit.js';
import { type LayerSpec, Mlp } from '../../nn/mlp.js';
import { mlpToOnnx, OrtRuntime } from '../../nn/onnx.js';
import { type Detector, type Matrix, registerDetector, type WeightArray, withDefaults } from '../detector.js';

export interface AutoencoderParams extends TrainingParams {
  /** Encoder widths, the last one being the code (bottleneck); the decoder mirrors them. */
  layers: number[];
  activation: ActName;
  /** Adds a residual block (same width, skip connection) after each hidden layer. */
  residual: boolean;
  /** Dropout rate after each hidden layer while training. */
  dropout: number;
  /** Standard deviation of Gaussian input noise while training (denoising). */
  noise: number;
}

export const DEFAULT_AUTOENCODER: AutoencoderParams = {
  ...DEFAULT_TRAINING,
  layers: [64, 32, 16],
  activation: 'relu',
  residual: false,
  dropout: 0,
  noise: 0,
};

/** Rows scored per kernel call. */
const SCORE_BATCH = 4096;

export function autoencoderSpecs(
  cols: number,
  p: Pick<AutoencoderParams, 'layers' | 'activation'> &
    Partial<Pick<AutoencoderParams, 'residual' | 'dropout'>>,
  out: LayerSpec[] = [{ units: cols, act: 'none' }],
): LayerSpec[] {
  const enc = p.layers;
  const specs: LayerSpec[] = [];
  const hidden = (units: number) => {
    specs.push({ units, act: p.activation, dropout: p.dropout || undefined });
    if (p.residual) specs.push({ units, act: p.activation, residual: true, dropout: p.dropout || undefined });
  };
  enc.forEach((units, i) => {
    if (i === enc.length - 1) specs.push({ units, act: 'none' });
    else hidden(units);
  });
  for (let i = enc.length - 2; i >= 0; i--) hidden(enc[i]);
  specs.push(...out);
  return specs;
}

export class Autoencoder implements Detector {
  readonly kind = 'autoencoder';
  readonly p: AutoencoderParams;
  private net: Mlp | null = null;
  private cols = 0;
  history: EpochReport[] = [];
  bestEpoch = 0;
  onFitProgress?: (done: number, total: number, note: string) => void;

  constructor(params: Partial<AutoencoderParams> = {}) {
    const p = withDefaults(DEFAULT_AUTOENCODER, params);
    if (
      !Array.isArray(p.layers) ||
      p.layers.length === 0 ||
      p.layers.some((u) => !(Number.isInteger(u) && u > 0))
    )
      throw new Error(`autoencoder: layers must be positive integers, e.g. 64,32,16 (got ${p.layers})`);
    this.p = p;
  }

  fit(x: Matrix): void {
    this.cols = x.cols;
    const specs = autoencoderSpecs(x.cols, this.p);
    const bs = Math.max(1, Math.min(this.p.batchSize, x.rows));
    const trainer = new Mlp(x.cols, specs, bs);
    trainer.init(this.p.seed);
    const fit = fitOptionsFor(this.p, bs, this.onFitProgress);
    const r = fitAutoencoder(trainer, x.data, x.rows, fit);
    this.history = r.epochs;
    this.bestEpoch = r.bestEpoch;
    // Score with a fresh network sized for large batches; the trainer's memory (data copy,
    // optimiser state) is released with it.
    this.net = new Mlp(x.cols, specs, SCORE_BATCH);
    this.net.importWeights(trainer.exportWeights());
  }

  private ready(x: Matrix): Mlp {
    if (!this.net) throw new Error('autoencoder: not fitted');
    if (x.cols !== this.cols)
      throw new Error(`autoencoder: model expects ${this.cols} feature columns, got ${x.cols}`);
    return this.net;
  }

  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const net = this.ready(x);
    const k = net.engine.kernels;
    const d = this.cols;
    const errs = this.errBuffer();
    for (let s = 0; s < x.rows; s += SCORE_BATCH) {
      const m = Math.min(SCORE_BATCH, x.rows - s);
      net.input.data.set(x.data.subarray(s * d, (s + m) * d));
      net.forward(m);
      k.rowMse(m, d, net.output.ptr, net.input.ptr, errs.ptr);
      out.set(errs.data.subarray(0, m), s);
    }
    return out;
  }

  /** The network as an ONNX graph: score [N] and feature_error [N, d] from features [N, d]. */
  onnx(): Uint8Array {
    if (!this.net) throw new Error('autoencoder: not fitted');
    return mlpToOnnx({
      name: 'nadir-autoencoder',
      inDim: this.cols,
      specs: autoencoderSpecs(this.cols, this.p),
      weights: this.net.exportWeights(),
      tail: 'reconstruction',
      doc: 'NADIR autoencoder: input = features after the bundle pipeline (manifest.json "features"); score = mean squared reconstruction error.',
    });
  }

  artifacts(): { file: string; bytes: Uint8Array; description: string }[] {
    return [
      { file: 'model.onnx', bytes: this.onnx(), description: 'ONNX graph: features → score, feature_error' },
    ];
  }

  private readonly ort = new OrtRuntime(() => this.onnx());

  async scoreAsync(x: Matrix): Promise<Float32Array> {
    this.ready(x);
    return this.ort.score(x, (m) => this.score(m));
  }

  private errs: Tensor | null = null;
  private errBuffer(): Tensor {
    if (!this.errs) this.errs = this.net!.engine.tensor(SCORE_BATCH, 1);
    return this.errs;
  }

  /** Squared reconstruction error of each feature of row `row`. */
  explain(x: Matrix, row: number): Float64Array {
    const net = this.ready(x);
    const d = this.cols;
    const inp = net.input.data;
    inp.set(x.data.subarray(row * d, row * d + d));
    net.forward(1);
    const y = net.output.data;
    const out = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const e = y[j] - inp[j];
      out[j] = e * e;
    }
    return out;
  }

  params(): Record<string, unknown> {
    return {
      ...this.p,
      cols: this.cols,
      parameters: this.net?.parameterCount ?? 0,
      bestEpoch: this.bestEpoch,
      epochsRun: this.history.length,
    };
  }

  weights(): Record<string, WeightArray> {
    if (!this.net) throw new Error('autoencoder: not fitted');
    return this.net.exportWeights();
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): Autoencoder {
    const a = new Autoencoder(params as Partial<AutoencoderParams>);
    const cols = Number(params.cols);
    if (!(cols > 0)) throw new Error('autoencoder: manifest lacks the column count');
    a.cols = cols;
    a.net = new Mlp(cols, autoencoderSpecs(cols, a.p), SCORE_BATCH);
    a.net.importWeights(w as Record<string, Float32Array>);
    a.bestEpoch = Number(params.bestEpoch ?? 0);
    return a;
  }
}

registerDetector({
  kind: 'autoencoder',
  description: 'dense autoencoder, reconstruction error (unsupervised; WASM SIMD core)',
  create: (params) => new Autoencoder(params as Partial<AutoencoderParams>),
  restore: (params, weights) => Autoencoder.restore(params, weights),
});
