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

// Accumulator fields of a flow, at these offsets in its stride of the accumulator array.
// Direction-dependent ones come in adjacent pairs (…F then …B: the code relies on it);
// statistics blocks are N, Mean, M2, Min, Max.
enum X {
  first,
  last,
  pktsF,
  pktsB,
  bytesF,
  bytesB,
  lenMinF,
  lenMinB,
  lenMaxF,
  lenMaxB,
  lenMeanF,
  lenMeanB,
  lenM2F,
  lenM2B,
  lastF,
  lastB,
  firstB,
  wireF,
  wireB,
  iatMeanF,
  iatMeanB,
  iatM2F,
  iatM2B,
  iatMinF,
  iatMinB,
  iatMaxF,
  iatMaxB,
  hdrF,
  hdrB,
  hdrMinF,
  pshF,
  pshB,
  urgF,
  urgB,
  rstF,
  rstB,
  winF,
  winB,
  actDataF,
  finF,
  finB,
  bulkCountF,
  bulkCountB,
  bulkPktsF,
  bulkPktsB,
  bulkBytesF,
  bulkBytesB,
  bulkDurF,
  bulkDurB,
  bsStartF,
  bsStartB,
  bsLastF,
  bsLastB,
  bsPktsF,
  bsPktsB,
  bsBytesF,
  bsBytesB,
  lenMin,
  lenMax,
  lenMean,
  lenM2,
  iatMean,
  iatM2,
  iatMin,
  iatMax,
  fin,
  syn,
  rst,
  psh,
  ack,
  urg,
  cwr,
  ece,
  activeStart,
  activeEnd,
  actN,
  actMean,
  actM2,
  actMin,
  actMax,
  idleN,
  idleMean,
  idleM2,
  idleMin,
  idleMax,
  icmpType,
  icmpCode,
}
/** Accumulators per flow. */
const NF = 87;

