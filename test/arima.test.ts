/**
 * Seasonal AR models on differenced series, against known truths: AR coefficients recovered from
 * simulated data, order chosen by AIC, a pure seasonal series forecast exactly, random-walk
 * interval growth ∝ √h, one-step 95% intervals covering ~95% of simulated points, clear errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { difference, fitArima, forecast } from '../src/series/arima.js';

function ar(phi: number[], n: number, seed: number, c = 0): Float64Array {
  const r = new Rng(seed);
  const y = new Float64Array(n + 200);
  for (let t = 0; t < y.length; t++) {
    let v = c + r.normal();
    phi.forEach((f, j) => {
      if (t - j - 1 >= 0) v += f * y[t - j - 1];
    });
    y[t] = v;
  }
  return y.slice(200);
}

describe('ARIMA(p, d, 0)(0, D, 0)s', () => {
  it('recovers an AR(1) coefficient and the noise variance', () => {
    const m = fitArima(ar([0.7], 5000, 1), { p: 1 });
    assert.ok(Math.abs(m.phi[0] - 0.7) < 0.03, `φ = ${m.phi[0]}`);
    assert.ok(Math.abs(m.sigma2 - 1) < 0.08, `σ² = ${m.sigma2}`);
    assert.ok(Math.abs(m.intercept) < 0.06);
  });

  it('chooses the AR order by AIC and recovers AR(2) coefficients', () => {
    const m = fitArima(ar([0.5, -0.3], 6000, 2), { maxP: 6 });
    assert.ok(m.order.p >= 2 && m.order.p <= 3, `p = ${m.order.p}`);
    assert.ok(Math.abs(m.phi[0] - 0.5) < 0.04 && Math.abs(m.phi[1] + 0.3) < 0.04, `φ = ${Array.from(m.phi)}`);
  });

  it('forecasts a pure seasonal series exactly (D = 1, s = 24)', () => {
    const y = Array.from(
      { length: 24 * 10 },
      (_, t) => 10 + 5 * Math.sin((2 * Math.PI * t) / 24) + (t % 24 === 7 ? 3 : 0),
    );
    const m = fitArima(y, { p: 0, D: 1, s: 24 });
    const f = forecast(m, y, 48);
    for (let h = 0; h < 48; h++)
      assert.ok(Math.abs(f.mean[h] - y[y.length - 24 + (h % 24)]) < 1e-9, `step ${h}`);
  });

  it('random walk: flat forecast, interval width grows with √h', () => {
    const r = new Rng(4);
    const y: number[] = [0];
    for (let t = 1; t < 3000; t++) y.push(y[t - 1] + r.normal());
    const m = fitArima(y, { p: 0, d: 1 });
    const f = forecast(m, y, 16);
    assert.ok(Math.abs(f.mean[15] - y[y.length - 1]) < 16 * 0.1);
    const w = (h: number) => f.upper[h] - f.lower[h];
    assert.ok(Math.abs(w(3) / w(0) - 2) < 1e-9 && Math.abs(w(15) / w(0) - 4) < 1e-9);
  });

  it('one-step 95% intervals cover about 95% of new AR(1) points', () => {
    const y = ar([0.6], 4000, 5, 2);
    const m = fitArima(y.subarray(0, 2000), { p: 1 });
    let inside = 0;
    for (let t = 2000; t < 4000; t++) {
      const f = forecast(m, y.subarray(0, t), 1);
      if (y[t] >= f.lower[0] && y[t] <= f.upper[0]) inside++;
    }
    const share = inside / 2000;
    assert.ok(share > 0.93 && share < 0.97, `coverage ${share}`);
  });

  it('differencing composes; bad input gets a clear message', () => {
    assert.deepEqual(Array.from(difference([1, 3, 6, 10, 15], 2, 0, 1)), [1, 1, 1]);
    assert.deepEqual(Array.from(difference([1, 2, 3, 5, 6, 7], 0, 1, 3)), [4, 4, 4]);
    assert.throws(() => fitArima([1, 2, Number.NaN, 4], { p: 1 }), /value 2 is NaN/);
    assert.throws(() => fitArima([1, 2, 3], { p: 2, d: 1 }), /too few/);
  });
});
