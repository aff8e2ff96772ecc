/**
 * ONNX graphs from trained networks, and scoring them with ONNX Runtime.
 *
 * A dense network becomes Gemm (+ activation) nodes with its weights as initializers; a score
 * tail turns the output into what the detector reports (for an autoencoder: the per-feature
 * squared reconstruction error and its row mean). The same file is what `nadir export --onnx`
 * hands to users who serve elsewhere. ONNX Runtime (onnxruntime-node) is loaded lazily and is
 * optional: where it cannot load, the training core's own forward pass scores instead.
 */
import { createRequire } from 'node:module';
import { NADIR_VERSION } from '../core/version.js';
import type { ActName } from './engine.js';
import type { LayerSpec } from './mlp.js';

type OnnxNamespace = typeof import('onnx-proto').onnx;
/** The protobuf classes are loaded on first use, not with every command. */
let onnxNs: OnnxNamespace | null = null;
function protos(): OnnxNamespace {
  onnxNs ??= (createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto')).onnx;
  return onnxNs;
}

/** Opset 17: ReduceMean still takes `axes` as an attribute; every runtime of the last years has it. */
const OPSET = 17;
const FLOAT = 1;

export interface OnnxGraphSpec {
  name: string;
  inDim: number;
  specs: LayerSpec[];
  /** Weights named W0, b0, W1, ... as in Mlp.exportWeights(). */
  weights: Record<string, Float32Array>;
  /** `reconstruction`: outputs `score` [N] and `feature_error` [N, d] (autoencoders). */
  tail: 'reconstruction';
  doc?: string;
}

function tensor(
  name: string,
  dims: number[],
  values: Float32Array,
): InstanceType<OnnxNamespace['TensorProto']> {
  return protos().TensorProto.create({
    name,
    dims,
    dataType: FLOAT,
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  });
}

function valueInfo(name: string, dims: (number | string)[]) {
  return protos().ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  });
}

const ACT_OP: Record<ActName, string | null> = {
  none: null,
  relu: 'Relu',
  leaky: 'LeakyRelu',
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
};

/** Serialises a dense network with its score tail as an ONNX model. */
export function mlpToOnnx(spec: OnnxGraphSpec): Uint8Array {
  const g = new GraphBuilder();
  const out = denseChain(g, 'features', spec.inDim, spec.specs, spec.weights);
  if (spec.specs[spec.specs.length - 1].units !== spec.inDim)
    throw new Error('ONNX export: a reconstruction tail needs output width = input width');
  const r = g.op('Sub', [out, 'features']);
  const err = g.op('Mul', [r, r], {}, 'feature_error');
  g.op('ReduceMean', [err], { axes: [1], keepdims: 0 }, 'score');
  return serialise(g, spec.name, spec.doc ?? '', spec.inDim, [
    valueInfo('score', ['N']),
    valueInfo('feature_error', ['N', spec.inDim]),
  ]);
}

/**
 * Appends the Gemm (+ activation, + skip Add for residual layers) nodes of a dense stack whose
 * weights are named W0, b0, W1, …; dropout is the identity at inference. Returns the output name.
 */
function denseChain(
  g: GraphBuilder,
  input: string,
  inDim: number,
  specs: LayerSpec[],
  weights: Record<string, Float32Array>,
  prefix = '',
): string {
  let cur = input;
  let d = inDim;
  specs.forEach((s, l) => {
    const W = weights[`${prefix}W${l}`];
    const b = weights[`${prefix}b${l}`];
    if (!W || W.length !== d * s.units || !b || b.length !== s.units)
      throw new Error(`ONNX export: layer ${l} weights do not match its shape`);
    const x = cur;
    cur = g.op('Gemm', [
      cur,
      g.floats(`${prefix}W${l}`, [d, s.units], W),
      g.floats(`${prefix}b${l}`, [s.units], b),
    ]);
    const op = ACT_OP[s.act];
    if (op) cur = g.op(op, [cur], s.act === 'leaky' ? { alpha: 0.01 } : {});
    if (s.residual) cur = g.op('Add', [cur, x]);
    d = s.units;
  });
  return cur;
}

