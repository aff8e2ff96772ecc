/**
 * ONNX graphs of trained networks against the training core: ONNX Runtime (a separate engine)
 * must compute the same scores from the exported graph.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { Autoencoder } from '../src/detect/autoencoder/autoencoder.js';
import { OnnxScorer, onnxRuntime, ortUnavailable } from '../src/nn/onnx.js';
import { CLI, tmp } from './helpers.js';

function rows(n: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = rng.normal();
    for (let j = 0; j < d; j++) x[i * d + j] = a * Math.cos(j) + 0.2 * rng.normal();
  }
  return x;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-12));
  return worst;
}

describe('ONNX export and ONNX Runtime scoring', () => {
  it('ONNX Runtime loads (it ships with the npm package)', () => {
    if (process.env.NADIR_NO_ONNXRUNTIME) return;
    assert.ok(onnxRuntime(), `onnxruntime-node failed to load: ${ortUnavailable()}`);
  });

  for (const [activation, extra] of [
    ['relu', {}],
    ['leaky', {}],
    ['tanh', {}],
    ['sigmoid', {}],
    ['relu', { residual: true, dropout: 0.2 }],
  ] as const)
    it(`autoencoder (${activation} ${JSON.stringify(extra)}): ONNX Runtime scores equal the training core's within 1e-5`, async (t) => {
      if (!onnxRuntime()) return t.skip(`ONNX Runtime unavailable: ${ortUnavailable()}`);
      const d = 13;
      const ae = new Autoencoder({ layers: [8, 3], activation, epochs: 3, seed: 5, ...extra });
      ae.fit({ data: rows(600, d, 1), rows: 600, cols: d });
      // Rows unlike the training data too, so the scores span orders of magnitude.
      const x = rows(1000, d, 2);
      for (let i = 900; i < 1000; i++) x[i * d + (i % d)] += 50;
      const m = { data: x, rows: 1000, cols: d };
      const core = ae.score(m);
      const viaOrt = await ae.scoreAsync(m);
      assert.notStrictEqual(viaOrt, core);
      const worst = maxRelDiff(viaOrt, core);
      assert.ok(worst < 1e-5, `largest relative difference ${worst}`);
      // Scores of the shifted rows are far above the others: the comparison is not trivial.
      assert.ok(core[950] > 10 * core[10]);
    });

  it('the bundle carries model.onnx, and `nadir export --onnx` writes the same graph', async (t) => {
    if (!onnxRuntime()) return t.skip(`ONNX Runtime unavailable: ${ortUnavailable()}`);
    const dir = tmp();
    const lines = ['a,b,c,d,Label'];
    for (let i = 0; i < 400; i++) lines.push(`${i % 7},${(i * 3) % 11},${i % 5},${(i * i) % 13},BENIGN`);
    const data = join(dir, 'x.csv');
    writeFileSync(data, `${lines.join('\n')}\n`);
    const out = join(dir, 'm');
    const tr = spawnSync(process.execPath, [
      CLI,
      'train',
      '--data',
      data,
      '--detector',
      'autoencoder',
      '--epochs',
      '3',
      '--out',
      out,
      '-q',
    ]);
    assert.equal(tr.status, 0, String(tr.stderr));
    const ex = spawnSync(process.execPath, [CLI, 'export', '--model', out, '--onnx', join(dir, 'e.onnx')]);
    assert.equal(ex.status, 0, String(ex.stderr));
    const inBundle = readFileSync(join(out, 'model.onnx'));
    assert.deepEqual(readFileSync(join(dir, 'e.onnx')), inBundle);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.detector.artifacts[0].file, 'model.onnx');
    const s = await OnnxScorer.create(inBundle, manifest.features.inputs.length);
    assert.ok(s);
    const scores = await s.score(new Float32Array(4 * 2), 2);
    assert.equal(scores.length, 2);
    assert.ok(scores.every(Number.isFinite));
  });
});
