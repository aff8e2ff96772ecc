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
const V4_BITS = 14;
const V4_CACHE = 1 << V4_BITS;

// Fields of a waiting half in the slot pool (one stride of `pool` per slot).
enum H {
  s0,
  s1,
  s2,
  s3,
  d0,
  d1,
  d2,
  d3,
  v6,
  srcPort,
  dstPort,
  protocol,
  packets,
  bytes,
  flags,
  startMs,
  endMs,
  host,
  atMs,
  hash,
  stride,
}

/**
 * Waiting halves live in a typed-array slot pool (no object per record), found through an
 * open-addressing table keyed by a direction-symmetric hash of the 5-tuple and the exporter host
 * (linear probing, backward-shift deletion), and expire in arrival order through a FIFO of
 * (slot, generation) pairs.
 */
export class ExportMapper {
  private readonly o: MapperOptions;
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
  private readonly words = new Uint32Array(4);
  private lastSource = '';
  private lastHost = 0;
  private readonly hosts = new Map<string, number>();
  // Slot pool: numbers, exporter strings, generations, free list.
  private cap = 0;
  private pool = new Float64Array(0);
  private sources: string[] = [];
  private gen = new Int32Array(0);
  private free = new Int32Array(0);
  private freeN = 0;
  private used = 0;
  // Open-addressing table of slot + 1 (0 = empty); size a power of two ≥ 2 × cap.
  private table = new Int32Array(0);
  private mask = 0;
  // FIFO of waiting slots with their generation, in arrival order (a growable ring).
  private fifo = new Int32Array(0);
  private fifoHead = 0;
  private fifoLen = 0;

  constructor(
    private readonly onRow: (r: ExportRow) => void,
    opts: Partial<MapperOptions> = {},
  ) {
    this.o = { ...DEFAULT_MAPPER, ...opts };
    this.grow(1024);
  }

  /** Records waiting for their reverse direction. */
  get waitingCount(): number {
    return this.used;
  }

