/**
 * Ensemble of unsupervised detectors: each member is fitted on the same rows, its scores are
 * normalised to robust z-scores on the training rows ((s − median) / (1.4826 · MAD)), and the
 * ensemble score is their mean. Scales differ wildly between detectors (an isolation forest's
 * 0..1, an SVM margin, a reconstruction error), so normalisation is what makes averaging mean
 * anything. Explanations are the members' credits, each normalised to sum 1, averaged.
 */
import type { FeatureSchema } from '../../features/pipeline.js';
import {
  type Detector,
  detectorFactory,
  type Matrix,
  registerDetector,
  type WeightArray,
} from '../detector.js';

export interface EnsembleParams {
  /** Member detector kinds, comma-separated (unsupervised ones). */
  members: string;
  seed: number;
}

export const DEFAULT_ENSEMBLE: EnsembleParams = { members: 'iforest,ocsvm', seed: 42 };

export class Ensemble implements Detector {
  readonly kind = 'ensemble';
  readonly p: EnsembleParams;
  private members: Detector[] = [];
  private median = new Float64Array(0);
  private scale = new Float64Array(0);
  /** Parameters handed to every member (e.g. --trees, --epochs), defined ones only. */
  private readonly memberOptions: Record<string, unknown> = {};
  private schema: FeatureSchema | null = null;
  onFitProgress?: (done: number, total: number, note: string) => void;

  constructor(params: Partial<EnsembleParams> & Record<string, unknown> = {}) {
    this.p = {
      members: typeof params.members === 'string' ? params.members : DEFAULT_ENSEMBLE.members,
      seed: typeof params.seed === 'number' ? params.seed : DEFAULT_ENSEMBLE.seed,
    };
    for (const [k, v] of Object.entries(params))
      if (v !== undefined && k !== 'members' && k !== 'memberParams' && k !== 'median' && k !== 'scale')
        this.memberOptions[k] = v;
    const kinds = this.kinds();
    if (kinds.length < 2) throw new Error('ensemble: give at least two member detectors');
    for (const k of kinds) {
      if (k === 'ensemble') throw new Error('ensemble: an ensemble cannot contain an ensemble');
      if (detectorFactory(k).supervised)
        throw new Error(`ensemble: ${k} is supervised; members must be unsupervised`);
    }
  }

  kinds(): string[] {
    return this.p.members
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  configure(schema: FeatureSchema): void {
    this.schema = schema;
  }

  fit(x: Matrix): void {
    const kinds = this.kinds();
    this.members = kinds.map((k) => detectorFactory(k).create({ ...this.memberOptions, seed: this.p.seed }));
    if (this.schema) for (const m of this.members) m.configure?.(this.schema);
    this.median = new Float64Array(kinds.length);
    this.scale = new Float64Array(kinds.length);
    this.members.forEach((m, i) => {
      m.fit(x);
      const s = Float64Array.from(m.score(x)).sort();
      const med = s[Math.floor(s.length / 2)];
      const dev = Float64Array.from(s, (v) => Math.abs(v - med)).sort();
      const mad = dev[Math.floor(dev.length / 2)] * 1.4826;
      // A member whose training scores barely vary is scaled by their standard deviation instead.
      let sd = 0;
      for (const v of s) sd += (v - med) ** 2;
      sd = Math.sqrt(sd / s.length);
      this.median[i] = med;
      this.scale[i] = mad > 1e-12 ? mad : sd > 1e-12 ? sd : 1;
      this.onFitProgress?.(i + 1, kinds.length, kinds[i]);
    });
  }

  score(x: Matrix, out = new Float32Array(x.rows)): Float32Array {
    const acc = new Float64Array(x.rows);
    this.members.forEach((m, j) => {
      const s = m.score(x);
      for (let i = 0; i < x.rows; i++) acc[i] += (s[i] - this.median[j]) / this.scale[j];
    });
    for (let i = 0; i < x.rows; i++) out[i] = acc[i] / this.members.length;
    return out;
  }

  explain(x: Matrix, row: number): Float64Array {
    const credit = new Float64Array(x.cols);
    for (const m of this.members) {
      const c = m.explain(x, row);
      let total = 0;
      for (const v of c) total += v > 0 ? v : 0;
      if (total > 0)
        for (let j = 0; j < c.length; j++) credit[j] += (c[j] > 0 ? c[j] : 0) / total / this.members.length;
    }
    return credit;
  }

  params(): Record<string, unknown> {
    return {
      ...this.p,
      median: Array.from(this.median),
      scale: Array.from(this.scale),
      memberParams: this.members.map((m) => m.params()),
    };
  }

  weights(): Record<string, WeightArray> {
    const w: Record<string, WeightArray> = {};
    this.members.forEach((m, i) => {
      for (const [k, v] of Object.entries(m.weights())) w[`${i}.${k}`] = v;
    });
    return w;
  }

  static restore(params: Record<string, unknown>, weights: Record<string, WeightArray>): Ensemble {
    const e = new Ensemble(params as Partial<EnsembleParams>);
    const kinds = e.kinds();
    const mp = params.memberParams as Record<string, unknown>[];
    if (!Array.isArray(mp) || mp.length !== kinds.length)
      throw new Error('ensemble: member parameters missing');
    e.members = kinds.map((k, i) => {
      const w: Record<string, WeightArray> = {};
      for (const [key, v] of Object.entries(weights))
        if (key.startsWith(`${i}.`)) w[key.slice(`${i}.`.length)] = v;
      const m = detectorFactory(k).restore(mp[i], w);
      return m;
    });
    e.median = Float64Array.from(params.median as number[]);
    e.scale = Float64Array.from(params.scale as number[]);
    return e;
  }
}

registerDetector({
  kind: 'ensemble',
  description: 'mean of robust z-scored member detectors (default iforest + ocsvm; unsupervised)',
  create: (params) => new Ensemble(params as Partial<EnsembleParams>),
  restore: (params, weights) => Ensemble.restore(params, weights),
});
