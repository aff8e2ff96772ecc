/**
 * Isolation forest (Liu, Ting & Zhou 2008) on typed arrays.
 *
 * Each tree is grown on a sub-sample of ψ rows (default 256) drawn without replacement, splitting
 * on a random feature that is not constant in the node at a uniform random value between the
 * node's min and max, down to depth ⌈log2 ψ⌉. A row's score is 2^(−E[h(x)] / c(ψ)), where h is
 * the path length plus c(size) at the leaf (the expected depth of an unbuilt subtree) and c(n) the
 * average path length of an unsuccessful BST search: scores near 1 are anomalies, ~0.5 ordinary.
 *
 * Range-aware scoring (on by default, `extrapolate`): the classic forest cannot tell a value just
 * above the training maximum from one a thousand times larger, because every threshold lies inside
 * the range of the node's sample. Flood traffic lives exactly there. So each internal node also
 * keeps the [lo, hi] range of its split feature, and a row outside that range by δ is treated as
 * if it had been part of the sample: with probability δ / (hi − lo + δ) the node's random threshold
 * would have fallen between it and the rest, isolating it one level down. The path length becomes
 * the expectation over those events; rows inside every range score exactly as in the classic
 * algorithm.
 *
 * All trees live in flat arrays in pre-order (a node's left child is the next node), so scoring
 * walks typed arrays with no allocation.
 */
import { Rng } from '../../core/rng.js';
import { type Detector, type Matrix, registerDetector, type WeightArray } from '../detector.js';

export interface IForestParams {
  trees: number;
  sampleSize: number;
  /** Default ⌈log2 ψ⌉. */
  maxDepth: number;
  seed: number;
  /** Range-aware scoring of values beyond the node's training range (see above). */
  extrapolate: boolean;
}

export const DEFAULT_IFOREST: IForestParams = {
  trees: 100,
  sampleSize: 256,
  maxDepth: 0,
  seed: 42,
  extrapolate: true,
};

const EULER_GAMMA = 0.5772156649015329;

/** Average path length of an unsuccessful search in a BST of n nodes. */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - (2 * (n - 1)) / n;
}

export class IsolationForest implements Detector {
  readonly kind = 'iforest';
  readonly p: IForestParams;
  private feature: Int32Array = new Int32Array(0);
  private threshold: Float32Array = new Float32Array(0);
  private right: Int32Array = new Int32Array(0);
  /** Leaf: path length contribution (depth + c(size)). */
  private value: Float32Array = new Float32Array(0);
  /** Training rows that reached each node. */
  private size: Int32Array = new Int32Array(0);
  /** Internal node: range of the split feature over the node's rows. */
  private lo: Float32Array = new Float32Array(0);
  private hi: Float32Array = new Float32Array(0);
  private roots: Int32Array = new Int32Array(0);
  private psi = 0;
  private cols = 0;

  constructor(params: Partial<IForestParams> = {}) {
    this.p = { ...DEFAULT_IFOREST, ...params };
    if (!(this.p.trees >= 1)) throw new Error('iforest: trees must be ≥ 1');
    if (!(this.p.sampleSize >= 2)) throw new Error('iforest: sampleSize must be ≥ 2');
  }

  fit(x: Matrix): void {
    const { rows: n, cols: d, data } = x;
    if (n < 2) throw new Error(`iforest: need at least 2 training rows, got ${n}`);
    const rng = new Rng(this.p.seed);
    const psi = Math.min(this.p.sampleSize, n);
    const maxDepth = this.p.maxDepth > 0 ? this.p.maxDepth : Math.ceil(Math.log2(Math.max(psi, 2)));
    const T = this.p.trees;
    const cap = T * (2 * psi - 1);
    const feature = new Int32Array(cap);
    const threshold = new Float32Array(cap);
    const right = new Int32Array(cap);
    const value = new Float32Array(cap);
    const size = new Int32Array(cap);
    const loArr = new Float32Array(cap);
    const hiArr = new Float32Array(cap);
    const roots = new Int32Array(T);
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    const work = new Int32Array(psi);
    const featOrder = new Int32Array(d);
    let nodes = 0;

    const build = (lo: number, hi: number, depth: number): void => {
      const node = nodes++;
      const m = hi - lo;
      size[node] = m;
      if (depth >= maxDepth || m <= 1) {
        feature[node] = -1;
        value[node] = depth + averagePathLength(m);
        return;
      }
      // Random feature among those not constant in this node.
      for (let j = 0; j < d; j++) featOrder[j] = j;
      let f = -1;
      let min = 0;
      let max = 0;
      for (let left = d; left > 0; left--) {
        const r = rng.int(left);
        const cand = featOrder[r];
        featOrder[r] = featOrder[left - 1];
        min = Number.POSITIVE_INFINITY;
        max = Number.NEGATIVE_INFINITY;
        for (let i = lo; i < hi; i++) {
          const v = data[work[i] * d + cand];
          if (v < min) min = v;
          if (v > max) max = v;
        }
        if (max > min) {
          f = cand;
          break;
        }
      }
      if (f < 0) {
        feature[node] = -1;
        value[node] = depth + averagePathLength(m);
        return;
      }
      // Uniform threshold in (min, max], representable in float32 so that x < thr is exact.
      let thr = Math.fround(min + rng.next() * (max - min));
      if (thr <= min) thr = Math.fround(max);
      // Partition: rows with x < thr first.
      let a = lo;
      let b = hi - 1;
      while (a <= b) {
        if (data[work[a] * d + f] < thr) a++;
        else {
          const t = work[a];
          work[a] = work[b];
          work[b] = t;
          b--;
        }
      }
      feature[node] = f;
      threshold[node] = thr;
      loArr[node] = min;
      hiArr[node] = max;
      build(lo, a, depth + 1);
      right[node] = nodes;
      build(a, hi, depth + 1);
    };

    for (let t = 0; t < T; t++) {
      for (let i = 0; i < psi; i++) {
        const j = i + rng.int(n - i);
        const tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
        work[i] = perm[i];
      }
      roots[t] = nodes;
      build(0, psi, 0);
    }
    this.feature = feature.slice(0, nodes);
    this.threshold = threshold.slice(0, nodes);
    this.right = right.slice(0, nodes);
    this.value = value.slice(0, nodes);
    this.size = size.slice(0, nodes);
    this.lo = loArr.slice(0, nodes);
    this.hi = hiArr.slice(0, nodes);
    this.roots = roots;
    this.psi = psi;
    this.cols = d;
  }

