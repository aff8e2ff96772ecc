/**
 * Seasonal ARIMA on differenced series: ARIMA(p, d, q)(0, D, 0)ₛ. Without MA terms the AR part is
 * fitted by ordinary least squares with an intercept (conditional likelihood; statsmodels'
 * AutoReg gives the same numbers). With MA terms, by Hannan–Rissanen: a long autoregression by
 * Yule–Walker gives residuals, then least squares on lagged values and lagged residuals of the
 * demeaned series (statsmodels' `hannan_rissanen` without its bias-correction step gives the
 * same numbers). Orders are chosen by AIC on a common set of rows. Forecasts and prediction
 * intervals (ψ-weights of θ(B) / φ(B)(1 − B)^d(1 − Bˢ)^D), and streaming update (each new point
 * is scored against its one-step forecast, then joins the history; no refit).
 *
 * The first building block of the time-series detectors (issue #7); the npm `arima` package
 * crashes above ~5k points (DESIGN.md), this one is linear in the series length.
 */

export interface ArimaOrder {
  /** AR order; with `maxP` set, the best p ≤ maxP by AIC is chosen. */
  p: number;
  /** MA order (default 0); with `maxQ` set, chosen with p by AIC. */
  q?: number;
  d: number;
  /** Seasonal differencing order and period (D = 0: none). */
  D: number;
  s: number;
}

export interface ArimaModel {
  order: ArimaOrder;
  /** Intercept and AR coefficients φ₁…φₚ of the differenced series. */
  intercept: number;
  phi: Float64Array;
  /** MA coefficients θ₁…θ_q (empty without MA terms). */
  theta?: Float64Array;
  /** Residual variance σ² of the one-step forecasts on the differenced series. */
  sigma2: number;
  aic: number;
  /** Observations used in the fit (after differencing and lags). */
  n: number;
}

/** Applies (1 − B)^d (1 − Bˢ)^D to `y`. */
export function difference(y: ArrayLike<number>, d: number, D: number, s: number): Float64Array {
  let x = Float64Array.from(y);
  for (let k = 0; k < D; k++) {
    const z = new Float64Array(Math.max(0, x.length - s));
    for (let i = 0; i < z.length; i++) z[i] = x[i + s] - x[i];
    x = z;
  }
  for (let k = 0; k < d; k++) {
    const z = new Float64Array(Math.max(0, x.length - 1));
    for (let i = 0; i < z.length; i++) z[i] = x[i + 1] - x[i];
    x = z;
  }
  return x;
}

/** Solves the symmetric positive system A x = b (k × k, row-major) by Cholesky; null if singular. */
function solve(A: Float64Array, b: Float64Array, k: number): Float64Array | null {
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * k + j];
      for (let m = 0; m < j; m++) s -= L[i * k + m] * L[j * k + m];
      if (i === j) {
        if (!(s > 1e-12 * (1 + Math.abs(A[i * k + i])))) return null;
        L[i * k + i] = Math.sqrt(s);
      } else L[i * k + j] = s / L[j * k + j];
    }
  const z = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[i];
    for (let m = 0; m < i; m++) s -= L[i * k + m] * z[m];
    z[i] = s / L[i * k + i];
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = z[i];
    for (let m = i + 1; m < k; m++) s -= L[m * k + i] * x[m];
    x[i] = s / L[i * k + i];
  }
  return x;
}

/** OLS fit of an AR(p) with intercept on `x` (already differenced); null when it cannot be fitted. */
function fitAr(x: Float64Array, p: number, start: number): Omit<ArimaModel, 'order'> | null {
  const n = x.length - start;
  const k = p + 1;
  if (n <= k + 1) return null;
  const A = new Float64Array(k * k);
  const b = new Float64Array(k);
  const row = new Float64Array(k);
  for (let t = start; t < x.length; t++) {
    row[0] = 1;
    for (let j = 1; j <= p; j++) row[j] = x[t - j];
    for (let i = 0; i < k; i++) {
      b[i] += row[i] * x[t];
      for (let j = 0; j < k; j++) A[i * k + j] += row[i] * row[j];
    }
  }
  const beta = solve(A, b, k);
  if (!beta) return null;
  let sse = 0;
  for (let t = start; t < x.length; t++) {
    let f = beta[0];
    for (let j = 1; j <= p; j++) f += beta[j] * x[t - j];
    sse += (x[t] - f) ** 2;
  }
  const sigma2 = sse / n;
  return {
    intercept: beta[0],
    phi: beta.slice(1),
    sigma2,
    aic: n * Math.log(sigma2 > 0 ? sigma2 : Number.MIN_VALUE) + 2 * (k + 1),
    n,
  };
}

/**
 * Fits ARIMA(p, d, q)(0, D, 0)ₛ. With `maxP` (and `maxQ`), every order up to them is fitted on the
 * same rows (so AICs compare) and the lowest AIC wins. Throws with a clear message when the series
 * is too short or constant after differencing.
 */
