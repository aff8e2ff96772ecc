/**
 * Series from flows: flows (from captures, flow logs, exports or flow CSVs) counted into time
 * buckets per key. Per bucket and key:
 *
 *   flows, packets, bytes          sums (bytes at the IP layer where the source says so)
 *   sources, dst_ports             distinct source addresses / destination ports
 *   syn_only_ratio                 share of TCP flows with a SYN and no ACK (scans, SYN floods)
 *   src_entropy, dst_entropy       Shannon entropy (bits) of the flow counts per source /
 *                                  destination address: a flood from many spoofed sources
 *                                  raises the first, a scan of many targets the second
 *
 * Keys: none, src, dst, src24 / dst24 (IPv4 /24, IPv6 /48), proto, dport, exporter. A flow is
 * counted in the bucket of its start. Memory holds one cell per (bucket, key); a bound stops runaway
 * keys with a clear message.
 */
import { UserError } from '../core/diagnostics.js';

export const AGGREGATE_KEYS = ['none', 'src', 'dst', 'src24', 'dst24', 'proto', 'dport', 'exporter'] as const;
export type AggregateKey = (typeof AGGREGATE_KEYS)[number];
export const AGGREGATE_METRICS = [
  'flows',
  'packets',
  'bytes',
  'sources',
  'dst_ports',
  'syn_only_ratio',
  'src_entropy',
  'dst_entropy',
] as const;

/** One flow, as the aggregator reads it (a reused object: no allocation per flow). */
export interface FlowObs {
  startMs: number;
  srcIp: string;
  dstIp: string;
  dstPort: number;
  protocol: number;
  packets: number;
  bytes: number;
  /** TCP flags seen: SYN, ACK (false for other protocols). */
  syn: boolean;
  ack: boolean;
  exporter: string;
}

export function newFlowObs(): FlowObs {
  return {
    startMs: Number.NaN,
    srcIp: '',
    dstIp: '',
    dstPort: 0,
    protocol: 0,
    packets: 0,
    bytes: 0,
    syn: false,
    ack: false,
    exporter: '',
  };
}

interface Cell {
  flows: number;
  packets: number;
  bytes: number;
  tcp: number;
  synOnly: number;
  src: Map<string, number>;
  dst: Map<string, number>;
  ports: Set<number>;
}

/** The /24 of an IPv4 address, the /48 of an IPv6 one (text as written). */
export function prefixOf(ip: string): string {
  if (ip.includes(':')) {
    const parts = ip.split(':');
    return `${parts.slice(0, 3).join(':')}::/48`;
  }
  const i = ip.lastIndexOf('.');
  return i < 0 ? ip : `${ip.slice(0, i)}.0/24`;
}

