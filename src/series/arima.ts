/**
 * Seasonal autoregressive models on differenced series: ARIMA(p, d, 0)(0, D, 0)ₛ, fitted by
 * ordinary least squares on the differenced series (conditional likelihood), with the order p
 * chosen by AIC, one-step and multi-step forecasts with prediction intervals, and streaming
 * update (each new point is scored against its one-step forecast, then joins the history; no
 * refit). Moving-average terms are not estimated here (a long AR approximates them).
 *
 * The first building block of the time-series detectors (issue #7); the npm `arima` package
 * crashes above ~5k points (DESIGN.md), this one is linear in the series length.
 */

export interface ArimaOrder {
  /** AR order; with `maxP` set, the best p ≤ maxP by AIC is chosen. */
  p: number;
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
 * Fits ARIMA(p, d, 0)(0, D, 0)ₛ. With `maxP`, every p from 0 to maxP is fitted on the same rows
 * (so AICs compare) and the lowest AIC wins. Throws with a clear message when the series is too
 * short or constant after differencing.
 */
export function fitArima(y: ArrayLike<number>, order: Partial<ArimaOrder> & { maxP?: number }): ArimaModel {
  const d = order.d ?? 0;
  const D = order.D ?? 0;
  const s = order.s ?? 1;
  for (let i = 0; i < y.length; i++)
    if (!Number.isFinite(y[i]))
      throw new Error(`arima: value ${i} is ${y[i]}; fill or drop missing values first`);
  const x = difference(y, d, D, s);
  const maxP = order.maxP ?? order.p ?? 1;
  const ps = order.maxP !== undefined ? Array.from({ length: maxP + 1 }, (_, i) => i) : [order.p ?? 1];
  let best: ArimaModel | null = null;
  for (const p of ps) {
    const m = fitAr(x, p, maxP);
    if (m && (!best || m.aic < best.aic)) best = { ...m, order: { p, d, D, s } };
  }
  if (!best)
    throw new Error(
      `arima: ${y.length} points are too few for p ≤ ${maxP}, d = ${d}, D = ${D}, s = ${s} (or the series is constant)`,
    );
  return best;
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
  const hist = Array.from(y);
  const mean = new Float64Array(h);
  for (let t = 0; t < h; t++) {
    let f = m.intercept;
    for (let j = 1; j < poly.length; j++) f -= poly[j] * hist[hist.length - j];
    mean[t] = f;
    hist.push(f);
  }
  // ψ-weights of 1 / a(B): ψ₀ = 1, ψ_k = −Σ aⱼ ψ_{k−j}.
  const psi = new Float64Array(h);
  psi[0] = 1;
  for (let k = 1; k < h; k++) {
    let v = 0;
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
