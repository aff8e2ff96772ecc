/**
 * sFlow version 5 (sflow.org, "sFlow Version 5", July 2004): datagram decoding, aggregation of
 * packet samples into flows in the NetFlow feature set, and interface counters.
 *
 * Wire format: XDR, big-endian, every field 4-byte aligned; opaque data is length-prefixed and
 * padded to 4. A datagram is a header (version, agent address, sub-agent, sequence, uptime) and a
 * list of samples, each `(enterprise << 12 | format, length, data)`, so a sample that cannot be
 * decoded is skipped by its length and the rest of the datagram is kept. Enterprise 0 formats:
 * 1 flow sample, 2 counter sample, 3 expanded flow sample, 4 expanded counter sample; anything else
 * is skipped silently (vendor extensions are legitimate).
 *
 * Flow samples are packet samples: each stands for `sampling rate` packets. They are aggregated per
 * exporter (`ip:port/sub-agent`) and bidirectional 5-tuple into flows, the first sampled direction
 * being forward; a sample counts `rate` packets and `rate × IP length` bytes (the expansion a
 * sampled export needs to be comparable with unsampled flow data), flags are ORed, the duration
 * runs from the first to the last sample's arrival.
 *
 * Packet description, in order of preference: the raw packet header record (format 1) decoded with
 * the project's packet decoder (Ethernet, IPv4 and IPv6 header protocols; tunnels are followed as
 * the decoder does), else the sampled IPv4 / IPv6 records (formats 3 and 4). Ethernet frame data
 * (format 2) carries no IP fields and is not used; extended records (switch, router, gateway, user,
 * URL, …) are skipped by length.
 *
 * IP length of a sample (the bytes it contributes, before expansion): the IP header's own length
 * (IPv4 total length, IPv6 40 + payload length). It is in the sampled header even when the header
 * is cut at the agent's header size, and unlike the frame length it excludes link headers,
 * Ethernet padding and the FCS, so it is the octet count NetFlow/IPFIX exporters report. Only when
 * that field is 0 (segmentation offload on the sampling host, IPv6 jumbograms) the frame length
 * minus the stripped octets minus the link header bytes is used instead.
 *
 * Memory and allocation: flows live in a typed-array table (open addressing on the key words,
 * backward-shift deletion) with two intrusive lists, last activity (idle timeout, eviction) and
 * creation (active timeout); a sample updates numbers in place and allocates nothing. At most
 * `maxFlows` flows are held: beyond, the least recently active is emitted early (counted as
 * evicted). At most `maxExporters` exporters are tracked; datagrams from further ones are refused
 * with a problem.
 */
import { Decode, DecodeStats, decode, LINKTYPE, PacketView } from '../decode/decode.js';
import { type ExportRow, type FlowCounts, netflowValues } from '../features/netflow.js';
import { formatIp } from '../flow/meter.js';
import { type DatagramProblem, type ExporterStats, type ExportSink, newExporterStats } from './types.js';

/** Generic interface counters (counter record 0/1) of one interface, as a time-series point. */
export interface InterfaceCounters {
  /** sFlow agent address from the datagram header. */
  agent: string;
  subAgent: number;
  /** `ip:port/sub-agent` of the exporter, as in `SflowDecoder.exporters`. */
  exporter: string;
  ifIndex: number;
  /** Receive time of the datagram, ms since the epoch. */
  timeMs: number;
  /** Agent uptime from the datagram header, ms. */
  uptimeMs: number;
  /** ifSpeed, bits per second. */
  speed: number;
  /** ifStatus: bit 0 admin up, bit 1 operationally up. */
  status: number;
  inOctets: number;
  /** Unicast + multicast + broadcast packets received. */
  inPackets: number;
  outOctets: number;
  /** Unicast + multicast + broadcast packets sent. */
  outPackets: number;
  inErrors: number;
  outErrors: number;
  inDiscards: number;
  outDiscards: number;
}

export interface SflowHandlers extends ExportSink {
  counters?(c: InterfaceCounters): void;
}

