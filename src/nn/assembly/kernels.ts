// NADIR's numeric kernels, in AssemblyScript, compiled to WebAssembly with 128-bit SIMD.
//
// Every argument is a byte offset into linear memory or a size; the TypeScript side (src/nn/)
// owns the memory layout. Matrices are row-major float32. Nothing here allocates.
//
// Built by `npm run build:wasm` (asc, a dev dependency) into dist/src/nn/kernels.wasm.

// ---------------------------------------------------------------------------------------------
// Matrix products

// C[M×N] (+)= A·B where A(i,k) lies at a + 4·(i·sai + k·sak) (so A or Aᵀ can be passed) and B is
// row-major K×N with row stride ldb; C row-major with row stride ldc. Register-blocked 4 rows × 8
// columns: eight accumulators, two B vectors and four broadcast A values per step of k.
export function gemm(
  M: i32,
  N: i32,
  K: i32,
  a: usize,
  sai: i32,
  sak: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  accumulate: i32,
): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const a0 = a + <usize>(i * sai) * 4;
    const a1 = a0 + <usize>sai * 4;
    const a2 = a1 + <usize>sai * 4;
    const a3 = a2 + <usize>sai * 4;
    const c0 = c + <usize>(i * ldc) * 4;
    const c1 = c0 + <usize>ldc * 4;
    const c2 = c1 + <usize>ldc * 4;
    const c3 = c2 + <usize>ldc * 4;
    let j = 0;
    for (; j + 8 <= N; j += 8) {
      const jo = <usize>j * 4;
      let x00 = f32x4.splat(0);
      let x01 = f32x4.splat(0);
      let x10 = f32x4.splat(0);
      let x11 = f32x4.splat(0);
      let x20 = f32x4.splat(0);
      let x21 = f32x4.splat(0);
      let x30 = f32x4.splat(0);
      let x31 = f32x4.splat(0);
      if (accumulate) {
        x00 = v128.load(c0 + jo);
        x01 = v128.load(c0 + jo, 16);
        x10 = v128.load(c1 + jo);
        x11 = v128.load(c1 + jo, 16);
        x20 = v128.load(c2 + jo);
        x21 = v128.load(c2 + jo, 16);
        x30 = v128.load(c3 + jo);
        x31 = v128.load(c3 + jo, 16);
      }
      let bp = b + jo;
      const bstep = <usize>ldb * 4;
      let ko: usize = 0;
      const kstep = <usize>sak * 4;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        const s0 = f32x4.splat(load<f32>(a0 + ko));
        const s1 = f32x4.splat(load<f32>(a1 + ko));
        const s2 = f32x4.splat(load<f32>(a2 + ko));
        const s3 = f32x4.splat(load<f32>(a3 + ko));
        x00 = f32x4.add(x00, f32x4.mul(s0, b0));
        x01 = f32x4.add(x01, f32x4.mul(s0, b1));
        x10 = f32x4.add(x10, f32x4.mul(s1, b0));
        x11 = f32x4.add(x11, f32x4.mul(s1, b1));
        x20 = f32x4.add(x20, f32x4.mul(s2, b0));
        x21 = f32x4.add(x21, f32x4.mul(s2, b1));
        x30 = f32x4.add(x30, f32x4.mul(s3, b0));
        x31 = f32x4.add(x31, f32x4.mul(s3, b1));
        bp += bstep;
        ko += kstep;
      }
      v128.store(c0 + jo, x00);
      v128.store(c0 + jo, x01, 16);
      v128.store(c1 + jo, x10);
      v128.store(c1 + jo, x11, 16);
      v128.store(c2 + jo, x20);
      v128.store(c2 + jo, x21, 16);
      v128.store(c3 + jo, x30);
      v128.store(c3 + jo, x31, 16);
    }
    for (; j + 4 <= N; j += 4) {
      const jo = <usize>j * 4;
      let x0 = f32x4.splat(0);
      let x1 = f32x4.splat(0);
      let x2 = f32x4.splat(0);
      let x3 = f32x4.splat(0);
      if (accumulate) {
        x0 = v128.load(c0 + jo);
        x1 = v128.load(c1 + jo);
        x2 = v128.load(c2 + jo);
        x3 = v128.load(c3 + jo);
      }
      let bp = b + jo;
      const bstep = <usize>ldb * 4;
      let ko: usize = 0;
      const kstep = <usize>sak * 4;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(bp);
        x0 = f32x4.add(x0, f32x4.mul(f32x4.splat(load<f32>(a0 + ko)), b0));
        x1 = f32x4.add(x1, f32x4.mul(f32x4.splat(load<f32>(a1 + ko)), b0));
        x2 = f32x4.add(x2, f32x4.mul(f32x4.splat(load<f32>(a2 + ko)), b0));
        x3 = f32x4.add(x3, f32x4.mul(f32x4.splat(load<f32>(a3 + ko)), b0));
        bp += bstep;
        ko += kstep;
      }
      v128.store(c0 + jo, x0);
      v128.store(c1 + jo, x1);
      v128.store(c2 + jo, x2);
      v128.store(c3 + jo, x3);
    }
    for (; j < N; j++) {
      const jo = <usize>j * 4;
      let y0: f32 = accumulate ? load<f32>(c0 + jo) : 0;
      let y1: f32 = accumulate ? load<f32>(c1 + jo) : 0;
      let y2: f32 = accumulate ? load<f32>(c2 + jo) : 0;
      let y3: f32 = accumulate ? load<f32>(c3 + jo) : 0;
      for (let k = 0; k < K; k++) {
        const bv = load<f32>(b + (<usize>(k * ldb + j)) * 4);
        const ko = <usize>(k * sak) * 4;
        y0 += load<f32>(a0 + ko) * bv;
        y1 += load<f32>(a1 + ko) * bv;
        y2 += load<f32>(a2 + ko) * bv;
        y3 += load<f32>(a3 + ko) * bv;
      }
      store<f32>(c0 + jo, y0);
      store<f32>(c1 + jo, y1);
      store<f32>(c2 + jo, y2);
      store<f32>(c3 + jo, y3);
    }
  }
  // Remaining rows one at a time.
  for (; i < M; i++) {
    const ar = a + <usize>(i * sai) * 4;
    const cr = c + <usize>(i * ldc) * 4;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const jo = <usize>j * 4;
      let x0 = accumulate ? v128.load(cr + jo) : f32x4.splat(0);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(b + (<usize>(k * ldb + j)) * 4);
        x0 = f32x4.add(x0, f32x4.mul(f32x4.splat(load<f32>(ar + (<usize>(k * sak)) * 4)), b0));
      }
      v128.store(cr + jo, x0);
    }
    for (; j < N; j++) {
      let y: f32 = accumulate ? load<f32>(cr + (<usize>j) * 4) : 0;
      for (let k = 0; k < K; k++)
        y += load<f32>(ar + (<usize>(k * sak)) * 4) * load<f32>(b + (<usize>(k * ldb + j)) * 4);
      store<f32>(cr + (<usize>j) * 4, y);
    }
  }
}

