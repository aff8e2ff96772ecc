/**
 * Hybrid autoencoder: continuous and categorical columns in one network. Categorical columns
 * (protocol, service, flags, weekday, hour segment, …) enter through learned embeddings and leave
 * through a softmax head each; continuous columns are rebuilt by a linear head. The training loss
 * and the anomaly score are `contWeight · MSE(continuous) + catWeight · mean over categorical
 * columns of the cross-entropy of the observed category`, so a protocol or service that is
 * unusual *for this kind of flow* raises the score, and a category never seen in training (index
 * 0, `<other>`) raises it a lot. The explanation gives each continuous feature its squared error
 * and each categorical column its cross-entropy: "Protocol=17 was unexpected".
 */
import { Rng } from '../../core/rng.js';
import type { FeatureSchema } from '../../features/pipeline.js';
import type { ActName, Engine, Tensor } from '../../nn/engine.js';
import { checkFinite, type EpochReport, fitLoop, fitOptionsFor } from '../../nn/fit.js';
import { type LayerSpec, Mlp } from '../../nn/mlp.js';
import { hybridToOnnx, OrtRuntime } from '../../nn/onnx.js';
import { type Detector, type Matrix, registerDetector, type WeightArray, withDefaults } from '../detector.js';
import { type AutoencoderParams, autoencoderSpecs, DEFAULT_AUTOENCODER } from './autoencoder.js';

export interface HybridParams extends AutoencoderParams {
  /** Weight of the continuous reconstruction error in loss and score. */
  contWeight: number;
  /** Weight of the categorical cross-entropy in loss and score. */
  catWeight: number;
}

export const DEFAULT_HYBRID: HybridParams = { ...DEFAULT_AUTOENCODER, contWeight: 1, catWeight: 1 };

/** Where each kind of column sits in the pipeline's output, and the categorical cardinalities. */
export interface HybridLayout {
  width: number;
  contCols: number[];
  catCols: number[];
  /** Categories per categorical column, index 0 (`<other>`) included. */
  catK: number[];
  /** Embedding width per categorical column. */
  embDims: number[];
  /** Names of the categorical columns (for messages). */
  catNames: string[];
}

const SCORE_BATCH = 4096;

/** Embedding width for K categories (fast.ai's rule of thumb, capped at 16). */
export function embeddingWidth(K: number): number {
  return Math.max(2, Math.min(16, Math.round(1.6 * K ** 0.56)));
}

export function hybridLayout(schema: FeatureSchema): HybridLayout {
  const contCols: number[] = [];
  const catCols: number[] = [];
  const catK: number[] = [];
  const catNames: string[] = [];
  schema.outputInput.forEach((f, j) => {
    const inp = schema.inputs[f];
    if (inp?.kind === 'categorical' && inp.encoding === 'index') {
      catCols.push(j);
      catK.push(inp.categories.length + 1);
      catNames.push(inp.name);
    } else contCols.push(j);
  });
  return {
    width: schema.outputs.length,
    contCols,
    catCols,
    catK,
    embDims: catK.map(embeddingWidth),
    catNames,
  };
}

export function specsFor(
  L: HybridLayout,
  p: Pick<HybridParams, 'layers' | 'activation'> & Partial<Pick<HybridParams, 'residual' | 'dropout'>>,
): LayerSpec[] {
  const outW = L.contCols.length + L.catK.reduce((a, b) => a + b, 0);
  return autoencoderSpecs(0, p, [{ units: outW, act: 'none' }]);
}

/** The network plus embedding tables, in one engine. */
export class HybridNet {
  readonly net: Mlp;
  readonly tables: Tensor[];
  readonly gTables: Tensor[];
  readonly inW: number;
  readonly outW: number;
  /** Input column offset of each embedding; output column offset of each softmax head. */
  readonly embOff: number[] = [];
  readonly headOff: number[] = [];
  /** Rows in permuted layout [continuous | category indices] (maxBatch × (dc + nc)). */
  readonly batch: Tensor;
  readonly dc: number;
  readonly nc: number;