export interface SflowOptions {
  /** A flow older than this (first sample to now) is emitted; default 60 000 ms. */
  activeTimeoutMs?: number;
  /** A flow without samples for this long is emitted; default 15 000 ms. */
  idleTimeoutMs?: number;
  /** Most flows held; beyond it the least recently active is emitted early. Default 100 000. */
  maxFlows?: number;
  /** Most exporters (address/sub-agent) tracked; default 4096. */
  maxExporters?: number;
}

export interface SflowStats {
  datagrams: number;
  /** Samples of any kind whose envelope was intact. */
  samples: number;
  flowSamples: number;
  counterSamples: number;
  /** Flow samples that described an IP packet and were aggregated. */
  sampledPackets: number;
  /** Flow samples without a usable IP description (non-IP frames, unsupported header protocols). */
  unusedSamples: number;
  /** Flows emitted. */
  flows: number;
  /** Flows emitted early because the table was full. */
  evicted: number;
  peakFlows: number;
}

// Sample and record formats (enterprise 0).
const FLOW_SAMPLE = 1;
const COUNTER_SAMPLE = 2;
const FLOW_SAMPLE_EXPANDED = 3;
const COUNTER_SAMPLE_EXPANDED = 4;
const REC_RAW_HEADER = 1;
const REC_IPV4 = 3;
const REC_IPV6 = 4;
const REC_GENERIC_IF = 1;
const GENERIC_IF_LENGTH = 88;

// Key words of a flow: exporter, (ip version << 8 | protocol), address A (4), address B (4),
// ports (A << 16 | B). Endpoint A is the one that compares lower.
const KW = 11;
// Accumulators per flow.
const A_FIRST = 0;
const A_LAST = 1;
const A_PKTS_F = 2;
const A_PKTS_B = 3;
const A_BYTES_F = 4;
const A_BYTES_B = 5;
const A_FLAGS = 6;
const NA = 7;

const be32 = (b: Uint8Array, o: number) =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const be64 = (b: Uint8Array, o: number) => be32(b, o) * 4294967296 + be32(b, o + 4);
/** A 32-bit counter, NaN when all bits are set (sFlow's "unknown"). */
const ctr32 = (b: Uint8Array, o: number) => {
  const x = be32(b, o);
  return x === 0xffffffff ? Number.NaN : x;
};
const ctr64 = (b: Uint8Array, o: number) =>
  be32(b, o) === 0xffffffff && be32(b, o + 4) === 0xffffffff ? Number.NaN : be64(b, o);
const pad4 = (n: number) => (n + 3) & ~3;

export class SflowDecoder {
  readonly exporters = new Map<string, ExporterStats>();
  readonly stats: SflowStats = {
    datagrams: 0,
    samples: 0,
    flowSamples: 0,
    counterSamples: 0,
    sampledPackets: 0,
    unusedSamples: 0,
    flows: 0,
    evicted: 0,
    peakFlows: 0,
  };
  /**
   * Outcomes of decoding the sampled packet headers (`unsupportedLinks` keys: the negated sFlow
   * header_protocol, e.g. -7 for PPP, capped at -256).
   */
  readonly packets = new DecodeStats();

  private readonly activeMs: number;
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private readonly maxExporters: number;

  // Exporters by index (the key's first word).
  private readonly exporterIndex = new Map<string, number>();
  private readonly exporterList: ExporterStats[] = [];
  private readonly exporterKeys: string[] = [];

  // Flow table.
  private cap = 0;
  private keys = new Uint32Array(0);
  private acc = new Float64Array(0);
  private fwdIsA = new Uint8Array(0);
  private table = new Int32Array(0);
  private mask = 0;
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;
  private cprev = new Int32Array(0);
  private cnext = new Int32Array(0);
  private chead = -1;
  private ctail = -1;
  private free: number[] = [];
  private live = 0;
  private readonly key = new Uint32Array(KW);
  private readonly counts: FlowCounts = {
    durationUs: 0,
    fwdPackets: 0,
    bwdPackets: 0,
    fwdBytes: 0,
    bwdBytes: 0,
    tcpFlags: 0,
  };

  // Per-datagram and per-sample scratch state (numbers only).
  private readonly view = new PacketView();
  private readonly agentWords = new Uint32Array(4);
  private agentVersion = 0;
  private current = '';
  private lastAddress = '';
  private lastSubAgent = -1;
  private lastExporter = -1;
  private currentStats: ExporterStats | null = null;

