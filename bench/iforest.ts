/**
 * Isolation-forest benchmark: fit on 100k × 78, score throughput, peak RSS, and, when Debian's
 * scikit-learn is importable by /usr/bin/python3, the same measurements for sklearn's
 * IsolationForest on the same matrix in the same run, with the ratios. A second section compares
 * detection quality with sklearn on identical train/test splits of CIC-IDS2017.
 *
 *   npm run build && node dist/bench/iforest.js [--rows 100000] [--seeds 5]
 *
 * Data: rows of ../shared/datasets/cicids2017_improved_sampled through NADIR's feature pipeline
 * (78 columns: signed log1p, index-encoded Protocol), tiled to --rows with small jitter; a
 * synthetic mixture when the datasets are absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Diagnostics } from '../src/core/diagnostics.js';
import { BENIGN } from '../src/core/labels.js';
import { Rng } from '../src/core/rng.js';
import { IsolationForest } from '../src/detect/iforest/iforest.js';
import { FeaturePipeline, type Rows } from '../src/features/pipeline.js';
import { FlowReader } from '../src/ingest/table.js';
import { auroc, detectionAtFpr } from '../src/train/metrics.js';
import { inTrainPart } from '../src/train/split.js';

const args = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROWS = arg('--rows', 100_000);
const SEEDS = arg('--seeds', 5);
const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const dataDir = process.env.NADIR_DATASETS ?? resolve(root, '..', 'shared', 'datasets');
const cic = join(dataDir, 'cicids2017_improved_sampled');
const work = mkdtempSync(join(tmpdir(), 'nadir-bench-'));
const here = resolve(fileURLToPath(import.meta.url), '..');

function hasSklearn(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0;
}

/** All rows of the CIC sample in one Rows block, with labels and row hashes. */
async function loadCic(): Promise<{ rows: Rows; labels: string[]; hashes: Uint32Array } | null> {
  if (!existsSync(cic)) return null;
  const reader = new FlowReader([cic], {}, new Diagnostics());
  const parts: { numeric: Float64Array; strings: string[][]; n: number }[] = [];
  const labels: string[] = [];
  const hashes: number[] = [];
  let plan: Rows['plan'] | null = null;
  for await (const b of reader.batches()) {
    plan ??= b.plan;
    parts.push({ numeric: b.numeric, strings: b.strings, n: b.n });
    labels.push(...(b.labels ?? []));
    hashes.push(...b.rowHash);
  }
  if (!plan) return null;
  const n = parts.reduce((s, p) => s + p.n, 0);
  const numeric = new Float64Array(n * plan.numericNames.length);
  let off = 0;
  for (const p of parts) {
    numeric.set(p.numeric, off);
    off += p.numeric.length;
  }
  const strings = plan.stringNames.map((_, s) => parts.flatMap((p) => p.strings[s]));
  return { rows: { plan, n, numeric, strings }, labels, hashes: Uint32Array.from(hashes) };
}

function synthetic(n: number, d: number): Float32Array {
  const rng = new Rng(1);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = rng.int(5);
    for (let j = 0; j < d; j++) x[i * d + j] = c * ((j % 7) - 3) + rng.next() + rng.next() - 1;
  }
  return x;
}

function tile(x: Float32Array, d: number, n: number): Float32Array {
  const rng = new Rng(2);
  const src = x.length / d;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const r = i % src;
    for (let j = 0; j < d; j++) out[i * d + j] = x[r * d + j] * (1 + (rng.next() - 0.5) * 1e-3);
  }
  return out;
}

