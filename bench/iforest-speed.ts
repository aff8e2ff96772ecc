/**
 * Child process of bench/iforest.ts: loads a float32 matrix, fits and scores, prints JSON timings
 * and its own peak RSS, so the RSS compares with scikit-learn's process doing the same work.
 *   node dist/bench/iforest-speed.js FILE ROWS COLS
 */
import { readFileSync } from 'node:fs';
import { IsolationForest } from '../src/detect/iforest/iforest.js';

const [file, rowsArg, colsArg] = process.argv.slice(2);
const rows = Number(rowsArg);
const cols = Number(colsArg);
const buf = readFileSync(file);
const data = new Float32Array(buf.buffer, buf.byteOffset, rows * cols);
const m = { data, rows, cols };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(fn: () => void, n: number): number {
  const ts: number[] = [];
  for (let r = 0; r < n; r++) {
    const t = performance.now();
    fn();
    ts.push((performance.now() - t) / 1000);
  }
  return median(ts);
}

let forest = new IsolationForest();
const fit = time(() => {
  forest = new IsolationForest({ seed: 1 });
  forest.fit(m);
}, 5);
const out = new Float32Array(rows);
const score = time(() => forest.score(m, out), 5);
const classic = new IsolationForest({ seed: 1, extrapolate: false });
classic.fit(m);
const scoreClassic = time(() => classic.score(m, out), 5);
console.log(
  JSON.stringify({
    fit_s: fit,
    score_s: score,
    score_classic_s: scoreClassic,
    rss_mb: process.resourceUsage().maxRSS / 1024,
  }),
);
