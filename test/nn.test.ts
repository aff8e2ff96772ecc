/**
 * The numeric core against independent truth: products against a float64 triple loop; every
 * layer's and loss's gradient against central finite differences of a float64 re-implementation
 * of the forward pass (written here, not shared with src/nn); Adam against its published update.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { type ActName, Engine } from '../src/nn/engine.js';
import { DEFAULT_FIT, fitAutoencoder, TrainingError } from '../src/nn/fit.js';
import { Adam, type LayerSpec, Mlp } from '../src/nn/mlp.js';
import { forward64, mse64, randn, relErr } from './nn-reference.js';

describe('numeric core: kernels', () => {
  it('gemm matches a float64 triple loop for odd sizes, transposed A and accumulation', () => {
    const e = new Engine();
    const k = e.kernels;
    const rng = new Rng(3);
    for (const [M, N, K] of [
      [1, 1, 1],
      [7, 13, 9],
      [4, 8, 3],
      [9, 78, 64],
      [33, 5, 17],
    ]) {
      const A = e.tensor(M, K);
      const At = e.tensor(K, M);
      const B = e.tensor(K, N);
      const C = e.tensor(M, N);
      A.data.set(randn(rng, M * K));
      B.data.set(randn(rng, K * N));
      for (let i = 0; i < M; i++) for (let j = 0; j < K; j++) At.data[j * M + i] = A.data[i * K + j];
      const ref = new Float64Array(M * N);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++)
          for (let q = 0; q < K; q++) ref[i * N + j] += A.data[i * K + q] * B.data[q * N + j];
      k.gemm(M, N, K, A.ptr, K, 1, B.ptr, N, C.ptr, N, 0);
      assert.ok(relErr(C.data, ref) < 1e-6, `gemm ${M}×${N}×${K}`);
      // Aᵀ passed with swapped strides gives the same product; accumulating doubles it.
      k.gemm(M, N, K, At.ptr, 1, M, B.ptr, N, C.ptr, N, 1);
      assert.ok(
        relErr(
          C.data,
          ref.map((v) => 2 * v),
        ) < 1e-6,
        `gemm Aᵀ accumulate ${M}×${N}×${K}`,
      );
    }
  });
});

describe('numeric core: gradients against float64 finite differences', () => {
  const cases: { name: string; specs: LayerSpec[] }[] = [
    {
      name: 'tanh → sigmoid → linear',
      specs: [
        { units: 6, act: 'tanh' },
        { units: 5, act: 'sigmoid' },
        { units: 3, act: 'none' },
      ],
    },
    {
      name: 'residual tanh and leaky blocks, with dropout',
      specs: [
        { units: 6, act: 'tanh' },
        { units: 6, act: 'tanh', residual: true, dropout: 0.3 },
        { units: 6, act: 'leaky', residual: true },
        { units: 3, act: 'sigmoid', dropout: 0.5 },
        { units: 4, act: 'none' },
      ],
    },
    {
      name: 'relu → leaky → linear (autoencoder shape)',
      specs: [
        { units: 9, act: 'relu' },
        { units: 4, act: 'leaky' },
        { units: 7, act: 'none' },
      ],
    },
  ];
  for (const c of cases)
    it(`dense layers (${c.name}) and MSE: weights, biases and the input`, () => {
      const inDim = 7;
      const m = 5;
      const rng = new Rng(11);
      const net = new Mlp(inDim, c.specs, m, { inputGradient: true });
      net.init(5);
      // Non-zero biases so ReLU units are not all on one side.
      for (const l of net.layers) l.b.data.set(randn(rng, l.outDim, 0.3));
      const x = randn(rng, m * inDim);
      const t = randn(rng, m * net.outDim);
      net.input.data.set(x);
      net.forward(m, net.input, true);
      const target = net.engine.tensor(m, net.outDim);
      target.data.set(t);
      net.engine.kernels.mse(m, net.outDim, net.output.ptr, target.ptr, net.dOutput.ptr);
      net.backward(m);

      const params = net.params();
      const w64 = params.map((q) => Float64Array.from(q.p.data));
      const x64 = Float64Array.from(x);
      const t64 = Float64Array.from(t);
      // The same dropout masks as the training pass (none for layers without dropout).
      const masks = net.layers.map((l) => (l.mask ? l.mask.data.slice(0, m * l.outDim) : null));
      const loss = () => mse64(forward64(x64, m, inDim, c.specs, w64, masks), t64);
      const h = 1e-5;
      const fd = (arr: Float64Array, i: number): number => {
        const v = arr[i];
        arr[i] = v + h;
        const up = loss();
        arr[i] = v - h;
        const down = loss();
        arr[i] = v;
        return (up - down) / (2 * h);
      };
      params.forEach((q, pi) => {
        const num = Array.from({ length: q.p.size }, (_, i) => fd(w64[pi], i));
        const err = relErr(q.g.data, num);
        assert.ok(err < 1e-3, `${q.name}: relative error ${err}`);
      });
      const numX = Array.from({ length: m * inDim }, (_, i) => fd(x64, i));
      const errX = relErr(net.dInput!.data.subarray(0, m * inDim), numX);
      assert.ok(errX < 1e-3, `input: relative error ${errX}`);
    });

  it('softmax cross-entropy and binary cross-entropy on logits', () => {
    const e = new Engine();
    const k = e.kernels;
    const rng = new Rng(2);
    const M = 6;
    const N = 5;
    const z = e.tensor(M, N);
    const zv = randn(rng, M * N, 2);
    z.data.set(zv);
    const targets = e.int32(M);
    const tv = Int32Array.from({ length: M }, (_, i) => (i * 3) % N);
    targets.data().set(tv);
    const p = e.tensor(M, N);
    const g = e.tensor(M, N);
    const loss = k.softmaxCe(M, N, z.ptr, targets.ptr, p.ptr, g.ptr);
    const ce64 = (zz: Float64Array): number => {
      let s = 0;
      for (let i = 0; i < M; i++) {
        const row = zz.subarray(i * N, i * N + N);
        const mx = Math.max(...row);
        const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
        s += lse - row[tv[i]];
      }
      return s / M;
    };
    const z64 = Float64Array.from(zv);
    assert.ok(Math.abs(loss - ce64(z64)) < 1e-5);
    const h = 1e-5;
    const num = Array.from({ length: M * N }, (_, i) => {
      const v = z64[i];
      z64[i] = v + h;
      const up = ce64(z64);
      z64[i] = v - h;
      const down = ce64(z64);
      z64[i] = v;
      return (up - down) / (2 * h);
    });
    assert.ok(relErr(g.data, num) < 1e-3, `softmax CE: ${relErr(g.data, num)}`);

    const n = 9;
    const bz = e.tensor(n, 1);
    const bt = e.tensor(n, 1);
    const bp = e.tensor(n, 1);
    const bg = e.tensor(n, 1);
    const bzv = randn(rng, n, 3);
    bz.data.set(bzv);
    bt.data.set(Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : 0.25)));
    const bl = k.bceLogits(n, bz.ptr, bt.ptr, bp.ptr, bg.ptr);
    const bce64 = (zz: Float64Array): number => {
      let s = 0;
      for (let i = 0; i < n; i++) {
        const q = 1 / (1 + Math.exp(-zz[i]));
        const y = bt.data[i];
        s -= y * Math.log(q) + (1 - y) * Math.log(1 - q);
      }
      return s / n;
    };
    const bz64 = Float64Array.from(bzv);
    assert.ok(Math.abs(bl - bce64(bz64)) < 1e-5);
    const bnum = Array.from({ length: n }, (_, i) => {
      const v = bz64[i];
      bz64[i] = v + h;
      const up = bce64(bz64);
      bz64[i] = v - h;
      const down = bce64(bz64);
      bz64[i] = v;
      return (up - down) / (2 * h);
    });
    assert.ok(relErr(bg.data, bnum) < 1e-3, `BCE: ${relErr(bg.data, bnum)}`);
  });
});

describe('numeric core: optimiser and training', () => {
  it('dropout drops about p of the values in training, scales the rest by 1/(1 − p), and is off in inference', () => {
    const e = new Engine();
    const net = new Mlp(50, [{ units: 400, act: 'none', dropout: 0.25 }], 64, { engine: e });
    net.init(1);
    net.input.data.set(randn(new Rng(1), 64 * 50));
    const plain = Float32Array.from(net.forward(64).data.subarray(0, 64 * 400));
    const trained = net.forward(64, net.input, true).data.subarray(0, 64 * 400);
    let dropped = 0;
    for (let i = 0; i < plain.length; i++) {
      if (trained[i] === 0) dropped++;
      else assert.ok(Math.abs(trained[i] - plain[i] / 0.75) <= 1e-5 * Math.abs(plain[i] / 0.75) + 1e-7);
    }
    const share = dropped / plain.length;
    assert.ok(Math.abs(share - 0.25) < 0.01, `dropped ${share}`);
    assert.deepEqual(Float32Array.from(net.forward(64).data.subarray(0, 64 * 400)), plain);
  });

  it('Adam(W) follows the published update, bias correction included', () => {
    const e = new Engine();
    const p = e.tensor(1, 6);
    const g = e.tensor(1, 6);
    const p0 = [0.5, -1, 2, 0, 3, -0.25];
    p.data.set(p0);
    const opt = new Adam(e, [{ p, g }], 0.01, 0.9, 0.999, 1e-8, 0.1);
    const ref = Float64Array.from(p0);
    const m = new Float64Array(6);
    const v = new Float64Array(6);
    for (let t = 1; t <= 3; t++) {
      const grad = [0.1 * t, -0.2, 0.3, 1, -1, 0.05 * t];
      g.data.set(grad);
      opt.step();
      for (let i = 0; i < 6; i++) {
        m[i] = 0.9 * m[i] + 0.1 * grad[i];
        v[i] = 0.999 * v[i] + 0.001 * grad[i] ** 2;
        const mh = m[i] / (1 - 0.9 ** t);
        const vh = v[i] / (1 - 0.999 ** t);
        ref[i] = ref[i] * (1 - 0.01 * 0.1) - (0.01 * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
    assert.ok(relErr(p.data, ref) < 1e-6, `${p.data} vs ${ref}`);
  });

  it('trains reproducibly: the same seed gives the same weights, another seed different ones', () => {
    const rng = new Rng(9);
    const n = 600;
    const d = 6;
    const x = randn(rng, n * d);
    const specs: LayerSpec[] = [
      { units: 4, act: 'relu' },
      { units: 2, act: 'none' },
      { units: 4, act: 'relu' },
      { units: d, act: 'none' },
    ];
    const run = (seed: number) => {
      const net = new Mlp(d, specs, 64);
      net.init(seed);
      const r = fitAutoencoder(net, x, n, { ...DEFAULT_FIT, epochs: 5, batchSize: 64, noise: 0.1, seed });
      return { w: net.exportWeights(), r };
    };
    const a = run(1);
    const b = run(1);
    const c = run(2);
    assert.deepEqual(a.w, b.w);
    assert.notDeepEqual(a.w, c.w);
    assert.ok(a.r.epochs[a.r.epochs.length - 1].trainLoss < a.r.epochs[0].trainLoss, 'the loss goes down');
  });

  it('learns a low-dimensional structure: reconstruction error far below the data variance', () => {
    const rng = new Rng(4);
    const n = 4000;
    const d = 12;
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const a = rng.normal();
      const b = rng.normal();
      for (let j = 0; j < d; j++) x[i * d + j] = Math.sin(j) * a + Math.cos(j) * b + 0.01 * rng.normal();
    }
    const net = new Mlp(
      d,
      [
        { units: 16, act: 'relu' },
        { units: 2, act: 'none' },
        { units: 16, act: 'relu' },
        { units: d, act: 'none' },
      ],
      128,
    );
    net.init(1);
    const r = fitAutoencoder(net, x, n, { ...DEFAULT_FIT, epochs: 30, batchSize: 128, lr: 3e-3 });
    let variance = 0;
    for (let i = 0; i < n * d; i++) variance += x[i] * x[i];
    variance /= n * d;
    assert.ok(r.bestValLoss < 0.05 * variance, `val MSE ${r.bestValLoss} vs variance ${variance}`);
  });

  it('refuses non-finite training values and too little data with a clear error', () => {
    const net = new Mlp(3, [{ units: 3, act: 'none' }], 8);
    net.init(1);
    const x = new Float32Array(30);
    x[7] = Number.NaN;
    assert.throws(
      () => fitAutoencoder(net, x, 10, DEFAULT_FIT),
      (e: unknown) => e instanceof TrainingError && /row 2, column 1/.test(String(e)),
    );
    assert.throws(() => fitAutoencoder(net, new Float32Array(3), 1, DEFAULT_FIT), /cannot train on 1 row/);
    // A constant column is not an error: the network learns to output the constant.
    const c = new Float32Array(300);
    for (let i = 0; i < 100; i++) {
      c[i * 3] = Math.sin(i);
      c[i * 3 + 1] = 5;
      c[i * 3 + 2] = Math.cos(i);
    }
    const r = fitAutoencoder(net, c, 100, { ...DEFAULT_FIT, epochs: 3 });
    assert.ok(Number.isFinite(r.bestValLoss));
    assert.ok(net.exportWeights().W0.every(Number.isFinite));
  });
});
