/**
 * The supervised MLP classifier: training on labelled rows of every class, evaluation leaving out
 * the whole training part, temperature scaling that lowers held-out NLL, explanations, ONNX parity.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Diagnostics, UserError } from '../src/core/diagnostics.js';
import { Rng } from '../src/core/rng.js';
import { MlpClassifier } from '../src/detect/classifier/mlp.js';
import { FlowReader } from '../src/ingest/table.js';
import { Model } from '../src/model/bundle.js';
import { onnxRuntime, ortUnavailable } from '../src/nn/onnx.js';
import { evaluate } from '../src/train/evaluate.js';
import { train } from '../src/train/train.js';
import { tmp, writeFile } from './helpers.js';

/** Three classes in 4 features; labels flip with probability `noise` (so probabilities matter). */
function labelled(dir: string, n: number, noise: number): string {
  const rng = new Rng(5);
  const names = ['BENIGN', 'DDoS', 'PortScan'];
  const lines = ['pkts,bytes,dur,flags,Label'];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    const pkts = [10, 500, 1][c] * (1 + 0.3 * rng.normal());
    const bytes = [2000, 40000, 60][c] * (1 + 0.3 * rng.normal());
    const dur = [5, 1, 0.001][c] * (1 + 0.3 * rng.normal());
    const flags = c === 2 ? 2 : rng.int(3);
    const label = rng.next() < noise ? names[rng.int(3)] : names[c];
    lines.push(`${pkts},${bytes},${dur},${flags},${label}`);
  }
  return writeFile(dir, 'labelled.csv', `${lines.join('\n')}\n`);
}

const base = {
  detector: 'mlp',
  split: { kind: 'ratio' as const, ratio: 0.8, seed: 3 },
  threshold: 'p99',
  calibrationFraction: 0.2,
  maxRows: 100000,
  seed: 3,
  ingest: {},
  features: {},
};