function entropy(m: Map<string, number>, total: number): number {
  let h = 0;
  for (const c of m.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h === 0 ? 0 : h;
}

export class FlowAggregator {
  private readonly cells = new Map<number, Map<string, Cell>>();
  private size = 0;
  flows = 0;
  /** Flows without a usable start time (not counted). */
  noTime = 0;

  constructor(
    readonly bucketMs: number,
    readonly key: AggregateKey,
    readonly maxCells = 2_000_000,
  ) {}

  keyOf(f: FlowObs): string {
    switch (this.key) {
      case 'none':
        return '';
      case 'src':
        return f.srcIp;
      case 'dst':
        return f.dstIp;
      case 'src24':
        return prefixOf(f.srcIp);
      case 'dst24':
        return prefixOf(f.dstIp);
      case 'proto':
        return String(f.protocol);
      case 'dport':
        return String(f.dstPort);
      case 'exporter':
        return f.exporter;
    }
  }

  add(f: FlowObs): void {
    if (!Number.isFinite(f.startMs)) {
      this.noTime++;
      return;
    }
    if (this.isLate(f.startMs)) {
      this.late++;
      return;
    }
    this.flows++;
    const b = Math.floor(f.startMs / this.bucketMs);
    let row = this.cells.get(b);
    if (!row) {
      row = new Map();
      this.cells.set(b, row);
    }
    const k = this.keyOf(f);
    let c = row.get(k);
    if (!c) {
      if (++this.size > this.maxCells)
        throw new UserError(
          `more than ${this.maxCells.toLocaleString('en-US')} (bucket, key) cells`,
          'choose a coarser --key (src24 instead of src) or a longer --bucket',
        );
      c = {
        flows: 0,
        packets: 0,
        bytes: 0,
        tcp: 0,
        synOnly: 0,
        src: new Map(),
        dst: new Map(),
        ports: new Set(),
      };
      row.set(k, c);
    }
    c.flows++;
    c.packets += f.packets;
    c.bytes += f.bytes;
    if (f.protocol === 6) {
      c.tcp++;
      if (f.syn && !f.ack) c.synOnly++;
    }
    c.src.set(f.srcIp, (c.src.get(f.srcIp) ?? 0) + 1);
    c.dst.set(f.dstIp, (c.dst.get(f.dstIp) ?? 0) + 1);
    c.ports.add(f.dstPort);
  }

  /**
   * Long-format rows (time ISO, key, metric, value), time ascending. Every key gets a row in every
   * bucket between the first and the last (flows 0 when it had none), so a silent key reads as a
   * drop to zero rather than as missing data.
   */
  *rows(): Generator<[string, string, string, number]> {
    if (!this.cells.size) return;
    const buckets = [...this.cells.keys()].sort((a, b) => a - b);
    const keys = new Set<string>();
    for (const row of this.cells.values()) for (const k of row.keys()) keys.add(k);
    yield* this.emit(buckets[0], buckets[buckets.length - 1] + 1, [...keys]);
  }

  /**
   * Streaming: the rows of every bucket before `endBucket` not drained yet (from the one after the
   * last drained, or the earliest held), then forgets them. `keys` get rows even in buckets where
   * they had no flow (the keys that have models, so their silence is scored).
   */
  *drain(endBucket: number, keys: Iterable<string>): Generator<[string, string, string, number]> {
    let from = this.drainedTo;
    if (from === null) {
      if (!this.cells.size) return;
      from = Math.min(...this.cells.keys());
    }
    if (endBucket <= from) return;
    const all = new Set(keys);
    for (const [b, row] of this.cells) if (b < endBucket) for (const k of row.keys()) all.add(k);
    yield* this.emit(from, endBucket, [...all]);
    this.discard(endBucket);
  }

  /** Forgets every bucket before `endBucket` without emitting it (a partial bucket). */
  discard(endBucket: number): void {
    for (const b of [...this.cells.keys()])
      if (b < endBucket) {
        this.size -= this.cells.get(b)?.size ?? 0;
        this.cells.delete(b);
      }
    if (this.drainedTo === null || endBucket > this.drainedTo) this.drainedTo = endBucket;
  }

  /** Bucket index before which everything was drained (null before the first drain). */
  private drainedTo: number | null = null;
  /** Flows that arrived for a bucket already drained (not counted). */
  late = 0;

  /** Whether a flow at `ms` falls into a bucket already drained. */
  isLate(ms: number): boolean {
    return this.drainedTo !== null && Math.floor(ms / this.bucketMs) < this.drainedTo;
  }

  private *emit(from: number, to: number, keyList: string[]): Generator<[string, string, string, number]> {
    const sortedKeys = keyList.sort(new Intl.Collator('en', { numeric: true }).compare);
    for (let b = from; b < to; b++) {
      const t = new Date(b * this.bucketMs).toISOString();
      const row = this.cells.get(b);
      for (const k of sortedKeys) {
        const c = row?.get(k);
        if (!c) {
          for (const m of AGGREGATE_METRICS) if (m !== 'syn_only_ratio') yield [t, k, m, 0];
          continue;
        }
        yield [t, k, 'flows', c.flows];
        yield [t, k, 'packets', c.packets];
        yield [t, k, 'bytes', c.bytes];
        yield [t, k, 'sources', c.src.size];
        yield [t, k, 'dst_ports', c.ports.size];
        if (c.tcp) yield [t, k, 'syn_only_ratio', c.synOnly / c.tcp];
        yield [t, k, 'src_entropy', entropy(c.src, c.flows)];
        yield [t, k, 'dst_entropy', entropy(c.dst, c.flows)];
      }
    }
  }
}
