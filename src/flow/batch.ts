/**
 * Finished flows → FlowBatch, the columnar unit models score, so `nadir detect` takes captures the
 * way it takes CSV files. Every feature is offered both as a number and, for identifiers and the
 * protocol, as text: a model binds each input by name in the kind it was trained with.
 */
import type { ColumnPlan, FlowBatch } from '../core/records.js';
import { COL, FLOW_COLUMNS } from './features.js';
import type { FlowRow } from './meter.js';

const TEXT = ['Flow ID', 'Src IP', 'Dst IP', 'Timestamp'];
const NUMERIC = FLOW_COLUMNS.filter((c) => !TEXT.includes(c));
const STRINGS = ['Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp', 'Protocol'];

export function capturePlan(file: string): ColumnPlan {
  return {
    file,
    names: [...FLOW_COLUMNS],
    numericNames: [...NUMERIC],
    numericPos: Int32Array.from(NUMERIC, (c) => COL[c]),
    stringNames: STRINGS,
    stringPos: Int32Array.from(STRINGS, (c) => COL[c as keyof typeof COL]),
    labelPos: -1,
    labelName: null,
    roles: {},
    key: 'nadir-flow-meter',
  };
}

/** Collects flows into batches of `size` rows. */
export class FlowBatcher {
  private rows: FlowRow[] = [];
  readonly ready: FlowBatch[] = [];
  private count = 0;

  constructor(
    private readonly plan: ColumnPlan,
    private readonly size = 4096,
  ) {}

  add(f: FlowRow): void {
    this.rows.push(f);
    if (this.rows.length >= this.size) this.flush();
  }

  flush(): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    this.rows = [];
    const k = NUMERIC.length;
    const numeric = new Float64Array(rows.length * k);
    const pos = this.plan.numericPos;
    const strings = STRINGS.map(() => new Array<string>(rows.length));
    const lines = new Uint32Array(rows.length);
    rows.forEach((f, i) => {
      for (let j = 0; j < k; j++) numeric[i * k + j] = f.values[pos[j]];
      strings[0][i] = f.flowId;
      strings[1][i] = f.srcIp;
      strings[2][i] = String(f.srcPort);
      strings[3][i] = f.dstIp;
      strings[4][i] = String(f.dstPort);
      strings[5][i] = f.timestamp;
      strings[6][i] = String(f.protocol);
      lines[i] = ++this.count;
    });
    this.ready.push({
      plan: this.plan,
      fileIndex: 0,
      n: rows.length,
      numeric,
      strings,
      labels: null,
      rawLabels: null,
      lines,
      rowHash: new Uint32Array(rows.length),
    });
  }
}
