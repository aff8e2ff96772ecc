/**
 * LSTM layer on the numeric core (gate order i, f, g, o, like PyTorch). Input sequences are
 * batch-major, B × T × F (row b holds its T steps one after another); internally each step's
 * state is kept time-major so every product is one GEMM over the batch. Forward keeps the gate
 * activations and cell states of all steps for backpropagation through time; all buffers are
 * allocated once for the largest batch.
 */
import { Rng } from '../core/rng.js';
import { Engine, Tensor } from './engine.js';
import { checkFinite, type FitOptions, type FitResult, fitLoop } from './fit.js';
import { Dense } from './mlp.js';
import { sequenceRegressorToOnnx } from './onnx.js';

export class Lstm {
  readonly Wx: Tensor;
  readonly Wh: Tensor;
  readonly b: Tensor;
  readonly gWx: Tensor;
  readonly gWh: Tensor;
  readonly gb: Tensor;
  /** Hidden states of every step, time-major: step t is rows [t·maxBatch, t·maxBatch + B). */
  readonly h: Tensor;
  /** Gradient w.r.t. the last step's hidden state (B × H), set before `backward`. */
  readonly dhLast: Tensor;
  private readonly WxT: Tensor;
  private readonly WhT: Tensor;
  private readonly gates: Tensor;
  private readonly c: Tensor;
  private readonly dG: Tensor;
  private readonly dc: Tensor;
  private readonly dh: Tensor;
  private readonly dhRec: Tensor;

  constructor(
    readonly engine: Engine,
    readonly inDim: number,
    readonly units: number,
    readonly steps: number,
    readonly maxBatch: number,
  ) {
    const H4 = 4 * units;
    this.Wx = engine.tensor(inDim, H4);
    this.Wh = engine.tensor(units, H4);
    this.b = engine.tensor(1, H4);
    this.gWx = engine.tensor(inDim, H4);
    this.gWh = engine.tensor(units, H4);
    this.gb = engine.tensor(1, H4);
    this.WxT = engine.tensor(H4, inDim);
    this.WhT = engine.tensor(H4, units);
    this.gates = engine.tensor(steps * maxBatch, H4);
    this.c = engine.tensor(steps * maxBatch, units);
    this.h = engine.tensor(steps * maxBatch, units);
    this.dG = engine.tensor(steps * maxBatch, H4);
    this.dc = engine.tensor(maxBatch, units);
    this.dh = engine.tensor(maxBatch, units);
    this.dhRec = engine.tensor(maxBatch, units);
    this.dhLast = engine.tensor(maxBatch, units);
  }

  /** PyTorch's initialisation: every weight and bias uniform in ±1/√H. */
  init(rng: Rng): void {
    const a = 1 / Math.sqrt(this.units);
    for (const t of [this.Wx, this.Wh, this.b]) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) d[i] = (2 * rng.next() - 1) * a;
    }
  }

  private at(t: Tensor, step: number, width: number): number {
    return t.ptr + step * this.maxBatch * width * 4;
  }

  /** Pointer to the hidden state of step t (B × H rows, stride H). */
  hiddenAt(step: number): number {
    return this.at(this.h, step, this.units);
  }

  /** Runs B sequences of x (B × T·F, batch-major). */
  forward(x: Tensor, B: number): void {
    const k = this.engine.kernels;
    const { inDim: F, units: H, steps: T } = this;
    const H4 = 4 * H;
    for (let t = 0; t < T; t++) {
      const g = this.at(this.gates, t, H4);
      k.gemm(B, H4, F, x.ptr + t * F * 4, T * F, 1, this.Wx.ptr, H4, g, H4, 0);
      if (t > 0) k.gemm(B, H4, H, this.hiddenAt(t - 1), H, 1, this.Wh.ptr, H4, g, H4, 1);
      k.biasAct(B, H4, g, this.b.ptr, 0);
      k.lstmCell(B, H, g, t > 0 ? this.at(this.c, t - 1, H) : 0, this.at(this.c, t, H), this.hiddenAt(t), H);
    }
  }

  /**
   * Backpropagation through time. The gradient w.r.t. the hidden states comes from `dhLast` (last
   * step only) or, when given, from `dhAll` (all steps, time-major like `h`). Fills the weight
   * gradients and, when `dx` is given, the gradient w.r.t. the input (B × T·F).
   */
  backward(x: Tensor, B: number, dhAll: Tensor | null = null, dx: Tensor | null = null): void {
    const k = this.engine.kernels;
    const { inDim: F, units: H, steps: T } = this;
    const H4 = 4 * H;
    k.scale(this.gWx.size, this.gWx.ptr, 0);
    k.scale(this.gWh.size, this.gWh.ptr, 0);
    k.scale(this.gb.size, this.gb.ptr, 0);
    k.scale(B * H, this.dc.ptr, 0);
    k.scale(B * H, this.dhRec.ptr, 0);
    k.transpose(H, H4, this.Wh.ptr, this.WhT.ptr);
    if (dx) k.transpose(F, H4, this.Wx.ptr, this.WxT.ptr);
    for (let t = T - 1; t >= 0; t--) {
      // dh = recurrent gradient + what the output adds at this step.
      k.copy(B * H, this.dhRec.ptr, this.dh.ptr);
      if (dhAll) k.addInPlace(B * H, this.dh.ptr, dhAll.ptr + t * this.maxBatch * H * 4);
      else if (t === T - 1) k.addInPlace(B * H, this.dh.ptr, this.dhLast.ptr);
      const dG = this.at(this.dG, t, H4);
      k.lstmCellBackward(
        B,
        H,
        this.at(this.gates, t, H4),
        this.at(this.c, t, H),
        t > 0 ? this.at(this.c, t - 1, H) : 0,
        this.dh.ptr,
        H,
        this.dc.ptr,
        dG,
      );
      if (t > 0) {
        k.gemm(B, H, H4, dG, H4, 1, this.WhT.ptr, H, this.dhRec.ptr, H, 0);
        k.gemm(H, H4, B, this.hiddenAt(t - 1), 1, H, dG, H4, this.gWh.ptr, H4, 1);
      }
      k.gemm(F, H4, B, x.ptr + t * F * 4, 1, T * F, dG, H4, this.gWx.ptr, H4, 1);
      k.colSum(B, H4, dG, this.gb.ptr, 1);
      if (dx) k.gemm(B, F, H4, dG, H4, 1, this.WxT.ptr, F, dx.ptr + t * F * 4, T * F, 0);
    }
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return [
      { p: this.Wx, g: this.gWx, name: 'Wx' },
      { p: this.Wh, g: this.gWh, name: 'Wh' },
      { p: this.b, g: this.gb, name: 'b' },
    ];
  }
}