function py(script: string, argv: string[]): Record<string, number> | null {
  const r = spawnSync('/usr/bin/python3', ['-c', script, ...argv], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    console.error(r.stderr);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const SK_SPEED = `
import sys, time, json, resource, numpy as np
from sklearn.ensemble import IsolationForest
n, d = int(sys.argv[2]), int(sys.argv[3])
x = np.fromfile(sys.argv[1], dtype=np.float32).reshape(n, d)
fits = []
for r in range(3):
    t = time.perf_counter(); m = IsolationForest(n_estimators=100, max_samples=256, random_state=r).fit(x); fits.append(time.perf_counter() - t)
scores = []
for r in range(3):
    t = time.perf_counter(); m.score_samples(x); scores.append(time.perf_counter() - t)
print(json.dumps({'fit_s': sorted(fits)[1], 'score_s': sorted(scores)[1], 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

const SK_QUALITY = `
import sys, json, numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score, roc_curve
d = int(sys.argv[2])
x = np.fromfile(sys.argv[1], dtype=np.float32 if sys.argv[1].endswith('.f32') else np.float64).reshape(-1, d).astype(np.float64)
train = np.fromfile(sys.argv[3], dtype=np.uint8).astype(bool)
y = np.fromfile(sys.argv[4], dtype=np.uint8)
seed = int(sys.argv[5])
x[~np.isfinite(x)] = np.nan
med = np.nanmedian(x[train], axis=0)
x = np.where(np.isnan(x), med, x)
m = IsolationForest(random_state=seed).fit(x[train])
s = -m.score_samples(x[~train]); yt = y[~train]
fpr, tpr, _ = roc_curve(yt, s)
print(json.dumps({'auroc': roc_auc_score(yt, s), 'dr1': float(tpr[fpr <= 0.01].max())}))
`;

async function main(): Promise<void> {
  const sk = hasSklearn();
  console.log(
    `# isolation forest benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}`,
  );
  console.log(
    `scikit-learn peer: ${sk ? 'yes (/usr/bin/python3)' : 'not found (apt-get install python3-sklearn)'}`,
  );

  const data = await loadCic();
  let x: Float32Array;
  const d = 78;
  if (data) {
    const p = FeaturePipeline.fit(data.rows, { transform: 'log', encoding: 'index' });
    const all = p.transform(data.rows);
    // Keep exactly 78 columns (the pipeline drops constant ones; pad by repeating if fewer).
    const w = p.width;
    const base = new Float32Array(data.rows.n * d);
    for (let i = 0; i < data.rows.n; i++) for (let j = 0; j < d; j++) base[i * d + j] = all[i * w + (j % w)];
    x = tile(base, d, ROWS);
    console.log(`data: CIC-IDS2017 corrected sample, ${data.rows.n} rows tiled to ${ROWS} × ${d}`);
  } else {
    x = synthetic(ROWS, d);
    console.log(`data: synthetic 5-cluster mixture, ${ROWS} × ${d}`);
  }

  const file = join(work, 'x.f32');
  writeFileSync(file, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const child = spawnSync(process.execPath, [join(here, 'iforest-speed.js'), file, String(ROWS), String(d)], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(child.stderr);
  const ours = JSON.parse(child.stdout.trim()) as Record<string, number>;
  const rate = (s: number) => Math.round(ROWS / s).toLocaleString('en-US');
  console.log('');
  console.log('| implementation | fit 100 trees (s) | score rows/s | peak RSS (MB) |');
  console.log('|---|---|---|---|');
  console.log(
    `| NADIR (range-aware, default) | ${ours.fit_s.toFixed(4)} | ${rate(ours.score_s)} | ${ours.rss_mb.toFixed(0)} |`,
  );
  console.log(`| NADIR (classic scoring) | – | ${rate(ours.score_classic_s)} | – |`);
  if (sk) {
    const s = py(SK_SPEED, [file, String(ROWS), String(d)]);
    if (s) {
      console.log(
        `| scikit-learn IsolationForest | ${s.fit_s.toFixed(4)} | ${rate(s.score_s)} | ${s.rss_mb.toFixed(0)} |`,
      );
      console.log('');
      console.log(
        `ratio NADIR / sklearn: fit ${(s.fit_s / ours.fit_s).toFixed(1)}× faster, score ${(s.score_s / ours.score_s).toFixed(1)}× faster (classic scoring ${(s.score_s / ours.score_classic_s).toFixed(1)}×)`,
      );
    }
  }

  if (!data || SEEDS < 1) return;
  // Quality on identical splits: NADIR defaults vs sklearn on raw features (median-imputed).
  console.log('');
  console.log(`## detection quality on identical splits (train on 80% of BENIGN, ${SEEDS} seeds)`);
  const { rows, labels, hashes } = data;
  const k = rows.plan.numericNames.length;
  const y = Uint8Array.from(labels, (l) => (l === BENIGN ? 0 : 1));
  const rawFile = join(work, 'raw.f64');
  writeFileSync(rawFile, Buffer.from(rows.numeric.buffer, rows.numeric.byteOffset, rows.numeric.byteLength));
  const yFile = join(work, 'y.u8');
  writeFileSync(yFile, y);
  const res: { seed: number; ours: [number, number]; sk?: [number, number]; skSame?: [number, number] }[] =
    [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const split = { kind: 'ratio' as const, ratio: 0.8, seed };
    const train = Uint8Array.from(labels, (l, i) => (l === BENIGN && inTrainPart(hashes[i], split) ? 1 : 0));
    const idx = [...train.keys()].filter((i) => train[i]);
    const sub = (ids: number[]): Rows => {
      const numeric = new Float64Array(ids.length * k);
      ids.forEach((r, j) => {
        numeric.set(rows.numeric.subarray(r * k, r * k + k), j * k);
      });
      return {
        plan: rows.plan,
        n: ids.length,
        numeric,
        strings: rows.plan.stringNames.map((_, s) => ids.map((r) => rows.strings[s][r])),
      };
    };
    const pipe = FeaturePipeline.fit(sub(idx));
    const everything = [...train.keys()];
    const forest = new IsolationForest({ seed });
    forest.fit({ data: pipe.transform(sub(idx)), rows: idx.length, cols: pipe.width });
    const testIds = [...train.keys()].filter((i) => !train[i]);
    const s = forest.score({ data: pipe.transform(sub(testIds)), rows: testIds.length, cols: pipe.width });
    const yt = testIds.map((i) => y[i]);
    const entry: (typeof res)[number] = { seed, ours: [auroc(s, yt), detectionAtFpr(s, yt, 0.01).tpr] };
    if (sk) {
      const trainFile = join(work, `train${seed}.u8`);
      writeFileSync(trainFile, train);
      const q = py(SK_QUALITY, [rawFile, String(k), trainFile, yFile, String(seed)]);
      if (q) entry.sk = [q.auroc, q.dr1];
      // The same detector comparison on NADIR's own features (after its pipeline).
      const featFile = join(work, `feat${seed}.f32`);
      const feats = pipe.transform(sub(everything));
      writeFileSync(featFile, Buffer.from(feats.buffer, feats.byteOffset, feats.byteLength));
      const q2 = py(SK_QUALITY, [featFile, String(pipe.width), trainFile, yFile, String(seed)]);
      if (q2) entry.skSame = [q2.auroc, q2.dr1];
    }
    res.push(entry);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = (xs: number[]) => Math.sqrt(mean(xs.map((v) => (v - mean(xs)) ** 2)));
  const fmt = (xs: number[]) => `${mean(xs).toFixed(3)} ± ${sd(xs).toFixed(3)}`;
  console.log('| detector | AUROC (mean ± sd) | DR@1%FPR (mean ± sd) |');
  console.log('|---|---|---|');
  console.log(
    `| NADIR iforest (defaults) | ${fmt(res.map((r) => r.ours[0]))} | ${fmt(res.map((r) => r.ours[1]))} |`,
  );
  const skr = res.filter((r) => r.sk);
  if (skr.length)
    console.log(
      `| scikit-learn IsolationForest (raw features) | ${fmt(skr.map((r) => r.sk![0]))} | ${fmt(skr.map((r) => r.sk![1]))} |`,
    );
  const sks = res.filter((r) => r.skSame);
  if (sks.length)
    console.log(
      `| scikit-learn IsolationForest (NADIR's features) | ${fmt(sks.map((r) => r.skSame![0]))} | ${fmt(sks.map((r) => r.skSame![1]))} |`,
    );
}

await main();
