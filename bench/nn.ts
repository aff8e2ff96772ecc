/**
 * Neural-core benchmark: the 78-64-32-16-32-64-78 autoencoder on one core, NADIR's WASM SIMD core
 * against PyTorch (one thread) in the same run when `/usr/bin/python3 -c 'import torch'` works.
 *
 *   npm run build && node dist/bench/nn.js [--rows 100000] [--epochs 3] [--reps 3]
 *
 * Prints training rows/s at batch 256 and 1024 (AdamW, MSE, no validation, no clipping — the same
 * work PyTorch does), scoring rows/s at batch 4096, single-row scoring latency (p50/p99), peak RSS
 * of each process, and the ratios.
 */
import { spawnSync } from 'node:child_process';
import { Rng } from '../src/core/rng.js';
import { Autoencoder, autoencoderSpecs } from '../src/detect/autoencoder/autoencoder.js';
import { DEFAULT_FIT, fitAutoencoder } from '../src/nn/fit.js';
import { SequenceRegressor } from '../src/nn/lstm.js';
import { Mlp } from '../src/nn/mlp.js';
import { onnxRuntime } from '../src/nn/onnx.js';

const args = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROWS = arg('rows', 100_000);
const EPOCHS = arg('epochs', 3);
const REPS = arg('reps', 3);
const D = 78;
const LAYERS = [64, 32, 16];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function data(): Float32Array {
  // Correlated features on a few latent factors, like scaled flow statistics.
  const rng = new Rng(7);
  const x = new Float32Array(ROWS * D);
  for (let i = 0; i < ROWS; i++) {
    const z = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
    for (let j = 0; j < D; j++) x[i * D + j] = z[j % 4] * (0.5 + (j % 7) / 7) + 0.1 * rng.normal();
  }
  return x;
}

const SEQ_T = 32;
const SEQ_F = 8;
const SEQ_H = 64;
const SEQ_N = 20_000;
const SEQ_BATCH = 256;

/** Sequences for the LSTM benchmark: SEQ_N × (32 × 8) inputs and 8 targets. */
function sequences(): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(3);
  const x = new Float32Array(SEQ_N * SEQ_T * SEQ_F);
  const y = new Float32Array(SEQ_N * SEQ_F);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  for (let i = 0; i < y.length; i++) y[i] = rng.normal();
  return { x, y };
}

function nadirLstm(seq: { x: Float32Array; y: Float32Array }): number {
  const runs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const m = new SequenceRegressor(SEQ_T, SEQ_F, SEQ_H, SEQ_F, SEQ_BATCH);
    m.init(r + 1);
    const t = performance.now();
    m.fit(seq.x, seq.y, SEQ_N, {
      ...DEFAULT_FIT,
      epochs: 1,
      batchSize: SEQ_BATCH,
      validationFraction: 0,
      clipNorm: 0,
      seed: r + 1,
    });
    runs.push(SEQ_N / ((performance.now() - t) / 1000));
  }
  return median(runs);
}