// Column indices of the output row, resolved once.
const C_SRC_PORT = COL['Src Port'];
const C_DST_PORT = COL['Dst Port'];
const C_PROTOCOL = COL['Protocol'];
const C_FLOW_DURATION = COL['Flow Duration'];
const C_TOTAL_FWD_PACKET = COL['Total Fwd Packet'];
const C_TOTAL_BWD_PACKETS = COL['Total Bwd packets'];
const C_TOTAL_LENGTH_OF_FWD_PACKET = COL['Total Length of Fwd Packet'];
const C_TOTAL_LENGTH_OF_BWD_PACKET = COL['Total Length of Bwd Packet'];
const C_FWD_PACKET_LENGTH_MAX = COL['Fwd Packet Length Max'];
const C_FWD_PACKET_LENGTH_MIN = COL['Fwd Packet Length Min'];
const C_FWD_PACKET_LENGTH_MEAN = COL['Fwd Packet Length Mean'];
const C_FWD_PACKET_LENGTH_STD = COL['Fwd Packet Length Std'];
const C_BWD_PACKET_LENGTH_MAX = COL['Bwd Packet Length Max'];
const C_BWD_PACKET_LENGTH_MIN = COL['Bwd Packet Length Min'];
const C_BWD_PACKET_LENGTH_MEAN = COL['Bwd Packet Length Mean'];
const C_BWD_PACKET_LENGTH_STD = COL['Bwd Packet Length Std'];
const C_FLOW_BYTES_S = COL['Flow Bytes/s'];
const C_FLOW_PACKETS_S = COL['Flow Packets/s'];
const C_FLOW_IAT_MEAN = COL['Flow IAT Mean'];
const C_FLOW_IAT_STD = COL['Flow IAT Std'];
const C_FLOW_IAT_MAX = COL['Flow IAT Max'];
const C_FLOW_IAT_MIN = COL['Flow IAT Min'];
const C_FWD_IAT_TOTAL = COL['Fwd IAT Total'];
const C_FWD_IAT_MEAN = COL['Fwd IAT Mean'];
const C_FWD_IAT_STD = COL['Fwd IAT Std'];
const C_FWD_IAT_MAX = COL['Fwd IAT Max'];
const C_FWD_IAT_MIN = COL['Fwd IAT Min'];
const C_BWD_IAT_TOTAL = COL['Bwd IAT Total'];
const C_BWD_IAT_MEAN = COL['Bwd IAT Mean'];
const C_BWD_IAT_STD = COL['Bwd IAT Std'];
const C_BWD_IAT_MAX = COL['Bwd IAT Max'];
const C_BWD_IAT_MIN = COL['Bwd IAT Min'];
const C_FWD_PSH_FLAGS = COL['Fwd PSH Flags'];
const C_BWD_PSH_FLAGS = COL['Bwd PSH Flags'];
const C_FWD_URG_FLAGS = COL['Fwd URG Flags'];
const C_BWD_URG_FLAGS = COL['Bwd URG Flags'];
const C_FWD_RST_FLAGS = COL['Fwd RST Flags'];
const C_BWD_RST_FLAGS = COL['Bwd RST Flags'];
const C_FWD_HEADER_LENGTH = COL['Fwd Header Length'];
const C_BWD_HEADER_LENGTH = COL['Bwd Header Length'];
const C_FWD_PACKETS_S = COL['Fwd Packets/s'];
const C_BWD_PACKETS_S = COL['Bwd Packets/s'];
const C_PACKET_LENGTH_MIN = COL['Packet Length Min'];
const C_PACKET_LENGTH_MAX = COL['Packet Length Max'];
const C_PACKET_LENGTH_MEAN = COL['Packet Length Mean'];
const C_PACKET_LENGTH_STD = COL['Packet Length Std'];
const C_PACKET_LENGTH_VARIANCE = COL['Packet Length Variance'];
const C_FIN_FLAG_COUNT = COL['FIN Flag Count'];
const C_SYN_FLAG_COUNT = COL['SYN Flag Count'];
const C_RST_FLAG_COUNT = COL['RST Flag Count'];
const C_PSH_FLAG_COUNT = COL['PSH Flag Count'];
const C_ACK_FLAG_COUNT = COL['ACK Flag Count'];
const C_URG_FLAG_COUNT = COL['URG Flag Count'];
const C_CWR_FLAG_COUNT = COL['CWR Flag Count'];
const C_ECE_FLAG_COUNT = COL['ECE Flag Count'];
const C_DOWN_UP_RATIO = COL['Down/Up Ratio'];
const C_AVERAGE_PACKET_SIZE = COL['Average Packet Size'];
const C_FWD_SEGMENT_SIZE_AVG = COL['Fwd Segment Size Avg'];
const C_BWD_SEGMENT_SIZE_AVG = COL['Bwd Segment Size Avg'];
const C_FWD_BYTES_BULK_AVG = COL['Fwd Bytes/Bulk Avg'];
const C_FWD_PACKET_BULK_AVG = COL['Fwd Packet/Bulk Avg'];
const C_FWD_BULK_RATE_AVG = COL['Fwd Bulk Rate Avg'];
const C_BWD_BYTES_BULK_AVG = COL['Bwd Bytes/Bulk Avg'];
const C_BWD_PACKET_BULK_AVG = COL['Bwd Packet/Bulk Avg'];
const C_BWD_BULK_RATE_AVG = COL['Bwd Bulk Rate Avg'];
const C_SUBFLOW_FWD_PACKETS = COL['Subflow Fwd Packets'];
const C_SUBFLOW_FWD_BYTES = COL['Subflow Fwd Bytes'];
const C_SUBFLOW_BWD_PACKETS = COL['Subflow Bwd Packets'];
const C_SUBFLOW_BWD_BYTES = COL['Subflow Bwd Bytes'];
const C_FWD_INIT_WIN_BYTES = COL['FWD Init Win Bytes'];
const C_BWD_INIT_WIN_BYTES = COL['Bwd Init Win Bytes'];
const C_FWD_ACT_DATA_PKTS = COL['Fwd Act Data Pkts'];
const C_FWD_SEG_SIZE_MIN = COL['Fwd Seg Size Min'];
const C_ACTIVE_MEAN = COL['Active Mean'];
const C_ACTIVE_STD = COL['Active Std'];
const C_ACTIVE_MAX = COL['Active Max'];
const C_ACTIVE_MIN = COL['Active Min'];
const C_IDLE_MEAN = COL['Idle Mean'];
const C_IDLE_STD = COL['Idle Std'];
const C_IDLE_MAX = COL['Idle Max'];
const C_IDLE_MIN = COL['Idle Min'];
const C_ICMP_CODE = COL['ICMP Code'];
const C_ICMP_TYPE = COL['ICMP Type'];
const C_TOTAL_TCP_FLOW_TIME = COL['Total TCP Flow Time'];

