/**
 * Ensemble detector: its score equals the mean of the members' robust z-scores computed here from
 * independently fitted members; it survives a bundle round trip; it refuses bad member lists; on
 * CIC-IDS2017 it ranks attacks at least as well as its weakest member.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { Ensemble } from '../src/detect/ensemble/ensemble.js';
import { IsolationForest } from '../src/detect/iforest/iforest.js';
import { OneClassSvm } from '../src/detect/ocsvm/ocsvm.js';
import '../src/model/bundle.js';
import { CLI, datasets, NO_DATASETS, tmp } from './helpers.js';

function data(n: number, d: number, seed: number) {
  const r = new Rng(seed);
  return { data: Float32Array.from({ length: n * d }, () => r.normal()), rows: n, cols: d };
}

/** Robust z-scores of `s` against the training scores `t` (median, 1.4826 · MAD). */
function robustZ(s: Float32Array, t: Float32Array): Float64Array {
  const sorted = Float64Array.from(t).sort();
  const med = sorted[Math.floor(sorted.length / 2)];
  const dev = Float64Array.from(sorted, (v) => Math.abs(v - med)).sort();
  const mad = dev[Math.floor(dev.length / 2)] * 1.4826;
  return Float64Array.from(s, (v) => (v - med) / mad);
}

describe('ensemble detector', () => {
  const train = data(1500, 3, 1);
  const probe = data(200, 3, 2);

  it('scores the mean of the members’ robust z-scores', () => {
    const e = new Ensemble({ members: 'iforest,ocsvm', seed: 7 });
    e.fit(train);
    const f = new IsolationForest({ seed: 7 });
    f.fit(train);
    const o = new OneClassSvm({ seed: 7 });
    o.fit(train);
    const zf = robustZ(f.score(probe), f.score(train));
    const zo = robustZ(o.score(probe), o.score(train));
    const got = e.score(probe);
    for (let i = 0; i < probe.rows; i++) assert.ok(Math.abs(got[i] - (zf[i] + zo[i]) / 2) < 1e-4, `row ${i}`);
  });

  it('restores from its parameters and weights with identical scores', () => {
    const e = new Ensemble({ members: 'iforest,ocsvm' });
    e.fit(train);
    const params = JSON.parse(JSON.stringify(e.params()));
    const again = Ensemble.restore(params, e.weights());
    assert.deepEqual(again.score(probe), e.score(probe));
  });

  it('refuses one member, nested ensembles and supervised members', () => {
    assert.throws(() => new Ensemble({ members: 'iforest' }), /at least two/);
    assert.throws(() => new Ensemble({ members: 'iforest,ensemble' }), /cannot contain/);
    assert.throws(() => new Ensemble({ members: 'iforest,mlp' }), /supervised/);
  });
});

describe('ensemble on CIC-IDS2017 (shared datasets)', () => {
  const root = datasets();
  it('nadir train --detector ensemble: AUROC at least the weaker member’s', {
    skip: root ? false : NO_DATASETS,
    timeout: 180_000,
  }, () => {
    const dir = tmp();
    const cic = join(root!, 'cicids2017_improved_sampled');
    const run = (...a: string[]) => spawnSync(process.execPath, [CLI, ...a], { encoding: 'utf8' });
    const auroc = (det: string) => {
      const out = join(dir, det);
      const t = run('train', '--data', cic, '--detector', det, '--out', out, '-q');
      assert.equal(t.status, 0, t.stderr);
      const e = run('evaluate', '--model', out, '--data', cic, '--json', '-q');
      assert.equal(e.status, 0, e.stderr);
      return JSON.parse(e.stdout).overall.auroc as number;
    };
    const members = [auroc('iforest'), auroc('ocsvm')];
    const ens = auroc('ensemble');
    assert.ok(ens >= Math.min(...members), `ensemble ${ens}, members ${members}`);
  });
});
