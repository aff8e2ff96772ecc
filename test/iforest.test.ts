import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import type { Matrix } from '../src/detect/detector.js';
import { averagePathLength, IsolationForest } from '../src/detect/iforest/iforest.js';

/** n rows of d standard-normal-ish features (sum of uniforms), seeded. */
function gaussian(n: number, d: number, seed: number): Matrix {
  const rng = new Rng(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < data.length; i++) data[i] = rng.next() + rng.next() + rng.next() - 1.5;
  return { data, rows: n, cols: d };
}

describe('isolation forest', () => {
  it('uses the standard average path length c(n)', () => {
    assert.equal(averagePathLength(1), 0);
    assert.equal(averagePathLength(2), 1);
    // c(3) = 2(H(2)) - 4/3 with H(2) ≈ ln 2 + γ
    assert.ok(Math.abs(averagePathLength(3) - (2 * (Math.log(2) + 0.5772156649) - 4 / 3)) < 1e-9);
    // c(256) from Liu et al.: ≈ 10.2448
    assert.ok(Math.abs(averagePathLength(256) - 10.2448) < 1e-3);
  });

  it('scores planted outliers above every inlier', () => {
    const d = 6;
    const x = gaussian(2000, d, 1);
    const test = gaussian(1000, d, 2);
    // Plant 10 outliers outside the data's range (|x| ≤ 1.5) in every coordinate, random signs.
    const rng = new Rng(99);
    for (let k = 0; k < 10; k++)
      for (let j = 0; j < d; j++) test.data[k * d + j] = (rng.next() < 0.5 ? -1 : 1) * (2 + k / 10);
    const f = new IsolationForest({ seed: 3 });
    f.fit(x);
    const s = f.score(test);
    const minOutlier = Math.min(...s.subarray(0, 10));
    const maxInlier = Math.max(...s.subarray(10));
    assert.ok(minOutlier > maxInlier, `outliers ${minOutlier} vs inliers ${maxInlier}`);
    for (const v of s) assert.ok(v > 0 && v < 1);
  });

  it('gives inliers scores near 0.5 or below and isolated points near 1', () => {
    const x = gaussian(4096, 3, 9);
    const f = new IsolationForest({ seed: 1, trees: 200 });
    f.fit(x);
    const s = f.score({ data: Float32Array.from([0, 0, 0, 50, 50, 50]), rows: 2, cols: 3 });
    assert.ok(s[0] < 0.5, `centre scores ${s[0]}`);
    assert.ok(s[1] > 0.7, `far point scores ${s[1]}`);
  });

  it('is reproducible: the same seed gives the same trees, another seed different ones', () => {
    const x = gaussian(1000, 4, 5);
    const a = new IsolationForest({ seed: 11 });
    const b = new IsolationForest({ seed: 11 });
    const c = new IsolationForest({ seed: 12 });
    a.fit(x);
    b.fit(x);
    c.fit(x);
    assert.deepEqual(a.weights(), b.weights());
    assert.deepEqual(a.score(x), b.score(x));
    assert.notDeepEqual(a.score(x), c.score(x));
  });

  it('sub-samples ψ rows per tree and caps depth at ⌈log2 ψ⌉', () => {
    const x = gaussian(5000, 3, 6);
    const f = new IsolationForest({ seed: 1, trees: 10, sampleSize: 64 });
    f.fit(x);
    const w = f.weights();
    const size = w.size as Int32Array;
    const roots = w.roots as Int32Array;
    for (const r of roots) assert.equal(size[r], 64);
    assert.ok((w.feature as Int32Array).length <= 10 * 127);
    // Leaves hold depth + c(size) ≤ 6 + c(64).
    const value = w.value as Float32Array;
    const feature = w.feature as Int32Array;
    for (let i = 0; i < feature.length; i++)
      if (feature[i] < 0) assert.ok(value[i] <= 6 + averagePathLength(64) + 1e-4);
  });

  it('explains an outlier by the feature that isolates it', () => {
    const d = 5;
    const x = gaussian(2000, d, 4);
    const f = new IsolationForest({ seed: 2, trees: 200 });
    f.fit(x);
    const row = { data: new Float32Array(d), rows: 1, cols: d };
    row.data[3] = 9;
    const credit = f.explain(row, 0);
    const top = [...credit.keys()].sort((a, b) => credit[b] - credit[a])[0];
    assert.equal(top, 3);
  });

  it('restores from its weights with identical scores, and rejects corrupt trees', () => {
    const x = gaussian(500, 3, 8);
    const f = new IsolationForest({ seed: 4 });
    f.fit(x);
    const g = IsolationForest.restore(f.params(), f.weights());
    assert.deepEqual(g.score(x), f.score(x));
    const bad = { ...f.weights(), right: new Int32Array((f.weights().right as Int32Array).length) };
    assert.throws(() => IsolationForest.restore(f.params(), bad), /corrupt/);
  });
});
