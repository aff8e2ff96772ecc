/**
 * One-class SVM (Schölkopf et al. 2001, ν formulation) with an RBF kernel approximated by random
 * Fourier features (Rahimi & Recht 2007), trained in the primal by SGD — linear in the rows, so it
 * fits hundreds of thousands of flows where a kernel SVM (quadratic in the rows) cannot.
 *
 * z(x) = √(2/D) · cos(W x + b), W ~ N(0, 2γ I), b ~ U(0, 2π), so z(x)·z(y) ≈ exp(−γ‖x − y‖²).
 * The primal objective ½‖w‖² − ρ + 1/(νn) Σ max(0, ρ − w·z(xᵢ)) is minimised by SGD with a
 * decreasing step and Polyak averaging of the iterates; ρ is then set so that a share ν of the
 * training rows falls outside (the ν-property of the optimum). The decision value f(x) = w·z(x) − ρ is
 * positive inside the learned support and negative outside; the anomaly score is −f(x) (higher =
 * more anomalous), a real margin, not ±1. About a fraction ν of the training rows end up outside.
 *
 * γ defaults to 1 / (d · variance of the training matrix), scikit-learn's "scale".
 */
import { Rng } from '../../core/rng.js';
import { type Detector, type Matrix, registerDetector, type WeightArray, withDefaults } from '../detector.js';

export interface OcsvmParams {
  /** Random Fourier features D. */
  components: number;
  /** ν: upper bound on the share of training rows outside the support (0 < ν ≤ 1). */
  nu: number;
  /** RBF γ; 0 = 1 / (d · variance). */
  gamma: number;
  epochs: number;
  seed: number;
}

export const DEFAULT_OCSVM: OcsvmParams = { components: 512, nu: 0.05, gamma: 0, epochs: 10, seed: 42 };

export class OneClassSvm implements Detector {
  readonly kind = 'ocsvm';
  readonly p: OcsvmParams;
  private cols = 0;
  private gammaUsed = 0;
  /** W (D × d, row-major), b (D), w (D), ρ, and the training mean (d) for explanations. */
  private W: Float32Array = new Float32Array(0);
  private b: Float32Array = new Float32Array(0);
  private w: Float64Array = new Float64Array(0);
  private rho = 0;
  private mean: Float32Array = new Float32Array(0);
  onFitProgress?: (done: number, total: number, note: string) => void;

  constructor(params: Partial<OcsvmParams> = {}) {
    this.p = withDefaults(DEFAULT_OCSVM, params);
    if (!(this.p.components >= 1)) throw new Error('ocsvm: components must be ≥ 1');
    if (!(this.p.nu > 0 && this.p.nu <= 1)) throw new Error('ocsvm: nu must be in (0, 1]');
    if (!(this.p.epochs >= 1)) throw new Error('ocsvm: epochs must be ≥ 1');
  }

  /** The feature map z(x) of row `row` of `data` (d columns) into `out` (D). */
  private features(data: Float32Array, row: number, out: Float64Array): void {
    const d = this.cols;
    const D = this.p.components;
    const W = this.W;
    const scale = Math.sqrt(2 / D);
    const base = row * d;
    for (let k = 0; k < D; k++) {
      let s = this.b[k];
      const wk = k * d;
      for (let j = 0; j < d; j++) s += W[wk + j] * data[base + j];
      out[k] = scale * Math.cos(s);
    }
  }

