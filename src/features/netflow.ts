/**
 * The NetFlow feature set: what a flow export (NetFlow v5/v9, IPFIX, sFlow after aggregation, Zeek
 * conn.log, Suricata flow events) can tell about a flow. No per-packet timing, no payload/header
 * split: packets, IP-level bytes, duration and the OR of the TCP flags per direction. Every source
 * NADIR reads maps onto it, CIC CSVs and the flow meter through `netflowFromCic`, so a model trained
 * with `nadir train --features netflow` on CIC data scores router exports. Definitions:
 * docs/features.md#netflow-feature-set.
 */
import type { ColumnPlan, FlowBatch } from '../core/records.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../decode/decode.js';
import { type Layout, MissingColumnsError, type Rows } from './pipeline.js';

/** The feature columns of the set, in order. Rates are per second; zero when the duration is 0. */
export const NETFLOW_FEATURES = [
  'Protocol',
  'Flow Duration',
  'Total Fwd Packet',
  'Total Bwd packets',
  'Fwd IP Bytes',
  'Bwd IP Bytes',
  'Flow IP Bytes/s',
  'Flow Packets/s',
  'Fwd Packets/s',
  'Bwd Packets/s',
  'Fwd IP Packet Size Mean',
  'Bwd IP Packet Size Mean',
  'Down/Up Ratio',
  'FIN Flag',
  'SYN Flag',
  'RST Flag',
  'PSH Flag',
  'ACK Flag',
  'URG Flag',
] as const;

/** Identifier columns of export rows (text), as in the flow meter's output. */
export const EXPORT_ID_COLUMNS = [
  'Flow ID',
  'Src IP',
  'Src Port',
  'Dst IP',
  'Dst Port',
  'Timestamp',
] as const;

/** Layout of `ExportRow.values`: the NetFlow features (identifier slots are not in it). */
export const NF = Object.fromEntries(NETFLOW_FEATURES.map((c, i) => [c, i])) as Record<
  (typeof NETFLOW_FEATURES)[number],
  number
>;

/** One flow from an export or a log, in the NetFlow feature set. */
export interface ExportRow {
  /** NETFLOW_FEATURES order. */
  values: Float64Array;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
  /** Flow start, ms since the epoch (NaN when unknown). */
  startMs: number;
  /** Who reported it: `exporter-ip/observation-domain`, a file name, … */
  source: string;
  /** Canonical label and the label as the source wrote it (Suricata alerts), when known. */
  label?: string;
  rawLabel?: string;
}

/** The base measurements of a flow; `exportRow` derives the rest. */
export interface FlowCounts {
  durationUs: number;
  fwdPackets: number;
  bwdPackets: number;
  fwdBytes: number;
  bwdBytes: number;
  /** OR of TCP flags seen in either direction (TCP header bits, as NetFlow's tcpControlBits). */
  tcpFlags: number;
}

/** Fills a NETFLOW_FEATURES vector from the base measurements (allocation-free with `out`). */
export function netflowValues(
  protocol: number,
  c: FlowCounts,
  out = new Float64Array(NETFLOW_FEATURES.length),
): Float64Array {
  const dur = c.durationUs > 0 ? c.durationUs : 0;
  const secs = dur / 1e6;
  const pf = c.fwdPackets;
  const pb = c.bwdPackets;
  const bytes = c.fwdBytes + c.bwdBytes;
  out[0] = protocol;
  out[1] = dur;
  out[2] = pf;
  out[3] = pb;
  out[4] = c.fwdBytes;
  out[5] = c.bwdBytes;
  out[6] = secs > 0 ? bytes / secs : 0;
  out[7] = secs > 0 ? (pf + pb) / secs : 0;
  out[8] = secs > 0 ? pf / secs : 0;
  out[9] = secs > 0 ? pb / secs : 0;
  out[10] = pf > 0 ? c.fwdBytes / pf : 0;
  out[11] = pb > 0 ? c.bwdBytes / pb : 0;
  out[12] = pf > 0 ? pb / pf : 0;
  const f = c.tcpFlags;
  out[13] = f & TCP_FIN ? 1 : 0;
  out[14] = f & TCP_SYN ? 1 : 0;
  out[15] = f & TCP_RST ? 1 : 0;
  out[16] = f & TCP_PSH ? 1 : 0;
  out[17] = f & TCP_ACK ? 1 : 0;
  out[18] = f & TCP_URG ? 1 : 0;
  return out;
}

