/**
 * The feature pipeline: raw flow columns → a dense Float32 matrix a detector can use.
 * Fitted on training rows only and saved inside the model bundle as the `FeatureSchema`, so
 * exactly the same mapping is applied when the model scores new data.
 *
 * Numeric columns: non-finite handling (NaN → training median, ±Infinity → training max/min),
 * optional signed log1p for heavy-tailed counters, robust (median / IQR) or standard scaling.
 * Categorical columns: the most frequent values become categories (the rest `<other>`), encoded
 * one-hot or as an index. Columns that are constant in training carry no information and are
 * dropped, with the reason recorded.
 */
import { UserError } from '../core/diagnostics.js';
import { meanStd, quantileSorted, slog1p } from '../core/stats.js';

export type Scaling = 'robust' | 'standard' | 'none';
export type TransformMode = 'auto' | 'log' | 'none';
export type Encoding = 'onehot' | 'index';

export interface NumericFeature {
  kind: 'numeric';
  name: string;
  transform: 'none' | 'slog1p';
  /** Replacement for NaN / missing (raw units). */
  fillNaN: number;
  /** Replacements for +Infinity / -Infinity (raw units). */
  posInf: number;
  negInf: number;
  /** Scaling applied after the transform: (t(x) - center) / scale. */
  center: number;
  scale: number;
  /** Training median in raw units: the "typical" value shown in explanations. */
  median: number;
}

export interface CategoricalFeature {
  kind: 'categorical';
  name: string;
  /** Known categories; anything else maps to `<other>`. */
  categories: string[];
  encoding: Encoding;
  /** Most frequent training value. */
  mode: string;
}

export type InputFeature = NumericFeature | CategoricalFeature;

export interface FeatureOptions {
  scaling: Scaling;
  transform: TransformMode;
  encoding: Encoding;
  maxCategories: number;
}

export const DEFAULT_FEATURE_OPTIONS: FeatureOptions = {
  scaling: 'robust',
  transform: 'auto',
  encoding: 'onehot',
  maxCategories: 32,
};

/** Saved in the model manifest. */
export interface FeatureSchema {
  version: 1;
  options: FeatureOptions;
  inputs: InputFeature[];
  /** Name of every output dimension, e.g. `Flow Duration` or `Protocol=6`. */
  outputs: string[];
  /** Index into `inputs` of each output dimension. */
  outputInput: number[];
  dropped: { name: string; reason: string }[];
}

/** Column layout of a batch: which numeric and text columns it carries, by name. */
export interface Layout {
  numericNames: string[];
  stringNames: string[];
  key: string;
  file?: string;
}

/** Rows in a layout: numeric row-major (n × numericNames.length), strings[slot][row]. */
export interface Rows {
  plan: Layout;
  n: number;
  numeric: Float64Array;
  strings: string[][];
}

export const OTHER = '<other>';

export function missingText(missing: string[]): string {
  const shown =
    missing.length > 12
      ? `${missing.slice(0, 12).join(', ')}, … (${missing.length - 12} more)`
      : missing.join(', ');
  return `the model needs ${missing.length} column(s) this data lacks: ${shown}`;
}

export class MissingColumnsError extends UserError {
  constructor(
    readonly file: string | undefined,
    readonly missing: string[],
  ) {
    super(
      `${file ? `${file}: ` : ''}${missingText(missing)}`,
      'score data with the same columns the model was trained on (see `manifest.json` → features.inputs), or retrain on this data',
    );
  }
}

interface Binding {
  /** Per input: numeric slot or string slot in the layout. */
  src: Int32Array;
}

export class FeaturePipeline {
  private readonly bindings = new Map<string, Binding>();
  private readonly catIndex: (Map<string, number> | null)[];
  /** Output offset of each input. */
  private readonly offset: Int32Array;

  constructor(readonly schema: FeatureSchema) {
    this.catIndex = schema.inputs.map((f) =>
      f.kind === 'categorical' ? new Map(f.categories.map((c, i) => [c, i + 1])) : null,
    );
    this.offset = new Int32Array(schema.inputs.length);
    let o = 0;
    schema.inputs.forEach((f, i) => {
      this.offset[i] = o;
      o += f.kind === 'categorical' && f.encoding === 'onehot' ? f.categories.length + 1 : 1;
    });
  }

