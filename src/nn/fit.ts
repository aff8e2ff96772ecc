/**
 * Training loops for the numeric core: mini-batch AdamW with a seeded shuffle, a validation split
 * for early stopping (best weights restored), learning-rate halving on plateaus, gradient-norm
 * clipping, and a divergence check that stops with a clear error instead of saving NaN weights.
 * The whole training matrix is copied into WASM memory once; each batch is gathered there by a
 * kernel, so an epoch allocates nothing.
 */
import { Rng } from '../core/rng.js';
import type { Engine, Tensor } from './engine.js';
import { Adam, type Mlp } from './mlp.js';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Share of rows held out to watch for overfitting (0: none; then no early stopping). */
  validationFraction: number;
  /** Epochs without validation improvement before stopping. */
  patience: number;
  /** Standard deviation of Gaussian noise added to inputs while training (denoising). */
  noise: number;
  /** Gradient L2 norm cap (0: none). */
  clipNorm: number;
  seed: number;
  onEpoch?: (e: EpochReport) => void;
}

export const DEFAULT_FIT: FitOptions = {
  epochs: 40,
  batchSize: 256,
  lr: 1e-3,
  weightDecay: 0,
  validationFraction: 0.1,
  patience: 5,
  noise: 0,
  clipNorm: 5,
  seed: 42,
};

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  seconds: number;
}

export interface FitResult {
  epochs: EpochReport[];
  bestEpoch: number;
  bestValLoss: number;
  stoppedEarly: boolean;
}

/** The training hyper-parameters every neural detector exposes (and saves in its manifest). */
export interface TrainingParams {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  validationFraction: number;
  patience: number;
  seed: number;
}

export const DEFAULT_TRAINING: TrainingParams = {
  epochs: 100,
  batchSize: DEFAULT_FIT.batchSize,
  lr: DEFAULT_FIT.lr,
  weightDecay: 0,
  validationFraction: DEFAULT_FIT.validationFraction,
  patience: DEFAULT_FIT.patience,
  seed: 42,
};

/** Loop options from a detector's parameters, reporting each epoch to `onProgress`. */
export function fitOptionsFor(
  p: TrainingParams & { noise?: number },
  batchSize: number,
  onProgress?: (done: number, total: number, note: string) => void,
): FitOptions {
  return {
    ...DEFAULT_FIT,
    epochs: p.epochs,
    batchSize,
    lr: p.lr,
    weightDecay: p.weightDecay,
    noise: p.noise ?? 0,
    validationFraction: p.validationFraction,
    patience: p.patience,
    seed: p.seed,
    onEpoch: (e) => onProgress?.(e.epoch, p.epochs, epochNote(e)),
  };
}

export class TrainingError extends Error {}

/** Short progress text of an epoch: training and validation loss. */
export function epochNote(e: EpochReport): string {
  return `loss ${e.trainLoss.toPrecision(3)} val ${e.valLoss.toPrecision(3)}`;
}

/**
 * What a training loop needs from a model: its parameters, and a function that takes the batch
 * of rows whose indices (int32) lie at `idx` in engine memory, runs the forward pass, returns the
 * mean loss, and with `train` also runs the backward pass (filling the parameters' gradients).
 */
export interface Task {
  engine: Engine;
  rows: number;
  maxBatch: number;
  params: { p: Tensor; g: Tensor }[];
  batchLoss(idx: number, m: number, train: boolean): number;
}