function serialise(
  g: GraphBuilder,
  name: string,
  doc: string,
  inDim: number,
  outputs: ReturnType<typeof valueInfo>[],
): Uint8Array {
  const model = protos().ModelProto.create({
    irVersion: 8,
    producerName: 'nadir',
    producerVersion: NADIR_VERSION,
    docString: doc,
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name,
      node: g.nodes,
      initializer: g.inits,
      input: [valueInfo('features', ['N', inDim])],
      output: outputs,
    },
  });
  return protos().ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------------------------------------
// Hybrid autoencoder graph

const INT64 = 7;

/** A small graph builder: nodes get unique output names; initializers are float32 or int64. */
class GraphBuilder {
  readonly nodes: InstanceType<OnnxNamespace['NodeProto']>[] = [];
  readonly inits: InstanceType<OnnxNamespace['TensorProto']>[] = [];
  private n = 0;

  floats(name: string, dims: number[], values: Float32Array): string {
    this.inits.push(tensor(name, dims, values));
    return name;
  }

  ints(dims: number[], values: number[]): string {
    const name = `c${this.n++}`;
    const b = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push(
      protos().TensorProto.create({ name, dims, dataType: INT64, rawData: new Uint8Array(b.buffer) }),
    );
    return name;
  }

  scalar(v: number): string {
    return this.floats(`c${this.n++}`, [], Float32Array.of(v));
  }

  op(opType: string, input: string[], attrs: Record<string, number | number[]> = {}, out?: string): string {
    const output = out ?? `${opType.toLowerCase()}${this.n++}`;
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? protos().AttributeProto.create({ name, ints: v, type: protos().AttributeProto.AttributeType.INTS })
        : Number.isInteger(v) && name !== 'alpha'
          ? protos().AttributeProto.create({ name, i: v, type: protos().AttributeProto.AttributeType.INT })
          : protos().AttributeProto.create({ name, f: v, type: protos().AttributeProto.AttributeType.FLOAT }),
    );
    this.nodes.push(protos().NodeProto.create({ opType, input, output: [output], name: output, attribute }));
    return output;
  }
}

export interface HybridOnnxSpec {
  layout: { width: number; contCols: number[]; catCols: number[]; catK: number[]; embDims: number[] };
  specs: LayerSpec[];
  weights: Record<string, Float32Array>;
  contWeight: number;
  catWeight: number;
}

/**
 * The hybrid autoencoder as ONNX: continuous columns and embedded categories in, the weighted
 * reconstruction error plus the weighted cross-entropy of each observed category out as `score`.
 * Category indices outside [0, K) count as index 0 (`<other>`), as in the training core.
 */
