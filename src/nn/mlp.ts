/**
 * Dense layers and a feed-forward network over the WASM kernels. Batch-major: a batch of m rows
 * is an m × width block. Every buffer (weights, gradients, activations, optimiser moments) is
 * allocated once, for the largest batch, when the network is built; forward and backward passes
 * only call kernels, so the training loop allocates nothing.
 */
import { Rng } from '../core/rng.js';
import { Act, type ActName, Engine, type Tensor } from './engine.js';

export interface LayerSpec {
  units: number;
  act: ActName;
  /** Residual: the layer's input is added to its output (input width = units). */
  residual?: boolean;
  /** Dropout rate applied to the layer's output while training (inverted dropout). */
  dropout?: number;
}

export class Dense {
  readonly W: Tensor;
  readonly b: Tensor;
  readonly gW: Tensor;
  readonly gb: Tensor;
  /** Activations of the last forward pass (maxBatch × out), before any residual sum. */
  readonly y: Tensor;
  /** What the layer passes on: `y`, after dropout (training) and + x (residual layers). */
  readonly out: Tensor;
  /** Gradient w.r.t. `out`, filled by the layer above or the loss (maxBatch × out). */
  readonly dy: Tensor;
  private readonly WT: Tensor;
  /** Dropout mask of the last training pass (kept values are 1/(1 − p), dropped 0). */
  readonly mask: Tensor | null;
  readonly act: number;

  constructor(
    readonly engine: Engine,
    readonly inDim: number,
    readonly outDim: number,
    readonly actName: ActName,
    maxBatch: number,
    readonly residual = false,
    readonly dropout = 0,
  ) {
    if (residual && inDim !== outDim)
      throw new Error(`a residual layer needs equal widths (${inDim} ≠ ${outDim})`);
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`dropout must be in [0, 1) (got ${dropout})`);
    this.act = Act[actName];
    this.W = engine.tensor(inDim, outDim);
    this.b = engine.tensor(1, outDim);
    this.gW = engine.tensor(inDim, outDim);
    this.gb = engine.tensor(1, outDim);
    this.WT = engine.tensor(outDim, inDim);
    this.y = engine.tensor(maxBatch, outDim);
    this.out = residual || dropout > 0 ? engine.tensor(maxBatch, outDim) : this.y;
    this.mask = dropout > 0 ? engine.tensor(maxBatch, outDim) : null;
    this.dy = engine.tensor(maxBatch, outDim);
  }

  /** He (ReLU family) or Glorot (tanh, sigmoid, linear) normal initialisation; zero biases. */
  init(rng: Rng): void {
    const relu = this.actName === 'relu' || this.actName === 'leaky';
    const std = relu ? Math.sqrt(2 / this.inDim) : Math.sqrt(2 / (this.inDim + this.outDim));
    const w = this.W.data;
    for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
    this.b.data.fill(0);
  }

  /**
   * y = act(x·W + b) for the first m rows of x; while training, dropout on y (`rng` is the
   * kernels' random state); a residual layer passes on y + x.
   */
  forward(x: Tensor, m: number, train = false, rng = 0): void {
    const k = this.engine.kernels;
    const out = this.outDim;
    k.gemm(m, out, this.inDim, x.ptr, this.inDim, 1, this.W.ptr, out, this.y.ptr, out, 0);
    k.biasAct(m, out, this.y.ptr, this.b.ptr, this.act);
    if (this.out === this.y) return;
    k.copy(m * out, this.y.ptr, this.out.ptr);
    if (this.mask && train) k.dropout(m * out, this.out.ptr, this.dropout, rng, this.mask.ptr);
    if (this.residual) k.addInPlace(m * out, this.out.ptr, x.ptr);
  }

  /**
   * From `dy` (gradient w.r.t. `out`; overwritten): parameter gradients, and the gradient w.r.t.
   * the input into `dx` if given. `train` must match the forward pass (dropout mask).
   */
  backward(x: Tensor, m: number, dx: Tensor | null, train = true): void {
    const k = this.engine.kernels;
    const out = this.outDim;
    const inp = this.inDim;
    // The skip path hands dy straight to the input.
    if (this.residual && dx) k.copy(m * out, this.dy.ptr, dx.ptr);
    if (this.mask && train) k.mulInPlace(m * out, this.dy.ptr, this.mask.ptr);
    k.actBackward(m * out, this.y.ptr, this.dy.ptr, this.act);
    // gW = xᵀ·dy: A(i, r) = x[r, i].
    k.gemm(inp, out, m, x.ptr, 1, inp, this.dy.ptr, out, this.gW.ptr, out, 0);
    k.colSum(m, out, this.dy.ptr, this.gb.ptr, 0);
    if (dx) {
      k.transpose(inp, out, this.W.ptr, this.WT.ptr);
      k.gemm(m, inp, out, this.dy.ptr, out, 1, this.WT.ptr, inp, dx.ptr, inp, this.residual ? 1 : 0);
    }
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return [
      { p: this.W, g: this.gW, name: 'W' },
      { p: this.b, g: this.gb, name: 'b' },
    ];
  }
}