// dst[N×M] = src[M×N]ᵀ.
export function transpose(M: i32, N: i32, src: usize, dst: usize): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) store<f32>(dst + (<usize>(j * M + i)) * 4, load<f32>(src + (<usize>(i * N + j)) * 4));
}

// ---------------------------------------------------------------------------------------------
// Element-wise

export const ACT_NONE = 0;
export const ACT_RELU = 1;
export const ACT_LEAKY = 2;
export const ACT_TANH = 3;
export const ACT_SIGMOID = 4;
const LEAK: f32 = 0.01;

// y[M×N] = act(y + bias) in place (bias may be 0 for none).
export function biasAct(M: i32, N: i32, y: usize, bias: usize, act: i32): void {
  for (let i = 0; i < M; i++) {
    const row = y + (<usize>(i * N)) * 4;
    let j = 0;
    if (act === ACT_RELU || act === ACT_NONE || act === ACT_LEAKY) {
      const zero = f32x4.splat(0);
      const leak = f32x4.splat(LEAK);
      for (; j + 4 <= N; j += 4) {
        const o = <usize>j * 4;
        let v = v128.load(row + o);
        if (bias) v = f32x4.add(v, v128.load(bias + o));
        if (act === ACT_RELU) v = f32x4.max(v, zero);
        else if (act === ACT_LEAKY) v = f32x4.max(v, f32x4.mul(v, leak));
        v128.store(row + o, v);
      }
    }
    for (; j < N; j++) {
      const o = <usize>j * 4;
      let v = load<f32>(row + o);
      if (bias) v += load<f32>(bias + o);
      store<f32>(row + o, activate(v, act));
    }
  }
}

