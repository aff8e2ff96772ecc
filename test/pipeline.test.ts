import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FeaturePipeline,
  type Layout,
  MissingColumnsError,
  OTHER,
  type Rows,
} from '../src/features/pipeline.js';

const layout: Layout = {
  numericNames: ['bytes', 'flag', 'const', 'gap'],
  stringNames: ['proto'],
  key: 'train',
};

/** bytes heavy-tailed, flag 0/1, const constant, gap with NaN and ±Infinity. */
function rows(): Rows {
  const n = 9;
  const bytes = [10, 20, 30, 40, 50, 60, 70, 80, 1e7];
  const flag = [0, 1, 0, 1, 0, 1, 0, 1, 0];
  const gap = [1, 2, Number.NaN, 4, 5, Number.POSITIVE_INFINITY, 7, Number.NEGATIVE_INFINITY, 9];
  const numeric = new Float64Array(n * 4);
  for (let i = 0; i < n; i++) numeric.set([bytes[i], flag[i], 5, gap[i]], i * 4);
  const proto = ['6', '6', '6', '17', '17', '6', '6', '1', '6'];
  return { plan: layout, n, numeric, strings: [proto] };
}

describe('feature pipeline', () => {
  const p = FeaturePipeline.fit(rows());
  const spec = (name: string) => p.schema.inputs.find((f) => f.name === name)!;

  it('drops constant columns with the reason', () => {
    assert.deepEqual(p.schema.dropped, [{ name: 'const', reason: 'constant in training data (5)' }]);
  });

  it('fills NaN with the training median and ±Infinity with the training max/min', () => {
    const g = spec('gap');
    assert.equal(g.kind, 'numeric');
    if (g.kind !== 'numeric') return;
    // finite values 1,2,4,5,7,9 → median 4.5, max 9, min 1
    assert.equal(g.fillNaN, 4.5);
    assert.equal(g.posInf, 9);
    assert.equal(g.negInf, 1);
  });

  it('log-transforms heavy-tailed counters only, and scales robustly', () => {
    const b = spec('bytes');
    const f = spec('flag');
    assert.ok(b.kind === 'numeric' && b.transform === 'slog1p');
    assert.ok(f.kind === 'numeric' && f.transform === 'none');
    // robust scaling of flag: median 0, IQR 1 → scale 1/1.349
    assert.ok(f.kind === 'numeric' && f.center === 0 && Math.abs(f.scale - 1 / 1.349) < 1e-12);
    const x = p.transform(rows());
    const w = p.width;
    const bi = p.schema.outputs.indexOf('bytes');
    assert.ok(b.kind === 'numeric');
    const expected = (Math.log1p(1e7) - b.center) / b.scale;
    assert.ok(Math.abs(x[8 * w + bi] - expected) < 1e-4);
  });

  it('one-hot encodes frequent categories, sending unseen values to <other>', () => {
    assert.deepEqual(
      p.schema.outputs.filter((o) => o.startsWith('proto=')),
      ['proto=6', 'proto=17', 'proto=1', `proto=${OTHER}`],
    );
    const unseen: Rows = {
      plan: { ...layout, key: 'x' },
      n: 1,
      numeric: new Float64Array(4),
      strings: [['47']],
    };
    const x = p.transform(unseen);
    const w = p.width;
    const at = (o: string) => x[p.schema.outputs.indexOf(o)];
    assert.equal(at(`proto=${OTHER}`), 1);
    assert.equal(at('proto=6'), 0);
    assert.equal(w, p.schema.outputs.length);
  });

  it('index encoding uses one column', () => {
    const q = FeaturePipeline.fit(rows(), { encoding: 'index' });
    assert.ok(q.schema.outputs.includes('proto'));
    const x = q.transform(rows());
    const j = q.schema.outputs.indexOf('proto');
    assert.deepEqual(
      Array.from({ length: 9 }, (_, i) => x[i * q.width + j]),
      [1, 1, 1, 2, 2, 1, 1, 3, 1],
    );
  });

  it('maps columns by name whatever their order, and names the columns it cannot find', () => {
    const r = rows();
    const k = 4;
    const perm = [3, 0, 2, 1]; // new slot j holds old column perm[j]
    const numeric = new Float64Array(r.n * k);
    for (let i = 0; i < r.n; i++) for (let j = 0; j < k; j++) numeric[i * k + j] = r.numeric[i * k + perm[j]];
    const shuffled: Rows = {
      plan: {
        numericNames: perm.map((j) => layout.numericNames[j]),
        stringNames: ['proto'],
        key: 'shuffled',
      },
      n: r.n,
      numeric,
      strings: r.strings,
    };
    assert.deepEqual(p.transform(shuffled), p.transform(r));
    const missing: Rows = {
      plan: { numericNames: ['bytes'], stringNames: [], key: 'm', file: 'x.csv' },
      n: 0,
      numeric: new Float64Array(0),
      strings: [],
    };
    assert.throws(
      () => p.transform(missing),
      (e: unknown) =>
        e instanceof MissingColumnsError && e.missing.join() === 'flag,gap,proto' && /x\.csv/.test(e.message),
    );
  });

  it('survives a JSON round trip unchanged', () => {
    const q = new FeaturePipeline(JSON.parse(JSON.stringify(p.schema)));
    assert.deepEqual(q.transform(rows()), p.transform(rows()));
  });
});