export function hybridToOnnx(h: HybridOnnxSpec): Uint8Array {
  const g = new GraphBuilder();
  const L = h.layout;
  const dc = L.contCols.length;
  const nc = L.catCols.length;
  const parts: string[] = [];
  const cont = dc > 0 ? g.op('Gather', ['features', g.ints([dc], L.contCols)], { axis: 1 }) : '';
  if (dc > 0) parts.push(cont);
  const idx: string[] = [];
  for (let c = 0; c < nc; c++) {
    const col = g.op('Gather', ['features', g.ints([], [L.catCols[c]])], { axis: 1 });
    const asInt = g.op('Cast', [col], { to: INT64 });
    const zero = g.ints([], [0]);
    const ok = g.op('And', [
      g.op('GreaterOrEqual', [asInt, zero]),
      g.op('Less', [asInt, g.ints([], [L.catK[c]])]),
    ]);
    const i = g.op('Where', [ok, asInt, zero]);
    idx.push(i);
    const table = g.floats(`E${c}`, [L.catK[c], L.embDims[c]], h.weights[`E${c}`]);
    parts.push(g.op('Gather', [table, i], { axis: 0 }));
  }
  const joined = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 1 });
  const cur = denseChain(g, joined, dc + L.embDims.reduce((a, b) => a + b, 0), h.specs, h.weights);
  const one = g.ints([1], [1]);
  const slice = (from: number, to: number) =>
    g.op('Slice', [cur, g.ints([1], [from]), g.ints([1], [to]), one]);
  const terms: string[] = [];
  if (dc > 0) {
    const r = g.op('Sub', [slice(0, dc), cont]);
    const mse = g.op('ReduceMean', [g.op('Mul', [r, r])], { axes: [1], keepdims: 0 });
    terms.push(g.op('Mul', [mse, g.scalar(h.contWeight)]));
  }
  let off = dc;
  for (let c = 0; c < nc; c++) {
    const K = L.catK[c];
    const logp = g.op('LogSoftmax', [slice(off, off + K)], { axis: 1 });
    const picked = g.op('GatherElements', [logp, g.op('Unsqueeze', [idx[c], one])], { axis: 1 });
    const ce = g.op('Squeeze', [picked, one]);
    terms.push(g.op('Mul', [ce, g.scalar(-h.catWeight / nc)]));
    off += K;
  }
  g.op(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, 'score');
  return serialise(
    g,
    'nadir-hybrid-autoencoder',
    'NADIR hybrid autoencoder: input = features after the bundle pipeline (categorical columns as category indices); score = weighted MSE + weighted cross-entropy.',
    L.width,
    [valueInfo('score', ['N'])],
  );
}

// ---------------------------------------------------------------------------------------------
// Classifier graph

export interface ClassifierOnnxSpec {
  inDim: number;
  specs: LayerSpec[];
  weights: Record<string, Float32Array>;
  temperature: number;
  classes: string[];
}

/**
 * A classifier as ONNX: `probabilities` [N, C] (softmax of the logits divided by the calibrated
 * temperature; class 0 is BENIGN) and `score` [N], the summed probability of the attack classes.
 */
export function classifierToOnnx(c: ClassifierOnnxSpec): Uint8Array {
  const g = new GraphBuilder();
  const cur = denseChain(g, 'features', c.inDim, c.specs, c.weights);
  const C = c.classes.length;
  const probs = g.op('Softmax', [g.op('Div', [cur, g.scalar(c.temperature)])], { axis: 1 }, 'probabilities');
  const attack = g.op('Slice', [probs, g.ints([1], [1]), g.ints([1], [C]), g.ints([1], [1])]);
  g.op('ReduceSum', [attack, g.ints([1], [1])], { keepdims: 0 }, 'score');
  return serialise(
    g,
    'nadir-mlp',
    `NADIR MLP classifier. Classes: ${c.classes.join(' | ')}. Input = features after the bundle pipeline.`,
    c.inDim,
    [valueInfo('score', ['N']), valueInfo('probabilities', ['N', C])],
  );
}

// ---------------------------------------------------------------------------------------------
// Autoencoder + classifier graph

export interface AeClassifierOnnxSpec {
  inDim: number;
  shapes: { enc: LayerSpec[]; dec: LayerSpec[]; cls: LayerSpec[] };
  /** Weights named enc.W0, …, dec.W0, …, cls.W0, … */
  weights: Record<string, Float32Array>;
  temperature: number;
  noveltyScale: number;
  classes: string[];
}

/**
 * The autoencoder + classifier as ONNX: `probabilities` [N, C] from the classifier head at the
 * calibrated temperature, and `score` [N] = P(attack) + (1 − P(attack)) · (1 − exp(−error / s)).
 */