// @ts-ignore: decorator
@inline
function activate(v: f32, act: i32): f32 {
  if (act === ACT_RELU) return v > 0 ? v : 0;
  if (act === ACT_LEAKY) return v > 0 ? v : v * LEAK;
  if (act === ACT_TANH) return Mathf.tanh(v);
  if (act === ACT_SIGMOID) return 1 / (1 + Mathf.exp(-v));
  return v;
}

// dy[i] *= act'(·) expressed through the activation's output y[i].
export function actBackward(n: i32, y: usize, dy: usize, act: i32): void {
  if (act === ACT_NONE) return;
  let i = 0;
  if (act === ACT_RELU || act === ACT_LEAKY) {
    const zero = f32x4.splat(0);
    const one = f32x4.splat(1);
    const low = f32x4.splat(act === ACT_RELU ? 0 : LEAK);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i * 4;
      const pos = f32x4.gt(v128.load(y + o), zero);
      v128.store(dy + o, f32x4.mul(v128.load(dy + o), v128.bitselect(one, low, pos)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    const v = load<f32>(y + o);
    let d: f32 = 1;
    if (act === ACT_RELU) d = v > 0 ? 1 : 0;
    else if (act === ACT_LEAKY) d = v > 0 ? 1 : LEAK;
    else if (act === ACT_TANH) d = 1 - v * v;
    else if (act === ACT_SIGMOID) d = v * (1 - v);
    store<f32>(dy + o, load<f32>(dy + o) * d);
  }
}

// dst[N] (+)= column sums of src[M×N].
export function colSum(M: i32, N: i32, src: usize, dst: usize, accumulate: i32): void {
  if (!accumulate) memory.fill(dst, 0, <usize>N * 4);
  for (let i = 0; i < M; i++) {
    const row = src + (<usize>(i * N)) * 4;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const o = <usize>j * 4;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(row + o)));
    }
    for (; j < N; j++) {
      const o = <usize>j * 4;
      store<f32>(dst + o, load<f32>(dst + o) + load<f32>(row + o));
    }
  }
}