/** Flow slots per accumulator page (PAGE · NF doubles, 2.9 MB). */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE - 1;

/** Key words per flow: [version<<8 | protocol, A0..A3, B0..B3, portA<<16 | portB]. */
const KW = 10;

export class FlowMeter {
  readonly stats: FlowMeterStats = { packets: 0, flows: 0, evicted: 0, peakFlows: 0 };
  private readonly o: FlowMeterOptions;
  private cap = 0;
  /** Accumulators, NF per flow slot, in pages of PAGE slots. */
  private readonly pages: Float64Array[] = [];
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
    // Accumulators grow by whole pages: nothing is copied, so growth never doubles memory.
    while (this.pages.length * PAGE < cap) this.pages.push(new Float64Array(PAGE * NF));
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
    // IPv4 keys have zeros in address words 1-3: hash only the words that vary.
    let h = Math.imul(k[o] ^ 0x811c9dc5, 0x01000193);
    h = Math.imul(h ^ k[o + 1], 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ k[o + 5], 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ k[o + 9], 0x27d4eb2f);
    if (k[o] >>> 8 === 6)
      for (let i = 2; i < 5; i++) {
        h = Math.imul(h ^ k[o + i], 0x01000193);
        h = Math.imul(h ^ k[o + i + 4], 0x01000193);
        h ^= h >>> 15;
      }
    return (h ^ (h >>> 15)) >>> 0;
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
    if (s >= 0 && tsUs - this.pages[s >>> PAGE_BITS][(s & PAGE_MASK) * NF + X.first] > this.o.flowTimeoutUs) {
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
    this.pages[s >>> PAGE_BITS][(s & PAGE_MASK) * NF + X.wireF + (fwd ? 0 : 1)] += wireLen;
    // TCP termination.
    if (v.protocol === 6) {
      const d = this.pages[s >>> PAGE_BITS];
      const b = (s & PAGE_MASK) * NF;
      if (v.tcpFlags & TCP_RST) this.finish(s, 'rst');
      else if (v.tcpFlags & TCP_FIN) {
        d[b + X.finF + (fwd ? 0 : 1)] = 1;
      } else if (d[b + X.finF] && d[b + X.finB]) this.finish(s, 'fin');
    }
    if ((this.stats.packets & 1023) === 0) this.advance(tsUs);
  }

  /** Emits every flow idle since before `nowUs − idleTimeout`. */
  advance(nowUs: number): void {
    const limit = nowUs - this.o.idleTimeoutUs;
    while (this.head >= 0) {
      const h = this.head;
      if (this.pages[h >>> PAGE_BITS][(h & PAGE_MASK) * NF + X.last] >= limit) break;
      this.finish(h, 'idle');
    }
  }

  /** Emits remaining flows (end of input), at most `max` of them; returns how many are left. */
  flush(max = Number.POSITIVE_INFINITY): number {
    for (let i = 0; i < max && this.head >= 0; i++) this.finish(this.head, 'end');
    return this.live;
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
    const d = this.pages[s >>> PAGE_BITS];
    const b = (s & PAGE_MASK) * NF;
    d.fill(0, b, b + NF);
    d[b + X.first] = tsUs;
    d[b + X.last] = tsUs;
    d[b + X.lenMinF] = d[b + X.lenMinB] = d[b + X.lenMin] = Number.POSITIVE_INFINITY;
    d[b + X.iatMinF] = d[b + X.iatMinB] = d[b + X.iatMin] = Number.POSITIVE_INFINITY;
    d[b + X.actMin] = d[b + X.idleMin] = Number.POSITIVE_INFINITY;
    d[b + X.hdrMinF] = Number.POSITIVE_INFINITY;
    d[b + X.winF] = d[b + X.winB] = -1;
    d[b + X.icmpType] = d[b + X.icmpCode] = -1;
    d[b + X.activeStart] = d[b + X.activeEnd] = tsUs;
    return s;
  }

