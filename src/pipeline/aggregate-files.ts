/**
 * Reads flows from files of any kind NADIR takes and feeds them to a FlowAggregator (series from
 * flows): packet captures (through the flow meter), Zeek conn.log and Suricata eve.json (flow
 * logs), JSON lines of flow records, and flow CSVs (`nadir flows`, `nadir collect`, CIC-IDS with a
 * Timestamp column). The kind is told by content, as `nadir detect` does.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { sniffCaptureFormat } from '../capture/pcap.js';
import type { Diagnostics } from '../core/diagnostics.js';
import { NETFLOW_FEATURES, netflowFromCic } from '../features/netflow.js';
import { FLOW_COLUMNS } from '../flow/features.js';
import { readFlowLog, sniffFlowLog } from '../ingest/flow-logs.js';
import { flatRecord, sniffRecordLines } from '../ingest/json-records.js';
import { FlowReader } from '../ingest/table.js';
import { type FlowAggregator, newFlowObs } from '../series/aggregate.js';
import { parseTime } from '../series/import.js';
import { captureFlows } from './capture-flows.js';

function col(list: readonly string[], name: string): number {
  const i = list.indexOf(name);
  if (i < 0) throw new Error(`column ${name} missing from the feature list`);
  return i;
}

// Flow meter rows (FLOW_COLUMNS order).
const M_FWD = col(FLOW_COLUMNS, 'Total Fwd Packet');
const M_BWD = col(FLOW_COLUMNS, 'Total Bwd packets');
const M_SYN = col(FLOW_COLUMNS, 'SYN Flag Count');
const M_ACK = col(FLOW_COLUMNS, 'ACK Flag Count');
// Export rows (NETFLOW_FEATURES order).
const NF = NETFLOW_FEATURES as readonly string[];

export interface AggregateSummary {
  files: { file: string; kind: 'capture' | 'flow-log' | 'records' | 'csv'; flows: number }[];
}

export async function aggregateFiles(
  files: string[],
  agg: FlowAggregator,
  diag: Diagnostics,
  onProgress?: (file: string, bytes: number) => void,
): Promise<AggregateSummary> {
  const summary: AggregateSummary = { files: [] };
  const f = newFlowObs();
  const csv: string[] = [];
  for (const file of files) {
    const before = agg.flows + agg.noTime;
    if (sniffCaptureFormat(file)) {
      const name = basename(file);
      await captureFlows(
        [file],
        (r) => {
          f.startMs = r.startUs / 1000;
          f.srcIp = r.srcIp;
          f.dstIp = r.dstIp;
          f.dstPort = r.dstPort;
          f.protocol = r.protocol;
          f.packets = r.values[M_FWD] + r.values[M_BWD];
          f.bytes = r.wireBytesFwd + r.wireBytesBwd;
          f.syn = r.values[M_SYN] > 0;
          f.ack = r.values[M_ACK] > 0;
          f.exporter = name;
          agg.add(f);
        },
        {},
        (b) => onProgress?.(file, b),
      );
      summary.files.push({ file, kind: 'capture', flows: agg.flows + agg.noTime - before });
    } else if (sniffFlowLog(file)) {
      const pk = [NF.indexOf('Total Fwd Packet'), NF.indexOf('Total Bwd packets')];
      const by = [NF.indexOf('Fwd IP Bytes'), NF.indexOf('Bwd IP Bytes')];
      const syn = NF.indexOf('SYN Flag');
      const ack = NF.indexOf('ACK Flag');
      await readFlowLog(
        file,
        diag,
        (r) => {
          f.startMs = r.startMs;
          f.srcIp = r.srcIp;
          f.dstIp = r.dstIp;
          f.dstPort = r.dstPort;
          f.protocol = r.protocol;
          f.packets = r.values[pk[0]] + r.values[pk[1]];
          f.bytes = r.values[by[0]] + r.values[by[1]];
          f.syn = r.values[syn] > 0;
          f.ack = r.values[ack] > 0;
          f.exporter = r.source;
          agg.add(f);
        },
        (b) => onProgress?.(file, b),
      );
      summary.files.push({ file, kind: 'flow-log', flows: agg.flows + agg.noTime - before });
    } else if (sniffRecordLines(file)) {
      await readRecordLines(file, diag, (rec, exporter) => {
        const num = (...names: string[]) => {
          for (const n of names) {
            const v = Number(rec[n]);
            if (rec[n] !== undefined && rec[n] !== null && Number.isFinite(v)) return v;
          }
          return 0;
        };
        const ts = rec.Timestamp;
        f.startMs = typeof ts === 'number' || typeof ts === 'string' ? parseTime(ts) : Number.NaN;
        f.srcIp = String(rec['Src IP'] ?? '');
        f.dstIp = String(rec['Dst IP'] ?? '');
        f.dstPort = num('Dst Port');
        f.protocol = num('Protocol');
        f.packets = num('Total Fwd Packet') + num('Total Bwd packets');
        // IP bytes in the NetFlow set; payload bytes in CIC's.
        f.bytes =
          num('Fwd IP Bytes') + num('Bwd IP Bytes') ||
          num('Total Length of Fwd Packet') + num('Total Length of Bwd Packet');
        f.syn = num('SYN Flag', 'SYN Flag Count') > 0;
        f.ack = num('ACK Flag', 'ACK Flag Count') > 0;
        f.exporter = exporter ?? basename(file);
        agg.add(f);
      });
      summary.files.push({ file, kind: 'records', flows: agg.flows + agg.noTime - before });
    } else csv.push(file);
  }
  if (csv.length) {
    const reader = new FlowReader(csv, { withIds: true, keepUnlabelled: true }, diag, (b) =>
      onProgress?.(csv[0], b),
    );
    const counts = new Map<number, number>();
    for await (const raw of reader.batches()) {
      const b = netflowFromCic(raw);
      const s = (name: string) => b.plan.stringNames.indexOf(name);
      const [sIp, dIp, dPort, ts, proto] = ['Src IP', 'Dst IP', 'Dst Port', 'Timestamp', 'Protocol'].map(s);
      const k = b.plan.numericNames.length;
      const at = (name: string) => b.plan.numericNames.indexOf(name);
      const [fwd, bwd, fb, bb, syn, ack] = [
        'Total Fwd Packet',
        'Total Bwd packets',
        'Fwd IP Bytes',
        'Bwd IP Bytes',
        'SYN Flag',
        'ACK Flag',
      ].map(at);
      if (ts < 0)
        throw new Error(
          `${raw.plan.file}: no Timestamp column, so its flows cannot be placed in time (MachineLearningCVE files have none)`,
        );
      const name = basename(raw.plan.file);
      let lastText = '';
      let lastT = Number.NaN;
      for (let i = 0; i < b.n; i++) {
        const text = b.strings[ts][i];
        if (text !== lastText) {
          lastText = text;
          lastT = parseTime(text);
        }
        f.startMs = lastT;
        f.srcIp = sIp >= 0 ? b.strings[sIp][i] : '';
        f.dstIp = dIp >= 0 ? b.strings[dIp][i] : '';
        f.dstPort = dPort >= 0 ? Number(b.strings[dPort][i]) : 0;
        f.protocol = proto >= 0 ? Number(b.strings[proto][i]) : 0;
        const v = (j: number) => (j >= 0 ? b.numeric[i * k + j] || 0 : 0);
        f.packets = v(fwd) + v(bwd);
        f.bytes = v(fb) + v(bb);
        f.syn = v(syn) > 0;
        f.ack = v(ack) > 0;
        f.exporter = name;
        agg.add(f);
      }
      counts.set(raw.fileIndex, (counts.get(raw.fileIndex) ?? 0) + b.n);
    }
    reader.paths.forEach((file, i) => {
      summary.files.push({ file, kind: 'csv', flows: counts.get(i) ?? 0 });
    });
  }
  return summary;
}

/**
 * JSON lines of flow records (FlowRecord objects as the API and `nadir collect -f jsonl` write
 * them, or objects keyed by column names): each as one flat row of canonical names. A line that is
 * not a JSON object is counted and reported with its number; reading goes on.
 */
async function readRecordLines(
  file: string,
  diag: Diagnostics,
  onRecord: (rec: Record<string, unknown>, exporter: string | undefined) => void,
): Promise<void> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (!text.trim()) continue;
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      diag.report({
        severity: 'warning',
        reason: 'json',
        file: basename(file),
        line,
        message: `not JSON (${(e as Error).message.slice(0, 80)}); line skipped`,
      });
      continue;
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      diag.report({
        severity: 'warning',
        reason: 'json',
        file: basename(file),
        line,
        message: 'not a JSON object; line skipped',
      });
      continue;
    }
    const rec = o as Record<string, unknown>;
    onRecord(flatRecord(rec), typeof rec.exporter === 'string' ? rec.exporter : undefined);
  }
}