// dst[i] = x[i] + s·noise[i].
export function addScaled(n: i32, x: usize, noise: usize, s: f32, dst: usize): void {
  let i = 0;
  const sv = f32x4.splat(s);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(dst + o, f32x4.add(v128.load(x + o), f32x4.mul(sv, v128.load(noise + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(dst + o, load<f32>(x + o) + s * load<f32>(noise + o));
  }
}

// ---------------------------------------------------------------------------------------------
// Losses

// Mean squared error over the M×N elements (PyTorch's reduction "mean"); writes
// d loss / d y into grad (if non-zero) and returns the loss.
export function mse(M: i32, N: i32, y: usize, t: usize, grad: usize): f64 {
  const n = M * N;
  const scale: f32 = 2 / <f32>n;
  const sv = f32x4.splat(scale);
  let acc = f32x4.splat(0);
  let total: f64 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    const d = f32x4.sub(v128.load(y + o), v128.load(t + o));
    acc = f32x4.add(acc, f32x4.mul(d, d));
    if (grad) v128.store(grad + o, f32x4.mul(d, sv));
    // Fold into double precision regularly so long sums keep their accuracy.
    if ((i & 1023) === 1020) {
      total +=
        <f64>f32x4.extract_lane(acc, 0) +
        <f64>f32x4.extract_lane(acc, 1) +
        <f64>f32x4.extract_lane(acc, 2) +
        <f64>f32x4.extract_lane(acc, 3);
      acc = f32x4.splat(0);
    }
  }
  total +=
    <f64>f32x4.extract_lane(acc, 0) +
    <f64>f32x4.extract_lane(acc, 1) +
    <f64>f32x4.extract_lane(acc, 2) +
    <f64>f32x4.extract_lane(acc, 3);
  for (; i < n; i++) {
    const o = <usize>i * 4;
    const d = load<f32>(y + o) - load<f32>(t + o);
    total += <f64>(d * d);
    if (grad) store<f32>(grad + o, d * scale);
  }
  return total / <f64>n;
}

// out[i] = mean over columns of (y − t)² for each row i of M×N.
export function rowMse(M: i32, N: i32, y: usize, t: usize, out: usize): void {
  for (let i = 0; i < M; i++) {
    const yr = y + (<usize>(i * N)) * 4;
    const tr = t + (<usize>(i * N)) * 4;
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const o = <usize>j * 4;
      const d = f32x4.sub(v128.load(yr + o), v128.load(tr + o));
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let s: f32 =
      f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; j < N; j++) {
      const o = <usize>j * 4;
      const d = load<f32>(yr + o) - load<f32>(tr + o);
      s += d * d;
    }
    store<f32>(out + (<usize>i) * 4, s / <f32>N);
  }
}

// Softmax cross-entropy over rows of logits z[M×N] with integer targets t[M] (i32); writes the
// probabilities into p (may equal z) and d loss / d z (mean over rows) into grad if non-zero.
// Returns the mean loss.
export function softmaxCe(M: i32, N: i32, z: usize, t: usize, p: usize, grad: usize): f64 {
  let total: f64 = 0;
  const inv: f32 = 1 / <f32>M;
  for (let i = 0; i < M; i++) {
    const zr = z + (<usize>(i * N)) * 4;
    const pr = p + (<usize>(i * N)) * 4;
    let mx = load<f32>(zr);
    for (let j = 1; j < N; j++) mx = max(mx, load<f32>(zr + (<usize>j) * 4));
    let sum: f32 = 0;
    for (let j = 0; j < N; j++) {
      const e = Mathf.exp(load<f32>(zr + (<usize>j) * 4) - mx);
      store<f32>(pr + (<usize>j) * 4, e);
      sum += e;
    }
    const target = load<i32>(t + (<usize>i) * 4);
    for (let j = 0; j < N; j++) store<f32>(pr + (<usize>j) * 4, load<f32>(pr + (<usize>j) * 4) / sum);
    total -= Math.log(<f64>max(load<f32>(pr + (<usize>target) * 4), <f32>1e-30));
    if (grad) {
      const gr = grad + (<usize>(i * N)) * 4;
      for (let j = 0; j < N; j++) {
        const pj = load<f32>(pr + (<usize>j) * 4);
        store<f32>(gr + (<usize>j) * 4, (j === target ? pj - 1 : pj) * inv);
      }
    }
  }
  return total / <f64>M;
}

// Binary cross-entropy on logits z[n] with targets t[n] in [0, 1]; mean over n. Writes sigmoid
// probabilities into p and d loss / d z into grad if non-zero.
export function bceLogits(n: i32, z: usize, t: usize, p: usize, grad: usize): f64 {
  let total: f64 = 0;
  const inv: f32 = 1 / <f32>n;
  for (let i = 0; i < n; i++) {
    const o = <usize>i * 4;
    const x = load<f32>(z + o);
    const y = load<f32>(t + o);
    // log(1 + e^x) − x·y, computed stably.
    total += <f64>(max(x, 0) - x * y + Mathf.log(1 + Mathf.exp(-Mathf.abs(x))));
    const q: f32 = 1 / (1 + Mathf.exp(-x));
    store<f32>(p + o, q);
    if (grad) store<f32>(grad + o, (q - y) * inv);
  }
  return total / <f64>n;
}

// ---------------------------------------------------------------------------------------------
// Optimiser

// AdamW step over n parameters: m, v moments; bc1 = 1 − β1^t, bc2 = 1 − β2^t.
export function adam(
  n: i32,
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  lr: f32,
  b1: f32,
  b2: f32,
  eps: f32,
  wd: f32,
  bc1: f32,
  bc2: f32,
): void {
  const vb1 = f32x4.splat(b1);
  const vb2 = f32x4.splat(b2);
  const v1b1 = f32x4.splat(1 - b1);
  const v1b2 = f32x4.splat(1 - b2);
  const step = f32x4.splat(lr / bc1);
  const ibc2 = f32x4.splat(1 / bc2);
  const veps = f32x4.splat(eps);
  const decay = f32x4.splat(1 - lr * wd);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    const gi = v128.load(g + o);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(v1b1, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(v1b2, f32x4.mul(gi, gi)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.sqrt(f32x4.mul(vi, ibc2)), veps);
    const pi = f32x4.mul(v128.load(p + o), decay);
    v128.store(p + o, f32x4.sub(pi, f32x4.div(f32x4.mul(step, mi), denom)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + (1 - b1) * gi;
    const vi = b2 * load<f32>(v + o) + (1 - b2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o) * (1 - lr * wd);
    store<f32>(p + o, pi - ((lr / bc1) * mi) / (Mathf.sqrt(vi / bc2) + eps));
  }
}

// Sum of squares of n values (for gradient-norm clipping and checks).
export function sumSquares(n: i32, x: usize): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i) * 4);
    s += v * v;
  }
  return s;
}