  fit(x: Matrix): void {
    const { rows: n, cols: d, data } = x;
    if (n < 2) throw new Error(`ocsvm: need at least 2 training rows, got ${n}`);
    this.cols = d;
    const D = this.p.components;
    const rng = new Rng(this.p.seed);
    // γ = 1 / (d · var) over all values ("scale"), unless given.
    let sum = 0;
    let sq = 0;
    const mean = new Float32Array(d);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < d; j++) {
        const v = data[i * d + j];
        sum += v;
        sq += v * v;
        mean[j] += v / n;
      }
    const variance = sq / (n * d) - (sum / (n * d)) ** 2;
    this.gammaUsed = this.p.gamma > 0 ? this.p.gamma : 1 / (d * (variance > 1e-12 ? variance : 1));
    this.mean = mean;
    const sd = Math.sqrt(2 * this.gammaUsed);
    this.W = Float32Array.from({ length: D * d }, () => rng.normal() * sd);
    this.b = Float32Array.from({ length: D }, () => rng.next() * 2 * Math.PI);
    // Primal SGD with Polyak averaging over the last half of the steps.
    const w = new Float64Array(D);
    let rho = 0;
    const avgW = new Float64Array(D);
    let avgRho = 0;
    let avgN = 0;
    const z = new Float64Array(D);
    const order = Int32Array.from({ length: n }, (_, i) => i);
    const steps = this.p.epochs * n;
    const nuInv = 1 / this.p.nu;
    let t = 0;
    for (let epoch = 0; epoch < this.p.epochs; epoch++) {
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
      }
      for (let s = 0; s < n; s++) {
        t++;
        const eta = 1 / Math.sqrt(t + 10);
        this.features(data, order[s], z);
        let dot = 0;
        for (let k = 0; k < D; k++) dot += w[k] * z[k];
        const outside = dot < rho;
        // ∂/∂w = w − [outside]/ν · z ;  ∂/∂ρ = −1 + [outside]/ν
        for (let k = 0; k < D; k++) w[k] -= eta * (w[k] - (outside ? nuInv * z[k] : 0));
        rho -= eta * (-1 + (outside ? nuInv : 0));
        if (t > steps / 2) {
          avgN++;
          for (let k = 0; k < D; k++) avgW[k] += (w[k] - avgW[k]) / avgN;
          avgRho += (rho - avgRho) / avgN;
        }
      }
      this.onFitProgress?.(epoch + 1, this.p.epochs, 'epochs');
    }
    this.w = avgW;
    // ρ: SGD moves it slowly relative to w; at the optimum a share ν of the training rows lies
    // below it (the ν-property), so it is set to that quantile of w·z over (up to 50,000) rows.
    const m = Math.min(n, 50_000);
    const dots = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      this.features(data, Math.floor((i * n) / m), z);
      let dot = 0;
      for (let k = 0; k < D; k++) dot += avgW[k] * z[k];
      dots[i] = dot;
    }
    dots.sort();
    this.rho = m > 1 ? dots[Math.min(m - 1, Math.floor(this.p.nu * m))] : avgRho;
  }

  private checkCols(x: Matrix): void {
    if (x.cols !== this.cols) throw new Error(`ocsvm: model has ${this.cols} features, input has ${x.cols}`);
  }

  /** The decision value f(x) = w·z(x) − ρ of each row (positive: inside the support). */
  decisionFunction(x: Matrix): Float64Array {
    this.checkCols(x);
    const out = new Float64Array(x.rows);
    const z = new Float64Array(this.p.components);
    for (let i = 0; i < x.rows; i++) {
      this.features(x.data, i, z);
      let dot = 0;
      for (let k = 0; k < z.length; k++) dot += this.w[k] * z[k];
      out[i] = dot - this.rho;
    }
    return out;
  }

  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const f = this.decisionFunction(x);
    for (let i = 0; i < x.rows; i++) out[i] = -f[i];
    return out;
  }

  /**
   * Credit per input dimension: how much the score falls when that value is replaced by the
   * training mean (occlusion), clipped at 0.
   */
  explain(x: Matrix, row: number): Float64Array {
    this.checkCols(x);
    const d = this.cols;
    const D = this.p.components;
    const scale = Math.sqrt(2 / D);
    const pre = new Float64Array(D);
    for (let k = 0; k < D; k++) {
      let s = this.b[k];
      for (let j = 0; j < d; j++) s += this.W[k * d + j] * x.data[row * d + j];
      pre[k] = s;
    }
    let base = 0;
    for (let k = 0; k < D; k++) base += this.w[k] * scale * Math.cos(pre[k]);
    const credit = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const delta = this.mean[j] - x.data[row * d + j];
      let dot = 0;
      for (let k = 0; k < D; k++) dot += this.w[k] * scale * Math.cos(pre[k] + this.W[k * d + j] * delta);
      // Score is −f: replacing x_j by the mean lowers the score by (dot − base).
      credit[j] = Math.max(0, dot - base);
    }
    return credit;
  }

  params(): Record<string, unknown> {
    return { ...this.p, gammaUsed: this.gammaUsed, rho: this.rho, cols: this.cols };
  }

  weights(): Record<string, WeightArray> {
    return { W: this.W, b: this.b, w: this.w, mean: this.mean };
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): OneClassSvm {
    const m = new OneClassSvm(params as Partial<OcsvmParams>);
    m.cols = Number(params.cols);
    m.gammaUsed = Number(params.gammaUsed);
    m.rho = Number(params.rho);
    m.W = w.W as Float32Array;
    m.b = w.b as Float32Array;
    m.w = w.w as Float64Array;
    m.mean = w.mean as Float32Array;
    if (m.W.length !== m.p.components * m.cols || m.w.length !== m.p.components)
      throw new Error('ocsvm: weights do not match the parameters');
    return m;
  }
}

registerDetector({
  kind: 'ocsvm',
  description: 'one-class SVM, RBF kernel by random Fourier features, trained by SGD (unsupervised)',
  create: (params) => new OneClassSvm(params as Partial<OcsvmParams>),
  restore: (params, weights) => OneClassSvm.restore(params, weights),
});