  get width(): number {
    return this.schema.outputs.length;
  }

  /** Fits the pipeline on training rows. */
  static fit(rows: Rows, options: Partial<FeatureOptions> = {}): FeaturePipeline {
    const opts = { ...DEFAULT_FEATURE_OPTIONS, ...options };
    const { plan: layout, n } = rows;
    const k = layout.numericNames.length;
    const inputs: InputFeature[] = [];
    const dropped: { name: string; reason: string }[] = [];
    const col = new Float64Array(n);
    for (let j = 0; j < k; j++) {
      const name = layout.numericNames[j];
      let m = 0;
      let posInf = false;
      let negInf = false;
      for (let i = 0; i < n; i++) {
        const v = rows.numeric[i * k + j];
        if (Number.isFinite(v)) col[m++] = v;
        else if (v === Number.POSITIVE_INFINITY) posInf = true;
        else if (v === Number.NEGATIVE_INFINITY) negInf = true;
      }
      if (m === 0) {
        dropped.push({ name, reason: 'no finite values in training data' });
        continue;
      }
      const finite = col.subarray(0, m).slice().sort();
      const lo = finite[0];
      const hi = finite[m - 1];
      if (lo === hi && !posInf && !negInf) {
        dropped.push({ name, reason: `constant in training data (${lo})` });
        continue;
      }
      const med = quantileSorted(finite, 0.5);
      const transform = chooseTransform(opts.transform, finite);
      const f: NumericFeature = {
        kind: 'numeric',
        name,
        transform,
        fillNaN: med,
        posInf: hi,
        negInf: lo,
        center: 0,
        scale: 1,
        median: med,
      };
      // Scaling statistics on the filled, transformed column.
      const t = new Float64Array(n);
      for (let i = 0; i < n; i++) t[i] = applyNumeric(f, rows.numeric[i * k + j]);
      fitScale(f, t, opts.scaling);
      inputs.push(f);
    }
    for (let s = 0; s < layout.stringNames.length; s++) {
      const name = layout.stringNames[s];
      const counts = new Map<string, number>();
      const vals = rows.strings[s];
      for (let i = 0; i < n; i++) counts.set(vals[i], (counts.get(vals[i]) ?? 0) + 1);
      const ordered = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      if (ordered.length <= 1) {
        dropped.push({ name, reason: `constant in training data (${ordered[0]?.[0] ?? 'empty'})` });
        continue;
      }
      const categories = ordered.slice(0, opts.maxCategories).map(([c]) => c);
      inputs.push({ kind: 'categorical', name, categories, encoding: opts.encoding, mode: ordered[0][0] });
    }
    const outputs: string[] = [];
    const outputInput: number[] = [];
    inputs.forEach((f, i) => {
      if (f.kind === 'numeric' || f.encoding === 'index') {
        outputs.push(f.name);
        outputInput.push(i);
      } else {
        for (const c of [...f.categories, OTHER]) {
          outputs.push(`${f.name}=${c}`);
          outputInput.push(i);
        }
      }
    });
    return new FeaturePipeline({ version: 1, options: opts, inputs, outputs, outputInput, dropped });
  }

  /** Names of the input columns this pipeline needs. */
  requiredColumns(): string[] {
    return this.schema.inputs.map((f) => f.name);
  }

  private bind(layout: Layout): Binding {
    let b = this.bindings.get(layout.key);
    if (b) return b;
    const num = new Map(layout.numericNames.map((nm, i) => [nm, i]));
    const str = new Map(layout.stringNames.map((nm, i) => [nm, i]));
    const src = new Int32Array(this.schema.inputs.length);
    const missing: string[] = [];
    this.schema.inputs.forEach((f, i) => {
      const idx = f.kind === 'numeric' ? num.get(f.name) : str.get(f.name);
      if (idx === undefined)
        missing.push(f.kind === 'numeric' && str.has(f.name) ? `${f.name} (as a number)` : f.name);
      else src[i] = idx;
    });
    if (missing.length) throw new MissingColumnsError(layout.file, missing);
    b = { src };
    this.bindings.set(layout.key, b);
    return b;
  }