  private rawOff = -1;
  private rawLen = 0;
  private rawProto = 0;
  private rawFrame = 0;
  private rawStripped = 0;
  private ipRecOff = -1;
  private ipRecVersion = 0;

  constructor(
    private readonly handlers: SflowHandlers,
    opts: SflowOptions = {},
  ) {
    this.activeMs = opts.activeTimeoutMs ?? 60_000;
    this.idleMs = opts.idleTimeoutMs ?? 15_000;
    this.maxFlows = Math.max(1, Math.floor(opts.maxFlows ?? 100_000));
    this.maxExporters = Math.max(1, Math.floor(opts.maxExporters ?? 4096));
    this.grow(Math.min(1024, this.maxFlows));
  }

  /** Flows currently aggregated. */
  get activeFlows(): number {
    return this.live;
  }

  /**
   * Decodes one UDP payload from `address` (ip:port) received at nowMs. Never throws on input:
   * problems go to handlers.problem; what the sample structure allows is kept.
   */
  datagram(buf: Uint8Array, address: string, nowMs: number): void {
    this.stats.datagrams++;
    this.current = address;
    this.currentStats = null;
    const len = buf.length;
    if (len < 4) {
      this.problem('truncated', 0, `datagram of ${len} bytes has no version`);
      return;
    }
    const version = be32(buf, 0);
    if (version !== 5) {
      this.problem('unknown-version', 0, `version ${version} (only sFlow v5 is decoded)`, 'unknown');
      return;
    }
    if (len < 8) {
      this.problem('truncated', 4, 'datagram ends before the agent address');
      return;
    }
    const addrType = be32(buf, 4);
    const addrLen = addrType === 1 ? 4 : addrType === 2 ? 16 : addrType === 0 ? 0 : -1;
    if (addrLen < 0) {
      this.problem('bad-address-type', 4, `agent address type ${addrType}`);
      return;
    }
    let p = 8 + addrLen;
    if (len < p + 16) {
      this.problem('truncated', Math.min(len, p), 'datagram header is truncated');
      return;
    }
    const aw = this.agentWords;
    aw[0] = aw[1] = aw[2] = aw[3] = 0;
    for (let i = 0; i < addrLen / 4; i++) aw[i] = be32(buf, 8 + 4 * i);
    this.agentVersion = addrType === 1 ? 4 : addrType === 2 ? 6 : 0;
    const subAgent = be32(buf, p);
    const sequence = be32(buf, p + 4);
    const uptime = be32(buf, p + 8);
    const count = be32(buf, p + 12);
    p += 16;

    // The exporter of the previous datagram is the likely one: no key string for it.
    let xi = address === this.lastAddress && subAgent === this.lastSubAgent ? this.lastExporter : undefined;
    const key = xi === undefined ? `${address}/${subAgent}` : this.exporterKeys[xi];
    if (xi === undefined) xi = this.exporterIndex.get(key);
    if (xi === undefined) {
      if (this.exporterList.length >= this.maxExporters) {
        this.problem(
          'too-many-exporters',
          0,
          `${this.maxExporters} exporters already tracked; datagram from ${key} dropped`,
        );
        return;
      }
      xi = this.exporterList.length;
      const st = newExporterStats(address, subAgent, 'sflow', nowMs);
      this.exporterIndex.set(key, xi);
      this.exporterList.push(st);
      this.exporterKeys.push(key);
      this.exporters.set(key, st);
    }
    this.lastAddress = address;
    this.lastSubAgent = subAgent;
    this.lastExporter = xi;
    const st = this.exporterList[xi];
    this.current = key;
    this.currentStats = st;
    st.datagrams++;
    st.lastSeenMs = nowMs;
    // Datagram sequence per agent + sub-agent: gaps are lost datagrams; going backwards is a restart.
    if (st.nextSequence >= 0 && sequence > st.nextSequence) st.lost += sequence - st.nextSequence;
    st.nextSequence = (sequence + 1) >>> 0;

    for (let i = 0; i < count; i++) {
      if (p + 8 > len) {
        this.problem('truncated', p, `datagram ends after ${i} of ${count} samples`);
        return;
      }
      const fmt = be32(buf, p);
      const slen = be32(buf, p + 4);
      const start = p + 8;
      if (slen > len - start) {
        this.problem(
          'bad-length',
          p + 4,
          `sample ${i} length ${slen} exceeds the ${len - start} bytes left in the datagram`,
        );
        return;
      }
      const end = start + slen;
      p = start + pad4(slen);
      this.stats.samples++;
      st.records++;
      if (fmt >>> 12 !== 0) continue;
      switch (fmt & 0xfff) {
        case FLOW_SAMPLE:
          this.flowSample(buf, start, end, false, xi, st, nowMs);
          break;
        case FLOW_SAMPLE_EXPANDED:
          this.flowSample(buf, start, end, true, xi, st, nowMs);
          break;
        case COUNTER_SAMPLE:
          this.counterSample(buf, start, end, false, subAgent, uptime, nowMs);
          break;
        case COUNTER_SAMPLE_EXPANDED:
          this.counterSample(buf, start, end, true, subAgent, uptime, nowMs);
          break;
      }
    }
    if (p < len) this.problem('trailing-bytes', p, `${len - p} bytes after the last sample`);
  }

