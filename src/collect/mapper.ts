/**
 * Decoded export records (`FlowFields`) → ExportRows in the NetFlow feature set: counters expanded
 * by the sampling interval, and unidirectional records (NetFlow v5/v9 and most IPFIX exporters send
 * one per direction) paired into one bidirectional flow, as the flow meter and CICFlowMeter build
 * them. A record waits up to `pairWindowMs` for its reverse; the earlier-starting direction is the
 * forward one. Biflow records (RFC 5103 reverse elements, Cisco NSEL responder counters) are
 * complete as they come.
 */
import { type ExportRow, type FlowCounts, NETFLOW_FEATURES, netflowValues } from '../features/netflow.js';
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

/** One direction of a flow, copied out of the reused FlowFields (addresses as words). */
interface Half {
  /** Source address words s0–s3, destination d0–d3 (IPv4: s0 / d0). */
  s0: number;
  s1: number;
  s2: number;
  s3: number;
  d0: number;
  d1: number;
  d2: number;
  d3: number;
  v6: boolean;
  srcPort: number;
  dstPort: number;
  protocol: number;
  packets: number;
  bytes: number;
  flags: number;
  startMs: number;
  endMs: number;
  source: string;
  /** Exporter host id (both directions must come from the same host). */
  host: number;
  atMs: number;
  /** Bucket of the pairing table, next half in its chain, still waiting. */
  bucket: number;
  next: Half | null;
  live: boolean;
}

export interface MapperStats {
  records: number;
  rows: number;
  paired: number;
  unpaired: number;
  biflows: number;
}

/** Rows' value vectors are cut from slabs of this many rows (one allocation per slab). */
const SLAB_ROWS = 4096;
const K = NETFLOW_FEATURES.length;

export class ExportMapper {
  private readonly o: MapperOptions;
  /**
   * Waiting halves in a hash table keyed by a direction-symmetric hash of the 5-tuple and the
   * exporter host (chains compared field by field), plus a FIFO for expiry by arrival time.
   */
  private readonly table = new Map<number, Half>();
  private queue: Half[] = [];
  private head = 0;
  private waitingN = 0;
  readonly stats: MapperStats = { records: 0, rows: 0, paired: 0, unpaired: 0, biflows: 0 };
  private readonly counts: FlowCounts = {
    durationUs: 0,
    fwdPackets: 0,
    bwdPackets: 0,
    fwdBytes: 0,
    bwdBytes: 0,
    tcpFlags: 0,
  };
  private slab = new Float64Array(SLAB_ROWS * K);
  private slabAt = 0;
  private readonly words = new Uint32Array(8);
  private lastSource = '';
  private lastHost = 0;
  private readonly hosts = new Map<string, number>();

  constructor(
    private readonly onRow: (r: ExportRow) => void,
    opts: Partial<MapperOptions> = {},
  ) {
    this.o = { ...DEFAULT_MAPPER, ...opts };
  }

  /** Records waiting for their reverse direction. */
  get waitingCount(): number {
    return this.waitingN;
  }

