/**
 * The flow meter: decoded packets → bidirectional flows with the corrected CICFlowMeter feature
 * set (src/flow/features.ts; every definition in docs/features.md).
 *
 * Flows live in a typed-array table: an open-addressing hash on the canonical 5-tuple (linear
 * probing, backward-shift deletion), and one Float64Array per accumulator indexed by flow slot, so
 * a packet updates numbers in place and allocates nothing. A doubly linked list keeps flows in
 * order of last activity: idle flows are emitted from its head as time advances, and when the
 * table is full the least recently active flow is evicted (emitted early, and counted).
 *
 * Termination: a packet arriving more than `flowTimeoutUs` after its flow's first packet starts a
 * new flow (CICFlowMeter's rule); a flow idle for `idleTimeoutUs` is emitted; a TCP RST ends its
 * flow (the RST included); after FINs from both sides, the next packet without FIN (the last ACK)
 * is included and ends the flow.
 */
import {
  type PacketView,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from '../decode/decode.js';
import { COL, FLOW_COLUMNS } from './features.js';

export interface FlowMeterOptions {
  /** A flow ends when a packet comes this long after its first packet (CIC: 120 s). */
  flowTimeoutUs: number;
  /** A flow without packets for this long is emitted (default: the flow timeout). */
  idleTimeoutUs: number;
  /** Gap that separates active and idle periods (CIC: 5 s). */
  activityTimeoutUs: number;
  /** Longest gap inside a bulk transfer (CIC: 1 s). */
  bulkGapUs: number;
  /** Most flows held at once; beyond it the least recently active is evicted. */
  maxFlows: number;
}

export const DEFAULT_FLOW_METER: FlowMeterOptions = {
  flowTimeoutUs: 120e6,
  idleTimeoutUs: 120e6,
  activityTimeoutUs: 5e6,
  bulkGapUs: 1e6,
  maxFlows: 1 << 20,
};

/** A finished flow: feature values in FLOW_COLUMNS order (identifier slots hold NaN). */
export interface FlowRow {
  values: Float64Array;
  flowId: string;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
  /** First packet, µs since the epoch. */
  startUs: number;
  timestamp: string;
  /** Bytes on the wire (whole frames, as captured before any snaplen cut) per direction. */
  wireBytesFwd: number;
  wireBytesBwd: number;
  /** Why the flow ended. */
  reason: 'fin' | 'rst' | 'timeout' | 'idle' | 'evicted' | 'end';
}

export interface FlowMeterStats {
  packets: number;
  flows: number;
  evicted: number;
  peakFlows: number;
}

// Accumulator fields, one Float64Array each. Direction-dependent ones come in pairs (…F, …B).
const FIELDS = [
  'first',
  'last',
  'pktsF',
  'pktsB',
  'bytesF',
  'bytesB',
  'lenMinF',
  'lenMinB',
  'lenMaxF',
  'lenMaxB',
  'lenMeanF',
  'lenMeanB',
  'lenM2F',
  'lenM2B',
  'lastF',
  'lastB',
  'firstB',
  'wireF',
  'wireB',
  'iatMeanF',
  'iatMeanB',
  'iatM2F',
  'iatM2B',
  'iatMinF',
  'iatMinB',
  'iatMaxF',
  'iatMaxB',
  'hdrF',
  'hdrB',
  'hdrMinF',
  'pshF',
  'pshB',
  'urgF',
  'urgB',
  'rstF',
  'rstB',
  'winF',
  'winB',
  'actDataF',
  'finF',
  'finB',
  'bulkCountF',
  'bulkCountB',
  'bulkPktsF',
  'bulkPktsB',
  'bulkBytesF',
  'bulkBytesB',
  'bulkDurF',
  'bulkDurB',
  'bsStartF',
  'bsStartB',
  'bsLastF',
  'bsLastB',
  'bsPktsF',
  'bsPktsB',
  'bsBytesF',
  'bsBytesB',
  'lenMin',
  'lenMax',
  'lenMean',
  'lenM2',
  'iatMean',
  'iatM2',
  'iatMin',
  'iatMax',
  'fin',
  'syn',
  'rst',
  'psh',
  'ack',
  'urg',
  'cwr',
  'ece',
  'activeStart',
  'activeEnd',
  'actN',
  'actMean',
  'actM2',
  'actMin',
  'actMax',
  'idleN',
  'idleMean',
  'idleM2',
  'idleMin',
  'idleMax',
  'icmpType',
  'icmpCode',
] as const;
type Field = (typeof FIELDS)[number];

/** Key words per flow: [version<<8 | protocol, A0..A3, B0..B3, portA<<16 | portB]. */
const KW = 10;

export class FlowMeter {
  readonly stats: FlowMeterStats = { packets: 0, flows: 0, evicted: 0, peakFlows: 0 };
  private readonly o: FlowMeterOptions;
  private cap = 0;
  private f = {} as Record<Field, Float64Array>;
  /** Canonical keys of slots, and whether the forward direction is endpoint A. */
  private keys = new Uint32Array(0);
  private fwdIsA = new Uint8Array(0);
  /** Hash table: slot+1 per bucket (0 empty). */
  private table = new Int32Array(0);
  private mask = 0;
  // LRU list of live slots, least recently active first.
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;
  private free: number[] = [];
  private live = 0;
  private readonly key = new Uint32Array(KW);

  constructor(
    private readonly onFlow: (f: FlowRow) => void,
    opts: Partial<FlowMeterOptions> = {},
  ) {
    this.o = { ...DEFAULT_FLOW_METER, ...opts };
    if (opts.idleTimeoutUs === undefined) this.o.idleTimeoutUs = this.o.flowTimeoutUs;
    this.grow(Math.min(1 << 12, this.o.maxFlows));
  }

  get activeFlows(): number {
    return this.live;
  }

  private grow(cap: number): void {
    const old = this.cap;
    const nf = {} as Record<Field, Float64Array>;
    for (const name of FIELDS) {
      const a = new Float64Array(cap);
      if (old) a.set(this.f[name]);
      nf[name] = a;
    }
    this.f = nf;
    const keys = new Uint32Array(cap * KW);
    keys.set(this.keys);
    this.keys = keys;
    const fa = new Uint8Array(cap);
    fa.set(this.fwdIsA);
    this.fwdIsA = fa;
    const prev = new Int32Array(cap);
    prev.set(this.prev);
    this.prev = prev;
    const next = new Int32Array(cap);
    next.set(this.next);
    this.next = next;
    for (let s = cap - 1; s >= old; s--) this.free.push(s);
    this.cap = cap;
    // Rehash into a table with load factor ≤ 0.5.
    let size = 1;
    while (size < cap * 2) size <<= 1;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let s = this.head; s >= 0; s = this.next[s]) this.insertSlot(s);
  }

  private hashSlotKey(k: Uint32Array, o: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < KW; i++) {
      h = Math.imul(h ^ k[o + i], 0x01000193);
      h ^= h >>> 15;
    }
    return (h ^ (h >>> 13)) >>> 0;
  }

  private insertSlot(s: number): void {
    let b = this.hashSlotKey(this.keys, s * KW) & this.mask;
    while (this.table[b] !== 0) b = (b + 1) & this.mask;
    this.table[b] = s + 1;
  }

  private find(k: Uint32Array): number {
    let b = this.hashSlotKey(k, 0) & this.mask;
    for (;;) {
      const e = this.table[b];
      if (e === 0) return -1;
      const s = e - 1;
      const o = s * KW;
      let eq = true;
      for (let i = 0; i < KW; i++)
        if (this.keys[o + i] !== k[i]) {
          eq = false;
          break;
        }
      if (eq) return s;
      b = (b + 1) & this.mask;
    }
  }

  /** Removes slot s from the hash table (backward-shift deletion keeps probing correct). */
  private unhash(s: number): void {
    let b = this.hashSlotKey(this.keys, s * KW) & this.mask;
    while (this.table[b] !== s + 1) b = (b + 1) & this.mask;
    let hole = b;
    let j = b;
    for (;;) {
      j = (j + 1) & this.mask;
      const e = this.table[j];
      if (e === 0) break;
      const home = this.hashSlotKey(this.keys, (e - 1) * KW) & this.mask;
      // Move e into the hole if its home is not within (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        this.table[hole] = e;
        hole = j;
      }
    }
    this.table[hole] = 0;
  }

  private unlink(s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private append(s: number): void {
    this.prev[s] = this.tail;
    this.next[s] = -1;
    if (this.tail >= 0) this.next[this.tail] = s;
    else this.head = s;
    this.tail = s;
  }

  /** Adds a decoded packet (only TCP, UDP, ICMP and ICMPv6 packets make flows). */
  add(tsUs: number, v: PacketView, wireLen = 0): void {
    if (v.protocol !== 6 && v.protocol !== 17 && v.protocol !== 1 && v.protocol !== 58) return;
    this.stats.packets++;
    // Canonical key: the endpoint that compares lower is A.
    const k = this.key;
    const w = v.ipVersion === 6 ? 4 : 1;
    let cmp = 0;
    for (let i = 0; i < w && cmp === 0; i++) cmp = v.src[i] < v.dst[i] ? -1 : v.src[i] > v.dst[i] ? 1 : 0;
    if (cmp === 0) cmp = v.srcPort < v.dstPort ? -1 : v.srcPort > v.dstPort ? 1 : 0;
    const srcIsA = cmp <= 0;
    k[0] = (v.ipVersion << 8) | v.protocol;
    for (let i = 0; i < 4; i++) {
      k[1 + i] = srcIsA ? v.src[i] : v.dst[i];
      k[5 + i] = srcIsA ? v.dst[i] : v.src[i];
    }
    k[9] = srcIsA ? ((v.srcPort << 16) | v.dstPort) >>> 0 : ((v.dstPort << 16) | v.srcPort) >>> 0;

    let s = this.find(k);
    if (s >= 0 && tsUs - this.f.first[s] > this.o.flowTimeoutUs) {
      this.finish(s, 'timeout');
      s = -1;
    }
    if (s < 0) s = this.open(tsUs, srcIsA);
    else {
      this.unlink(s);
      this.append(s);
    }
    const fwd = (this.fwdIsA[s] === 1) === srcIsA;
    this.update(s, tsUs, v, fwd);
    if (fwd) this.f.wireF[s] += wireLen;
    else this.f.wireB[s] += wireLen;
    // TCP termination.
    if (v.protocol === 6) {
      const F = this.f;
      if (v.tcpFlags & TCP_RST) this.finish(s, 'rst');
      else if (v.tcpFlags & TCP_FIN) {
        if (fwd) F.finF[s] = 1;
        else F.finB[s] = 1;
      } else if (F.finF[s] && F.finB[s]) this.finish(s, 'fin');
    }
    if ((this.stats.packets & 1023) === 0) this.advance(tsUs);
  }

  /** Emits every flow idle since before `nowUs − idleTimeout`. */
  advance(nowUs: number): void {
    const limit = nowUs - this.o.idleTimeoutUs;
    while (this.head >= 0 && this.f.last[this.head] < limit) this.finish(this.head, 'idle');
  }

  /** Emits every remaining flow (end of input). */
  flush(): void {
    while (this.head >= 0) this.finish(this.head, 'end');
  }

  private open(tsUs: number, srcIsA: boolean): number {
    if (this.live >= this.cap) {
      if (this.cap < this.o.maxFlows) this.grow(Math.min(this.cap * 2, this.o.maxFlows));
      else {
        this.stats.evicted++;
        this.finish(this.head, 'evicted');
      }
    }
    const s = this.free.pop()!;
    this.keys.set(this.key, s * KW);
    this.fwdIsA[s] = srcIsA ? 1 : 0;
    this.insertSlot(s);
    this.append(s);
    this.live++;
    if (this.live > this.stats.peakFlows) this.stats.peakFlows = this.live;
    const F = this.f;
    for (const name of FIELDS) F[name][s] = 0;
    F.first[s] = tsUs;
    F.last[s] = tsUs;
    F.lenMinF[s] = F.lenMinB[s] = F.lenMin[s] = Number.POSITIVE_INFINITY;
    F.iatMinF[s] = F.iatMinB[s] = F.iatMin[s] = Number.POSITIVE_INFINITY;
    F.actMin[s] = F.idleMin[s] = Number.POSITIVE_INFINITY;
    F.hdrMinF[s] = Number.POSITIVE_INFINITY;
    F.winF[s] = F.winB[s] = -1;
    F.icmpType[s] = F.icmpCode[s] = -1;
    F.activeStart[s] = F.activeEnd[s] = tsUs;
    return s;
  }

  private update(s: number, ts: number, v: PacketView, fwd: boolean): void {
    const F = this.f;
    const len = v.payloadLength;
    const hdr = v.transportHeaderLength;
    const flags = v.protocol === 6 ? v.tcpFlags : 0;
    const n = F.pktsF[s] + F.pktsB[s];
    // Flow-level inter-arrival times, subflows, active/idle periods.
    if (n > 0) {
      const iat = ts - F.last[s];
      welford(F.iatMean, F.iatM2, s, n - 1, iat);
      if (iat < F.iatMin[s]) F.iatMin[s] = iat;
      if (iat > F.iatMax[s]) F.iatMax[s] = iat;
      if (ts - F.activeEnd[s] > this.o.activityTimeoutUs) {
        const active = F.activeEnd[s] - F.activeStart[s];
        if (active > 0) addStat(F.actN, F.actMean, F.actM2, F.actMin, F.actMax, s, active);
        addStat(F.idleN, F.idleMean, F.idleM2, F.idleMin, F.idleMax, s, ts - F.activeEnd[s]);
        F.activeStart[s] = ts;
      }
      F.activeEnd[s] = ts;
    }
    F.last[s] = ts;
    // Packet lengths over the whole flow.
    welford(F.lenMean, F.lenM2, s, n, len);
    if (len < F.lenMin[s]) F.lenMin[s] = len;
    if (len > F.lenMax[s]) F.lenMax[s] = len;
    // Flags over the whole flow.
    if (flags) {
      if (flags & TCP_FIN) F.fin[s]++;
      if (flags & TCP_SYN) F.syn[s]++;
      if (flags & TCP_RST) F.rst[s]++;
      if (flags & TCP_PSH) F.psh[s]++;
      if (flags & TCP_ACK) F.ack[s]++;
      if (flags & TCP_URG) F.urg[s]++;
      if (flags & TCP_CWR) F.cwr[s]++;
      if (flags & TCP_ECE) F.ece[s]++;
    }
    if ((v.protocol === 1 || v.protocol === 58) && F.icmpType[s] < 0) {
      F.icmpType[s] = v.icmpType;
      F.icmpCode[s] = v.icmpCode;
    }
    if (fwd) {
      const k = F.pktsF[s];
      if (k > 0) {
        const iat = ts - F.lastF[s];
        welford(F.iatMeanF, F.iatM2F, s, k - 1, iat);
        if (iat < F.iatMinF[s]) F.iatMinF[s] = iat;
        if (iat > F.iatMaxF[s]) F.iatMaxF[s] = iat;
      }
      welford(F.lenMeanF, F.lenM2F, s, k, len);
      if (len < F.lenMinF[s]) F.lenMinF[s] = len;
      if (len > F.lenMaxF[s]) F.lenMaxF[s] = len;
      F.pktsF[s] = k + 1;
      F.bytesF[s] += len;
      F.lastF[s] = ts;
      F.hdrF[s] += hdr;
      if (hdr < F.hdrMinF[s]) F.hdrMinF[s] = hdr;
      if (len >= 1) F.actDataF[s]++;
      if (flags & TCP_PSH) F.pshF[s]++;
      if (flags & TCP_URG) F.urgF[s]++;
      if (flags & TCP_RST) F.rstF[s]++;
      if (v.protocol === 6 && F.winF[s] < 0) F.winF[s] = v.tcpWindow;
    } else {
      const k = F.pktsB[s];
      if (k === 0) F.firstB[s] = ts;
      if (k > 0) {
        const iat = ts - F.lastB[s];
        welford(F.iatMeanB, F.iatM2B, s, k - 1, iat);
        if (iat < F.iatMinB[s]) F.iatMinB[s] = iat;
        if (iat > F.iatMaxB[s]) F.iatMaxB[s] = iat;
      }
      welford(F.lenMeanB, F.lenM2B, s, k, len);
      if (len < F.lenMinB[s]) F.lenMinB[s] = len;
      if (len > F.lenMaxB[s]) F.lenMaxB[s] = len;
      F.pktsB[s] = k + 1;
      F.bytesB[s] += len;
      F.lastB[s] = ts;
      F.hdrB[s] += hdr;
      if (flags & TCP_PSH) F.pshB[s]++;
      if (flags & TCP_URG) F.urgB[s]++;
      if (flags & TCP_RST) F.rstB[s]++;
      if (v.protocol === 6 && F.winB[s] < 0) F.winB[s] = v.tcpWindow;
    }
    this.bulk(s, ts, len, fwd);
  }

  /**
   * Bulk transfers: at least 4 consecutive data packets in one direction, each within bulkGap of
   * the previous, not interrupted by a data packet in the other direction.
   */
  private bulk(s: number, ts: number, len: number, fwd: boolean): void {
    if (len <= 0) return;
    const F = this.f;
    if (fwd)
      this.bulkRun(
        s,
        ts,
        len,
        F.bsLastB[s],
        F.bsStartF,
        F.bsLastF,
        F.bsPktsF,
        F.bsBytesF,
        F.bulkCountF,
        F.bulkPktsF,
        F.bulkBytesF,
        F.bulkDurF,
      );
    else
      this.bulkRun(
        s,
        ts,
        len,
        F.bsLastF[s],
        F.bsStartB,
        F.bsLastB,
        F.bsPktsB,
        F.bsBytesB,
        F.bulkCountB,
        F.bulkPktsB,
        F.bulkBytesB,
        F.bulkDurB,
      );
  }

  private bulkRun(
    s: number,
    ts: number,
    len: number,
    otherLast: number,
    start: Float64Array,
    last: Float64Array,
    pk: Float64Array,
    by: Float64Array,
    cnt: Float64Array,
    bp: Float64Array,
    bb: Float64Array,
    bd: Float64Array,
  ): void {
    // A data packet the other way since this run began breaks it.
    if (pk[s] > 0 && otherLast > start[s]) pk[s] = 0;
    if (pk[s] === 0 || ts - last[s] > this.o.bulkGapUs) {
      start[s] = ts;
      last[s] = ts;
      pk[s] = 1;
      by[s] = len;
      return;
    }
    pk[s]++;
    by[s] += len;
    if (pk[s] === 4) {
      cnt[s]++;
      bp[s] += 4;
      bb[s] += by[s];
      bd[s] += ts - start[s];
    } else if (pk[s] > 4) {
      bp[s]++;
      bb[s] += len;
      bd[s] += ts - last[s];
    }
    last[s] = ts;
  }

  private finish(s: number, reason: FlowRow['reason']): void {
    const row = this.row(s, reason);
    this.unhash(s);
    this.unlink(s);
    this.free.push(s);
    this.live--;
    this.stats.flows++;
    this.onFlow(row);
  }

  private row(s: number, reason: FlowRow['reason']): FlowRow {
    const F = this.f;
    const o = s * KW;
    const a = this.fwdIsA[s] === 1;
    const ver = this.keys[o] >> 8;
    const protocol = this.keys[o] & 0xff;
    const ipA = formatIp(this.keys, o + 1, ver);
    const ipB = formatIp(this.keys, o + 5, ver);
    const portA = this.keys[o + 9] >>> 16;
    const portB = this.keys[o + 9] & 0xffff;
    const srcIp = a ? ipA : ipB;
    const dstIp = a ? ipB : ipA;
    const srcPort = a ? portA : portB;
    const dstPort = a ? portB : portA;
    const x = new Float64Array(FLOW_COLUMNS.length).fill(Number.NaN);
    const pf = F.pktsF[s];
    const pb = F.pktsB[s];
    const n = pf + pb;
    const bytes = F.bytesF[s] + F.bytesB[s];
    // Close the last active period.
    const lastActive = F.activeEnd[s] - F.activeStart[s];
    if (lastActive > 0) addStat(F.actN, F.actMean, F.actM2, F.actMin, F.actMax, s, lastActive);
    const dur = F.last[s] - F.first[s];
    const secs = dur / 1e6;
    const fin = (v: number) => (Number.isFinite(v) ? v : 0);
    const std = (m2: number, k: number) => (k > 1 ? Math.sqrt(m2 / (k - 1)) : 0);
    x[COL['Src Port']] = srcPort;
    x[COL['Dst Port']] = dstPort;
    x[COL.Protocol] = protocol;
    x[COL['Flow Duration']] = dur;
    x[COL['Total Fwd Packet']] = pf;
    x[COL['Total Bwd packets']] = pb;
    x[COL['Total Length of Fwd Packet']] = F.bytesF[s];
    x[COL['Total Length of Bwd Packet']] = F.bytesB[s];
    x[COL['Fwd Packet Length Max']] = pf ? F.lenMaxF[s] : 0;
    x[COL['Fwd Packet Length Min']] = pf ? F.lenMinF[s] : 0;
    x[COL['Fwd Packet Length Mean']] = pf ? F.lenMeanF[s] : 0;
    x[COL['Fwd Packet Length Std']] = std(F.lenM2F[s], pf);
    x[COL['Bwd Packet Length Max']] = pb ? F.lenMaxB[s] : 0;
    x[COL['Bwd Packet Length Min']] = pb ? F.lenMinB[s] : 0;
    x[COL['Bwd Packet Length Mean']] = pb ? F.lenMeanB[s] : 0;
    x[COL['Bwd Packet Length Std']] = std(F.lenM2B[s], pb);
    x[COL['Flow Bytes/s']] = secs > 0 ? bytes / secs : 0;
    x[COL['Flow Packets/s']] = secs > 0 ? n / secs : 0;
    x[COL['Flow IAT Mean']] = n > 1 ? F.iatMean[s] : 0;
    x[COL['Flow IAT Std']] = std(F.iatM2[s], n - 1);
    x[COL['Flow IAT Max']] = fin(n > 1 ? F.iatMax[s] : 0);
    x[COL['Flow IAT Min']] = fin(n > 1 ? F.iatMin[s] : 0);
    x[COL['Fwd IAT Total']] = pf > 1 ? F.lastF[s] - F.first[s] : 0;
    x[COL['Fwd IAT Mean']] = pf > 1 ? F.iatMeanF[s] : 0;
    x[COL['Fwd IAT Std']] = std(F.iatM2F[s], pf - 1);
    x[COL['Fwd IAT Max']] = pf > 1 ? F.iatMaxF[s] : 0;
    x[COL['Fwd IAT Min']] = pf > 1 ? F.iatMinF[s] : 0;
    x[COL['Bwd IAT Total']] = pb > 1 ? F.lastB[s] - F.firstB[s] : 0;
    x[COL['Bwd IAT Mean']] = pb > 1 ? F.iatMeanB[s] : 0;
    x[COL['Bwd IAT Std']] = std(F.iatM2B[s], pb - 1);
    x[COL['Bwd IAT Max']] = pb > 1 ? F.iatMaxB[s] : 0;
    x[COL['Bwd IAT Min']] = pb > 1 ? F.iatMinB[s] : 0;
    x[COL['Fwd PSH Flags']] = F.pshF[s];
    x[COL['Bwd PSH Flags']] = F.pshB[s];
    x[COL['Fwd URG Flags']] = F.urgF[s];
    x[COL['Bwd URG Flags']] = F.urgB[s];
    x[COL['Fwd RST Flags']] = F.rstF[s];
    x[COL['Bwd RST Flags']] = F.rstB[s];
    x[COL['Fwd Header Length']] = F.hdrF[s];
    x[COL['Bwd Header Length']] = F.hdrB[s];
    x[COL['Fwd Packets/s']] = secs > 0 ? pf / secs : 0;
    x[COL['Bwd Packets/s']] = secs > 0 ? pb / secs : 0;
    x[COL['Packet Length Min']] = n ? F.lenMin[s] : 0;
    x[COL['Packet Length Max']] = n ? F.lenMax[s] : 0;
    x[COL['Packet Length Mean']] = n ? F.lenMean[s] : 0;
    const plStd = std(F.lenM2[s], n);
    x[COL['Packet Length Std']] = plStd;
    x[COL['Packet Length Variance']] = plStd * plStd;
    x[COL['FIN Flag Count']] = F.fin[s];
    x[COL['SYN Flag Count']] = F.syn[s];
    x[COL['RST Flag Count']] = F.rst[s];
    x[COL['PSH Flag Count']] = F.psh[s];
    x[COL['ACK Flag Count']] = F.ack[s];
    x[COL['URG Flag Count']] = F.urg[s];
    x[COL['CWR Flag Count']] = F.cwr[s];
    x[COL['ECE Flag Count']] = F.ece[s];
    x[COL['Down/Up Ratio']] = pf ? pb / pf : 0;
    x[COL['Average Packet Size']] = n ? bytes / n : 0;
    x[COL['Fwd Segment Size Avg']] = pf ? F.bytesF[s] / pf : 0;
    x[COL['Bwd Segment Size Avg']] = pb ? F.bytesB[s] / pb : 0;
    const bulk = (cnt: number, b: number, p: number, d: number): [number, number, number] =>
      cnt > 0 ? [b / cnt, p / cnt, d > 0 ? b / (d / 1e6) : 0] : [0, 0, 0];
    const bf = bulk(F.bulkCountF[s], F.bulkBytesF[s], F.bulkPktsF[s], F.bulkDurF[s]);
    const bbk = bulk(F.bulkCountB[s], F.bulkBytesB[s], F.bulkPktsB[s], F.bulkDurB[s]);
    x[COL['Fwd Bytes/Bulk Avg']] = bf[0];
    x[COL['Fwd Packet/Bulk Avg']] = bf[1];
    x[COL['Fwd Bulk Rate Avg']] = bf[2];
    x[COL['Bwd Bytes/Bulk Avg']] = bbk[0];
    x[COL['Bwd Packet/Bulk Avg']] = bbk[1];
    x[COL['Bwd Bulk Rate Avg']] = bbk[2];
    // As in cicids2017_improved (checked on all 43,419 rows): every packet opens a subflow, so
    // the per-subflow figures are the direction's totals divided by the flow's packet count,
    // rounded down. Kept for compatibility with models trained on that release.
    x[COL['Subflow Fwd Packets']] = n ? Math.floor(pf / n) : 0;
    x[COL['Subflow Fwd Bytes']] = n ? Math.floor(F.bytesF[s] / n) : 0;
    x[COL['Subflow Bwd Packets']] = n ? Math.floor(pb / n) : 0;
    x[COL['Subflow Bwd Bytes']] = n ? Math.floor(F.bytesB[s] / n) : 0;
    x[COL['FWD Init Win Bytes']] = Math.max(0, F.winF[s]);
    x[COL['Bwd Init Win Bytes']] = Math.max(0, F.winB[s]);
    x[COL['Fwd Act Data Pkts']] = F.actDataF[s];
    x[COL['Fwd Seg Size Min']] = pf ? F.hdrMinF[s] : 0;
    const an = F.actN[s];
    x[COL['Active Mean']] = an ? F.actMean[s] : 0;
    x[COL['Active Std']] = std(F.actM2[s], an);
    x[COL['Active Max']] = an ? F.actMax[s] : 0;
    x[COL['Active Min']] = an ? F.actMin[s] : 0;
    const idn = F.idleN[s];
    x[COL['Idle Mean']] = idn ? F.idleMean[s] : 0;
    x[COL['Idle Std']] = std(F.idleM2[s], idn);
    x[COL['Idle Max']] = idn ? F.idleMax[s] : 0;
    x[COL['Idle Min']] = idn ? F.idleMin[s] : 0;
    x[COL['ICMP Code']] = F.icmpCode[s];
    x[COL['ICMP Type']] = F.icmpType[s];
    x[COL['Total TCP Flow Time']] = protocol === 6 ? dur : 0;
    return {
      values: x,
      flowId: `${srcIp}-${dstIp}-${srcPort}-${dstPort}-${protocol}`,
      srcIp,
      dstIp,
      srcPort,
      dstPort,
      protocol,
      startUs: F.first[s],
      timestamp: formatTimestamp(F.first[s]),
      wireBytesFwd: F.wireF[s],
      wireBytesBwd: F.wireB[s],
      reason,
    };
  }
}