/** A stack of dense layers with an input buffer; optionally with Adam state. */
export class Mlp {
  readonly engine: Engine;
  readonly layers: Dense[];
  /** Input rows go here (maxBatch × inDim). */
  readonly input: Tensor;
  /** Gradient w.r.t. the input, when asked for (gradient checks, stacked models). */
  readonly dInput: Tensor | null;

  constructor(
    readonly inDim: number,
    readonly specs: LayerSpec[],
    readonly maxBatch: number,
    opts: { inputGradient?: boolean; engine?: Engine } = {},
  ) {
    if (specs.length === 0) throw new Error('a network needs at least one layer');
    this.engine = opts.engine ?? new Engine();
    this.input = this.engine.tensor(maxBatch, inDim);
    this.dInput = opts.inputGradient ? this.engine.tensor(maxBatch, inDim) : null;
    let d = inDim;
    this.layers = specs.map((s) => {
      const l = new Dense(this.engine, d, s.units, s.act, maxBatch, s.residual ?? false, s.dropout ?? 0);
      d = s.units;
      return l;
    });
    this.rng = specs.some((s) => (s.dropout ?? 0) > 0) ? this.engine.rngState(0x5eed) : 0;
  }

  /** Kernel random state for dropout (0 without dropout layers). */
  private rng: number;

  get outDim(): number {
    return this.layers[this.layers.length - 1].outDim;
  }

  /** Output tensor of the last forward pass. */
  get output(): Tensor {
    return this.layers[this.layers.length - 1].out;
  }

  /** Gradient w.r.t. the output: the loss writes here before `backward`. */
  get dOutput(): Tensor {
    return this.layers[this.layers.length - 1].dy;
  }

  /** Initialises the weights from `seed`; the dropout draws follow the same seed. */
  init(seed: number): void {
    const rng = new Rng(seed);
    for (const l of this.layers) l.init(rng);
    if (this.rng) this.rng = this.engine.rngState(seed ^ 0x5eed);
  }

  /**
   * Runs the first m rows of `input` (or of `x` when given) through the network; `train` turns
   * dropout on.
   */
  forward(m: number, x: Tensor = this.input, train = false): Tensor {
    let cur = x;
    for (const l of this.layers) {
      l.forward(cur, m, train, this.rng);
      cur = l.out;
    }
    return cur;
  }

  /** Back-propagates `dOutput` for the m rows of the last (training) forward pass from `x`. */
  backward(m: number, x: Tensor = this.input, train = true): void {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i];
      const below = i > 0 ? this.layers[i - 1].out : x;
      const dx = i > 0 ? this.layers[i - 1].dy : this.dInput;
      l.backward(below, m, dx, train);
    }
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return this.layers.flatMap((l, i) => l.params().map((q) => ({ ...q, name: `${q.name}${i}` })));
  }

  /** Number of trainable values. */
  get parameterCount(): number {
    return this.params().reduce((s, q) => s + q.p.size, 0);
  }

  /** Weights as plain arrays (for bundles), named W0, b0, W1, ... */
  exportWeights(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const q of this.params()) out[q.name] = q.p.data.slice();
    return out;
  }

  importWeights(w: Record<string, Float32Array | ArrayLike<number>>): void {
    for (const q of this.params()) {
      const src = w[q.name];
      if (!src || src.length !== q.p.size)
        throw new Error(`weight ${q.name}: expected ${q.p.size} values, found ${src?.length ?? 'none'}`);
      q.p.data.set(src);
    }
  }
}

/** AdamW over a set of parameters, with moments in the same engine. */
export class Adam {
  private readonly state: { p: Tensor; g: Tensor; m: Tensor; v: Tensor }[];
  private t = 0;

  constructor(
    engine: Engine,
    params: { p: Tensor; g: Tensor }[],
    public lr = 1e-3,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
    public weightDecay = 0,
  ) {
    this.state = params.map((q) => ({
      p: q.p,
      g: q.g,
      m: engine.tensor(q.p.rows, q.p.cols),
      v: engine.tensor(q.p.rows, q.p.cols),
    }));
    this.engine = engine;
  }

  private readonly engine: Engine;

  /** Scales gradients so their global L2 norm is at most maxNorm; returns the norm before. */
  clip(maxNorm: number): number {
    const k = this.engine.kernels;
    let ss = 0;
    for (const s of this.state) ss += k.sumSquares(s.g.size, s.g.ptr);
    const norm = Math.sqrt(ss);
    if (norm > maxNorm && Number.isFinite(norm))
      for (const s of this.state) k.scale(s.g.size, s.g.ptr, maxNorm / norm);
    return norm;
  }

  step(): void {
    this.t++;
    const k = this.engine.kernels;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    for (const s of this.state)
      k.adam(
        s.p.size,
        s.p.ptr,
        s.g.ptr,
        s.m.ptr,
        s.v.ptr,
        this.lr,
        this.beta1,
        this.beta2,
        this.eps,
        this.weightDecay,
        bc1,
        bc2,
      );
  }
}