  add(ff: FlowFields, nowMs: number): void {
    const f = ff.f;
    const a = ff.addr;
    this.stats.records++;
    const protocol = num(f[F.protocol]);
    const icmp = protocol === 1 || protocol === 58;
    const sampling = f[F.sampling] >= 1 ? f[F.sampling] : 1;
    if (ff.exporter !== this.lastSource) {
      this.lastSource = ff.exporter;
      const host = exporterHost(ff.exporter);
      let id = this.hosts.get(host);
      if (id === undefined) {
        id = this.hosts.size + 1;
        if (this.hosts.size < 100_000) this.hosts.set(host, id);
      }
      this.lastHost = id;
    }
    const h: Half = {
      s0: a[0],
      s1: a[1],
      s2: a[2],
      s3: a[3],
      d0: a[4],
      d1: a[5],
      d2: a[6],
      d3: a[7],
      v6: f[F.ipVersion] === 6,
      srcPort: icmp ? 0 : num(f[F.srcPort]),
      dstPort: icmp ? 0 : num(f[F.dstPort]),
      protocol,
      packets: num(f[F.packets]) * sampling,
      bytes: num(f[F.bytes]) * sampling,
      flags: num(f[F.tcpFlags]),
      startMs: f[F.startMs],
      endMs: f[F.endMs],
      source: ff.exporter,
      host: this.lastHost,
      atMs: nowMs,
      bucket: 0,
      next: null,
      live: true,
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
    h.bucket = bucketOf(h);
    // The reverse direction, or an earlier record of the same direction, in the chain.
    let r: Half | null = null;
    let same: Half | null = null;
    for (let x = this.table.get(h.bucket) ?? null; x; x = x.next) {
      if (x.protocol !== protocol || x.host !== h.host || x.v6 !== h.v6) continue;
      if (isReverse(x, h)) {
        r ??= x;
      } else if (isSame(x, h)) same ??= x;
    }
    if (
      r &&
      (Number.isNaN(r.startMs) ||
        Number.isNaN(h.startMs) ||
        Math.abs(r.startMs - h.startMs) <= this.o.pairSlackMs)
    ) {
      this.unlink(r);
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
    if (same) {
      this.unlink(same);
      this.stats.unpaired++;
      this.emit(same, null, 0, 0);
    }
    h.next = this.table.get(h.bucket) ?? null;
    this.table.set(h.bucket, h);
    this.queue.push(h);
    this.waitingN++;
    if (this.waitingN > this.o.maxWaiting) this.expire(Number.POSITIVE_INFINITY, 1);
  }

  /** Emits records that waited longer than the pair window (all with `force`). */
  flush(nowMs: number, force = false): void {
    this.expire(force ? Number.POSITIVE_INFINITY : nowMs - this.o.pairWindowMs, Number.POSITIVE_INFINITY);
  }

  /** Emits up to `max` waiting halves that arrived at or before `before`, oldest first. */
  private expire(before: number, max: number): void {
    let n = 0;
    while (this.head < this.queue.length && n < max) {
      const h = this.queue[this.head];
      if (h.live && h.atMs > before) break;
      this.head++;
      if (!h.live) continue;
      this.unlink(h);
      this.stats.unpaired++;
      this.emit(h, null, 0, 0);
      n++;
    }
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private unlink(h: Half): void {
    h.live = false;
    this.waitingN--;
    const first = this.table.get(h.bucket);
    if (first === h) {
      if (h.next) this.table.set(h.bucket, h.next);
      else this.table.delete(h.bucket);
    } else
      for (let x = first ?? null; x; x = x.next)
        if (x.next === h) {
          x.next = h.next;
          break;
        }
    h.next = null;
  }

  private ip(h: Half, dst: boolean): string {
    const w = this.words;
    if (dst) {
      w[0] = h.d0;
      w[1] = h.d1;
      w[2] = h.d2;
      w[3] = h.d3;
    } else {
      w[0] = h.s0;
      w[1] = h.s1;
      w[2] = h.s2;
      w[3] = h.s3;
    }
    return formatIp(w, 0, h.v6 ? 6 : 4);
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
    if (this.slabAt === SLAB_ROWS) {
      this.slab = new Float64Array(SLAB_ROWS * K);
      this.slabAt = 0;
    }
    const values = this.slab.subarray(this.slabAt * K, this.slabAt * K + K);
    this.slabAt++;
    this.stats.rows++;
    this.onRow({
      values: netflowValues(fwd.protocol, c, values),
      srcIp: this.ip(fwd, false),
      dstIp: this.ip(fwd, true),
      srcPort: fwd.srcPort,
      dstPort: fwd.dstPort,
      protocol: fwd.protocol,
      startMs: start,
      source: fwd.source,
    });
  }
}

function isReverse(x: Half, h: Half): boolean {
  return (
    x.srcPort === h.dstPort &&
    x.dstPort === h.srcPort &&
    x.s0 === h.d0 &&
    x.d0 === h.s0 &&
    x.s1 === h.d1 &&
    x.d1 === h.s1 &&
    x.s2 === h.d2 &&
    x.d2 === h.s2 &&
    x.s3 === h.d3 &&
    x.d3 === h.s3
  );
}

function isSame(x: Half, h: Half): boolean {
  return (
    x.srcPort === h.srcPort &&
    x.dstPort === h.dstPort &&
    x.s0 === h.s0 &&
    x.d0 === h.d0 &&
    x.s1 === h.s1 &&
    x.d1 === h.d1 &&
    x.s2 === h.s2 &&
    x.d2 === h.d2 &&
    x.s3 === h.s3 &&
    x.d3 === h.d3
  );
}

/** Direction-symmetric hash of a half's 5-tuple and exporter host (either direction, one bucket). */
function bucketOf(h: Half): number {
  const a = endpointHash(h.s0, h.s1, h.s2, h.s3, h.srcPort);
  const b = endpointHash(h.d0, h.d1, h.d2, h.d3, h.dstPort);
  return (
    Math.imul((a + b) ^ Math.imul(h.protocol + 1, 0x27d4eb2d) ^ Math.imul(h.host, 0x165667b1), 0x9e3779b1) >>>
    2
  );
}

function endpointHash(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let x = Math.imul(w0 ^ 0x85ebca6b, 0xcc9e2d51);
  x = Math.imul(x ^ w1 ^ (x >>> 15), 0x1b873593);
  x = Math.imul(x ^ w2 ^ (x >>> 13), 0xcc9e2d51);
  x = Math.imul(x ^ w3 ^ (x >>> 16), 0x1b873593);
  return Math.imul(x ^ port ^ (x >>> 15), 0x85ebca6b) | 0;
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