async function nadir(x: Float32Array) {
  const specs = autoencoderSpecs(D, { layers: LAYERS, activation: 'relu' });
  const train = (bs: number): number => {
    const runs: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const net = new Mlp(D, specs, bs);
      net.init(r + 1);
      const t = performance.now();
      fitAutoencoder(net, x, ROWS, {
        ...DEFAULT_FIT,
        epochs: EPOCHS,
        batchSize: bs,
        validationFraction: 0,
        clipNorm: 0,
        seed: r + 1,
      });
      runs.push((ROWS * EPOCHS) / ((performance.now() - t) / 1000));
    }
    return median(runs);
  };
  const train256 = train(256);
  const train1024 = train(1024);
  const ae = new Autoencoder({ layers: LAYERS, epochs: 1, validationFraction: 0 });
  ae.fit({ data: x.subarray(0, 10_000 * D), rows: 10_000, cols: D });
  const m = { data: x, rows: ROWS, cols: D };
  const out = new Float32Array(ROWS);
  const scoreRuns: number[] = [];
  for (let r = 0; r < REPS + 2; r++) {
    const t = performance.now();
    ae.score(m, out);
    scoreRuns.push(ROWS / ((performance.now() - t) / 1000));
  }
  const ortRuns: number[] = [];
  if (onnxRuntime())
    for (let r = 0; r < REPS + 2; r++) {
      const t = performance.now();
      await ae.scoreAsync(m);
      ortRuns.push(ROWS / ((performance.now() - t) / 1000));
    }
  const one = new Float32Array(1);
  const lat: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const row = { data: x.subarray((i % ROWS) * D, (i % ROWS) * D + D), rows: 1, cols: D };
    const t = performance.now();
    ae.score(row, one);
    lat.push((performance.now() - t) * 1000);
  }
  lat.sort((a, b) => a - b);
  return {
    train256,
    train1024,
    score4096: median(scoreRuns.slice(2)),
    scoreOrt: ortRuns.length ? median(ortRuns.slice(2)) : Number.NaN,
    p50us: lat[Math.floor(lat.length * 0.5)],
    p99us: lat[Math.floor(lat.length * 0.99)],
    rssMb: process.resourceUsage().maxRSS / 1024,
  };
}

const TORCH = String.raw`
import json, sys, time, resource
import numpy as np, torch
torch.set_num_threads(1)
rows, d, epochs, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = torch.from_numpy(np.fromfile(sys.argv[5], dtype=np.float32).reshape(rows, d))
def net():
    return torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 16), torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, d))
def train(bs):
    runs = []
    for r in range(reps):
        torch.manual_seed(r)
        m = net(); opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0); loss = torch.nn.MSELoss()
        t = time.perf_counter()
        for e in range(epochs):
            perm = torch.randperm(rows)
            for s in range(0, rows, bs):
                b = x[perm[s:s + bs]]
                opt.zero_grad(); l = loss(m(b), b); l.backward(); opt.step()
        runs.append(rows * epochs / (time.perf_counter() - t))
    return float(np.median(runs))
t256 = train(256); t1024 = train(1024)
class Fore(torch.nn.Module):
    def __init__(self):
        super().__init__(); self.lstm = torch.nn.LSTM(8, 64, batch_first=True); self.head = torch.nn.Linear(64, 8)
    def forward(self, s):
        o, _ = self.lstm(s); return self.head(o[:, -1, :])
sx = torch.from_numpy(np.fromfile(sys.argv[6], dtype=np.float32).reshape(-1, 32, 8))
sy = torch.from_numpy(np.fromfile(sys.argv[7], dtype=np.float32).reshape(-1, 8))
lruns = []
for r in range(reps):
    torch.manual_seed(r); m = Fore(); opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0); loss = torch.nn.MSELoss()
    t = time.perf_counter(); perm = torch.randperm(sx.shape[0])
    for s in range(0, sx.shape[0], 256):
        i = perm[s:s + 256]; opt.zero_grad(); l = loss(m(sx[i]), sy[i]); l.backward(); opt.step()
    lruns.append(sx.shape[0] / (time.perf_counter() - t))
lstm = float(np.median(lruns))
m = net().eval()
runs = []
with torch.no_grad():
    for r in range(reps + 2):
        t = time.perf_counter()
        for s in range(0, rows, 4096):
            b = x[s:s + 4096]; ((m(b) - b) ** 2).mean(dim=1)
        runs.append(rows / (time.perf_counter() - t))
    lat = []
    for i in range(20000):
        b = x[i % rows:i % rows + 1]
        t = time.perf_counter(); ((m(b) - b) ** 2).mean(dim=1); lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
print(json.dumps({"train256": t256, "train1024": t1024, "score4096": float(np.median(runs[2:])),
    "lstm": lstm, "p50us": lat[len(lat) // 2], "p99us": lat[int(len(lat) * 0.99)],
    "rssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "version": torch.__version__}))
`;