/**
 * An LSTM over sequences followed by a dense head on the last hidden state, trained with MSE:
 * the forecaster shape (T past steps of F values → the next step's values).
 */
export class SequenceRegressor {
  readonly engine: Engine;
  readonly lstm: Lstm;
  readonly head: Dense;
  readonly input: Tensor;
  private readonly last: Tensor;

  constructor(
    readonly steps: number,
    readonly features: number,
    readonly units: number,
    readonly outputs: number,
    readonly maxBatch: number,
  ) {
    this.engine = new Engine();
    this.lstm = new Lstm(this.engine, features, units, steps, maxBatch);
    this.head = new Dense(this.engine, units, outputs, 'none', maxBatch);
    this.input = this.engine.tensor(maxBatch, steps * features);
    this.last = new Tensor(this.engine, this.lstm.hiddenAt(steps - 1), maxBatch, units);
  }

  init(seed: number): void {
    const rng = new Rng(seed);
    this.lstm.init(rng);
    this.head.init(rng);
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return [...this.lstm.params(), ...this.head.params().map((q) => ({ ...q, name: `head.${q.name}` }))];
  }

  /** Forward for the first m sequences of `input`; the prediction is in `head.y`. */
  forward(m: number): Tensor {
    this.lstm.forward(this.input, m);
    this.head.forward(this.last, m);
    return this.head.y;
  }

  /** Weights by name: Wx, Wh, b, head.W0, head.b0. */
  exportWeights(): Record<string, Float32Array> {
    const w: Record<string, Float32Array> = {};
    for (const q of this.params()) w[q.name.replace(/^head\.(W|b)$/, 'head.$10')] = q.p.data.slice();
    return w;
  }

  /** The trained network as ONNX (input `sequences`, output `prediction`). */
  onnx(): Uint8Array {
    return sequenceRegressorToOnnx({
      steps: this.steps,
      features: this.features,
      units: this.units,
      outputs: this.outputs,
      weights: this.exportWeights(),
    });
  }

  /** Trains on n sequences x (n × T·F) with targets y (n × outputs). */
  fit(x: Float32Array, y: Float32Array, n: number, opts: FitOptions): FitResult {
    const e = this.engine;
    const k = e.kernels;
    const TF = this.steps * this.features;
    checkFinite(x, n, TF);
    checkFinite(y, n, this.outputs);
    const xs = e.tensor(n, TF);
    xs.data.set(x.subarray(0, n * TF));
    const ys = e.tensor(n, this.outputs);
    ys.data.set(y.subarray(0, n * this.outputs));
    const target = e.tensor(this.maxBatch, this.outputs);
    return fitLoop(
      {
        engine: e,
        rows: n,
        maxBatch: this.maxBatch,
        params: this.params(),
        batchLoss: (idx, m, train) => {
          k.gatherRows(m, TF, xs.ptr, idx, this.input.ptr);
          k.gatherRows(m, this.outputs, ys.ptr, idx, target.ptr);
          const out = this.forward(m);
          const loss = k.mse(m, this.outputs, out.ptr, target.ptr, train ? this.head.dy.ptr : 0);
          if (train) {
            this.head.backward(this.last, m, this.lstm.dhLast);
            this.lstm.backward(this.input, m);
          }
          return loss;
        },
      },
      opts,
    );
  }
}