  private flowSample(
    b: Uint8Array,
    start: number,
    end: number,
    expanded: boolean,
    xi: number,
    st: ExporterStats,
    nowMs: number,
  ): void {
    this.stats.flowSamples++;
    const fixed = expanded ? 44 : 32;
    if (end - start < fixed) {
      this.problem('bad-length', start, `flow sample of ${end - start} bytes, fixed part needs ${fixed}`);
      return;
    }
    let rate = be32(b, start + (expanded ? 12 : 8));
    if (rate === 0) {
      this.problem('bad-sampling-rate', start + (expanded ? 12 : 8), 'sampling rate 0, counted as 1');
      rate = 1;
    }
    st.sampling = rate;
    const n = be32(b, start + fixed - 4);
    let p = start + fixed;
    this.rawOff = -1;
    this.ipRecOff = -1;
    for (let i = 0; i < n; i++) {
      if (p + 8 > end) {
        this.problem('bad-length', p, `flow sample ends after ${i} of ${n} records`);
        break;
      }
      const fmt = be32(b, p);
      const rlen = be32(b, p + 4);
      const r = p + 8;
      if (rlen > end - r) {
        this.problem(
          'bad-length',
          p + 4,
          `flow record length ${rlen} exceeds the ${end - r} bytes left in the sample`,
        );
        break;
      }
      p = r + pad4(rlen);
      if (fmt >>> 12 !== 0) continue;
      const f = fmt & 0xfff;
      if (f === REC_RAW_HEADER && this.rawOff < 0) {
        if (rlen < 16) {
          this.problem('bad-length', r - 4, `raw header record of ${rlen} bytes`);
          continue;
        }
        const hlen = be32(b, r + 12);
        if (hlen > rlen - 16) {
          this.problem('bad-length', r + 12, `header length ${hlen} exceeds its record (${rlen - 16} bytes)`);
          continue;
        }
        this.rawProto = be32(b, r);
        this.rawFrame = be32(b, r + 4);
        this.rawStripped = be32(b, r + 8);
        this.rawOff = r + 16;
        this.rawLen = hlen;
      } else if ((f === REC_IPV4 || f === REC_IPV6) && this.ipRecOff < 0) {
        const need = f === REC_IPV4 ? 32 : 56;
        if (rlen < need) {
          this.problem(
            'bad-length',
            r - 4,
            `sampled IPv${f === REC_IPV4 ? 4 : 6} record of ${rlen} bytes, needs ${need}`,
          );
          continue;
        }
        this.ipRecOff = r;
        this.ipRecVersion = f === REC_IPV4 ? 4 : 6;
      }
    }
    const ipLen = this.describe(b);
    if (ipLen < 0) {
      this.stats.unusedSamples++;
      return;
    }
    this.stats.sampledPackets++;
    this.account(xi, nowMs, rate, ipLen);
  }

