/**
 * Float64 re-implementations of the numeric core's forward passes, written independently of
 * src/nn, for gradient checks by central finite differences.
 */
import type { Rng } from '../src/core/rng.js';
import type { ActName } from '../src/nn/engine.js';
import type { LayerSpec } from '../src/nn/mlp.js';

export function act64(v: number, a: ActName): number {
  switch (a) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'leaky':
      return v > 0 ? v : 0.01 * v;
    case 'tanh':
      return Math.tanh(v);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    default:
      return v;
  }
}

/**
 * Float64 forward pass of an MLP given plain weight arrays (W row-major in × out): y = act(xW + b),
 * times the layer's dropout mask when one is given, plus x for residual layers.
 */
export function forward64(
  x: Float64Array,
  m: number,
  inDim: number,
  specs: LayerSpec[],
  w: Float64Array[],
  masks: (Float32Array | null)[] = [],
): Float64Array {
  let cur = x;
  let d = inDim;
  specs.forEach((s, l) => {
    const W = w[2 * l];
    const b = w[2 * l + 1];
    const mask = masks[l];
    const y = new Float64Array(m * s.units);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < s.units; j++) {
        let acc = b[j];
        for (let k = 0; k < d; k++) acc += cur[i * d + k] * W[k * s.units + j];
        let v = act64(acc, s.act);
        if (mask) v *= mask[i * s.units + j];
        if (s.residual) v += cur[i * d + j];
        y[i * s.units + j] = v;
      }
    cur = y;
    d = s.units;
  });
  return cur;
}

export function mse64(y: Float64Array, t: Float64Array): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += (y[i] - t[i]) ** 2;
  return s / y.length;
}

/** Norm-based relative error, the usual gradient-check measure. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += (Math.abs(a[i]) + Math.abs(b[i])) ** 2;
  }
  return den === 0 ? 0 : Math.sqrt(num) / Math.sqrt(den);
}

export function randn(rng: Rng, n: number, s = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = s * rng.normal();
  return a;
}

/**
 * Float64 LSTM over B sequences (x batch-major B × T × F), gate order i, f, g, o; weights Wx
 * (F × 4H), Wh (H × 4H), b (4H). Returns every hidden state, time-major (T × B × H).
 */
export function lstm64(
  x: Float64Array,
  B: number,
  T: number,
  F: number,
  H: number,
  Wx: Float64Array,
  Wh: Float64Array,
  b: Float64Array,
): Float64Array {
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const hs = new Float64Array(T * B * H);
  const h = new Float64Array(B * H);
  const c = new Float64Array(B * H);
  for (let t = 0; t < T; t++) {
    const hPrev = Float64Array.from(h);
    for (let r = 0; r < B; r++) {
      for (let j = 0; j < H; j++) {
        const pre = [0, 1, 2, 3].map((q) => {
          let s = b[q * H + j];
          for (let f = 0; f < F; f++) s += x[r * T * F + t * F + f] * Wx[f * 4 * H + q * H + j];
          for (let u = 0; u < H; u++) s += hPrev[r * H + u] * Wh[u * 4 * H + q * H + j];
          return s;
        });
        const cv = sig(pre[1]) * c[r * H + j] + sig(pre[0]) * Math.tanh(pre[2]);
        c[r * H + j] = cv;
        h[r * H + j] = sig(pre[3]) * Math.tanh(cv);
      }
    }
    hs.set(h, t * B * H);
  }
  return hs;
}