  /** Checks that rows in this layout can be scored; throws MissingColumnsError naming what is absent. */
  check(layout: Layout): void {
    this.bind(layout);
  }

  /** Transforms rows into a new row-major Float32Array (n × width). */
  transform(rows: Rows, out?: Float32Array): Float32Array {
    const { plan: layout, n } = rows;
    const { src } = this.bind(layout);
    const w = this.width;
    const k = layout.numericNames.length;
    const x = out && out.length >= n * w ? out : new Float32Array(n * w);
    const inputs = this.schema.inputs;
    for (let f = 0; f < inputs.length; f++) {
      const spec = inputs[f];
      const o = this.offset[f];
      const s = src[f];
      if (spec.kind === 'numeric') {
        const c = spec.center;
        const inv = 1 / spec.scale;
        for (let i = 0; i < n; i++) {
          const v = (applyNumeric(spec, rows.numeric[i * k + s]) - c) * inv;
          // Beyond float32 range a value would become ±Infinity; clamp so scores stay finite.
          x[i * w + o] = v > F32_MAX ? F32_MAX : v < -F32_MAX ? -F32_MAX : v;
        }
      } else {
        const idx = this.catIndex[f]!;
        const vals = rows.strings[s];
        if (spec.encoding === 'index') {
          for (let i = 0; i < n; i++) x[i * w + o] = idx.get(vals[i]) ?? 0;
        } else {
          const other = spec.categories.length;
          for (let i = 0; i < n; i++) {
            const base = i * w + o;
            for (let c = 0; c <= other; c++) x[base + c] = 0;
            const ci = idx.get(vals[i]);
            x[base + (ci === undefined ? other : ci - 1)] = 1;
          }
        }
      }
    }
    return x;
  }

  /** Observed raw value of input `f` in row i (for explanations). */
  rawValue(rows: Rows, i: number, f: number): number | string {
    const { src } = this.bind(rows.plan);
    const spec = this.schema.inputs[f];
    if (spec.kind === 'numeric') return rows.numeric[i * rows.plan.numericNames.length + src[f]];
    return rows.strings[src[f]][i];
  }

  /** Typical training value of input `f`. */
  typical(f: number): number | string {
    const spec = this.schema.inputs[f];
    return spec.kind === 'numeric' ? spec.median : spec.mode;
  }
}

/** Largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

/** Fill non-finite values, then transform (no scaling). */
export function applyNumeric(f: NumericFeature, v: number): number {
  if (Number.isNaN(v)) v = f.fillNaN;
  else if (v === Number.POSITIVE_INFINITY) v = f.posInf;
  else if (v === Number.NEGATIVE_INFINITY) v = f.negInf;
  return f.transform === 'slog1p' ? slog1p(v) : v;
}

/**
 * `auto` applies slog1p to heavy-tailed columns: those whose largest magnitude is beyond 100
 * and more than 10 interquartile ranges above the upper quartile (byte and packet counters,
 * durations, rates); small bounded columns (flags, ratios) keep their scale.
 */
function chooseTransform(mode: TransformMode, sorted: Float64Array): 'none' | 'slog1p' {
  if (mode === 'none') return 'none';
  if (mode === 'log') return 'slog1p';
  const q1 = quantileSorted(sorted, 0.25);
  const q3 = quantileSorted(sorted, 0.75);
  const maxAbs = Math.max(Math.abs(sorted[0]), Math.abs(sorted[sorted.length - 1]));
  const iqr = q3 - q1;
  return maxAbs > 100 && maxAbs - q3 > 10 * Math.max(iqr, 1) ? 'slog1p' : 'none';
}

function fitScale(f: NumericFeature, t: Float64Array, scaling: Scaling): void {
  if (scaling === 'none') return;
  const ms = meanStd(t);
  if (scaling === 'standard') {
    f.center = ms.mean;
    f.scale = ms.std > 0 ? ms.std : 1;
    return;
  }
  const s = t.slice().sort();
  const med = quantileSorted(s, 0.5);
  const iqr = quantileSorted(s, 0.75) - quantileSorted(s, 0.25);
  f.center = med;
  // IQR / 1.349 is the standard deviation of a normal distribution with that IQR.
  f.scale = iqr > 0 ? iqr / 1.349 : ms.std > 0 ? ms.std : 1;
}