/** Mini-batch AdamW over a task with validation, early stopping and best-weight restore. */
export function fitLoop(task: Task, opts: FitOptions): FitResult {
  const n = task.rows;
  if (n < 2) throw new TrainingError(`cannot train on ${n} row(s)`);
  const e = task.engine;
  const k = e.kernels;
  const rng = new Rng(opts.seed);
  const bs = Math.max(1, Math.min(opts.batchSize, task.maxBatch));
  const order = e.int32(n);
  const ord = order.data();
  for (let i = 0; i < n; i++) ord[i] = i;
  rng.shuffle(ord);
  const nVal =
    opts.validationFraction > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * opts.validationFraction))) : 0;
  const nTrain = n - nVal;
  const params = task.params;
  const opt = new Adam(e, params, opts.lr, 0.9, 0.999, 1e-8, opts.weightDecay);
  const best = params.map((q) => e.tensor(q.p.rows, q.p.cols));
  const saveBest = (): void => {
    for (let i = 0; i < params.length; i++) k.copy(params[i].p.size, params[i].p.ptr, best[i].ptr);
  };
  const restoreBest = (): void => {
    for (let i = 0; i < params.length; i++) k.copy(params[i].p.size, best[i].ptr, params[i].p.ptr);
  };
  const valLoss = (): number => {
    if (nVal === 0) return Number.NaN;
    let total = 0;
    for (let s = 0; s < nVal; s += task.maxBatch) {
      const m = Math.min(task.maxBatch, nVal - s);
      total += task.batchLoss(order.ptr + (nTrain + s) * 4, m, false) * m;
    }
    return total / nVal;
  };

  const epochs: EpochReport[] = [];
  let bestLoss = Number.POSITIVE_INFINITY;
  let bestEpoch = 0;
  let sinceBest = 0;
  let stoppedEarly = false;
  saveBest();
  for (let ep = 1; ep <= opts.epochs; ep++) {
    const t0 = performance.now();
    // Shuffle the training part only; the validation rows stay fixed at the end.
    rng.shuffle(order.data().subarray(0, nTrain));
    let sum = 0;
    for (let s = 0; s < nTrain; s += bs) {
      const m = Math.min(bs, nTrain - s);
      sum += task.batchLoss(order.ptr + s * 4, m, true) * m;
      if (opts.clipNorm > 0) opt.clip(opts.clipNorm);
      opt.step();
    }
    const trainLoss = sum / nTrain;
    const vl = valLoss();
    if (!Number.isFinite(trainLoss) || (nVal > 0 && !Number.isFinite(vl)))
      throw new TrainingError(
        `training diverged at epoch ${ep} (loss ${trainLoss}); lower the learning rate or check the input scaling`,
      );
    const report = {
      epoch: ep,
      trainLoss,
      valLoss: vl,
      lr: opt.lr,
      seconds: (performance.now() - t0) / 1000,
    };
    epochs.push(report);
    opts.onEpoch?.(report);
    const watched = nVal > 0 ? vl : trainLoss;
    if (watched < bestLoss * (1 - 1e-4)) {
      bestLoss = watched;
      bestEpoch = ep;
      sinceBest = 0;
      saveBest();
    } else {
      sinceBest++;
      // Halve the step on a plateau; stop when patience runs out (with a validation split).
      if (sinceBest % 2 === 0) opt.lr *= 0.5;
      if (nVal > 0 && sinceBest >= opts.patience) {
        stoppedEarly = true;
        break;
      }
    }
  }
  restoreBest();
  return { epochs, bestEpoch, bestValLoss: bestLoss, stoppedEarly };
}

/** Throws a TrainingError naming the first non-finite value of an n × d matrix. */
export function checkFinite(x: Float32Array, n: number, d: number): void {
  for (let i = 0; i < n * d; i++)
    if (!Number.isFinite(x[i]))
      throw new TrainingError(`training value at row ${Math.floor(i / d)}, column ${i % d} is not finite`);
}

/**
 * Trains `net` to reconstruct its input (an autoencoder): rows of `x` (n × d, row-major).
 */
export function fitAutoencoder(net: Mlp, x: Float32Array, n: number, opts: FitOptions): FitResult {
  const d = net.inDim;
  if (net.outDim !== d) throw new Error('an autoencoder must output as many columns as it reads');
  if (n < 2) throw new TrainingError(`cannot train on ${n} row(s)`);
  checkFinite(x, n, d);
  const e = net.engine;
  const k = e.kernels;
  const data = e.tensor(n, d);
  data.data.set(x.subarray(0, n * d));
  const clean = e.tensor(net.maxBatch, d);
  const noiseState = e.rngState(opts.seed ^ 0x2545f491);
  return fitLoop(
    {
      engine: e,
      rows: n,
      maxBatch: net.maxBatch,
      params: net.params(),
      batchLoss: (idx, m, train) => {
        const noisy = train && opts.noise > 0;
        const target: Tensor = noisy ? clean : net.input;
        k.gatherRows(m, d, data.ptr, idx, target.ptr);
        if (noisy) k.addGaussian(m * d, clean.ptr, opts.noise, noiseState, net.input.ptr);
        net.forward(m, net.input, train);
        const loss = k.mse(m, d, net.output.ptr, target.ptr, train ? net.dOutput.ptr : 0);
        if (train) net.backward(m);
        return loss;
      },
    },
    opts,
  );
}