  private update(s: number, ts: number, v: PacketView, fwd: boolean): void {
    const d = this.pages[s >>> PAGE_BITS];
    const b = (s & PAGE_MASK) * NF;
    const len = v.payloadLength;
    const hdr = v.transportHeaderLength;
    const flags = v.protocol === 6 ? v.tcpFlags : 0;
    const n = d[b + X.pktsF] + d[b + X.pktsB];
    // Flow-level inter-arrival times, subflows, active/idle periods.
    if (n > 0) {
      const iat = ts - d[b + X.last];
      welford(d, b + X.iatMean, b + X.iatM2, n - 1, iat);
      if (iat < d[b + X.iatMin]) d[b + X.iatMin] = iat;
      if (iat > d[b + X.iatMax]) d[b + X.iatMax] = iat;
      if (ts - d[b + X.activeEnd] > this.o.activityTimeoutUs) {
        const active = d[b + X.activeEnd] - d[b + X.activeStart];
        if (active > 0) addStat(d, b + X.actN, active);
        addStat(d, b + X.idleN, ts - d[b + X.activeEnd]);
        d[b + X.activeStart] = ts;
      }
      d[b + X.activeEnd] = ts;
    }
    d[b + X.last] = ts;
    // Packet lengths over the whole flow.
    welford(d, b + X.lenMean, b + X.lenM2, n, len);
    if (len < d[b + X.lenMin]) d[b + X.lenMin] = len;
    if (len > d[b + X.lenMax]) d[b + X.lenMax] = len;
    // Flags over the whole flow.
    if (flags) {
      if (flags & TCP_FIN) d[b + X.fin]++;
      if (flags & TCP_SYN) d[b + X.syn]++;
      if (flags & TCP_RST) d[b + X.rst]++;
      if (flags & TCP_PSH) d[b + X.psh]++;
      if (flags & TCP_ACK) d[b + X.ack]++;
      if (flags & TCP_URG) d[b + X.urg]++;
      if (flags & TCP_CWR) d[b + X.cwr]++;
      if (flags & TCP_ECE) d[b + X.ece]++;
    }
    if ((v.protocol === 1 || v.protocol === 58) && d[b + X.icmpType] < 0) {
      d[b + X.icmpType] = v.icmpType;
      d[b + X.icmpCode] = v.icmpCode;
    }
    // Per direction: every …F field is followed by its …B twin, so `o` selects the direction.
    const o = b + (fwd ? 0 : 1);
    const k = d[o + X.pktsF];
    if (k === 0 && !fwd) d[b + X.firstB] = ts;
    if (k > 0) {
      const iat = ts - d[o + X.lastF];
      welford(d, o + X.iatMeanF, o + X.iatM2F, k - 1, iat);
      if (iat < d[o + X.iatMinF]) d[o + X.iatMinF] = iat;
      if (iat > d[o + X.iatMaxF]) d[o + X.iatMaxF] = iat;
    }
    welford(d, o + X.lenMeanF, o + X.lenM2F, k, len);
    if (len < d[o + X.lenMinF]) d[o + X.lenMinF] = len;
    if (len > d[o + X.lenMaxF]) d[o + X.lenMaxF] = len;
    d[o + X.pktsF] = k + 1;
    d[o + X.bytesF] += len;
    d[o + X.lastF] = ts;
    d[o + X.hdrF] += hdr;
    if (flags & TCP_PSH) d[o + X.pshF]++;
    if (flags & TCP_URG) d[o + X.urgF]++;
    if (flags & TCP_RST) d[o + X.rstF]++;
    if (v.protocol === 6 && d[o + X.winF] < 0) d[o + X.winF] = v.tcpWindow;
    if (fwd) {
      if (hdr < d[b + X.hdrMinF]) d[b + X.hdrMinF] = hdr;
      if (len >= 1) d[b + X.actDataF]++;
    }
    this.bulk(s, ts, len, fwd);
  }