  constructor(
    readonly L: HybridLayout,
    specs: LayerSpec[],
    readonly maxBatch: number,
  ) {
    this.dc = L.contCols.length;
    this.nc = L.catCols.length;
    let off = this.dc;
    for (const e of L.embDims) {
      this.embOff.push(off);
      off += e;
    }
    this.inW = off;
    let h = this.dc;
    for (const k of L.catK) {
      this.headOff.push(h);
      h += k;
    }
    this.outW = h;
    this.net = new Mlp(this.inW, specs, maxBatch, { inputGradient: this.nc > 0 });
    const e = this.net.engine;
    this.tables = L.catK.map((k, c) => e.tensor(k, L.embDims[c]));
    this.gTables = L.catK.map((k, c) => e.tensor(k, L.embDims[c]));
    this.batch = e.tensor(maxBatch, this.dc + this.nc);
  }

  get engine(): Engine {
    return this.net.engine;
  }

  init(seed: number): void {
    this.net.init(seed);
    const rng = new Rng(seed ^ 0x68e31da4);
    for (const t of this.tables) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) d[i] = rng.normal();
    }
  }

  params(): { p: Tensor; g: Tensor; name: string }[] {
    return [...this.net.params(), ...this.tables.map((p, c) => ({ p, g: this.gTables[c], name: `E${c}` }))];
  }

  /** Builds the network input from `batch` (first m rows) and runs the forward pass. */
  forward(m: number, noise: number, state: number, train = false): void {
    const k = this.engine.kernels;
    const W = this.dc + this.nc;
    const inp = this.net.input.ptr;
    if (this.dc > 0) k.copyBlock(m, this.dc, this.batch.ptr, W, inp, this.inW, noise, state);
    for (let c = 0; c < this.nc; c++)
      k.embedGather(
        m,
        this.L.embDims[c],
        this.L.catK[c],
        this.tables[c].ptr,
        this.batch.ptr + (this.dc + c) * 4,
        W,
        inp + this.embOff[c] * 4,
        this.inW,
      );
    this.net.forward(m, this.net.input, train);
  }

  /** Loss of the last forward pass; with `grad`, also gradients (network and embeddings). */
  loss(m: number, w: { cont: number; cat: number }, grad: boolean, rowOut = 0): number {
    const k = this.engine.kernels;
    const W = this.dc + this.nc;
    const z = this.net.output.ptr;
    const g = grad ? this.net.dOutput.ptr : 0;
    let loss = 0;
    if (this.dc > 0) {
      if (rowOut) k.rowMseBlock(m, this.dc, z, this.outW, this.batch.ptr, W, rowOut, w.cont);
      else loss += k.mseBlock(m, this.dc, z, this.outW, this.batch.ptr, W, g, this.outW, w.cont);
    }
    const wc = this.nc > 0 ? w.cat / this.nc : 0;
    for (let c = 0; c < this.nc; c++)
      loss += k.ceBlock(
        m,
        this.L.catK[c],
        z + this.headOff[c] * 4,
        this.outW,
        this.batch.ptr + (this.dc + c) * 4,
        W,
        g ? g + this.headOff[c] * 4 : 0,
        this.outW,
        rowOut,
        wc,
      );
    if (grad) {
      this.net.backward(m);
      for (let c = 0; c < this.nc; c++) {
        const gt = this.gTables[c];
        k.scale(gt.size, gt.ptr, 0);
        k.embedScatter(
          m,
          this.L.embDims[c],
          this.L.catK[c],
          gt.ptr,
          this.batch.ptr + (this.dc + c) * 4,
          W,
          this.net.dInput!.ptr + this.embOff[c] * 4,
          this.inW,
        );
      }
    }
    return loss;
  }

  /** Copies rows [s, s+m) of a pipeline matrix into `batch` in [continuous | categorical] order. */
  load(x: Matrix, s: number, m: number): void {
    const b = this.batch.data;
    const W = this.dc + this.nc;
    const { contCols, catCols } = this.L;
    const d = x.cols;
    for (let i = 0; i < m; i++) {
      const src = (s + i) * d;
      const dst = i * W;
      for (let j = 0; j < contCols.length; j++) b[dst + j] = x.data[src + contCols[j]];
      for (let c = 0; c < catCols.length; c++) b[dst + this.dc + c] = x.data[src + catCols[c]];
    }
  }

  exportWeights(): Record<string, Float32Array> {
    const w = this.net.exportWeights();
    this.tables.forEach((t, c) => {
      w[`E${c}`] = t.data.slice();
    });
    return w;
  }

  importWeights(w: Record<string, Float32Array>): void {
    this.net.importWeights(w);
    this.tables.forEach((t, c) => {
      const src = w[`E${c}`];
      if (!src || src.length !== t.size) throw new Error(`weight E${c}: expected ${t.size} values`);
      t.data.set(src);
    });
  }
}

