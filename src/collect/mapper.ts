/**
 * Decoded export records (`FlowFields`) → ExportRows in the NetFlow feature set: counters expanded
 * by the sampling interval, and unidirectional records (NetFlow v5/v9 and most IPFIX exporters send
 * one per direction) paired into one bidirectional flow, as the flow meter and CICFlowMeter build
 * them. A record waits up to `pairWindowMs` for its reverse; the earlier-starting direction is the
 * forward one. Biflow records (RFC 5103 reverse elements, Cisco NSEL responder counters) are
 * complete as they come.
 */
import { type ExportRow, type FlowCounts, netflowValues } from '../features/netflow.js';
import { formatIp } from '../flow/meter.js';
import { F, type FlowFields } from './netflow.js';

export interface MapperOptions {
  /** Pair the two directions of a flow (default true). */
  pairing: boolean;
  /** How long a unidirectional record waits for its reverse, ms (default 5000). */
  pairWindowMs: number;
  /** Reverse records whose starts differ by more than this are different flows, ms (default 60000). */
  pairSlackMs: number;
  /** Most records waiting at once (beyond: the oldest is emitted unpaired). */
  maxWaiting: number;
}

export const DEFAULT_MAPPER: MapperOptions = {
  pairing: true,
  pairWindowMs: 5000,
  pairSlackMs: 60_000,
  maxWaiting: 200_000,
};

/** One direction of a flow, copied out of the reused FlowFields. */
interface Half {
  key: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
  packets: number;
  bytes: number;
  flags: number;
  startMs: number;
  endMs: number;
  source: string;
  atMs: number;
}

export interface MapperStats {
  records: number;
  rows: number;
  paired: number;
  unpaired: number;
  biflows: number;
}

export class ExportMapper {
  private readonly o: MapperOptions;
  /** Waiting halves by direction key, in arrival order (Map keeps insertion order). */
  private readonly waiting = new Map<string, Half>();
  readonly stats: MapperStats = { records: 0, rows: 0, paired: 0, unpaired: 0, biflows: 0 };
  private readonly counts: FlowCounts = {
    durationUs: 0,
    fwdPackets: 0,
    bwdPackets: 0,
    fwdBytes: 0,
    bwdBytes: 0,
    tcpFlags: 0,
  };

  constructor(
    private readonly onRow: (r: ExportRow) => void,
    opts: Partial<MapperOptions> = {},
  ) {
    this.o = { ...DEFAULT_MAPPER, ...opts };
  }

  /** Records waiting for their reverse direction. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  add(ff: FlowFields, nowMs: number): void {
    const f = ff.f;
    this.stats.records++;
    const v = f[F.ipVersion] === 6 ? 6 : 4;
    const protocol = num(f[F.protocol]);
    const icmp = protocol === 1 || protocol === 58;
    const sampling = f[F.sampling] >= 1 ? f[F.sampling] : 1;
    const h: Half = {
      key: '',
      srcIp: formatIp(ff.addr, 0, v),
      dstIp: formatIp(ff.addr, 4, v),
      srcPort: icmp ? 0 : num(f[F.srcPort]),
      dstPort: icmp ? 0 : num(f[F.dstPort]),
      protocol,
      packets: num(f[F.packets]) * sampling,
      bytes: num(f[F.bytes]) * sampling,
      flags: num(f[F.tcpFlags]),
      startMs: f[F.startMs],
      endMs: f[F.endMs],
      source: ff.exporter,
      atMs: nowMs,
    };
    if (Number.isNaN(h.endMs)) h.endMs = h.startMs;
    const rp = f[F.rpackets];
    const rb = f[F.rbytes];
    if (!Number.isNaN(rp) || !Number.isNaN(rb)) {
      this.stats.biflows++;
      this.emit(h, null, num(rp) * sampling, num(rb) * sampling);
      return;
    }
    if (!this.o.pairing) {
      this.emit(h, null, 0, 0);
      return;
    }
    const host = exporterHost(h.source);
    h.key = `${host}|${h.srcIp}|${h.srcPort}|${h.dstIp}|${h.dstPort}|${protocol}`;
    const rkey = `${host}|${h.dstIp}|${h.dstPort}|${h.srcIp}|${h.srcPort}|${protocol}`;
    const r = this.waiting.get(rkey);
    if (
      r &&
      (Number.isNaN(r.startMs) ||
        Number.isNaN(h.startMs) ||
        Math.abs(r.startMs - h.startMs) <= this.o.pairSlackMs)
    ) {
      this.waiting.delete(rkey);
      this.stats.paired += 2;
      // The direction that started first is forward; a tie goes to the one towards the lower port.
      const rFirst =
        r.startMs < h.startMs ||
        (r.startMs === h.startMs && r.dstPort <= r.srcPort) ||
        Number.isNaN(h.startMs);
      if (rFirst) this.emit(r, h, 0, 0);
      else this.emit(h, r, 0, 0);
      return;
    }
    const same = this.waiting.get(h.key);
    if (same) {
      this.waiting.delete(h.key);
      this.stats.unpaired++;
      this.emit(same, null, 0, 0);
    }
    this.waiting.set(h.key, h);
    if (this.waiting.size > this.o.maxWaiting) this.flushOne();
  }

  /** Emits records that waited longer than the pair window (all with `force`). */
  flush(nowMs: number, force = false): void {
    for (const [k, h] of this.waiting) {
      if (!force && nowMs - h.atMs < this.o.pairWindowMs) break;
      this.waiting.delete(k);
      this.stats.unpaired++;
      this.emit(h, null, 0, 0);
    }
  }

  private flushOne(): void {
    const first = this.waiting.entries().next();
    if (first.done) return;
    this.waiting.delete(first.value[0]);
    this.stats.unpaired++;
    this.emit(first.value[1], null, 0, 0);
  }

  private emit(fwd: Half, bwd: Half | null, rPackets: number, rBytes: number): void {
    const c = this.counts;
    let start = fwd.startMs;
    let end = fwd.endMs;
    if (bwd) {
      if (Number.isNaN(start)) start = bwd.startMs;
      if (bwd.endMs > end || Number.isNaN(end)) end = bwd.endMs;
    }
    c.durationUs = Number.isFinite(start) && Number.isFinite(end) && end > start ? (end - start) * 1000 : 0;
    c.fwdPackets = fwd.packets;
    c.fwdBytes = fwd.bytes;
    c.bwdPackets = bwd ? bwd.packets : rPackets;
    c.bwdBytes = bwd ? bwd.bytes : rBytes;
    c.tcpFlags = fwd.protocol === 6 ? fwd.flags | (bwd ? bwd.flags : 0) : 0;
    this.stats.rows++;
    this.onRow({
      values: netflowValues(fwd.protocol, c),
      srcIp: fwd.srcIp,
      dstIp: fwd.dstIp,
      srcPort: fwd.srcPort,
      dstPort: fwd.dstPort,
      protocol: fwd.protocol,
      startMs: start,
      source: fwd.source,
    });
  }
}

function num(x: number): number {
  return Number.isNaN(x) ? 0 : x;
}

/** `ip:port/domain` → `ip` (both directions of a flow may come from one router's two domains). */
function exporterHost(source: string): string {
  const slash = source.lastIndexOf('/');
  const hostPort = slash >= 0 ? source.slice(0, slash) : source;
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 ? hostPort.slice(0, colon) : hostPort;
}