/** Welford update of mean/M2 at slot s with the (k+1)-th value x. */
function welford(mean: Float64Array, m2: Float64Array, s: number, k: number, x: number): void {
  const d = x - mean[s];
  mean[s] += d / (k + 1);
  m2[s] += d * (x - mean[s]);
}

function addStat(
  n: Float64Array,
  mean: Float64Array,
  m2: Float64Array,
  min: Float64Array,
  max: Float64Array,
  s: number,
  x: number,
): void {
  welford(mean, m2, s, n[s], x);
  n[s]++;
  if (x < min[s]) min[s] = x;
  if (x > max[s]) max[s] = x;
}

/** Dotted IPv4 or RFC 5952 IPv6 text from key words. */
export function formatIp(k: Uint32Array, o: number, ver: number): string {
  if (ver === 4) {
    const a = k[o];
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  }
  const h: number[] = [];
  for (let i = 0; i < 4; i++) h.push(k[o + i] >>> 16, k[o + i] & 0xffff);
  // Longest run of ≥2 zero groups becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(h);
  return `${hex(h.slice(0, best))}::${hex(h.slice(best + bestLen))}`;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), the CIC CSVs' timestamp layout. */
export function formatTimestamp(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const p = (x: number, w = 2) => String(x).padStart(w, '0');
  const micro = Math.floor(us - Math.floor(us / 1e6) * 1e6);
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(micro, 6)}`;
}