export class HybridAutoencoder implements Detector {
  readonly kind = 'hybrid-autoencoder';
  readonly p: HybridParams;
  private L: HybridLayout | null = null;
  private model: HybridNet | null = null;
  private scores: Tensor | null = null;
  private readonly ort = new OrtRuntime(() => this.onnx());
  history: EpochReport[] = [];
  bestEpoch = 0;
  onFitProgress?: (done: number, total: number, note: string) => void;

  constructor(params: Partial<HybridParams> = {}) {
    const p = withDefaults(DEFAULT_HYBRID, params);
    if (
      !Array.isArray(p.layers) ||
      p.layers.length === 0 ||
      p.layers.some((u) => !(Number.isInteger(u) && u > 0))
    )
      throw new Error(`hybrid-autoencoder: layers must be positive integers (got ${p.layers})`);
    if (!(p.contWeight >= 0 && p.catWeight >= 0 && p.contWeight + p.catWeight > 0))
      throw new Error('hybrid-autoencoder: contWeight and catWeight must be ≥ 0, not both 0');
    this.p = p;
  }

  configure(schema: FeatureSchema): void {
    this.L = hybridLayout(schema);
  }

  get layout(): HybridLayout | null {
    return this.L;
  }

  fit(x: Matrix): void {
    const L = this.L ?? hybridLayout(allContinuous(x.cols));
    this.L = L;
    if (L.width !== x.cols)
      throw new Error(`hybrid-autoencoder: layout has ${L.width} columns, data ${x.cols}`);
    checkFinite(x.data, x.rows, x.cols);
    const specs = specsFor(L, this.p);
    const bs = Math.max(1, Math.min(this.p.batchSize, x.rows));
    const trainer = new HybridNet(L, specs, bs);
    trainer.init(this.p.seed);
    const e = trainer.engine;
    const k = e.kernels;
    // All rows, permuted to [continuous | categorical], in WASM memory once.
    const W = trainer.dc + trainer.nc;
    const data = e.tensor(x.rows, W);
    const d = data.data;
    for (let i = 0; i < x.rows; i++) {
      for (let j = 0; j < L.contCols.length; j++) d[i * W + j] = x.data[i * x.cols + L.contCols[j]];
      for (let c = 0; c < L.catCols.length; c++)
        d[i * W + trainer.dc + c] = x.data[i * x.cols + L.catCols[c]];
    }
    const state = e.rngState(this.p.seed ^ 0x2545f491);
    const w = { cont: this.p.contWeight, cat: this.p.catWeight };
    const r = fitLoop(
      {
        engine: e,
        rows: x.rows,
        maxBatch: bs,
        params: trainer.params(),
        batchLoss: (idx, m, train) => {
          k.gatherRows(m, W, data.ptr, idx, trainer.batch.ptr);
          trainer.forward(m, train ? this.p.noise : 0, state, train);
          return trainer.loss(m, w, train);
        },
      },
      fitOptionsFor(this.p, bs, this.onFitProgress),
    );
    this.history = r.epochs;
    this.bestEpoch = r.bestEpoch;
    this.model = new HybridNet(L, specs, SCORE_BATCH);
    this.model.importWeights(trainer.exportWeights());
  }