  /**
   * Bulk transfers: at least 4 consecutive data packets in one direction, each within bulkGap of
   * the previous, not interrupted by a data packet in the other direction.
   */
  private bulk(s: number, ts: number, len: number, fwd: boolean): void {
    if (len <= 0) return;
    const d = this.pages[s >>> PAGE_BITS];
    const b = (s & PAGE_MASK) * NF;
    // This direction's fields at o (…F, or the …B twin after it); the other direction's at b + other.
    const o = b + (fwd ? 0 : 1);
    const other = b + (fwd ? 1 : 0);
    // A data packet the other way since this run began breaks it.
    if (d[o + X.bsPktsF] > 0 && d[other + X.bsLastF] > d[o + X.bsStartF]) d[o + X.bsPktsF] = 0;
    if (d[o + X.bsPktsF] === 0 || ts - d[o + X.bsLastF] > this.o.bulkGapUs) {
      d[o + X.bsStartF] = ts;
      d[o + X.bsLastF] = ts;
      d[o + X.bsPktsF] = 1;
      d[o + X.bsBytesF] = len;
      return;
    }
    const pk = ++d[o + X.bsPktsF];
    d[o + X.bsBytesF] += len;
    if (pk === 4) {
      d[o + X.bulkCountF]++;
      d[o + X.bulkPktsF] += 4;
      d[o + X.bulkBytesF] += d[o + X.bsBytesF];
      d[o + X.bulkDurF] += ts - d[o + X.bsStartF];
    } else if (pk > 4) {
      d[o + X.bulkPktsF]++;
      d[o + X.bulkBytesF] += len;
      d[o + X.bulkDurF] += ts - d[o + X.bsLastF];
    }
    d[o + X.bsLastF] = ts;
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
    const d = this.pages[s >>> PAGE_BITS];
    const b = (s & PAGE_MASK) * NF;
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
    const pf = d[b + X.pktsF];
    const pb = d[b + X.pktsB];
    const n = pf + pb;
    const bytes = d[b + X.bytesF] + d[b + X.bytesB];
    // Close the last active period.
    const lastActive = d[b + X.activeEnd] - d[b + X.activeStart];
    if (lastActive > 0) addStat(d, b + X.actN, lastActive);
    const dur = d[b + X.last] - d[b + X.first];
    const secs = dur / 1e6;
    x[C_SRC_PORT] = srcPort;
    x[C_DST_PORT] = dstPort;
    x[C_PROTOCOL] = protocol;
    x[C_FLOW_DURATION] = dur;
    x[C_TOTAL_FWD_PACKET] = pf;
    x[C_TOTAL_BWD_PACKETS] = pb;
    x[C_TOTAL_LENGTH_OF_FWD_PACKET] = d[b + X.bytesF];
    x[C_TOTAL_LENGTH_OF_BWD_PACKET] = d[b + X.bytesB];
    x[C_FWD_PACKET_LENGTH_MAX] = pf ? d[b + X.lenMaxF] : 0;
    x[C_FWD_PACKET_LENGTH_MIN] = pf ? d[b + X.lenMinF] : 0;
    x[C_FWD_PACKET_LENGTH_MEAN] = pf ? d[b + X.lenMeanF] : 0;
    x[C_FWD_PACKET_LENGTH_STD] = sampleStd(d[b + X.lenM2F], pf);
    x[C_BWD_PACKET_LENGTH_MAX] = pb ? d[b + X.lenMaxB] : 0;
    x[C_BWD_PACKET_LENGTH_MIN] = pb ? d[b + X.lenMinB] : 0;
    x[C_BWD_PACKET_LENGTH_MEAN] = pb ? d[b + X.lenMeanB] : 0;
    x[C_BWD_PACKET_LENGTH_STD] = sampleStd(d[b + X.lenM2B], pb);
    x[C_FLOW_BYTES_S] = secs > 0 ? bytes / secs : 0;
    x[C_FLOW_PACKETS_S] = secs > 0 ? n / secs : 0;
    x[C_FLOW_IAT_MEAN] = n > 1 ? d[b + X.iatMean] : 0;
    x[C_FLOW_IAT_STD] = sampleStd(d[b + X.iatM2], n - 1);
    x[C_FLOW_IAT_MAX] = n > 1 ? d[b + X.iatMax] : 0;
    x[C_FLOW_IAT_MIN] = n > 1 ? d[b + X.iatMin] : 0;
    x[C_FWD_IAT_TOTAL] = pf > 1 ? d[b + X.lastF] - d[b + X.first] : 0;
    x[C_FWD_IAT_MEAN] = pf > 1 ? d[b + X.iatMeanF] : 0;
    x[C_FWD_IAT_STD] = sampleStd(d[b + X.iatM2F], pf - 1);
    x[C_FWD_IAT_MAX] = pf > 1 ? d[b + X.iatMaxF] : 0;
    x[C_FWD_IAT_MIN] = pf > 1 ? d[b + X.iatMinF] : 0;
    x[C_BWD_IAT_TOTAL] = pb > 1 ? d[b + X.lastB] - d[b + X.firstB] : 0;
    x[C_BWD_IAT_MEAN] = pb > 1 ? d[b + X.iatMeanB] : 0;
    x[C_BWD_IAT_STD] = sampleStd(d[b + X.iatM2B], pb - 1);
    x[C_BWD_IAT_MAX] = pb > 1 ? d[b + X.iatMaxB] : 0;
    x[C_BWD_IAT_MIN] = pb > 1 ? d[b + X.iatMinB] : 0;
    x[C_FWD_PSH_FLAGS] = d[b + X.pshF];
    x[C_BWD_PSH_FLAGS] = d[b + X.pshB];
    x[C_FWD_URG_FLAGS] = d[b + X.urgF];
    x[C_BWD_URG_FLAGS] = d[b + X.urgB];
    x[C_FWD_RST_FLAGS] = d[b + X.rstF];
    x[C_BWD_RST_FLAGS] = d[b + X.rstB];
    x[C_FWD_HEADER_LENGTH] = d[b + X.hdrF];
    x[C_BWD_HEADER_LENGTH] = d[b + X.hdrB];
    x[C_FWD_PACKETS_S] = secs > 0 ? pf / secs : 0;
    x[C_BWD_PACKETS_S] = secs > 0 ? pb / secs : 0;
    x[C_PACKET_LENGTH_MIN] = n ? d[b + X.lenMin] : 0;
    x[C_PACKET_LENGTH_MAX] = n ? d[b + X.lenMax] : 0;
    x[C_PACKET_LENGTH_MEAN] = n ? d[b + X.lenMean] : 0;
    const plStd = sampleStd(d[b + X.lenM2], n);
    x[C_PACKET_LENGTH_STD] = plStd;
    x[C_PACKET_LENGTH_VARIANCE] = plStd * plStd;
    x[C_FIN_FLAG_COUNT] = d[b + X.fin];
    x[C_SYN_FLAG_COUNT] = d[b + X.syn];
    x[C_RST_FLAG_COUNT] = d[b + X.rst];
    x[C_PSH_FLAG_COUNT] = d[b + X.psh];
    x[C_ACK_FLAG_COUNT] = d[b + X.ack];
    x[C_URG_FLAG_COUNT] = d[b + X.urg];
    x[C_CWR_FLAG_COUNT] = d[b + X.cwr];
    x[C_ECE_FLAG_COUNT] = d[b + X.ece];
    x[C_DOWN_UP_RATIO] = pf ? pb / pf : 0;
    x[C_AVERAGE_PACKET_SIZE] = n ? bytes / n : 0;
    x[C_FWD_SEGMENT_SIZE_AVG] = pf ? d[b + X.bytesF] / pf : 0;
    x[C_BWD_SEGMENT_SIZE_AVG] = pb ? d[b + X.bytesB] / pb : 0;
    const bcF = d[b + X.bulkCountF];
    const bcB = d[b + X.bulkCountB];
    x[C_FWD_BYTES_BULK_AVG] = bcF > 0 ? d[b + X.bulkBytesF] / bcF : 0;
    x[C_FWD_PACKET_BULK_AVG] = bcF > 0 ? d[b + X.bulkPktsF] / bcF : 0;
    x[C_FWD_BULK_RATE_AVG] =
      bcF > 0 && d[b + X.bulkDurF] > 0 ? d[b + X.bulkBytesF] / (d[b + X.bulkDurF] / 1e6) : 0;
    x[C_BWD_BYTES_BULK_AVG] = bcB > 0 ? d[b + X.bulkBytesB] / bcB : 0;
    x[C_BWD_PACKET_BULK_AVG] = bcB > 0 ? d[b + X.bulkPktsB] / bcB : 0;
    x[C_BWD_BULK_RATE_AVG] =
      bcB > 0 && d[b + X.bulkDurB] > 0 ? d[b + X.bulkBytesB] / (d[b + X.bulkDurB] / 1e6) : 0;
    // As in cicids2017_improved (checked on all 43,419 rows): every packet opens a subflow, so
    // the per-subflow figures are the direction's totals divided by the flow's packet count,
    // rounded down. Kept for compatibility with models trained on that release.
    x[C_SUBFLOW_FWD_PACKETS] = n ? Math.floor(pf / n) : 0;
    x[C_SUBFLOW_FWD_BYTES] = n ? Math.floor(d[b + X.bytesF] / n) : 0;
    x[C_SUBFLOW_BWD_PACKETS] = n ? Math.floor(pb / n) : 0;
    x[C_SUBFLOW_BWD_BYTES] = n ? Math.floor(d[b + X.bytesB] / n) : 0;
    x[C_FWD_INIT_WIN_BYTES] = Math.max(0, d[b + X.winF]);
    x[C_BWD_INIT_WIN_BYTES] = Math.max(0, d[b + X.winB]);
    x[C_FWD_ACT_DATA_PKTS] = d[b + X.actDataF];
    x[C_FWD_SEG_SIZE_MIN] = pf ? d[b + X.hdrMinF] : 0;
    const an = d[b + X.actN];
    x[C_ACTIVE_MEAN] = an ? d[b + X.actMean] : 0;
    x[C_ACTIVE_STD] = sampleStd(d[b + X.actM2], an);
    x[C_ACTIVE_MAX] = an ? d[b + X.actMax] : 0;
    x[C_ACTIVE_MIN] = an ? d[b + X.actMin] : 0;
    const idn = d[b + X.idleN];
    x[C_IDLE_MEAN] = idn ? d[b + X.idleMean] : 0;
    x[C_IDLE_STD] = sampleStd(d[b + X.idleM2], idn);
    x[C_IDLE_MAX] = idn ? d[b + X.idleMax] : 0;
    x[C_IDLE_MIN] = idn ? d[b + X.idleMin] : 0;
    x[C_ICMP_CODE] = d[b + X.icmpCode];
    x[C_ICMP_TYPE] = d[b + X.icmpType];
    x[C_TOTAL_TCP_FLOW_TIME] = protocol === 6 ? dur : 0;
    return {
      values: x,
      flowId: `${srcIp}-${dstIp}-${srcPort}-${dstPort}-${protocol}`,
      srcIp,
      dstIp,
      srcPort,
      dstPort,
      protocol,
      startUs: d[b + X.first],
      timestamp: formatTimestamp(d[b + X.first]),
      wireBytesFwd: d[b + X.wireF],
      wireBytesBwd: d[b + X.wireB],
      reason,
    };
  }
}