export function aeClassifierToOnnx(a: AeClassifierOnnxSpec): Uint8Array {
  const g = new GraphBuilder();
  const code = a.shapes.enc[a.shapes.enc.length - 1].units;
  const z = denseChain(g, 'features', a.inDim, a.shapes.enc, a.weights, 'enc.');
  const rec = denseChain(g, z, code, a.shapes.dec, a.weights, 'dec.');
  const logits = denseChain(g, z, code, a.shapes.cls, a.weights, 'cls.');
  const r = g.op('Sub', [rec, 'features']);
  const err = g.op('ReduceMean', [g.op('Mul', [r, r])], { axes: [1], keepdims: 0 });
  const one = g.scalar(1);
  const novelty = g.op('Sub', [
    one,
    g.op('Exp', [g.op('Neg', [g.op('Div', [err, g.scalar(a.noveltyScale)])])]),
  ]);
  const C = a.classes.length;
  const probs = g.op(
    'Softmax',
    [g.op('Div', [logits, g.scalar(a.temperature)])],
    { axis: 1 },
    'probabilities',
  );
  const attackRows = g.op('Slice', [probs, g.ints([1], [1]), g.ints([1], [C]), g.ints([1], [1])]);
  const attack = g.op('ReduceSum', [attackRows, g.ints([1], [1])], { keepdims: 0 });
  g.op('Add', [attack, g.op('Mul', [g.op('Sub', [one, attack]), novelty])], {}, 'score');
  return serialise(
    g,
    'nadir-ae-classifier',
    `NADIR autoencoder + classifier. Classes: ${a.classes.join(' | ')}. Input = features after the bundle pipeline.`,
    a.inDim,
    [valueInfo('score', ['N']), valueInfo('probabilities', ['N', C])],
  );
}

// ---------------------------------------------------------------------------------------------
// LSTM sequence regressor graph

export interface SequenceOnnxSpec {
  steps: number;
  features: number;
  units: number;
  outputs: number;
  /** Wx (F × 4H), Wh (H × 4H), b (4H) in gate order i, f, g, o; head.W0, head.b0. */
  weights: Record<string, Float32Array>;
}

/**
 * An LSTM over `sequences` [N, T·F] (each row T steps of F values) with a dense head on the last
 * hidden state, as ONNX: Reshape → Transpose to [T, N, F] → LSTM → Squeeze → Gemm → `prediction`.
 * ONNX orders the gates i, o, f, c and stores them as rows; NADIR's columns i, f, g, o are
 * reordered accordingly.
 */
export function sequenceRegressorToOnnx(q: SequenceOnnxSpec): Uint8Array {
  const { steps: T, features: F, units: H, outputs: O } = q;
  const g = new GraphBuilder();
  const ORDER = [0, 3, 1, 2]; // ONNX gate q ← NADIR gate ORDER[q]
  const rows = (src: Float32Array, inDim: number): Float32Array => {
    const out = new Float32Array(4 * H * inDim);
    for (let qo = 0; qo < 4; qo++)
      for (let j = 0; j < H; j++)
        for (let k = 0; k < inDim; k++) out[(qo * H + j) * inDim + k] = src[k * 4 * H + ORDER[qo] * H + j];
    return out;
  };
  const bias = new Float32Array(8 * H);
  for (let qo = 0; qo < 4; qo++)
    for (let j = 0; j < H; j++) bias[qo * H + j] = q.weights.b[ORDER[qo] * H + j];
  const W = g.floats('lstm_W', [1, 4 * H, F], rows(q.weights.Wx, F));
  const R = g.floats('lstm_R', [1, 4 * H, H], rows(q.weights.Wh, H));
  const B = g.floats('lstm_B', [1, 8 * H], bias);
  const seq = g.op('Reshape', ['sequences', g.ints([3], [0, T, F])]);
  const tnf = g.op('Transpose', [seq], { perm: [1, 0, 2] });
  // LSTM has several outputs; only Y_h (the last hidden state) is used.
  const node = protos().NodeProto.create({
    opType: 'LSTM',
    input: [tnf, W, R, B],
    output: ['', 'lstm_h'],
    name: 'lstm',
    attribute: [
      protos().AttributeProto.create({
        name: 'hidden_size',
        i: H,
        type: protos().AttributeProto.AttributeType.INT,
      }),
    ],
  });
  g.nodes.push(node);
  const last = g.op('Squeeze', ['lstm_h', g.ints([1], [0])]);
  g.op(
    'Gemm',
    [last, g.floats('head_W', [H, O], q.weights['head.W0']), g.floats('head_b', [O], q.weights['head.b0'])],
    {},
    'prediction',
  );
  const model = protos().ModelProto.create({
    irVersion: 8,
    producerName: 'nadir',
    producerVersion: NADIR_VERSION,
    docString: `NADIR LSTM sequence regressor: sequences [N, ${T}·${F}] → prediction [N, ${O}].`,
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: 'nadir-lstm',
      node: g.nodes,
      initializer: g.inits,
      input: [valueInfo('sequences', ['N', T * F])],
      output: [valueInfo('prediction', ['N', O])],
    },
  });
  return protos().ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime

