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
const STRIDE = 8;
/** Rows scored together per tree, so the tree stays in L1 cache while the block passes through. */
const BLOCK = 64;

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
  /**
   * Execution layout built from the arrays above: STRIDE slots per node in one buffer, read through
   * an Int32 and a Float32 view: [feature, threshold, left offset, right offset, range centre,
   * range half-width, leaf value].
   * Leaves point to themselves with an infinite range, so every row walks exactly `depth` steps with
   * no leaf test, and the child is picked arithmetically instead of by a branch; four rows walk each
   * tree side by side so their dependent loads overlap. Two nodes share a cache line.
   */
  private packedI: Int32Array = new Int32Array(0);
  private packedF: Float32Array = new Float32Array(0);
  private rootOff: Int32Array = new Int32Array(0);
  private depth = 0;

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
    this.pack();
  }

  private pack(): void {
    const n = this.feature.length;
    const buf = new ArrayBuffer(n * STRIDE * 4);
    const I = new Int32Array(buf);
    const F = new Float32Array(buf);
    for (let i = 0; i < n; i++) {
      const o = i * STRIDE;
      if (this.feature[i] >= 0) {
        I[o] = this.feature[i];
        F[o + 1] = this.threshold[i];
        I[o + 2] = (i + 1) * STRIDE;
        I[o + 3] = this.right[i] * STRIDE;
        // Range as centre and half-width (computed in float64, stored as float32).
        F[o + 4] = (this.lo[i] + this.hi[i]) / 2;
        F[o + 5] = (this.hi[i] - this.lo[i]) / 2;
      } else {
        I[o] = 0;
        I[o + 2] = o;
        I[o + 3] = o;
        F[o + 4] = 0;
        F[o + 5] = 1e30;
        F[o + 6] = this.value[i];
      }
    }
    // Depth of the deepest leaf: the number of steps every walk takes.
    let depth = 0;
    for (let t = 0; t < this.roots.length; t++) {
      const stack = [this.roots[t], 0];
      while (stack.length) {
        const dd = stack.pop()!;
        const node = stack.pop()!;
        if (this.feature[node] < 0) depth = Math.max(depth, dd);
        else stack.push(node + 1, dd + 1, this.right[node], dd + 1);
      }
    }
    this.depth = depth;
    this.packedI = I;
    this.packedF = F;
    this.rootOff = this.roots.map((r) => r * STRIDE);
  }

  score(x: Matrix, out?: Float32Array): Float32Array {
    this.checkCols(x);
    const { rows: n, cols: d, data } = x;
    const res = out && out.length >= n ? out : new Float32Array(n);
    const roots = this.rootOff;
    const T = roots.length;
    const norm = -1 / (T * averagePathLength(this.psi));
    const acc = new Float64Array(BLOCK);
    for (let r0 = 0; r0 < n; r0 += BLOCK) {
      const r1 = Math.min(n, r0 + BLOCK);
      acc.fill(0);
      for (let t = 0; t < T; t++) {
        if (this.p.extrapolate) this.walkRangeAware(data, d, r0, r1, roots[t], acc);
        else this.walkClassic(data, d, r0, r1, roots[t], acc);
      }
      for (let r = r0; r < r1; r++) res[r] = 2 ** (acc[r - r0] * norm);
    }
    return res;
  }

  /** Adds each row's path length in one tree to acc (classic isolation forest). */
  private walkClassic(
    x: Float32Array,
    d: number,
    r0: number,
    r1: number,
    root: number,
    acc: Float64Array,
  ): void {
    const I = this.packedI;
    const F = this.packedF;
    const depth = this.depth;
    let r = r0;
    for (; r + 4 <= r1; r += 4) {
      const b0 = r * d;
      const b1 = b0 + d;
      const b2 = b1 + d;
      const b3 = b2 + d;
      let p0 = root;
      let p1 = root;
      let p2 = root;
      let p3 = root;
      for (let k = 0; k < depth; k++) {
        p0 = I[p0 + 3 - +(x[b0 + I[p0]] < F[p0 + 1])];
        p1 = I[p1 + 3 - +(x[b1 + I[p1]] < F[p1 + 1])];
        p2 = I[p2 + 3 - +(x[b2 + I[p2]] < F[p2 + 1])];
        p3 = I[p3 + 3 - +(x[b3 + I[p3]] < F[p3 + 1])];
      }
      acc[r - r0] += F[p0 + 6];
      acc[r - r0 + 1] += F[p1 + 6];
      acc[r - r0 + 2] += F[p2 + 6];
      acc[r - r0 + 3] += F[p3 + 6];
    }
    for (; r < r1; r++) {
      const b = r * d;
      let p = root;
      for (let k = 0; k < depth; k++) p = I[p + 3 - +(x[b + I[p]] < F[p + 1])];
      acc[r - r0] += F[p + 6];
    }
  }

  /**
   * Adds each row's expected path length in one tree to acc. At step k the row is at a node whose
   * range is centre c ± h; outside it by δ = max(0, |v − c| − h) (written with two abs() so no
   * branch is taken), it is isolated at depth k + 1 with probability q = δ / (2h + δ). With s_k the
   * probability of surviving to step k, E = Σ_k (s_k − s_k+1)(k + 1) + s_K·leaf, which telescopes to
   * Σ_{k<K} s_k + s_K·(leaf − K): one division per step and no other bookkeeping. Leaves carry
   * h = 1e30, so δ = 0 there and the self-loop steps change nothing.
   */
  private walkRangeAware(
    x: Float32Array,
    d: number,
    r0: number,
    r1: number,
    root: number,
    acc: Float64Array,
  ): void {
    const I = this.packedI;
    const F = this.packedF;
    const depth = this.depth;
    let r = r0;
    for (; r + 4 <= r1; r += 4) {
      const b0 = r * d;
      const b1 = b0 + d;
      const b2 = b1 + d;
      const b3 = b2 + d;
      let p0 = root;
      let p1 = root;
      let p2 = root;
      let p3 = root;
      let s0 = 1;
      let s1 = 1;
      let s2 = 1;
      let s3 = 1;
      let e0 = 0;
      let e1 = 0;
      let e2 = 0;
      let e3 = 0;
      for (let k = 0; k < depth; k++) {
        const v0 = x[b0 + I[p0]];
        const h0 = F[p0 + 5];
        const u0 = v0 - F[p0 + 4];
        const d0 = 0.5 * (Math.abs(u0 - h0) + Math.abs(u0 + h0)) - h0;
        e0 += s0;
        s0 = (s0 * (h0 + h0)) / (h0 + h0 + d0);
        p0 = I[p0 + 3 - +(v0 < F[p0 + 1])];
        const v1 = x[b1 + I[p1]];
        const h1 = F[p1 + 5];
        const u1 = v1 - F[p1 + 4];
        const d1 = 0.5 * (Math.abs(u1 - h1) + Math.abs(u1 + h1)) - h1;
        e1 += s1;
        s1 = (s1 * (h1 + h1)) / (h1 + h1 + d1);
        p1 = I[p1 + 3 - +(v1 < F[p1 + 1])];
        const v2 = x[b2 + I[p2]];
        const h2 = F[p2 + 5];
        const u2 = v2 - F[p2 + 4];
        const d2 = 0.5 * (Math.abs(u2 - h2) + Math.abs(u2 + h2)) - h2;
        e2 += s2;
        s2 = (s2 * (h2 + h2)) / (h2 + h2 + d2);
        p2 = I[p2 + 3 - +(v2 < F[p2 + 1])];
        const v3 = x[b3 + I[p3]];
        const h3 = F[p3 + 5];
        const u3 = v3 - F[p3 + 4];
        const d3 = 0.5 * (Math.abs(u3 - h3) + Math.abs(u3 + h3)) - h3;
        e3 += s3;
        s3 = (s3 * (h3 + h3)) / (h3 + h3 + d3);
        p3 = I[p3 + 3 - +(v3 < F[p3 + 1])];
      }
      acc[r - r0] += e0 + s0 * (F[p0 + 6] - depth);
      acc[r - r0 + 1] += e1 + s1 * (F[p1 + 6] - depth);
      acc[r - r0 + 2] += e2 + s2 * (F[p2 + 6] - depth);
      acc[r - r0 + 3] += e3 + s3 * (F[p3 + 6] - depth);
    }
    for (; r < r1; r++) {
      const b0 = r * d;
      let p0 = root;
      let s0 = 1;
      let e0 = 0;
      for (let k = 0; k < depth; k++) {
        const v0 = x[b0 + I[p0]];
        const h0 = F[p0 + 5];
        const u0 = v0 - F[p0 + 4];
        const d0 = 0.5 * (Math.abs(u0 - h0) + Math.abs(u0 + h0)) - h0;
        e0 += s0;
        s0 = (s0 * (h0 + h0)) / (h0 + h0 + d0);
        p0 = I[p0 + 3 - +(v0 < F[p0 + 1])];
      }
      acc[r - r0] += e0 + s0 * (F[p0 + 6] - depth);
    }
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
    f.pack();
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