  /** Fills `view` from the sample's records; returns the IP length, or -1 when there is no IP packet. */
  private describe(b: Uint8Array): number {
    const v = this.view;
    if (this.rawOff >= 0) {
      const link =
        this.rawProto === 1
          ? LINKTYPE.ETHERNET
          : this.rawProto === 11
            ? LINKTYPE.IPV4
            : this.rawProto === 12
              ? LINKTYPE.IPV6
              : -1;
      const code = link < 0 ? Decode.UNSUPPORTED_LINK : decode(b, this.rawOff, this.rawLen, link, v);
      // Unsupported header protocols are counted under their negated sFlow number (bounded).
      this.packets.add(code, link < 0 ? -Math.min(this.rawProto, 256) : link);
      if (
        v.ipVersion !== 0 &&
        code !== Decode.TRUNCATED_IP &&
        code !== Decode.BAD_IP &&
        code !== Decode.TRUNCATED_LINK &&
        code !== Decode.UNSUPPORTED_LINK
      ) {
        const lenField =
          v.ipVersion === 4
            ? (b[v.ipOffset + 2] << 8) | b[v.ipOffset + 3]
            : (b[v.ipOffset + 4] << 8) | b[v.ipOffset + 5];
        if (lenField !== 0) return v.ipLength;
        // Length field 0: the frame length tells instead.
        const fromFrame = this.rawFrame - this.rawStripped - (v.ipOffset - this.rawOff);
        return fromFrame > 0 ? fromFrame : v.ipLength;
      }
    }
    const r = this.ipRecOff;
    if (r < 0) return -1;
    v.reset();
    const ipLen = be32(b, r);
    v.protocol = be32(b, r + 4) & 0xff;
    if (this.ipRecVersion === 4) {
      v.ipVersion = 4;
      v.src[0] = be32(b, r + 8);
      v.dst[0] = be32(b, r + 12);
      v.srcPort = be32(b, r + 16) & 0xffff;
      v.dstPort = be32(b, r + 20) & 0xffff;
      v.tcpFlags = be32(b, r + 24) & 0xff;
    } else {
      v.ipVersion = 6;
      for (let i = 0; i < 4; i++) {
        v.src[i] = be32(b, r + 8 + 4 * i);
        v.dst[i] = be32(b, r + 24 + 4 * i);
      }
      v.srcPort = be32(b, r + 40) & 0xffff;
      v.dstPort = be32(b, r + 44) & 0xffff;
      v.tcpFlags = be32(b, r + 48) & 0xff;
    }
    v.ipLength = ipLen;
    return ipLen;
  }

  private counterSample(
    b: Uint8Array,
    start: number,
    end: number,
    expanded: boolean,
    subAgent: number,
    uptime: number,
    nowMs: number,
  ): void {
    this.stats.counterSamples++;
    const fixed = expanded ? 16 : 12;
    if (end - start < fixed) {
      this.problem('bad-length', start, `counter sample of ${end - start} bytes, fixed part needs ${fixed}`);
      return;
    }
    const n = be32(b, start + fixed - 4);
    let p = start + fixed;
    for (let i = 0; i < n; i++) {
      if (p + 8 > end) {
        this.problem('bad-length', p, `counter sample ends after ${i} of ${n} records`);
        return;
      }
      const fmt = be32(b, p);
      const rlen = be32(b, p + 4);
      const r = p + 8;
      if (rlen > end - r) {
        this.problem(
          'bad-length',
          p + 4,
          `counter record length ${rlen} exceeds the ${end - r} bytes left in the sample`,
        );
        return;
      }
      p = r + pad4(rlen);
      if (fmt !== REC_GENERIC_IF) continue;
      if (rlen < GENERIC_IF_LENGTH) {
        this.problem(
          'bad-length',
          r - 4,
          `generic interface counters of ${rlen} bytes, needs ${GENERIC_IF_LENGTH}`,
        );
        continue;
      }
      if (!this.handlers.counters) continue;
      this.handlers.counters({
        agent: this.agentText(),
        subAgent,
        exporter: this.current,
        ifIndex: be32(b, r),
        timeMs: nowMs,
        uptimeMs: uptime,
        speed: ctr64(b, r + 8),
        status: be32(b, r + 20),
        inOctets: ctr64(b, r + 24),
        inPackets: ctr32(b, r + 32) + ctr32(b, r + 36) + ctr32(b, r + 40),
        inDiscards: ctr32(b, r + 44),
        inErrors: ctr32(b, r + 48),
        outOctets: ctr64(b, r + 56),
        outPackets: ctr32(b, r + 64) + ctr32(b, r + 68) + ctr32(b, r + 72),
        outDiscards: ctr32(b, r + 76),
        outErrors: ctr32(b, r + 80),
      });
    }
  }

