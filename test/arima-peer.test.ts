/**
 * ARIMA against a peer: statsmodels' AutoReg (conditional least squares, the same estimator) on
 * the same simulated series. Coefficients, noise variance, multi-step forecasts and their 95%
 * intervals must agree to rounding; the AIC order choice must pick the same lag; a seasonal
 * integrated model (d = 1, D = 1, s = 24) must forecast what AutoReg on the differenced series,
 * integrated back by hand in Python, forecasts. With MA terms: the Hannan–Rissanen estimates equal
 * statsmodels' `hannan_rissanen` (without its bias correction), and forecasts and intervals from
 * those parameters equal statsmodels' SARIMAX state-space model's. Needs /usr/bin/python3 with statsmodels (Debian's
 * python3-statsmodels); skipped without it, except under .ci/run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { fitArima, forecast } from '../src/series/arima.js';
import { tmp } from './helpers.js';

const PY = ['/usr/bin/python3', 'python3'].find(
  (p) => spawnSync(p, ['-c', 'import statsmodels'], { encoding: 'utf8' }).status === 0,
);
const MISSING = 'no python3 with statsmodels (apt-get install python3-statsmodels); skipped';

const SCRIPT = String.raw`
import json, sys
import numpy as np
from statsmodels.tsa.ar_model import AutoReg, ar_select_order
job = json.load(open(sys.argv[1]))
y = np.array(job["y"], dtype=float)
out = {}
if job["kind"] == "fit":
    r = AutoReg(y, lags=job["p"], trend="c", old_names=False).fit()
    pr = r.get_prediction(start=len(y), end=len(y) + job["h"] - 1)
    ci = pr.conf_int(alpha=0.05)
    out = {"params": r.params.tolist(), "sigma2": float(r.sigma2), "mean": pr.predicted_mean.tolist(),
           "lower": ci[:, 0].tolist(), "upper": ci[:, 1].tolist()}
elif job["kind"] == "select":
    sel = ar_select_order(y, maxlag=job["maxP"], ic="aic", trend="c", old_names=False)
    out = {"p": 0 if sel.ar_lags is None else len(sel.ar_lags)}
elif job["kind"] == "hr":
    from statsmodels.tsa.arima.estimators.hannan_rissanen import hannan_rissanen
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    p, q, h = job["p"], job["q"], job["h"]
    par, _ = hannan_rissanen(y, ar_order=p, ma_order=q, demean=True, unbiased=False)
    # Forecast with NADIR's own parameters through statsmodels' state-space model.
    mod = SARIMAX(y, order=(p, 0, q), trend="c")
    res = mod.filter(np.r_[job["c"], job["phi"], job["theta"], job["sigma2"]])
    fc = res.get_forecast(h)
    ci = fc.conf_int(alpha=0.05)
    out = {"ar": par.ar_params.tolist(), "ma": par.ma_params.tolist(), "sigma2": float(par.sigma2),
           "mean": fc.predicted_mean.tolist(), "lower": ci[:, 0].tolist(), "upper": ci[:, 1].tolist()}
else:
    s, h = job["s"], job["h"]
    x = y[s:] - y[:-s]          # (1 - B^s)
    x = x[1:] - x[:-1]          # (1 - B)
    r = AutoReg(x, lags=job["p"], trend="c", old_names=False).fit()
    fx = r.predict(start=len(x), end=len(x) + h - 1)
    hist = list(y)
    for k in range(h):           # y_t = x_t + y_{t-1} + y_{t-s} - y_{t-s-1}
        hist.append(fx[k] + hist[-1] + hist[-s] - hist[-s - 1])
    out = {"mean": hist[len(y):]}
print(json.dumps(out))
`;

function peer(job: Record<string, unknown>): Record<string, number[] | number> {
  const dir = tmp();
  const jobFile = join(dir, 'job.json');
  const script = join(dir, 'peer.py');
  writeFileSync(jobFile, JSON.stringify(job));
  writeFileSync(script, SCRIPT);
  const r = spawnSync(PY as string, [script, jobFile], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function simulate(phi: number[], n: number, seed: number, c: number): number[] {
  const r = new Rng(seed);
  const y: number[] = [];
  for (let t = 0; t < n + 100; t++) {
    let v = c + r.normal();
    phi.forEach((f, j) => {
      if (t - j - 1 >= 0) v += f * y[t - j - 1];
    });
    y.push(v);
  }
  return y.slice(100);
}

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-7 * (1 + Math.abs(b)), `${what}: ${a} vs statsmodels ${b}`);
}

describe('ARIMA vs statsmodels AutoReg', () => {
  const skip = (t: { skip: (m: string) => void }) => {
    if (PY) return false;
    if (process.env.NADIR_REQUIRE_SERVICES === '1') assert.fail(MISSING);
    t.skip(MISSING);
    return true;
  };

  it('AR(2): coefficients, σ², forecasts and 95% intervals agree', (t) => {
    if (skip(t)) return;
    const y = simulate([0.5, -0.3], 800, 1, 1);
    const m = fitArima(y, { p: 2 });
    const f = forecast(m, y, 6);
    const o = peer({ kind: 'fit', y, p: 2, h: 6 });
    const params = o.params as number[];
    close(m.intercept, params[0], 'intercept');
    close(m.phi[0], params[1], 'φ1');
    close(m.phi[1], params[2], 'φ2');
    close(m.sigma2, o.sigma2 as number, 'σ²');
    for (let k = 0; k < 6; k++) {
      close(f.mean[k], (o.mean as number[])[k], `mean ${k}`);
      close(f.lower[k], (o.lower as number[])[k], `lower ${k}`);
      close(f.upper[k], (o.upper as number[])[k], `upper ${k}`);
    }
  });

  it('AIC picks the same order as ar_select_order', (t) => {
    if (skip(t)) return;
    for (const [phi, seed] of [
      [[0.6, -0.2, 0.3], 2],
      [[0.8], 3],
      [[0.3, 0.2, 0, 0, -0.25], 4],
    ] as const) {
      const y = simulate([...phi], 1500, seed, 0.5);
      const ours = fitArima(y, { maxP: 8 }).order.p;
      const theirs = peer({ kind: 'select', y, maxP: 8 }).p as number;
      assert.equal(ours, theirs, `φ = ${phi}`);
    }
  });

  it('ARMA(p, q) by Hannan–Rissanen equals statsmodels; forecasts and intervals equal its state-space model', (t) => {
    if (skip(t)) return;
    for (const [p, q, seed] of [
      [1, 1, 6],
      [2, 1, 7],
      [1, 2, 8],
    ]) {
      // Simulate ARMA: y_t = 0.5 + Σ φ y + ε_t + Σ θ ε.
      const phi = [0.6, -0.2].slice(0, p);
      const th = [0.4, 0.25].slice(0, q);
      const r = new Rng(seed);
      const y: number[] = [];
      const e: number[] = [];
      for (let i = 0; i < 1300; i++) {
        const ei = r.normal();
        let v = 0.5 + ei;
        phi.forEach((f, j) => {
          if (i - j - 1 >= 0) v += f * y[i - j - 1];
        });
        th.forEach((f, j) => {
          if (i - j - 1 >= 0) v += f * e[i - j - 1];
        });
        y.push(v);
        e.push(ei);
      }
      const ys = y.slice(300);
      const m = fitArima(ys, { p, q });
      const f = forecast(m, ys, 8);
      const o = peer({
        kind: 'hr',
        y: ys,
        p,
        q,
        h: 8,
        c: m.intercept,
        phi: Array.from(m.phi),
        theta: Array.from(m.theta ?? []),
        sigma2: m.sigma2,
      });
      const ar = o.ar as number[];
      const ma = o.ma as number[];
      for (let k = 0; k < ar.length; k++) close(m.phi[k], ar[k], `ARMA(${p},${q}) φ${k + 1}`);
      for (let k = 0; k < ma.length; k++)
        close((m.theta as Float64Array)[k], ma[k], `ARMA(${p},${q}) θ${k + 1}`);
      close(m.sigma2, o.sigma2 as number, `ARMA(${p},${q}) σ²`);
      for (let k = 0; k < 8; k++) {
        close(f.mean[k], (o.mean as number[])[k], `ARMA(${p},${q}) mean ${k}`);
        close(f.lower[k], (o.lower as number[])[k], `ARMA(${p},${q}) lower ${k}`);
        close(f.upper[k], (o.upper as number[])[k], `ARMA(${p},${q}) upper ${k}`);
      }
    }
  });

  it('seasonal integrated ARIMA(2,1,0)(0,1,0)24 forecasts what the differenced AutoReg integrates to', (t) => {
    if (skip(t)) return;
    const r = new Rng(5);
    const y: number[] = [];
    let level = 100;
    for (let i = 0; i < 24 * 30; i++) {
      level += 0.05 + 0.3 * r.normal();
      y.push(level + 10 * Math.sin((2 * Math.PI * (i % 24)) / 24) + r.normal());
    }
    const m = fitArima(y, { p: 2, d: 1, D: 1, s: 24 });
    const f = forecast(m, y, 48);
    const o = peer({ kind: 'seasonal', y, p: 2, s: 24, h: 48 });
    for (let k = 0; k < 48; k++) close(f.mean[k], (o.mean as number[])[k], `mean ${k}`);
  });
});
