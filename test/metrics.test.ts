import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrate, parseThresholdMethod } from '../src/detect/calibration.js';
import { classificationReport } from '../src/train/evaluate.js';
import {
  auroc,
  averagePrecision,
  countsAt,
  detectionAtFpr,
  expectedCalibrationError,
  precisionRecallF1,
} from '../src/train/metrics.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) < eps, `${a} ≠ ${b}`);

describe('metrics (hand-computed cases)', () => {
  // scores with labels; worked by hand below.
  const s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9];
  const y = [0, 0, 1, 1, 1, 0];

  it('AUROC counts pairs, ties as half', () => {
    // Positive/negative pairs (P=3, N=3): 0.35 beats 0.1 only (1); 0.8 beats 0.1, 0.4 (2);
    // 0.4 beats 0.1 (1) and ties 0.4 (0.5) → 4.5 / 9.
    close(auroc(s, y), 4.5 / 9);
    close(auroc([1, 2, 3, 4], [0, 0, 1, 1]), 1);
    close(auroc([1, 2, 3, 4], [1, 1, 0, 0]), 0);
    assert.ok(Number.isNaN(auroc([1, 2], [0, 0])));
  });

  it('average precision follows the step-wise definition', () => {
    // Thresholds in descending order: 0.9 (fp) → P=0, R=0; 0.8 (tp) → P=1/2, R=1/3;
    // 0.4 (tp+fp) → P=2/4, R=2/3; 0.35 (tp) → P=3/5, R=1; 0.1 (fp) → R unchanged.
    close(averagePrecision(s, y), (1 / 3) * (1 / 2) + (1 / 3) * (2 / 4) + (1 / 3) * (3 / 5));
  });

  it('detection rate at a false-positive budget takes the best ROC point within budget', () => {
    // 10 negatives 0..9, positives at 8.5 and 20. Descending thresholds: 20 → (tpr .5, fpr 0);
    // 9 → (.5, .1); 8.5 → (1, .1); 8 → (1, .2). Budget 0.05 allows only the first; 0.1 reaches 8.5.
    const neg = Array.from({ length: 10 }, (_, i) => i);
    const scores = [...neg, 8.5, 20];
    const labels = [...neg.map(() => 0), 1, 1];
    assert.equal(detectionAtFpr(scores, labels, 0.05).tpr, 0.5);
    assert.equal(detectionAtFpr(scores, labels, 0.05).threshold, 20);
    assert.equal(detectionAtFpr(scores, labels, 0.1).tpr, 1);
    assert.equal(detectionAtFpr(scores, labels, 0.1).threshold, 8.5);
    assert.equal(detectionAtFpr(scores, labels, 0.1).fpr, 0.1);
    assert.equal(detectionAtFpr(scores, labels, 0).tpr, 0.5);
  });

  it('confusion counts and precision / recall / F1 at a threshold', () => {
    const c = countsAt(s, y, 0.38);
    assert.deepEqual(c, { tp: 2, fp: 2, tn: 1, fn: 1 });
    const p = precisionRecallF1(c);
    close(p.precision, 0.5);
    close(p.recall, 2 / 3);
    close(p.f1, (2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3));
    close(p.fpr, 2 / 3);
  });

  it('expected calibration error weighs each bin by its share of rows', () => {
    // Bins of width 0.5: [0.2, 0.4] (1 of 2 right: |0.5 − 0.3| = 0.2) and [0.9, 0.7, 0.8]
    // (3 of 3 right: |1 − 0.8| = 0.2). ECE = 2/5·0.2 + 3/5·0.2 = 0.2.
    close(expectedCalibrationError([0.2, 0.4, 0.9, 0.7, 0.8], [true, false, true, true, true], 2), 0.2);
    close(expectedCalibrationError([0.95, 0.95], [true, true], 10), 0.05);
  });

  it('threat-type report: accuracy, per-class precision/recall/F1, macro-F1', () => {
    const r = classificationReport(
      ['BENIGN', 'BENIGN', 'DDoS', 'DDoS', 'PortScan'],
      ['BENIGN', 'DDoS', 'DDoS', 'DDoS', 'BENIGN'],
      [0.9, 0.6, 0.8, 0.7, 0.55],
    );
    close(r.accuracy, 3 / 5);
    const by = Object.fromEntries(r.perClass.map((c) => [c.label, c]));
    close(by.BENIGN.precision, 1 / 2);
    close(by.BENIGN.recall, 1 / 2);
    close(by.DDoS.precision, 2 / 3);
    close(by.DDoS.recall, 1);
    close(by.DDoS.f1, 0.8);
    close(by.PortScan.f1, 0);
    close(r.macroF1, (0.5 + 0.8 + 0) / 3);
  });
});

describe('threshold calibration', () => {
  const scores = Array.from({ length: 100 }, (_, i) => i); // 0..99

  it('percentiles interpolate like numpy', () => {
    close(calibrate(scores, 'p99').value, 98.01);
    close(calibrate(scores, 'p99.5').value, 98.505);
    close(calibrate(scores, 'p50').value, 49.5);
  });

  it('fpr:RATE leaves at most RATE of the calibration scores above the threshold', () => {
    for (const rate of [0.01, 0.05, 0.1, 0.333]) {
      const t = calibrate(scores, `fpr:${rate}`).value;
      const above = scores.filter((x) => x > t).length;
      assert.ok(above <= Math.floor(rate * scores.length), `${rate}: ${above} above ${t}`);
      assert.ok(above >= Math.floor(rate * scores.length) - 1);
    }
  });

  it('mad is median + K·1.4826·MAD', () => {
    // 0..99: median 49.5, |x − 49.5| has median 25 → 49.5 + 3·1.4826·25.
    close(calibrate(scores, 'mad').value, 49.5 + 3 * 1.4826 * 25, 1e-9);
    close(calibrate(scores, 'mad:2').value, 49.5 + 2 * 1.4826 * 25, 1e-9);
  });

  it('rejects unknown methods with a hint', () => {
    for (const bad of ['p100', 'fpr:2', 'fpr:', 'max', 'mad:-1'])
      assert.throws(() => parseThresholdMethod(bad), /threshold method/);
  });
});