  private agentText(): string {
    if (this.agentVersion === 0) return '';
    return formatIp(this.agentWords, 0, this.agentVersion);
  }

  private problem(
    reason: string,
    offset: number,
    message: string,
    protocol: DatagramProblem['protocol'] = 'sflow',
  ): void {
    if (this.currentStats) this.currentStats.bad++;
    this.handlers.problem({ exporter: this.current, protocol, reason, offset, message });
  }

  // ---- aggregation ---------------------------------------------------------------------------

  /** Adds the packet in `view` (rate packets of ipLen bytes each) to its flow. */
  private account(xi: number, nowMs: number, rate: number, ipLen: number): void {
    const v = this.view;
    const k = this.key;
    const w = v.ipVersion === 6 ? 4 : 1;
    let cmp = 0;
    for (let i = 0; i < w && cmp === 0; i++) cmp = v.src[i] < v.dst[i] ? -1 : v.src[i] > v.dst[i] ? 1 : 0;
    if (cmp === 0) cmp = v.srcPort < v.dstPort ? -1 : v.srcPort > v.dstPort ? 1 : 0;
    const srcIsA = cmp <= 0;
    k[0] = xi;
    k[1] = (v.ipVersion << 8) | v.protocol;
    for (let i = 0; i < 4; i++) {
      k[2 + i] = i < w ? (srcIsA ? v.src[i] : v.dst[i]) : 0;
      k[6 + i] = i < w ? (srcIsA ? v.dst[i] : v.src[i]) : 0;
    }
    k[10] = srcIsA ? ((v.srcPort << 16) | v.dstPort) >>> 0 : ((v.dstPort << 16) | v.srcPort) >>> 0;

    let s = this.find(k);
    if (s >= 0) {
      const o = s * NA;
      if (nowMs - this.acc[o + A_FIRST] > this.activeMs || nowMs - this.acc[o + A_LAST] > this.idleMs) {
        this.emit(s);
        s = -1;
      }
    }
    if (s < 0) {
      if (this.live >= this.cap) {
        if (this.cap < this.maxFlows) this.grow(Math.min(this.cap * 2, this.maxFlows));
        else {
          this.stats.evicted++;
          this.emit(this.head);
        }
      }
      s = this.free.pop() as number;
      this.keys.set(k, s * KW);
      this.fwdIsA[s] = srcIsA ? 1 : 0;
      const o = s * NA;
      this.acc.fill(0, o, o + NA);
      this.acc[o + A_FIRST] = nowMs;
      this.insertSlot(s);
      this.append(s);
      this.cappend(s);
      this.live++;
      if (this.live > this.stats.peakFlows) this.stats.peakFlows = this.live;
    } else {
      this.unlink(s);
      this.append(s);
    }
    const o = s * NA;
    const forward = (this.fwdIsA[s] === 1) === srcIsA;
    this.acc[o + A_LAST] = nowMs;
    this.acc[o + (forward ? A_PKTS_F : A_PKTS_B)] += rate;
    this.acc[o + (forward ? A_BYTES_F : A_BYTES_B)] += rate * ipLen;
    if (v.protocol === 6) this.acc[o + A_FLAGS] = this.acc[o + A_FLAGS] | v.tcpFlags;
  }

  /** Emits flows idle longer than the idle timeout or older than the active timeout (all: force). */
  flush(nowMs: number, force = false): void {
    if (force) {
      while (this.head >= 0) this.emit(this.head);
      return;
    }
    while (this.head >= 0 && nowMs - this.acc[this.head * NA + A_LAST] > this.idleMs) this.emit(this.head);
    while (this.chead >= 0 && nowMs - this.acc[this.chead * NA + A_FIRST] > this.activeMs)
      this.emit(this.chead);
  }