/** Flow ID in the flow meter's spelling: `src-dst-sport-dport-proto`. */
export function flowId(
  srcIp: string,
  dstIp: string,
  srcPort: number,
  dstPort: number,
  protocol: number,
): string {
  return `${srcIp}-${dstIp}-${srcPort}-${dstPort}-${protocol}`;
}

/** Timestamp text as the flow meter writes it (UTC, `YYYY-MM-DD HH:MM:SS.mmm`); '' when unknown. */
export function exportTimestamp(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Batches carry the set's numbers without Protocol (slot 0 of the vectors), and Protocol as text:
 * a category, as in CIC data, so models see it once and in one kind.
 */
const NUMERIC: string[] = NETFLOW_FEATURES.filter((c) => c !== 'Protocol');
const STRINGS = ['Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp', 'Protocol'];

/** The column plan of batches built from export rows (identifiers as text, features as numbers). */
export function exportPlan(source: string): ColumnPlan {
  const names: string[] = [...EXPORT_ID_COLUMNS, ...NUMERIC];
  return {
    file: source,
    names,
    numericNames: NUMERIC,
    numericPos: Int32Array.from(NUMERIC, (c) => names.indexOf(c)),
    stringNames: STRINGS,
    stringPos: Int32Array.from(STRINGS, (c) => names.indexOf(c)),
    labelPos: -1,
    labelName: null,
    roles: {},
    key: 'nadir-export',
  };
}

/** Collects export rows into FlowBatches of `size` rows (labels kept when any row has one). */
export class ExportBatcher {
  private rows: ExportRow[] = [];
  readonly ready: FlowBatch[] = [];
  private count = 0;
  readonly plan: ColumnPlan;

  constructor(
    source: string,
    private readonly size = 4096,
  ) {
    this.plan = exportPlan(source);
  }

  add(r: ExportRow): void {
    this.rows.push(r);
    if (this.rows.length >= this.size) this.flush();
  }

  flush(): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    this.rows = [];
    const k = NUMERIC.length;
    const numeric = new Float64Array(rows.length * k);
    const strings = STRINGS.map(() => new Array<string>(rows.length));
    const lines = new Uint32Array(rows.length);
    const labelled = rows.some((r) => r.label !== undefined);
    const labels = labelled ? new Array<string>(rows.length) : null;
    const rawLabels = labelled ? new Array<string>(rows.length) : null;
    rows.forEach((r, i) => {
      numeric.set(r.values.subarray(1), i * k);
      strings[0][i] = flowId(r.srcIp, r.dstIp, r.srcPort, r.dstPort, r.protocol);
      strings[1][i] = r.srcIp;
      strings[2][i] = String(r.srcPort);
      strings[3][i] = r.dstIp;
      strings[4][i] = String(r.dstPort);
      strings[5][i] = exportTimestamp(r.startMs);
      strings[6][i] = String(r.protocol);
      lines[i] = ++this.count;
      if (labels && rawLabels) {
        labels[i] = r.label ?? '';
        rawLabels[i] = r.rawLabel ?? '';
      }
    });
    this.ready.push({
      plan: this.plan,
      fileIndex: 0,
      n: rows.length,
      numeric,
      strings,
      labels,
      rawLabels,
      lines,
      rowHash: new Uint32Array(rows.length),
    });
  }
}

/** CIC columns `netflowFromCic` reads (canonical names). */
export const CIC_SOURCE_COLUMNS = [
  'Protocol',
  'Flow Duration',
  'Total Fwd Packet',
  'Total Bwd packets',
  'Total Length of Fwd Packet',
  'Total Length of Bwd Packet',
  'Fwd Header Length',
  'Bwd Header Length',
  'FIN Flag Count',
  'SYN Flag Count',
  'RST Flag Count',
  'PSH Flag Count',
  'ACK Flag Count',
  'URG Flag Count',
] as const;