interface OrtTensor {
  data: Float32Array;
  dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: string[]): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface OrtModule {
  InferenceSession: {
    create(bytes: Uint8Array, opts?: Record<string, unknown>): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
}

let ort: OrtModule | null | undefined;
let ortError = '';

/** ONNX Runtime, or null (with `ortUnavailable()` saying why) where it cannot load. */
export function onnxRuntime(): OrtModule | null {
  if (ort === undefined) {
    if (process.env.NADIR_NO_ONNXRUNTIME) {
      ort = null;
      ortError = 'disabled by NADIR_NO_ONNXRUNTIME';
    } else
      try {
        ort = createRequire(import.meta.url)('onnxruntime-node') as OrtModule;
      } catch (e) {
        ort = null;
        ortError = (e as Error).message.split('\n')[0];
      }
  }
  return ort;
}

export function ortUnavailable(): string {
  return ortError;
}

/** A scoring session over an exported graph (one intra-op thread: NADIR parallelises by process). */
export class OnnxScorer {
  private constructor(
    private readonly session: OrtSession,
    private readonly rt: OrtModule,
    readonly cols: number,
  ) {}

  static async create(bytes: Uint8Array, cols: number, threads = 1): Promise<OnnxScorer | null> {
    const rt = onnxRuntime();
    if (!rt) return null;
    const session = await rt.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return new OnnxScorer(session, rt, cols);
  }

  /** Scores rows × cols values; returns one score per row. */
  async score(data: Float32Array, rows: number): Promise<Float32Array> {
    return this.run(data, rows, 'features', 'score');
  }

  /** Runs the graph on rows × cols values of input `input`; returns output `output`. */
  async run(data: Float32Array, rows: number, input: string, output: string): Promise<Float32Array> {
    const t = new this.rt.Tensor('float32', data.subarray(0, rows * this.cols), [rows, this.cols]);
    const out = await this.session.run({ [input]: t }, [output]);
    return out[output].data;
  }
}

/** Rows below which a batch stays on the training core (ONNX Runtime's call overhead dominates). */
const ORT_MIN_ROWS = 256;
/** Rows per ONNX Runtime call. */
const ORT_BATCH = 4096;

/**
 * Batch scoring through ONNX Runtime for a neural detector, with the training core as the
 * fallback (small batches, or where ONNX Runtime cannot load). The session is created from the
 * detector's graph on first use.
 */
export class OrtRuntime {
  private scorer: Promise<OnnxScorer | null> | null = null;

  constructor(private readonly graph: () => Uint8Array) {}

  async score(
    x: { data: Float32Array; rows: number; cols: number },
    fallback: (x: { data: Float32Array; rows: number; cols: number }) => Float32Array,
  ): Promise<Float32Array> {
    if (x.rows < ORT_MIN_ROWS || !onnxRuntime()) return fallback(x);
    this.scorer ??= OnnxScorer.create(this.graph(), x.cols).catch(() => null);
    const s = await this.scorer;
    if (!s) return fallback(x);
    const out = new Float32Array(x.rows);
    const d = x.cols;
    for (let i = 0; i < x.rows; i += ORT_BATCH) {
      const m = Math.min(ORT_BATCH, x.rows - i);
      out.set(await s.score(x.data.subarray(i * d, (i + m) * d), m), i);
    }
    return out;
  }
}