  private emit(s: number): void {
    const ko = s * KW;
    const o = s * NA;
    const k = this.keys;
    const a = this.acc;
    const ver = k[ko + 1] >>> 8;
    const protocol = k[ko + 1] & 0xff;
    const aIsSrc = this.fwdIsA[s] === 1;
    const aIp = formatIp(k, ko + 2, ver);
    const bIp = formatIp(k, ko + 6, ver);
    const aPort = k[ko + 10] >>> 16;
    const bPort = k[ko + 10] & 0xffff;
    const c = this.counts;
    c.durationUs = (a[o + A_LAST] - a[o + A_FIRST]) * 1000;
    c.fwdPackets = a[o + A_PKTS_F];
    c.bwdPackets = a[o + A_PKTS_B];
    c.fwdBytes = a[o + A_BYTES_F];
    c.bwdBytes = a[o + A_BYTES_B];
    c.tcpFlags = a[o + A_FLAGS];
    const row: ExportRow = {
      values: netflowValues(protocol, c),
      srcIp: aIsSrc ? aIp : bIp,
      dstIp: aIsSrc ? bIp : aIp,
      srcPort: aIsSrc ? aPort : bPort,
      dstPort: aIsSrc ? bPort : aPort,
      protocol,
      startMs: a[o + A_FIRST],
      source: this.exporterKeys[k[ko]],
    };
    this.unhash(s);
    this.unlink(s);
    this.cunlink(s);
    this.free.push(s);
    this.live--;
    this.stats.flows++;
    this.handlers.row(row);
  }

  // ---- flow table ----------------------------------------------------------------------------

  private grow(cap: number): void {
    const old = this.cap;
    const keys = new Uint32Array(cap * KW);
    keys.set(this.keys);
    this.keys = keys;
    const acc = new Float64Array(cap * NA);
    acc.set(this.acc);
    this.acc = acc;
    const fa = new Uint8Array(cap);
    fa.set(this.fwdIsA);
    this.fwdIsA = fa;
    const grown = (x: Int32Array) => {
      const y = new Int32Array(cap);
      y.set(x);
      return y;
    };
    this.prev = grown(this.prev);
    this.next = grown(this.next);
    this.cprev = grown(this.cprev);
    this.cnext = grown(this.cnext);
    for (let s = cap - 1; s >= old; s--) this.free.push(s);
    this.cap = cap;
    let size = 1;
    while (size < cap * 2) size <<= 1;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let s = this.head; s >= 0; s = this.next[s]) this.insertSlot(s);
  }

  private hashKey(k: Uint32Array, o: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < KW; i++) {
      h = Math.imul(h ^ k[o + i], 0x01000193);
      h ^= h >>> 15;
    }
    h = Math.imul(h, 0x85ebca6b);
    return (h ^ (h >>> 13)) >>> 0;
  }

  private insertSlot(s: number): void {
    let b = this.hashKey(this.keys, s * KW) & this.mask;
    while (this.table[b] !== 0) b = (b + 1) & this.mask;
    this.table[b] = s + 1;
  }

  private find(k: Uint32Array): number {
    let b = this.hashKey(k, 0) & this.mask;
    for (;;) {
      const e = this.table[b];
      if (e === 0) return -1;
      const o = (e - 1) * KW;
      let eq = true;
      for (let i = 0; i < KW; i++)
        if (this.keys[o + i] !== k[i]) {
          eq = false;
          break;
        }
      if (eq) return e - 1;
      b = (b + 1) & this.mask;
    }
  }

  /** Removes slot s from the hash table (backward-shift deletion keeps probing correct). */
  private unhash(s: number): void {
    let b = this.hashKey(this.keys, s * KW) & this.mask;
    while (this.table[b] !== s + 1) b = (b + 1) & this.mask;
    let hole = b;
    let j = b;
    for (;;) {
      j = (j + 1) & this.mask;
      const e = this.table[j];
      if (e === 0) break;
      const home = this.hashKey(this.keys, (e - 1) * KW) & this.mask;
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

  private cunlink(s: number): void {
    const p = this.cprev[s];
    const n = this.cnext[s];
    if (p >= 0) this.cnext[p] = n;
    else this.chead = n;
    if (n >= 0) this.cprev[n] = p;
    else this.ctail = p;
  }

  private cappend(s: number): void {
    this.cprev[s] = this.ctail;
    this.cnext[s] = -1;
    if (this.ctail >= 0) this.cnext[this.ctail] = s;
    else this.chead = s;
    this.ctail = s;
  }
}