  score(x: Matrix, out?: Float32Array): Float32Array {
    this.checkCols(x);
    const { rows: n, cols: d, data } = x;
    const res = out && out.length >= n ? out : new Float32Array(n);
    const { feature, threshold, right, value, roots, lo, hi } = this;
    const T = roots.length;
    const norm = -1 / (T * averagePathLength(this.psi));
    const extrapolate = this.p.extrapolate;
    for (let i = 0; i < n; i++) {
      const base = i * d;
      let sum = 0;
      for (let t = 0; t < T; t++) {
        let node = roots[t];
        let f = feature[node];
        if (!extrapolate) {
          while (f >= 0) {
            node = data[base + f] < threshold[node] ? node + 1 : right[node];
            f = feature[node];
          }
          sum += value[node];
          continue;
        }
        // Expected path length: isolation beyond the node's range with probability p.
        let survive = 1;
        let expected = 0;
        let depth = 0;
        while (f >= 0) {
          const v = data[base + f];
          const l = lo[node];
          const h = hi[node];
          if (v > h || v < l) {
            const delta = v > h ? v - h : l - v;
            const p = delta / (h - l + delta);
            expected += survive * p * (depth + 1);
            survive *= 1 - p;
          }
          node = v < threshold[node] ? node + 1 : right[node];
          f = feature[node];
          depth++;
        }
        sum += expected + survive * value[node];
      }
      res[i] = 2 ** (sum * norm);
    }
    return res;
  }

  /**
   * Isolation credit per feature: along each tree's path, a split that sends the row from a node
   * holding m training rows to a child holding m' earns its feature log2(m / m') bits, i.e. how much
   * that split narrowed the row down. Averaged over trees.
   */
  explain(x: Matrix, row: number): Float64Array {
    this.checkCols(x);
    const d = x.cols;
    const credit = new Float64Array(d);
    const base = row * d;
    const { feature, threshold, right, size, roots, lo, hi } = this;
    const data = x.data;
    for (let t = 0; t < roots.length; t++) {
      let node = roots[t];
      let f = feature[node];
      let survive = 1;
      while (f >= 0) {
        const v = data[base + f];
        if (this.p.extrapolate && (v > hi[node] || v < lo[node])) {
          // Isolated here with probability p: all of log2(m) bits go to this feature.
          const delta = v > hi[node] ? v - hi[node] : lo[node] - v;
          const p = delta / (hi[node] - lo[node] + delta);
          credit[f] += survive * p * Math.log2(size[node]);
          survive *= 1 - p;
        }
        const child = v < threshold[node] ? node + 1 : right[node];
        credit[f] += survive * Math.log2(size[node] / Math.max(1, size[child]));
        node = child;
        f = feature[node];
      }
    }
    for (let j = 0; j < d; j++) credit[j] /= roots.length;
    return credit;
  }

  params(): Record<string, unknown> {
    return { ...this.p, psi: this.psi, cols: this.cols, nodes: this.feature.length };
  }

  weights(): Record<string, WeightArray> {
    return {
      feature: this.feature,
      threshold: this.threshold,
      right: this.right,
      value: this.value,
      size: this.size,
      lo: this.lo,
      hi: this.hi,
      roots: this.roots,
    };
  }

  static restore(params: Record<string, unknown>, w: Record<string, WeightArray>): IsolationForest {
    const f = new IsolationForest(params as Partial<IForestParams>);
    f.feature = w.feature as Int32Array;
    f.threshold = w.threshold as Float32Array;
    f.right = w.right as Int32Array;
    f.value = w.value as Float32Array;
    f.size = w.size as Int32Array;
    f.lo = w.lo as Float32Array;
    f.hi = w.hi as Float32Array;
    f.roots = w.roots as Int32Array;
    f.psi = Number(params.psi);
    f.cols = Number(params.cols);
    const n = f.feature.length;
    if (![f.threshold, f.right, f.value, f.size, f.lo, f.hi].every((a) => a && a.length === n) || !f.roots)
      throw new Error('iforest: weights are incomplete or of mismatched lengths');
    for (let i = 0; i < n; i++) {
      if (f.feature[i] >= f.cols || (f.feature[i] >= 0 && (f.right[i] <= i || f.right[i] >= n)))
        throw new Error(`iforest: corrupt tree structure at node ${i}`);
    }
    return f;
  }

  private checkCols(x: Matrix): void {
    if (x.cols !== this.cols)
      throw new Error(`iforest: model expects ${this.cols} feature columns, got ${x.cols}`);
  }
}

registerDetector({
  kind: 'iforest',
  description: 'isolation forest (unsupervised; typed-array implementation)',
  create: (params) => new IsolationForest(params as Partial<IForestParams>),
  restore: (params, weights) => IsolationForest.restore(params, weights),
});