  private grow(cap: number): void {
    const pool = new Float64Array(cap * H.stride);
    pool.set(this.pool);
    const gen = new Int32Array(cap);
    gen.set(this.gen);
    const free = new Int32Array(cap);
    let n = 0;
    for (let i = cap - 1; i >= this.cap; i--) free[n++] = i;
    free.set(this.free.subarray(0, this.freeN), n);
    this.freeN = n + this.freeN;
    this.free = free;
    this.pool = pool;
    this.gen = gen;
    this.sources.length = cap;
    this.cap = cap;
    // Rebuild the table at the new size.
    let size = 1;
    while (size < cap * 2) size <<= 1;
    const old = this.table;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i++) if (old[i]) this.insert(old[i] - 1);
    const fifo = new Int32Array(cap * 2 * 2);
    for (let i = 0; i < this.fifoLen; i++) {
      const j = ((this.fifoHead + i) % (this.fifo.length / 2)) * 2;
      fifo[i * 2] = this.fifo[j];
      fifo[i * 2 + 1] = this.fifo[j + 1];
    }
    this.fifo = fifo;
    this.fifoHead = 0;
  }

  private alloc(): number {
    if (this.freeN === 0) this.grow(this.cap * 2);
    return this.free[--this.freeN];
  }

  private release(slot: number): void {
    this.gen[slot]++;
    this.sources[slot] = '';
    this.free[this.freeN++] = slot;
  }

  private insert(slot: number): void {
    const t = this.table;
    let i = this.pool[slot * H.stride + H.hash] & this.mask;
    while (t[i] !== 0) i = (i + 1) & this.mask;
    t[i] = slot + 1;
  }

  /** Removes `slot` from the table (backward-shift deletion keeps probe chains whole). */
  private remove(slot: number): void {
    const t = this.table;
    const m = this.mask;
    let i = this.pool[slot * H.stride + H.hash] & m;
    while (t[i] !== slot + 1) {
      if (t[i] === 0) return;
      i = (i + 1) & m;
    }
    let j = i;
    for (;;) {
      j = (j + 1) & m;
      if (t[j] === 0) break;
      const home = this.pool[(t[j] - 1) * H.stride + H.hash] & m;
      // Move t[j] back to i unless its home lies cyclically in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        t[i] = t[j];
        i = j;
      }
    }
    t[i] = 0;
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
    const slot = this.alloc();
    const p = this.pool;
    const b = slot * H.stride;
    p[b + H.s0] = a[0];
    p[b + H.s1] = a[1];
    p[b + H.s2] = a[2];
    p[b + H.s3] = a[3];
    p[b + H.d0] = a[4];
    p[b + H.d1] = a[5];
    p[b + H.d2] = a[6];
    p[b + H.d3] = a[7];
    p[b + H.v6] = f[F.ipVersion] === 6 ? 1 : 0;
    p[b + H.srcPort] = icmp ? 0 : num(f[F.srcPort]);
    p[b + H.dstPort] = icmp ? 0 : num(f[F.dstPort]);
    p[b + H.protocol] = protocol;
    p[b + H.packets] = num(f[F.packets]) * sampling;
    p[b + H.bytes] = num(f[F.bytes]) * sampling;
    p[b + H.flags] = num(f[F.tcpFlags]);
    p[b + H.startMs] = f[F.startMs];
    p[b + H.endMs] = Number.isNaN(f[F.endMs]) ? f[F.startMs] : f[F.endMs];
    p[b + H.host] = this.lastHost;
    p[b + H.atMs] = nowMs;
    this.sources[slot] = ff.exporter;
    const rp = f[F.rpackets];
    const rb = f[F.rbytes];
    if (!Number.isNaN(rp) || !Number.isNaN(rb)) {
      this.stats.biflows++;
      this.emit(slot, -1, num(rp) * sampling, num(rb) * sampling);
      this.release(slot);
      return;
    }
    if (!this.o.pairing) {
      this.emit(slot, -1, 0, 0);
      this.release(slot);
      return;
    }
    const hash = bucketOf(p, b);
    p[b + H.hash] = hash;
    // The reverse direction, or an earlier record of the same direction, in the probe chain.
    let r = -1;
    let same = -1;
    const t = this.table;
    for (let i = hash & this.mask; t[i] !== 0; i = (i + 1) & this.mask) {
      const x = t[i] - 1;
      const xb = x * H.stride;
      if (p[xb + H.hash] !== hash || p[xb + H.protocol] !== protocol || p[xb + H.host] !== this.lastHost)
        continue;
      if (p[xb + H.v6] !== p[b + H.v6]) continue;
      if (r < 0 && isReverse(p, xb, b)) r = x;
      if (same < 0 && isSame(p, xb, b)) same = x;
    }
    const start = p[b + H.startMs];
    if (r >= 0) {
      const rs = p[r * H.stride + H.startMs];
      if (Number.isNaN(rs) || Number.isNaN(start) || Math.abs(rs - start) <= this.o.pairSlackMs) {
        this.remove(r);
        this.used--;
        this.stats.paired += 2;
        // The direction that started first is forward; a tie goes to the one towards the lower port.
        const rb0 = r * H.stride;
        const rFirst =
          rs < start || (rs === start && p[rb0 + H.dstPort] <= p[rb0 + H.srcPort]) || Number.isNaN(start);
        if (rFirst) this.emit(r, slot, 0, 0);
        else this.emit(slot, r, 0, 0);
        this.release(r);
        this.release(slot);
        return;
      }
    }
    if (same >= 0) {
      this.remove(same);
      this.used--;
      this.stats.unpaired++;
      this.emit(same, -1, 0, 0);
      this.release(same);
    }
    this.insert(slot);
    this.used++;
    this.push(slot);
    if (this.used > this.o.maxWaiting) this.expire(Number.POSITIVE_INFINITY, 1);
  }

  private push(slot: number): void {
    const n = this.fifo.length / 2;
    if (this.fifoLen === n) {
      // Compact: drop dead entries, or grow.
      const fifo = new Int32Array(this.fifo.length * (this.fifoLen >= this.used * 2 ? 1 : 2));
      let k = 0;
      for (let i = 0; i < this.fifoLen; i++) {
        const j = ((this.fifoHead + i) % n) * 2;
        if (this.gen[this.fifo[j]] !== this.fifo[j + 1]) continue;
        fifo[k * 2] = this.fifo[j];
        fifo[k * 2 + 1] = this.fifo[j + 1];
        k++;
      }
      this.fifo = fifo;
      this.fifoHead = 0;
      this.fifoLen = k;
    }
    const m = this.fifo.length / 2;
    const j = ((this.fifoHead + this.fifoLen) % m) * 2;
    this.fifo[j] = slot;
    this.fifo[j + 1] = this.gen[slot];
    this.fifoLen++;
  }

  /** Emits records that waited longer than the pair window (all with `force`). */
  flush(nowMs: number, force = false): void {
    this.expire(force ? Number.POSITIVE_INFINITY : nowMs - this.o.pairWindowMs, Number.POSITIVE_INFINITY);
  }

  /** Emits up to `max` waiting halves that arrived at or before `before`, oldest first. */
  private expire(before: number, max: number): void {
    let n = 0;
    const m = this.fifo.length / 2;
    while (this.fifoLen > 0 && n < max) {
      const j = this.fifoHead * 2;
      const slot = this.fifo[j];
      const live = this.gen[slot] === this.fifo[j + 1];
      if (live && this.pool[slot * H.stride + H.atMs] > before) break;
      this.fifoHead = (this.fifoHead + 1) % m;
      this.fifoLen--;
      if (!live) continue;
      this.remove(slot);
      this.used--;
      this.stats.unpaired++;
      this.emit(slot, -1, 0, 0);
      this.release(slot);
      n++;
    }
  }

  /** IPv4 text of recently seen addresses (direct-mapped: most flows involve a few hosts). */
  private readonly v4Keys = new Float64Array(V4_CACHE).fill(-1);
  private readonly v4Text: string[] = new Array<string>(V4_CACHE).fill('');

  private ip(slot: number, dst: boolean): string {
    const p = this.pool;
    const b = slot * H.stride + (dst ? H.d0 : H.s0);
    if (!p[slot * H.stride + H.v6]) {
      const a = p[b];
      const i = Math.imul(a, 0x9e3779b1) >>> (32 - V4_BITS);
      if (this.v4Keys[i] === a) return this.v4Text[i];
      const text = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      this.v4Keys[i] = a;
      this.v4Text[i] = text;
      return text;
    }
    const w = this.words;
    w[0] = p[b];
    w[1] = p[b + 1];
    w[2] = p[b + 2];
    w[3] = p[b + 3];
    return formatIp(w, 0, 6);
  }

  private emit(fwd: number, bwd: number, rPackets: number, rBytes: number): void {
    const p = this.pool;
    const fb = fwd * H.stride;
    const bb = bwd * H.stride;
    const c = this.counts;
    let start = p[fb + H.startMs];
    let end = p[fb + H.endMs];
    if (bwd >= 0) {
      if (Number.isNaN(start)) start = p[bb + H.startMs];
      if (p[bb + H.endMs] > end || Number.isNaN(end)) end = p[bb + H.endMs];
    }
    const protocol = p[fb + H.protocol];
    c.durationUs = Number.isFinite(start) && Number.isFinite(end) && end > start ? (end - start) * 1000 : 0;
    c.fwdPackets = p[fb + H.packets];
    c.fwdBytes = p[fb + H.bytes];
    c.bwdPackets = bwd >= 0 ? p[bb + H.packets] : rPackets;
    c.bwdBytes = bwd >= 0 ? p[bb + H.bytes] : rBytes;
    c.tcpFlags = protocol === 6 ? p[fb + H.flags] | (bwd >= 0 ? p[bb + H.flags] : 0) : 0;
    if (this.slabAt === SLAB_ROWS) {
      this.slab = new Float64Array(SLAB_ROWS * K);
      this.slabAt = 0;
    }
    const values = this.slab.subarray(this.slabAt * K, this.slabAt * K + K);
    this.slabAt++;
    this.stats.rows++;
    this.onRow({
      values: netflowValues(protocol, c, values),
      srcIp: this.ip(fwd, false),
      dstIp: this.ip(fwd, true),
      srcPort: p[fb + H.srcPort],
      dstPort: p[fb + H.dstPort],
      protocol,
      startMs: start,
      source: this.sources[fwd],
    });
  }
}