/** Welford update of the mean at d[iMean] and M2 at d[iM2] with the (k+1)-th value x. */
function welford(d: Float64Array, iMean: number, iM2: number, k: number, x: number): void {
  const delta = x - d[iMean];
  d[iMean] += delta / (k + 1);
  d[iM2] += delta * (x - d[iMean]);
}

/** Sample standard deviation from Welford's M2 over k values (0 below two values). */
function sampleStd(m2: number, k: number): number {
  return k > 1 ? Math.sqrt(m2 / (k - 1)) : 0;
}

/** Adds x to the statistics block at d[o]: N, Mean, M2, Min, Max. */
function addStat(d: Float64Array, o: number, x: number): void {
  welford(d, o + 1, o + 2, d[o], x);
  d[o]++;
  if (x < d[o + 3]) d[o + 3] = x;
  if (x > d[o + 4]) d[o + 4] = x;
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
  const sec = Math.floor(us / 1e6);
  // Flows finish in roughly time order: the date-and-time part is cached per second.
  if (sec !== tsCacheSec) {
    const d = new Date(sec * 1000);
    tsCacheText = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.`;
    tsCacheSec = sec;
  }
  const micro = Math.floor(us - sec * 1e6);
  return tsCacheText + String(micro).padStart(6, '0');
}

let tsCacheSec = Number.NaN;
let tsCacheText = '';

function pad2(x: number): string {
  return x < 10 ? `0${x}` : String(x);
}
