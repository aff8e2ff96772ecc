/**
 * One-class SVM (random Fourier features, primal SGD): the kernel approximation against the exact
 * RBF kernel computed independently from the stored weights, the ν-property, ranking by distance
 * from the data, detection of planted outliers, explanations, and save/restore.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { OneClassSvm } from '../src/detect/ocsvm/ocsvm.js';
import { CLI, datasets, NO_DATASETS, tmp } from './helpers.js';

function gaussian(n: number, d: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * d }, () => r.normal());
}

function auroc(pos: number[], neg: number[]): number {
  let wins = 0;
  for (const p of pos) for (const q of neg) wins += p > q ? 1 : p === q ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

describe('one-class SVM', () => {
  const d = 4;
  const n = 3000;
  const train = { data: gaussian(n, d, 1), rows: n, cols: d };
  const m = new OneClassSvm({ nu: 0.05, components: 400, epochs: 8, seed: 3 });
  m.fit(train);

  it('z(x)·z(y) approximates exp(−γ‖x − y‖²) (computed from the stored W, b)', () => {
    const { W, b } = m.weights() as { W: Float32Array; b: Float32Array };
    const D = b.length;
    const gamma = m.params().gammaUsed as number;
    const z = (x: number[]) =>
      Array.from({ length: D }, (_, k) => {
        let s = b[k];
        for (let j = 0; j < d; j++) s += W[k * d + j] * x[j];
        return Math.sqrt(2 / D) * Math.cos(s);
      });
    const r = new Rng(9);
    let maxErr = 0;
    for (let t = 0; t < 50; t++) {
      const x = Array.from({ length: d }, () => r.normal());
      const y = x.map((v) => v + r.normal() * 0.7);
      const zx = z(x);
      const zy = z(y);
      const approx = zx.reduce((s, v, k) => s + v * zy[k], 0);
      const exact = Math.exp(-gamma * x.reduce((s, v, j) => s + (v - y[j]) ** 2, 0));
      maxErr = Math.max(maxErr, Math.abs(approx - exact));
    }
    // Error ~ 1/√D ≈ 0.05 for D = 400.
    assert.ok(maxErr < 0.2, `max kernel error ${maxErr}`);
  });

  it('leaves about ν of the training rows outside the support (ρ is set by the ν-property)', () => {
    const f = m.decisionFunction(train);
    const outside = f.filter((v) => v < 0).length / n;
    assert.ok(outside > 0.02 && outside < 0.12, `share outside: ${outside}`);
  });

  it('scores rise with distance from the data; planted outliers stand out', () => {
    const k = 400;
    const test = gaussian(k, d, 5);
    // Half of them pushed out to radius 4–6.
    for (let i = 0; i < k / 2; i++) {
      let norm = 0;
      for (let j = 0; j < d; j++) norm += test[i * d + j] ** 2;
      const target = 4 + (2 * i) / k;
      for (let j = 0; j < d; j++) test[i * d + j] *= target / Math.sqrt(norm);
    }
    const s = m.score({ data: test, rows: k, cols: d });
    const pos = Array.from(s.subarray(0, k / 2));
    const neg = Array.from(s.subarray(k / 2));
    assert.ok(auroc(pos, neg) > 0.97, `AUROC ${auroc(pos, neg)}`);
    // Along one ray, the score grows with the radius.
    const ray = new Float32Array(10 * d);
    for (let i = 0; i < 10; i++) ray[i * d] = i * 0.6;
    const sr = m.score({ data: ray, rows: 10, cols: d });
    for (let i = 3; i < 10; i++)
      assert.ok(sr[i] > sr[i - 3], `score at radius ${i * 0.6}: ${sr[i]} ≤ ${sr[i - 3]}`);
  });

  it('explains an outlier by the feature that is off', () => {
    const x = new Float32Array(d);
    x[2] = 5;
    const c = m.explain({ data: x, rows: 1, cols: d }, 0);
    assert.equal(c.indexOf(Math.max(...c)), 2);
  });

  it('restores from its parameters and weights with identical scores', () => {
    const again = OneClassSvm.restore(m.params(), m.weights());
    const probe = { data: gaussian(50, d, 8), rows: 50, cols: d };
    assert.deepEqual(again.score(probe), m.score(probe));
  });
});

describe('one-class SVM on CIC-IDS2017 (shared datasets)', () => {
  const root = datasets();
  it('nadir train --detector ocsvm ranks attacks above benign flows (AUROC > 0.9 on held-out rows)', {
    skip: root ? false : NO_DATASETS,
    timeout: 120_000,
  }, () => {
    const data = join(root!, 'cicids2017_improved_sampled');
    const out = join(tmp(), 'oc');
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    const t = run('train', '--data', data, '--detector', 'ocsvm', '--out', out, '-q');
    assert.equal(t.status, 0, t.stderr);
    const e = run('evaluate', '--model', out, '--data', data, '--json', '-q');
    assert.equal(e.status, 0, e.stderr);
    const auroc = JSON.parse(e.stdout).overall.auroc;
    assert.ok(auroc > 0.9, `AUROC ${auroc}`);
  });
});
