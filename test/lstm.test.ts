/**
 * The LSTM layer against a float64 re-implementation: forward values, and every gradient
 * (weights, biases, inputs; loss on the last step and on all steps) against central finite
 * differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { Engine } from '../src/nn/engine.js';
import { DEFAULT_FIT } from '../src/nn/fit.js';
import { Lstm, SequenceRegressor } from '../src/nn/lstm.js';
import { OnnxScorer, onnxRuntime, ortUnavailable } from '../src/nn/onnx.js';
import { lstm64, randn, relErr } from './nn-reference.js';

describe('LSTM layer', () => {
  for (const mode of ['last step', 'every step'] as const)
    it(`forward matches float64; BPTT gradients match finite differences (loss on ${mode})`, () => {
      const [B, T, F, H] = [3, 5, 4, 6];
      const e = new Engine();
      const layer = new Lstm(e, F, H, T, B);
      const rng = new Rng(12);
      layer.init(rng);
      const x = e.tensor(B, T * F);
      x.data.set(randn(rng, B * T * F));
      const targets = randn(rng, T * B * H, 0.5);
      layer.forward(x, B);
      const w = layer.params().map((q) => Float64Array.from(q.p.data));
      const x64 = Float64Array.from(x.data);
      const ref = lstm64(x64, B, T, F, H, w[0], w[1], w[2]);
      assert.ok(relErr(layer.h.data.subarray(0, T * B * H), ref) < 1e-5, 'forward');

      // Loss: ½·Σ (h − target)² over the last step or over all steps.
      const steps = mode === 'last step' ? [T - 1] : Array.from({ length: T }, (_, t) => t);
      const loss64 = () => {
        const hs = lstm64(x64, B, T, F, H, w[0], w[1], w[2]);
        let s = 0;
        for (const t of steps)
          for (let i = 0; i < B * H; i++) s += 0.5 * (hs[t * B * H + i] - targets[t * B * H + i]) ** 2;
        return s;
      };
      const hv = layer.h.data;
      const dx = e.tensor(B, T * F);
      if (mode === 'last step') {
        const d = layer.dhLast.data;
        for (let i = 0; i < B * H; i++) d[i] = hv[(T - 1) * B * H + i] - targets[(T - 1) * B * H + i];
        layer.backward(x, B, null, dx);
      } else {
        const dAll = e.tensor(T * B, H);
        for (let i = 0; i < T * B * H; i++) dAll.data[i] = hv[i] - targets[i];
        layer.backward(x, B, dAll, dx);
      }
      const h = 1e-6;
      const fd = (arr: Float64Array, i: number) => {
        const v = arr[i];
        arr[i] = v + h;
        const up = loss64();
        arr[i] = v - h;
        const down = loss64();
        arr[i] = v;
        return (up - down) / (2 * h);
      };
      layer.params().forEach((q, pi) => {
        const num = Array.from({ length: q.p.size }, (_, i) => fd(w[pi], i));
        const err = relErr(q.g.data, num);
        assert.ok(err < 1e-3, `${q.name}: relative error ${err}`);
      });
      const numX = Array.from({ length: B * T * F }, (_, i) => fd(x64, i));
      const errX = relErr(dx.data, numX);
      assert.ok(errX < 1e-3, `input: relative error ${errX}`);
    });

  it('a sequence regressor learns to forecast the next step of noisy sine waves', () => {
    const T = 16;
    const n = 1500;
    const rng = new Rng(4);
    const x = new Float32Array(n * T * 2);
    const y = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      const phase = rng.next() * 2 * Math.PI;
      const freq = 0.2 + 0.3 * rng.next();
      for (let t = 0; t <= T; t++) {
        const a = Math.sin(phase + freq * t);
        const b = Math.cos(phase + freq * t);
        if (t < T) {
          x[(i * T + t) * 2] = a + 0.01 * rng.normal();
          x[(i * T + t) * 2 + 1] = b + 0.01 * rng.normal();
        } else {
          y[i * 2] = a;
          y[i * 2 + 1] = b;
        }
      }
    }
    const m = new SequenceRegressor(T, 2, 16, 2, 64);
    m.init(1);
    const r = m.fit(x, y, n, { ...DEFAULT_FIT, epochs: 30, batchSize: 64, lr: 5e-3 });
    // The targets have variance 0.5; a forecaster that learned the dynamics is far below it.
    assert.ok(r.bestValLoss < 0.01, `validation MSE ${r.bestValLoss}`);
  });

  it("ONNX Runtime runs the exported LSTM (gates reordered to ONNX) with the core's predictions", async (t) => {
    if (!onnxRuntime()) return t.skip(`ONNX Runtime unavailable: ${ortUnavailable()}`);
    const [T, F, H, O, n] = [7, 3, 10, 2, 50];
    const m = new SequenceRegressor(T, F, H, O, n);
    const rng = new Rng(21);
    m.init(2);
    // Non-zero biases in every gate, so a wrong gate order cannot go unnoticed.
    m.lstm.b.data.set(randn(rng, 4 * H, 0.5));
    const x = randn(rng, n * T * F);
    m.input.data.set(x);
    const core = Float32Array.from(m.forward(n).data.subarray(0, n * O));
    const s = await OnnxScorer.create(m.onnx(), T * F);
    const viaOrt = await s!.run(x, n, 'sequences', 'prediction');
    assert.equal(viaOrt.length, n * O);
    for (let i = 0; i < n * O; i++)
      assert.ok(
        Math.abs(viaOrt[i] - core[i]) <= 1e-5 * Math.abs(core[i]) + 1e-6,
        `${i}: ${viaOrt[i]} vs ${core[i]}`,
      );
  });
});
