/**
 * The hybrid autoencoder: gradients (embeddings, softmax heads, weighted losses) against float64
 * finite differences; behaviour on planted categorical anomalies; ONNX Runtime parity.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import {
  HybridAutoencoder,
  type HybridLayout,
  HybridNet,
  specsFor,
} from '../src/detect/autoencoder/hybrid.js';
import { FeaturePipeline, type Rows } from '../src/features/pipeline.js';
import { onnxRuntime, ortUnavailable } from '../src/nn/onnx.js';
import { forward64, randn, relErr } from './nn-reference.js';

describe('hybrid autoencoder', () => {
  it('gradients of MSE + per-column cross-entropy through embeddings match float64 finite differences', () => {
    const L: HybridLayout = {
      width: 5,
      contCols: [0, 2, 4],
      catCols: [1, 3],
      catK: [4, 3],
      embDims: [2, 3],
      catNames: ['proto', 'service'],
    };
    const specs = specsFor(L, { layers: [6, 3], activation: 'tanh' });
    const m = 7;
    const h = new HybridNet(L, specs, m);
    h.init(3);
    const rng = new Rng(8);
    for (const l of h.net.layers) l.b.data.set(randn(rng, l.outDim, 0.2));
    // Rows in [continuous | categories] order; category 9 is out of range and must act as 0.
    const W = 5;
    const rows = new Float32Array(m * W);
    for (let i = 0; i < m; i++) {
      rows[i * W] = rng.normal();
      rows[i * W + 1] = rng.normal();
      rows[i * W + 2] = rng.normal();
      rows[i * W + 3] = i === 6 ? 9 : i % 4;
      rows[i * W + 4] = i % 3;
    }
    h.batch.data.set(rows);
    const w = { cont: 0.7, cat: 1.3 };
    h.forward(m, 0, 0);
    const loss = h.loss(m, w, true);

    const params = h.params();
    const p64 = params.map((q) => Float64Array.from(q.p.data));
    const nLayers = specs.length;
    const loss64 = (): number => {
      const inW = 3 + 2 + 3;
      const x = new Float64Array(m * inW);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < 3; j++) x[i * inW + j] = rows[i * W + j];
        const c0 = rows[i * W + 3] >= 4 ? 0 : rows[i * W + 3];
        const c1 = rows[i * W + 4];
        for (let j = 0; j < 2; j++) x[i * inW + 3 + j] = p64[2 * nLayers][c0 * 2 + j];
        for (let j = 0; j < 3; j++) x[i * inW + 5 + j] = p64[2 * nLayers + 1][c1 * 3 + j];
      }
      const z = forward64(x, m, inW, specs, p64.slice(0, 2 * nLayers));
      const outW = 3 + 4 + 3;
      let mse = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < 3; j++) mse += (z[i * outW + j] - rows[i * W + j]) ** 2;
      let ce = 0;
      [
        [3, 4, 3],
        [7, 3, 4],
      ].forEach(([off, K, col]) => {
        for (let i = 0; i < m; i++) {
          const v = rows[i * W + col];
          const c = v >= K ? 0 : v;
          const zs = Array.from({ length: K }, (_, j) => z[i * outW + off + j]);
          const mx = Math.max(...zs);
          ce += (mx + Math.log(zs.reduce((a, q) => a + Math.exp(q - mx), 0)) - zs[c]) / m;
        }
      });
      return (w.cont * mse) / (m * 3) + (w.cat / 2) * ce;
    };
    assert.ok(Math.abs(loss - loss64()) < 1e-5 * Math.abs(loss), `${loss} vs ${loss64()}`);
    const hstep = 1e-5;
    params.forEach((q, pi) => {
      const num = Array.from({ length: q.p.size }, (_, i) => {
        const v = p64[pi][i];
        p64[pi][i] = v + hstep;
        const up = loss64();
        p64[pi][i] = v - hstep;
        const down = loss64();
        p64[pi][i] = v;
        return (up - down) / (2 * hstep);
      });
      const err = relErr(q.g.data, num);
      assert.ok(err < 1e-3, `${q.name}: relative error ${err}`);
    });
  });

  /** Flows where the protocol follows from the size: small → udp, large → tcp. */
  function flows(n: number, seed: number): Rows {
    const rng = new Rng(seed);
    const numeric = new Float64Array(n * 2);
    const proto: string[] = [];
    for (let i = 0; i < n; i++) {
      const big = rng.next() < 0.5;
      numeric[i * 2] = big ? 1000 + 100 * rng.normal() : 60 + 5 * rng.normal();
      numeric[i * 2 + 1] = rng.normal();
      proto.push(big ? 'tcp' : 'udp');
    }
    return {
      plan: { numericNames: ['bytes', 'noise'], stringNames: ['proto'], key: 't' },
      n,
      numeric,
      strings: [proto],
    };
  }

  it('flags a protocol that does not fit the flow, and an unseen protocol, naming the column', async () => {
    const train = flows(3000, 1);
    const pipe = FeaturePipeline.fit(train, { encoding: 'index' });
    const det = new HybridAutoencoder({ layers: [16, 4], epochs: 40, seed: 2 });
    det.configure(pipe.schema);
    det.fit({ data: pipe.transform(train), rows: train.n, cols: pipe.width });

    const test = flows(200, 3);
    // Row 0: large flow labelled udp (wrong for its size); row 1: a protocol never seen.
    test.numeric[0] = 1000;
    test.strings[0][0] = 'udp';
    test.strings[0][1] = 'sctp';
    const x = { data: pipe.transform(test), rows: test.n, cols: pipe.width };
    const s = det.score(x);
    const normal = Array.from(s.subarray(2)).sort((a, b) => a - b);
    const p99 = normal[Math.floor(normal.length * 0.99)];
    assert.ok(s[0] > p99 && s[1] > p99, `scores ${s[0]}, ${s[1]} vs p99 of normal rows ${p99}`);
    const protoCol = pipe.schema.outputs.indexOf('proto');
    const noiseCol = pipe.schema.outputs.indexOf('noise');
    for (const r of [0, 1]) {
      const e = det.explain(x, r);
      // The explanation adds up to the score.
      assert.ok(Math.abs(e.reduce((a, v) => a + v, 0) - s[r]) < 1e-4 * s[r]);
      // Row 0's protocol and size contradict each other: either may carry the blame, the noise
      // column must not. Row 1's protocol was never seen: it carries the blame.
      const top = e.indexOf(Math.max(...e));
      if (r === 0) assert.ok(top !== noiseCol, `row 0: ${e}`);
      else assert.equal(top, protoCol, `row 1: ${e}`);
    }

    if (!onnxRuntime()) return assert.ok(process.env.NADIR_NO_ONNXRUNTIME, ortUnavailable());
    const big = flows(1000, 4);
    big.strings[0][5] = 'sctp';
    const bx = { data: pipe.transform(big), rows: big.n, cols: pipe.width };
    const core = det.score(bx);
    const viaOrt = await det.scoreAsync(bx);
    // 1e-5 relative, plus a floor of a few float32 ulps of 1: ONNX Runtime's LogSoftmax takes
    // log(Σ exp) in float32, so a confident prediction's cross-entropy (≈1e-3) carries an absolute
    // rounding error of ~1e-7 there (the core computes it as log1p in double precision).
    for (let i = 0; i < core.length; i++)
      assert.ok(
        Math.abs(viaOrt[i] - core[i]) <= 1e-5 * core[i] + 5e-7,
        `row ${i}: ${viaOrt[i]} vs ${core[i]}`,
      );
  });
});