export function fitArima(
  y: ArrayLike<number>,
  order: Partial<ArimaOrder> & { maxP?: number; maxQ?: number },
): ArimaModel {
  const d = order.d ?? 0;
  const D = order.D ?? 0;
  const s = order.s ?? 1;
  for (let i = 0; i < y.length; i++)
    if (!Number.isFinite(y[i]))
      throw new Error(`arima: value ${i} is ${y[i]}; fill or drop missing values first`);
  const x = difference(y, d, D, s);
  const maxP = order.maxP ?? order.p ?? 1;
  const ps = order.maxP !== undefined ? Array.from({ length: maxP + 1 }, (_, i) => i) : [order.p ?? 1];
  const maxQ = order.maxQ ?? order.q ?? 0;
  const qs = order.maxQ !== undefined ? Array.from({ length: maxQ + 1 }, (_, i) => i) : [order.q ?? 0];
  let best: ArimaModel | null = null;
  if (maxQ === 0) {
    for (const p of ps) {
      const m = fitAr(x, p, maxP);
      if (m && (!best || m.aic < best.aic)) best = { ...m, order: { p, q: 0, d, D, s } };
    }
  } else {
    const hr = hannanRissanenSetup(x, maxP, maxQ);
    if (hr)
      for (const p of ps)
        for (const q of qs) {
          const m = fitArmaHr(hr, p, q, maxQ);
          if (m && (!best || m.aic < best.aic)) best = { ...m, order: { p, q, d, D, s } };
        }
  }
  if (!best)
    throw new Error(
      `arima: ${y.length} points are too few for p ≤ ${maxP}, q ≤ ${maxQ}, d = ${d}, D = ${D}, s = ${s} (or the series is constant)`,
    );
  return best;
}

/** Least squares without intercept: β for rows × k design `X` (row-major) and target `t`. */
function ols(X: Float64Array, t: Float64Array, rows: number, k: number): Float64Array | null {
  const A = new Float64Array(k * k);
  const b = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    const o = r * k;
    for (let i = 0; i < k; i++) {
      b[i] += X[o + i] * t[r];
      for (let j = 0; j < k; j++) A[i * k + j] += X[o + i] * X[o + j];
    }
  }
  return k === 0 ? new Float64Array(0) : solve(A, b, k);
}

interface HrSetup {
  /** The demeaned differenced series, its mean, and the long-AR residuals (index t; NaN before `m`). */
  z: Float64Array;
  mean: number;
  resid: Float64Array;
  m: number;
}

/**
 * Hannan–Rissanen step 1: demean, fit a long AR(m) by Yule–Walker (autocovariances over n, as
 * statsmodels' `method='mle'`), m = max(⌊ln(n)²⌋, 2·max(p, q)), and keep its residuals.
 */
function hannanRissanenSetup(x: Float64Array, maxP: number, maxQ: number): HrSetup | null {
  const n = x.length;
  if (n < 10) return null;
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  const z = x.map((v) => v - mean);
  const m = Math.max(Math.floor(Math.log(n) ** 2), 2 * Math.max(maxP, maxQ));
  if (n <= m + maxQ + maxP + 2) return null;
  const r = new Float64Array(m + 1);
  for (let k = 0; k <= m; k++) {
    let acc = 0;
    for (let t = k; t < n; t++) acc += z[t] * z[t - k];
    r[k] = acc / n;
  }
  if (!(r[0] > 0)) return null;
  // Levinson–Durbin.
  let phi = new Float64Array(0);
  let v = r[0];
  for (let k = 1; k <= m; k++) {
    let acc = r[k];
    for (let j = 1; j < k; j++) acc -= phi[j - 1] * r[k - j];
    const kappa = acc / v;
    const next = new Float64Array(k);
    for (let j = 1; j < k; j++) next[j - 1] = phi[j - 1] - kappa * phi[k - j - 1];
    next[k - 1] = kappa;
    phi = next;
    v *= 1 - kappa * kappa;
    if (!(v > 0)) return null;
  }
  const resid = new Float64Array(n).fill(Number.NaN);
  for (let t = m; t < n; t++) {
    let f = 0;
    for (let j = 1; j <= m; j++) f += phi[j - 1] * z[t - j];
    resid[t] = z[t] - f;
  }
  return { z, mean, resid, m };
}

/**
 * Whether 1 + θ₁B + … + θ_qB^q is invertible (its roots outside the unit circle): the weights of
 * its inverse, π_k = −Σ θⱼ π_{k−j}, die out.
 */
export function invertible(theta: ArrayLike<number>): boolean {
  const q = theta.length;
  if (q === 0) return true;
  const K = 600;
  const pi = new Float64Array(K);
  pi[0] = 1;
  let tail = 0;
  for (let k = 1; k < K; k++) {
    let v = 0;
    for (let j = 1; j <= q && j <= k; j++) v -= theta[j - 1] * pi[k - j];
    pi[k] = v;
    if (!Number.isFinite(v)) return false;
    if (k >= K - 100) tail = Math.max(tail, Math.abs(v));
  }
  return tail < 1e-3;
}