// x[i] *= s.
export function scale(n: i32, x: usize, s: f32): void {
  for (let i = 0; i < n; i++) store<f32>(x + (<usize>i) * 4, load<f32>(x + (<usize>i) * 4) * s);
}

// 1 when every one of n values is finite.
export function allFinite(n: i32, x: usize): i32 {
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i) * 4);
    if (v - v !== 0) return 0;
  }
  return 1;
}

// dst[m×d] = rows idx[0..m) (i32) of src (row-major, d columns).
export function gatherRows(m: i32, d: i32, src: usize, idx: usize, dst: usize): void {
  const bytes = <usize>d * 4;
  for (let i = 0; i < m; i++) {
    const r = <usize>load<i32>(idx + (<usize>i) * 4);
    memory.copy(dst + <usize>i * bytes, src + r * bytes, bytes);
  }
}

export function copy(n: i32, src: usize, dst: usize): void {
  memory.copy(dst, src, <usize>n * 4);
}

// xoshiro128** state of four u32 at `state`; returns a uniform in [0, 1).
// @ts-ignore: decorator
@inline
function uniform(state: usize): f32 {
  let s0 = load<u32>(state);
  let s1 = load<u32>(state, 4);
  let s2 = load<u32>(state, 8);
  let s3 = load<u32>(state, 12);
  const r = rotl<u32>(s1 * 5, 7) * 9;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl<u32>(s3, 11);
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
  return <f32>(r >>> 8) * (<f32>1.0 / <f32>16777216.0);
}

// dst[i] = x[i] + std·N(0, 1) (Box–Muller), drawing from the xoshiro128** state at `state`.
export function addGaussian(n: i32, x: usize, std: f32, state: usize, dst: usize): void {
  for (let i = 0; i < n; i += 2) {
    const u1 = max<f32>(uniform(state), <f32>1e-7);
    const u2 = uniform(state);
    const r = std * Mathf.sqrt(-2 * Mathf.log(u1));
    const a = <f32>(2 * Math.PI) * u2;
    const o = <usize>i * 4;
    store<f32>(dst + o, load<f32>(x + o) + r * Mathf.cos(a));
    if (i + 1 < n) store<f32>(dst + o + 4, load<f32>(x + o + 4) + r * Mathf.sin(a));
  }
}

// Inverted dropout in place: each value is zeroed with probability p, else scaled by 1/(1 − p);
// the kept/zeroed pattern goes to mask (1/(1 − p) or 0) for the backward pass.
export function dropout(n: i32, x: usize, p: f32, state: usize, mask: usize): void {
  const keep: f32 = 1 / (1 - p);
  for (let i = 0; i < n; i++) {
    const o = <usize>i * 4;
    const k: f32 = uniform(state) < p ? 0 : keep;
    store<f32>(mask + o, k);
    store<f32>(x + o, load<f32>(x + o) * k);
  }
}