function isReverse(p: Float64Array, x: number, h: number): boolean {
  return (
    p[x + H.srcPort] === p[h + H.dstPort] &&
    p[x + H.dstPort] === p[h + H.srcPort] &&
    p[x + H.s0] === p[h + H.d0] &&
    p[x + H.d0] === p[h + H.s0] &&
    p[x + H.s1] === p[h + H.d1] &&
    p[x + H.d1] === p[h + H.s1] &&
    p[x + H.s2] === p[h + H.d2] &&
    p[x + H.d2] === p[h + H.s2] &&
    p[x + H.s3] === p[h + H.d3] &&
    p[x + H.d3] === p[h + H.s3]
  );
}

function isSame(p: Float64Array, x: number, h: number): boolean {
  return (
    p[x + H.srcPort] === p[h + H.srcPort] &&
    p[x + H.dstPort] === p[h + H.dstPort] &&
    p[x + H.s0] === p[h + H.s0] &&
    p[x + H.d0] === p[h + H.d0] &&
    p[x + H.s1] === p[h + H.s1] &&
    p[x + H.d1] === p[h + H.d1] &&
    p[x + H.s2] === p[h + H.s2] &&
    p[x + H.d2] === p[h + H.d2] &&
    p[x + H.s3] === p[h + H.s3] &&
    p[x + H.d3] === p[h + H.d3]
  );
}

/** Direction-symmetric hash of a half's 5-tuple and exporter host (both directions, one value). */
function bucketOf(p: Float64Array, b: number): number {
  const x = endpointHash(p[b + H.s0], p[b + H.s1], p[b + H.s2], p[b + H.s3], p[b + H.srcPort]);
  const y = endpointHash(p[b + H.d0], p[b + H.d1], p[b + H.d2], p[b + H.d3], p[b + H.dstPort]);
  return (
    Math.imul(
      (x + y) ^ Math.imul(p[b + H.protocol] + 1, 0x27d4eb2d) ^ Math.imul(p[b + H.host], 0x165667b1),
      0x9e3779b1,
    ) >>> 1
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