/** Hannan–Rissanen step 2 for one (p, q), on rows t ≥ m + maxQ (the same for every order). */
function fitArmaHr(h: HrSetup, p: number, q: number, maxQ: number): Omit<ArimaModel, 'order'> | null {
  const start = h.m + maxQ;
  const rows = h.z.length - start;
  const k = p + q;
  if (rows <= k + 1) return null;
  const X = new Float64Array(rows * k);
  const t = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const i = start + r;
    t[r] = h.z[i];
    for (let j = 1; j <= p; j++) X[r * k + j - 1] = h.z[i - j];
    for (let j = 1; j <= q; j++) X[r * k + p + j - 1] = h.resid[i - j];
  }
  const beta = ols(X, t, rows, k);
  if (!beta) return null;
  let sse = 0;
  for (let r = 0; r < rows; r++) {
    let f = 0;
    for (let j = 0; j < k; j++) f += X[r * k + j] * beta[j];
    sse += (t[r] - f) ** 2;
  }
  const phi = beta.slice(0, p);
  const theta = beta.slice(p);
  // A non-invertible MA part makes the innovations of the streaming recursion grow without
  // bound: such an order is not a candidate.
  if (!invertible(theta)) return null;
  let sumPhi = 0;
  for (const f of phi) sumPhi += f;
  return {
    // The demeaned model as an intercept: x − μ = Σφ(x − μ) + … ⇒ c = μ(1 − Σφ).
    intercept: h.mean * (1 - sumPhi),
    phi,
    theta,
    // As statsmodels' OLS scale: the residual sum of squares over the residual degrees of freedom.
    sigma2: sse / Math.max(1, rows - k),
    aic: rows * Math.log(sse / rows > 0 ? sse / rows : Number.MIN_VALUE) + 2 * (k + 1),
    n: rows,
  };
}

/**
 * The model as one AR polynomial in the original series, φ(B)(1 − B)^d (1 − Bˢ)^D, with
 * coefficients a₀ = 1, a₁, … such that Σ aⱼ y_{t−j} = c + ε_t: the one-step forecast is
 * c − Σ_{j≥1} aⱼ y_{t−j}.
 */
export function arPolynomial(m: ArimaModel): Float64Array {
  const { d, D, s } = m.order;
  let poly = [1, ...Array.from(m.phi, (v) => -v)];
  const mul = (a: number[], b: number[]) => {
    const out = new Array(a.length + b.length - 1).fill(0);
    a.forEach((x, i) => {
      b.forEach((w, j) => {
        out[i + j] += x * w;
      });
    });
    return out;
  };
  for (let k = 0; k < d; k++) poly = mul(poly, [1, -1]);
  for (let k = 0; k < D; k++) poly = mul(poly, [1, ...new Array(s - 1).fill(0), -1]);
  return Float64Array.from(poly);
}

/**
 * Forecasts `h` steps after `y` (the history, in original units) with the model; each step has a
 * (1 − α) prediction interval from the ψ-weights of the integrated AR polynomial.
 */
export function forecast(
  m: ArimaModel,
  y: ArrayLike<number>,
  h: number,
  z = 1.959963984540054,
): { mean: Float64Array; lower: Float64Array; upper: Float64Array } {
  const poly = Array.from(arPolynomial(m));
  const theta = m.theta ?? new Float64Array(0);
  const L = poly.length - 1;
  const hist = Array.from(y);
  // One-step innovations over the history (conditional: 0 until the polynomial has its history).
  const eps: number[] = new Array(hist.length).fill(0);
  const oneStep = (i: number) => {
    let f = m.intercept;
    for (let j = 1; j <= L; j++) f -= poly[j] * hist[i - j];
    for (let j = 1; j <= theta.length; j++) f += theta[j - 1] * (eps[i - j] ?? 0);
    return f;
  };
  if (theta.length) for (let i = L; i < hist.length; i++) eps[i] = hist[i] - oneStep(i);
  const mean = new Float64Array(h);
  for (let t = 0; t < h; t++) {
    const f = oneStep(hist.length);
    mean[t] = f;
    hist.push(f);
    eps.push(0);
  }
  // ψ-weights of θ(B) / a(B): ψ₀ = 1, ψ_k = θ_k − Σ aⱼ ψ_{k−j}.
  const psi = new Float64Array(h);
  psi[0] = 1;
  for (let k = 1; k < h; k++) {
    let v = k <= theta.length ? theta[k - 1] : 0;
    for (let j = 1; j < poly.length && j <= k; j++) v -= poly[j] * psi[k - j];
    psi[k] = v;
  }
  const lower = new Float64Array(h);
  const upper = new Float64Array(h);
  let acc = 0;
  for (let t = 0; t < h; t++) {
    acc += psi[t] ** 2;
    const half = z * Math.sqrt(m.sigma2 * acc);
    lower[t] = mean[t] - half;
    upper[t] = mean[t] + half;
  }
  return { mean, lower, upper };
}