/** Whether a batch already carries the NetFlow features (an export source). */
export function hasNetflowColumns(plan: Layout): boolean {
  return (
    NUMERIC.every((c) => plan.numericNames.includes(c)) &&
    (plan.stringNames.includes('Protocol') || plan.numericNames.includes('Protocol'))
  );
}

/** The CIC source columns a plan lacks (empty when `netflowFromCic` can map it). */
export function missingForNetflow(plan: Layout): string[] {
  if (hasNetflowColumns(plan)) return [];
  return CIC_SOURCE_COLUMNS.filter(
    (c) => !plan.numericNames.includes(c) && !(c === 'Protocol' && plan.stringNames.includes(c)),
  );
}

const planCache = new WeakMap<Layout, Layout>();

/**
 * Maps a batch of CIC flows (a CSV or the flow meter) onto the NetFlow feature set. CIC lengths are
 * payload bytes and header lengths are transport headers, so the IP-level bytes an exporter counts
 * are payload + transport headers + the IP header per packet (20 bytes for IPv4, 40 for IPv6, told
 * apart by the Src IP when present). Flag counts become presence (exports OR the flags). Batches
 * that already carry the set (exports, logs) pass through unchanged. Throws MissingColumnsError
 * when the batch has neither the set nor the CIC columns it is made from.
 */
export function netflowFromCic<T extends Rows>(batch: T): T {
  const p = batch.plan;
  if (hasNetflowColumns(p)) return batch;
  const missing = missingForNetflow(p);
  if (missing.length) throw new MissingColumnsError(p.file, missing);
  const protoSlot = p.stringNames.indexOf('Protocol');
  let plan = planCache.get(p);
  if (!plan) {
    const stringNames = protoSlot >= 0 ? p.stringNames : [...p.stringNames, 'Protocol'];
    plan = { ...p, key: `${p.key}|netflow`, numericNames: NUMERIC, stringNames };
    planCache.set(p, plan);
  }
  const k = p.numericNames.length;
  const at = (c: string) => p.numericNames.indexOf(c);
  const idx = CIC_SOURCE_COLUMNS.map(at);
  const srcIpSlot = p.stringNames.indexOf('Src IP');
  const protoText = protoSlot >= 0 ? null : new Array<string>(batch.n);
  const kk = NUMERIC.length;
  const numeric = new Float64Array(batch.n * kk);
  const counts: FlowCounts = {
    durationUs: 0,
    fwdPackets: 0,
    bwdPackets: 0,
    fwdBytes: 0,
    bwdBytes: 0,
    tcpFlags: 0,
  };
  const out = new Float64Array(NETFLOW_FEATURES.length);
  const v = (row: number, j: number) => {
    const x = batch.numeric[row * k + idx[j]];
    return Number.isFinite(x) && x > 0 ? x : 0;
  };
  for (let i = 0; i < batch.n; i++) {
    const ipHdr = srcIpSlot >= 0 && batch.strings[srcIpSlot]?.[i]?.includes(':') ? 40 : 20;
    counts.durationUs = v(i, 1);
    counts.fwdPackets = v(i, 2);
    counts.bwdPackets = v(i, 3);
    counts.fwdBytes = v(i, 4) + v(i, 6) + ipHdr * counts.fwdPackets;
    counts.bwdBytes = v(i, 5) + v(i, 7) + ipHdr * counts.bwdPackets;
    counts.tcpFlags =
      (v(i, 8) > 0 ? TCP_FIN : 0) |
      (v(i, 9) > 0 ? TCP_SYN : 0) |
      (v(i, 10) > 0 ? TCP_RST : 0) |
      (v(i, 11) > 0 ? TCP_PSH : 0) |
      (v(i, 12) > 0 ? TCP_ACK : 0) |
      (v(i, 13) > 0 ? TCP_URG : 0);
    const proto = idx[0] >= 0 ? batch.numeric[i * k + idx[0]] : Number(batch.strings[protoSlot]?.[i]);
    netflowValues(proto, counts, out);
    numeric.set(out.subarray(1), i * kk);
    if (protoText) protoText[i] = String(proto);
  }
  return { ...batch, plan, numeric, strings: protoText ? [...batch.strings, protoText] : batch.strings };
}