// x[i] *= mask[i].
export function mulInPlace(n: i32, x: usize, mask: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(x + o, f32x4.mul(v128.load(x + o), v128.load(mask + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(x + o, load<f32>(x + o) * load<f32>(mask + o));
  }
}

// ---------------------------------------------------------------------------------------------
// Blocks of columns, embeddings and per-block losses (mixed continuous/categorical models).
// Matrices here have explicit row strides (ld, in elements) so a block of columns can be used in
// place; pointers already point at the block's first column.

// dst block[m×n] = src block[m×n] (+ std·N(0, 1) when std > 0).
export function copyBlock(m: i32, n: i32, src: usize, lds: i32, dst: usize, ldd: i32, std: f32, state: usize): void {
  for (let i = 0; i < m; i++) {
    const s = src + (<usize>(i * lds)) * 4;
    const d = dst + (<usize>(i * ldd)) * 4;
    if (std > 0) addGaussian(n, s, std, state, d);
    else memory.copy(d, s, <usize>n * 4);
  }
}

// @ts-ignore: decorator
@inline
function categoryOf(src: usize, i: i32, lds: i32, K: i32): i32 {
  const v = <i32>load<f32>(src + (<usize>(i * lds)) * 4);
  return v < 0 || v >= K ? 0 : v;
}

// dst[i, 0..e) = table[c_i, 0..e) where c_i is the category index held (as a float) in src[i·lds].
export function embedGather(m: i32, e: i32, K: i32, table: usize, src: usize, lds: i32, dst: usize, ldd: i32): void {
  for (let i = 0; i < m; i++) {
    const c = categoryOf(src, i, lds, K);
    memory.copy(dst + (<usize>(i * ldd)) * 4, table + (<usize>(c * e)) * 4, <usize>e * 4);
  }
}

// gTable[c_i, ·] += dIn[i, 0..e): the embedding's gradient (gTable is not cleared here).
export function embedScatter(m: i32, e: i32, K: i32, gTable: usize, src: usize, lds: i32, dIn: usize, ldi: i32): void {
  for (let i = 0; i < m; i++) {
    const c = categoryOf(src, i, lds, K);
    const g = gTable + (<usize>(c * e)) * 4;
    const d = dIn + (<usize>(i * ldi)) * 4;
    for (let j = 0; j < e; j++) store<f32>(g + (<usize>j) * 4, load<f32>(g + (<usize>j) * 4) + load<f32>(d + (<usize>j) * 4));
  }
}

// w · mean squared error over an m×n block; writes w · d/dy into g (if non-zero).
export function mseBlock(m: i32, n: i32, y: usize, ldy: i32, t: usize, ldt: i32, g: usize, ldg: i32, w: f32): f64 {
  let total: f64 = 0;
  const scale: f32 = (2 * w) / <f32>(m * n);
  for (let i = 0; i < m; i++) {
    const yr = y + (<usize>(i * ldy)) * 4;
    const tr = t + (<usize>(i * ldt)) * 4;
    const gr = g + (<usize>(i * ldg)) * 4;
    let s: f32 = 0;
    for (let j = 0; j < n; j++) {
      const d = load<f32>(yr + (<usize>j) * 4) - load<f32>(tr + (<usize>j) * 4);
      s += d * d;
      if (g) store<f32>(gr + (<usize>j) * 4, d * scale);
    }
    total += <f64>s;
  }
  return (<f64>w * total) / <f64>(m * n);
}

// out[i] += w · mean over the block's n columns of (y − t)².
export function rowMseBlock(m: i32, n: i32, y: usize, ldy: i32, t: usize, ldt: i32, out: usize, w: f32): void {
  for (let i = 0; i < m; i++) {
    const yr = y + (<usize>(i * ldy)) * 4;
    const tr = t + (<usize>(i * ldt)) * 4;
    let s: f32 = 0;
    for (let j = 0; j < n; j++) {
      const d = load<f32>(yr + (<usize>j) * 4) - load<f32>(tr + (<usize>j) * 4);
      s += d * d;
    }
    const o = out + (<usize>i) * 4;
    store<f32>(o, load<f32>(o) + (w * s) / <f32>n);
  }
}

// Softmax cross-entropy of the logits block z[m×K] (row stride ldz) against the category index in
// src[i·lds]. Adds w · CE_i to out[i] when out is non-zero; writes w · dCE/dz / m into g when g is
// non-zero. Returns w · mean CE.
export function ceBlock(m: i32, K: i32, z: usize, ldz: i32, src: usize, lds: i32, g: usize, ldg: i32, out: usize, w: f32): f64 {
  let total: f64 = 0;
  const inv: f32 = w / <f32>m;
  for (let i = 0; i < m; i++) {
    const zr = z + (<usize>(i * ldz)) * 4;
    const c = categoryOf(src, i, lds, K);
    // In double precision, as log1p of the other classes' mass relative to the largest logit:
    // a confident prediction has a cross-entropy near 0 that float32 would round away.
    let jm = 0;
    let mx = <f64>load<f32>(zr);
    for (let j = 1; j < K; j++) {
      const v = <f64>load<f32>(zr + (<usize>j) * 4);
      if (v > mx) {
        mx = v;
        jm = j;
      }
    }
    let others: f64 = 0;
    for (let j = 0; j < K; j++) if (j !== jm) others += Math.exp(<f64>load<f32>(zr + (<usize>j) * 4) - mx);
    const lse = Math.log1p(others);
    const ce = lse - (<f64>load<f32>(zr + (<usize>c) * 4) - mx);
    total += ce;
    if (out) store<f32>(out + (<usize>i) * 4, <f32>(<f64>load<f32>(out + (<usize>i) * 4) + <f64>w * ce));
    if (g) {
      const gr = g + (<usize>(i * ldg)) * 4;
      for (let j = 0; j < K; j++) {
        const p = <f32>Math.exp(<f64>load<f32>(zr + (<usize>j) * 4) - mx - lse);
        store<f32>(gr + (<usize>j) * 4, (j === c ? p - 1 : p) * inv);
      }
    }
  }
  return (<f64>w * total) / <f64>m;
}

// ---------------------------------------------------------------------------------------------
// LSTM cell (gate order i, f, g, o in blocks of H columns)

// @ts-ignore: decorator
@inline
function sigm(x: f32): f32 {
  return 1 / (1 + Mathf.exp(-x));
}

// One step for B rows: gates[B×4H] holds pre-activations on entry and activations on exit;
// c = f⊙cPrev + i⊙g, h = o⊙tanh(c). cPrev may be 0 (zero initial state). h has row stride ldh.
export function lstmCell(B: i32, H: i32, gates: usize, cPrev: usize, c: usize, h: usize, ldh: i32): void {
  const H4 = 4 * H;
  for (let b = 0; b < B; b++) {
    const gr = gates + (<usize>(b * H4)) * 4;
    const cr = c + (<usize>(b * H)) * 4;
    const pr = cPrev + (<usize>(b * H)) * 4;
    const hr = h + (<usize>(b * ldh)) * 4;
    for (let j = 0; j < H; j++) {
      const o = <usize>j * 4;
      const hb = <usize>H * 4;
      const i = sigm(load<f32>(gr + o));
      const f = sigm(load<f32>(gr + hb + o));
      const g = Mathf.tanh(load<f32>(gr + 2 * hb + o));
      const og = sigm(load<f32>(gr + 3 * hb + o));
      store<f32>(gr + o, i);
      store<f32>(gr + hb + o, f);
      store<f32>(gr + 2 * hb + o, g);
      store<f32>(gr + 3 * hb + o, og);
      const cv = (cPrev ? f * load<f32>(pr + o) : 0) + i * g;
      store<f32>(cr + o, cv);
      store<f32>(hr + o, og * Mathf.tanh(cv));
    }
  }
}

// Backward through one step. In: gates (activations), c, cPrev (0 for the first step), dh
// (gradient w.r.t. h, row stride ldh), dc (gradient w.r.t. c carried from the next step).
// Out: dG[B×4H] (gradient w.r.t. the gate pre-activations); dc becomes the gradient w.r.t. cPrev.
export function lstmCellBackward(
  B: i32,
  H: i32,
  gates: usize,
  c: usize,
  cPrev: usize,
  dh: usize,
  ldh: i32,
  dc: usize,
  dG: usize,
): void {
  const H4 = 4 * H;
  for (let b = 0; b < B; b++) {
    const gr = gates + (<usize>(b * H4)) * 4;
    const dgr = dG + (<usize>(b * H4)) * 4;
    const cr = c + (<usize>(b * H)) * 4;
    const pr = cPrev + (<usize>(b * H)) * 4;
    const dcr = dc + (<usize>(b * H)) * 4;
    const dhr = dh + (<usize>(b * ldh)) * 4;
    const hb = <usize>H * 4;
    for (let j = 0; j < H; j++) {
      const o = <usize>j * 4;
      const i = load<f32>(gr + o);
      const f = load<f32>(gr + hb + o);
      const g = load<f32>(gr + 2 * hb + o);
      const og = load<f32>(gr + 3 * hb + o);
      const tc = Mathf.tanh(load<f32>(cr + o));
      const dhv = load<f32>(dhr + o);
      const dcv = load<f32>(dcr + o) + dhv * og * (1 - tc * tc);
      const cp: f32 = cPrev ? load<f32>(pr + o) : 0;
      store<f32>(dgr + o, dcv * g * i * (1 - i));
      store<f32>(dgr + hb + o, dcv * cp * f * (1 - f));
      store<f32>(dgr + 2 * hb + o, dcv * i * (1 - g * g));
      store<f32>(dgr + 3 * hb + o, dhv * tc * og * (1 - og));
      store<f32>(dcr + o, dcv * f);
    }
  }
}

// dst[i] += src[i] for n values.
export function addInPlace(n: i32, dst: usize, src: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

export function heapBase(): usize {
  return __heap_base;
}
