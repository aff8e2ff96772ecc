/**
 * The records that cross every boundary after assembly (DESIGN.md §2). Documented for users in
 * docs/records.md; keep the two in step.
 */

/**
 * One flow, whatever its source (a CIC CSV row, a flow meter's output, a NetFlow record).
 * Identity fields are optional because some sources lack them (MachineLearningCVE has no IPs).
 */
export interface FlowRecord {
  flowId?: string;
  srcIp?: string;
  srcPort?: number;
  dstIp?: string;
  dstPort?: number;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...). */
  protocol?: number;
  /** Flow start as written by the source (CIC writes local wall-clock text). */
  timestamp?: string;
  /** Numeric features by canonical column name (see docs/features.md), e.g. `Flow Duration` in µs. */
  features: Record<string, number>;
  /** Categorical features by column name. */
  categories?: Record<string, string>;
  /** Canonical threat type when the source is labelled (`BENIGN`, `DDoS`, `PortScan`, ...). */
  label?: string;
  /** The label exactly as the source wrote it. */
  rawLabel?: string;
  /** Where the record came from: file and 1-based line. */
  origin?: { file: string; line: number };
}

/** One feature's part in a verdict: what was observed, what is typical, and how much it mattered. */
export interface Contribution {
  feature: string;
  /** Observed value (number, or category text). */
  value: number | string;
  /** Typical value in the training data (median, or most frequent category). */
  typical: number | string;
  /** Share of the anomaly attributed to this feature, 0..1; shares of one verdict sum to ≤ 1. */
  share: number;
}

/** A detector's judgement of one flow. */
export interface Verdict {
  /** Higher = more anomalous. Scale depends on the detector (isolation forest: 0..1). */
  score: number;
  /** The calibrated threshold the score was compared with. */
  threshold: number;
  isAnomaly: boolean;
  /** Predicted threat type when a classifier ran; `null` from unsupervised detectors. */
  threatType: string | null;
  /** The features that contributed most (present for anomalies; on request for all). */
  contributions?: Contribution[];
  /** Model id that produced the verdict. */
  model: string;
}

/** Per-file plan saying how CSV columns map onto features (see ingest/table.ts). */
export interface ColumnPlan {
  file: string;
  /** Canonical name of every CSV column, in file order. */
  names: string[];
  /** Names of the numeric slots, and the CSV position each is read from. */
  numericNames: string[];
  numericPos: Int32Array;
  /** Names of the text slots (identifiers and categorical columns), and their CSV positions. */
  stringNames: string[];
  stringPos: Int32Array;
  /** CSV position of the label column, or -1. */
  labelPos: number;
  labelName: string | null;
  /** Column name → role decided for it, for reporting. */
  roles: Record<string, string>;
  /** Identity of the plan, for caches keyed on the column layout. */
  key: string;
}

/**
 * A batch of flows in columnar, typed-array form: the unit that moves through ingest → features →
 * detectors. Rows are row-major in `numeric` (n × plan.numericNames.length).
 */
export interface FlowBatch {
  plan: ColumnPlan;
  fileIndex: number;
  n: number;
  numeric: Float64Array;
  /** strings[slot][row], slot as in plan.stringNames. */
  strings: string[][];
  /** Canonical labels, or null when the file has no label column. */
  labels: string[] | null;
  rawLabels: string[] | null;
  /** 1-based source line of each row. */
  lines: Uint32Array;
  /** Content hash of each row's bytes (seeded), for reproducible splits. */
  rowHash: Uint32Array;
}

/**
 * Turns one row of a batch into a FlowRecord (for APIs and output; not used on hot paths).
 * With `withFeatures` false the numeric features are left out (identity, categories, label only).
 */
export function batchRow(batch: FlowBatch, i: number, withFeatures = true): FlowRecord {
  const p = batch.plan;
  const features: Record<string, number> = {};
  const k = p.numericNames.length;
  if (withFeatures) for (let j = 0; j < k; j++) features[p.numericNames[j]] = batch.numeric[i * k + j];
  const rec: FlowRecord = { features, origin: { file: p.file, line: batch.lines[i] } };
  const categories: Record<string, string> = {};
  let nCat = 0;
  for (let s = 0; s < p.stringNames.length; s++) {
    const name = p.stringNames[s];
    const v = batch.strings[s]?.[i];
    if (v === undefined) continue;
    switch (name) {
      case 'Flow ID':
        rec.flowId = v;
        break;
      case 'Src IP':
        rec.srcIp = v;
        break;
      case 'Dst IP':
        rec.dstIp = v;
        break;
      case 'Src Port':
        rec.srcPort = Number(v);
        break;
      case 'Dst Port':
        rec.dstPort = Number(v);
        break;
      case 'Timestamp':
        rec.timestamp = v;
        break;
      case 'Protocol':
        rec.protocol = Number(v);
        categories[name] = v;
        nCat++;
        break;
      default:
        categories[name] = v;
        nCat++;
    }
  }
  if (nCat > 0) rec.categories = categories;
  if (batch.labels) rec.label = batch.labels[i];
  if (batch.rawLabels) rec.rawLabel = batch.rawLabels[i];
  return rec;
}