async function main() {
  const x = data();
  console.log(
    `autoencoder ${D}-${LAYERS.join('-')}-…-${D}, ${ROWS.toLocaleString()} rows, ${EPOCHS} epochs, one core`,
  );
  const n = await nadir(x);
  const seq = sequences();
  const lstmRate = nadirLstm(seq);
  const rows: [string, string, string, string][] = [];
  const fmt = (v: number) => Math.round(v).toLocaleString();
  let t: (Omit<typeof n, 'scoreOrt'> & { lstm: number }) | null = null;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status === 0) {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const f = join(mkdtempSync(join(tmpdir(), 'nadir-bench-')), 'x.f32');
    writeFileSync(f, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const fx = `${f}.seqx`;
    const fy = `${f}.seqy`;
    writeFileSync(fx, Buffer.from(seq.x.buffer));
    writeFileSync(fy, Buffer.from(seq.y.buffer));
    const r = spawnSync(
      '/usr/bin/python3',
      ['-c', TORCH, String(ROWS), String(D), String(EPOCHS), String(REPS), f, fx, fy],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } },
    );
    if (r.status === 0) t = JSON.parse(r.stdout.trim().split('\n').pop()!);
    else console.log(`PyTorch run failed: ${r.stderr.slice(-500)}`);
  } else console.log('PyTorch not available (/usr/bin/python3 -c "import torch" failed); NADIR only');
  const ratio = (a: number, b?: number, lowerIsBetter = false) =>
    b === undefined ? '–' : `${(lowerIsBetter ? b / a : a / b).toFixed(2)}×`;
  rows.push([
    'train rows/s, batch 256',
    fmt(n.train256),
    t ? fmt(t.train256) : '–',
    ratio(n.train256, t?.train256),
  ]);
  rows.push([
    'train rows/s, batch 1024',
    fmt(n.train1024),
    t ? fmt(t.train1024) : '–',
    ratio(n.train1024, t?.train1024),
  ]);
  rows.push([
    'score rows/s, WASM core',
    fmt(n.score4096),
    t ? fmt(t.score4096) : '–',
    ratio(n.score4096, t?.score4096),
  ]);
  rows.push([
    'score rows/s, ONNX Runtime',
    Number.isNaN(n.scoreOrt) ? '–' : fmt(n.scoreOrt),
    t ? fmt(t.score4096) : '–',
    Number.isNaN(n.scoreOrt) ? '–' : ratio(n.scoreOrt, t?.score4096),
  ]);
  rows.push([
    'single row p50 (µs)',
    n.p50us.toFixed(1),
    t ? t.p50us.toFixed(1) : '–',
    ratio(n.p50us, t?.p50us, true),
  ]);
  rows.push([
    'single row p99 (µs)',
    n.p99us.toFixed(1),
    t ? t.p99us.toFixed(1) : '–',
    ratio(n.p99us, t?.p99us, true),
  ]);
  rows.push([
    `LSTM train seq/s (${SEQ_T}×${SEQ_F}, ${SEQ_H} units)`,
    fmt(lstmRate),
    t ? fmt(t.lstm) : '–',
    ratio(lstmRate, t?.lstm),
  ]);
  rows.push([
    'peak RSS (MB)',
    n.rssMb.toFixed(0),
    t ? t.rssMb.toFixed(0) : '–',
    ratio(n.rssMb, t?.rssMb, true),
  ]);
  const w = [34, 12, 12, 8];
  console.log(
    ['', 'NADIR', 'PyTorch', 'ratio'].map((s, i) => (i ? s.padStart(w[i]) : s.padEnd(w[i]))).join(' '),
  );
  for (const r of rows) console.log(r.map((s, i) => (i ? s.padStart(w[i]) : s.padEnd(w[i]))).join(' '));
}

await main();