describe('supervised MLP classifier', () => {
  it('learns threat types; evaluate leaves out every training-part row and reports accuracy', async () => {
    const dir = tmp();
    const data = labelled(dir, 3000, 0.05);
    const out = join(dir, 'm');
    const { model } = await train({
      ...base,
      detectorParams: { epochs: 60 },
      data: [data],
      out,
      diag: new Diagnostics(),
    });
    const t = model.manifest.training;
    assert.equal(t.supervised, true);
    assert.ok(
      t.candidateRows > 2200 && t.candidateRows < 2600,
      `${t.candidateRows} of 3000 rows in an 0.8 split`,
    );
    const det = model.detector as MlpClassifier;
    assert.deepEqual(det.classes, ['BENIGN', 'DDoS', 'PortScan']);
    const cal = det.calibration!;
    assert.ok(
      cal.nllAfter <= cal.nllBefore + 1e-9,
      `temperature scaling never raises held-out NLL: ${JSON.stringify(cal)}`,
    );

    const loaded = Model.load(out);
    const { report } = await evaluate(loaded, { data: [data], diag: new Diagnostics() });
    // Only the test part (≈20%) is evaluated, attacks included.
    assert.ok(report.data.rows > 450 && report.data.rows < 750, `${report.data.rows} evaluated`);
    assert.equal(report.data.skippedTrainingRows + report.data.rows, 3000);
    const c = report.classification!;
    // 5% of labels are random (a third of them still right): the best possible accuracy is ≈0.967.
    assert.ok(c.accuracy > 0.9 && c.accuracy < 0.99, `accuracy ${c.accuracy}`);
    assert.ok(report.overall.auroc > 0.95, `AUROC ${report.overall.auroc}`);
  });

  it('explains an attack by the features that separate it from BENIGN', async () => {
    const dir = tmp();
    const data = labelled(dir, 1500, 0);
    const { model } = await train({
      ...base,
      detectorParams: { epochs: 40 },
      data: [data],
      diag: new Diagnostics(),
    });
    const reader = new FlowReader([data], {}, new Diagnostics());
    for await (const b of reader.batches()) {
      const { x } = model.score(b);
      const i = b.labels!.indexOf('DDoS');
      const why = model.explain(x, b, i, 2);
      assert.ok(why.length > 0, 'a confident verdict is explained (log-odds do not saturate)');
      assert.ok(['pkts', 'bytes', 'dur'].includes(why[0].feature), JSON.stringify(why));
    }
  });

  it('ONNX Runtime gives the classifier scores of the core', async (t) => {
    if (!onnxRuntime()) return t.skip(`ONNX Runtime unavailable: ${ortUnavailable()}`);
    const dir = tmp();
    const data = labelled(dir, 1500, 0.1);
    const { model } = await train({
      ...base,
      detectorParams: { epochs: 20 },
      data: [data],
      diag: new Diagnostics(),
    });
    const reader = new FlowReader([data], {}, new Diagnostics());
    for await (const b of reader.batches()) {
      const { x, scores } = model.score(b);
      const viaOrt = await model.detector.scoreAsync!(x);
      for (let i = 0; i < scores.length; i++)
        assert.ok(
          Math.abs(viaOrt[i] - scores[i]) <= 1e-5 * scores[i] + 1e-7,
          `row ${i}: ${viaOrt[i]} vs ${scores[i]}`,
        );
    }
  });

  it('refuses labels of a single class, naming what it found', async () => {
    const dir = tmp();
    const lines = ['a,b,Label', ...Array.from({ length: 200 }, (_, i) => `${i},${i % 7},BENIGN`)];
    const data = writeFile(dir, 'one.csv', `${lines.join('\n')}\n`);
    await assert.rejects(
      train({ ...base, detectorParams: {}, data: [data], diag: new Diagnostics() }),
      (e: unknown) =>
        e instanceof UserError && /needs BENIGN rows and at least one other class/.test(e.message),
    );
    assert.throws(() => new MlpClassifier().fit(), /supervised/);
  });

  it('ae-classifier: flags an attack class it never saw through its reconstruction error; ONNX parity', async () => {
    const dir = tmp();
    const rng = new Rng(9);
    const row = (c: number) => {
      const pkts = [10, 500, 40][c] * (1 + 0.2 * rng.normal());
      const bytes = [2000, 40000, 45][c] * (1 + 0.2 * rng.normal());
      const dur = [5, 1, 30][c] * (1 + 0.2 * rng.normal());
      return `${pkts},${bytes},${dur},${['BENIGN', 'DDoS', 'Novel'][c]}`;
    };
    const trainRows = Array.from({ length: 2400 }, (_, i) => row(i % 2));
    const data = writeFile(dir, 'known.csv', `pkts,bytes,dur,Label\n${trainRows.join('\n')}\n`);
    const { model } = await train({
      ...base,
      detector: 'ae-classifier',
      detectorParams: { epochs: 60, layers: [8, 2], headLayers: [8] },
      data: [data],
      diag: new Diagnostics(),
    });
    const novel = writeFile(
      dir,
      'novel.csv',
      `pkts,bytes,dur,Label\n${Array.from({ length: 300 }, () => row(2)).join('\n')}\n`,
    );
    const reader = new FlowReader([novel], {}, new Diagnostics());
    for await (const b of reader.batches()) {
      const { x, scores } = model.score(b);
      const flagged = scores.filter((s) => s > model.threshold).length;
      assert.ok(flagged / b.n > 0.95, `${flagged} of ${b.n} rows of an unseen attack class flagged`);
      if (onnxRuntime()) {
        const viaOrt = await model.detector.scoreAsync!(x);
        for (let i = 0; i < b.n; i++)
          assert.ok(
            Math.abs(viaOrt[i] - scores[i]) <= 1e-5 * scores[i] + 5e-7,
            `row ${i}: ${viaOrt[i]} vs ${scores[i]}`,
          );
      }
    }
  });
});