  private ready(x: Matrix): HybridNet {
    if (!this.model || !this.L) throw new Error('hybrid-autoencoder: not fitted');
    if (x.cols !== this.L.width)
      throw new Error(`hybrid-autoencoder: model expects ${this.L.width} feature columns, got ${x.cols}`);
    return this.model;
  }

  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const h = this.ready(x);
    this.scores ??= h.engine.tensor(SCORE_BATCH, 1);
    const s = this.scores;
    const w = { cont: this.p.contWeight, cat: this.p.catWeight };
    for (let i = 0; i < x.rows; i += SCORE_BATCH) {
      const m = Math.min(SCORE_BATCH, x.rows - i);
      h.load(x, i, m);
      h.forward(m, 0, 0);
      s.data.fill(0, 0, m);
      h.loss(m, w, false, s.ptr);
      out.set(s.data.subarray(0, m), i);
    }
    return out;
  }

  async scoreAsync(x: Matrix): Promise<Float32Array> {
    this.ready(x);
    return this.ort.score(x, (m) => this.score(m));
  }

  /** Each continuous feature's weighted squared error and each categorical column's weighted CE. */
  explain(x: Matrix, row: number): Float64Array {
    const h = this.ready(x);
    const L = this.L!;
    h.load(x, row, 1);
    h.forward(1, 0, 0);
    const z = h.net.output.data;
    const b = h.batch.data;
    const out = new Float64Array(L.width);
    const dc = h.dc;
    for (let j = 0; j < dc; j++) out[L.contCols[j]] = (this.p.contWeight * (z[j] - b[j]) ** 2) / dc;
    for (let c = 0; c < h.nc; c++) {
      const K = L.catK[c];
      const o = h.headOff[c];
      let jm = 0;
      for (let j = 1; j < K; j++) if (z[o + j] > z[o + jm]) jm = j;
      let others = 0;
      for (let j = 0; j < K; j++) if (j !== jm) others += Math.exp(z[o + j] - z[o + jm]);
      const v = Math.trunc(b[dc + c]);
      const cat = v < 0 || v >= K ? 0 : v;
      out[L.catCols[c]] = (this.p.catWeight / h.nc) * (Math.log1p(others) - (z[o + cat] - z[o + jm]));
    }
    return out;
  }

  onnx(): Uint8Array {
    if (!this.model || !this.L) throw new Error('hybrid-autoencoder: not fitted');
    return hybridToOnnx({
      layout: this.L,
      specs: specsFor(this.L, this.p),
      weights: this.model.exportWeights(),
      contWeight: this.p.contWeight,
      catWeight: this.p.catWeight,
    });
  }

  artifacts(): { file: string; bytes: Uint8Array; description: string }[] {
    return [{ file: 'model.onnx', bytes: this.onnx(), description: 'ONNX graph: features → score' }];
  }

  params(): Record<string, unknown> {
    return {
      ...this.p,
      layout: this.L,
      cols: this.L?.width ?? 0,
      parameters: this.model ? this.model.params().reduce((s, q) => s + q.p.size, 0) : 0,
      bestEpoch: this.bestEpoch,
      epochsRun: this.history.length,
    };
  }

  weights(): Record<string, WeightArray> {
    if (!this.model) throw new Error('hybrid-autoencoder: not fitted');
    return this.model.exportWeights();
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): HybridAutoencoder {
    const h = new HybridAutoencoder(params as Partial<HybridParams>);
    const L = params.layout as HybridLayout | undefined;
    if (!L || !Array.isArray(L.contCols) || !Array.isArray(L.catCols))
      throw new Error('hybrid-autoencoder: manifest lacks the column layout');
    h.L = L;
    h.model = new HybridNet(L, specsFor(L, h.p), SCORE_BATCH);
    h.model.importWeights(w as Record<string, Float32Array>);
    h.bestEpoch = Number(params.bestEpoch ?? 0);
    return h;
  }
}

/** A schema of `cols` continuous columns, for use without a feature pipeline. */
function allContinuous(cols: number): FeatureSchema {
  return {
    version: 1,
    options: { scaling: 'none', transform: 'none', encoding: 'index', maxCategories: 0 },
    inputs: [],
    outputs: Array.from({ length: cols }, (_, j) => `x${j}`),
    outputInput: Array.from({ length: cols }, (_, j) => j),
    dropped: [],
  };
}

registerDetector({
  kind: 'hybrid-autoencoder',
  description: 'autoencoder with embeddings in and softmax heads out for categorical columns (unsupervised)',
  encoding: 'index',
  create: (params) => new HybridAutoencoder(params as Partial<HybridParams>),
  restore: (params, weights) => HybridAutoencoder.restore(params, weights),
});
