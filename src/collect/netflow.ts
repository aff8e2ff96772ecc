/**
 * NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) datagram decoding. Templates and options
 * templates are scoped per exporter (`ip:port` + source ID / observation domain), compiled once into
 * a flat op list, and data records are decoded straight into one reused `FlowFields` struct (typed
 * arrays, no per-record objects); `ExportMapper` turns those into ExportRows. Data sets that arrive
 * before their template wait (bounded in bytes and time) and are decoded when it comes. Nothing in
 * a datagram can make the decoder throw, loop or grow without bound: every problem is counted per
 * exporter and reported with the exporter, the template or set ID and the byte offset.
 */
import { formatIp as formatIpWords } from '../flow/meter.js';
import { elementName, ianaElement, REVERSE_PEN } from './iana.js';
import { type DatagramProblem, type ExporterStats, type ExportProtocol, newExporterStats } from './types.js';

/** Slots of `FlowFields.f`. Times are ms since the epoch; NaN = not in the record. */
export enum F {
  ipVersion,
  srcPort,
  dstPort,
  protocol,
  tcpFlags,
  packets,
  bytes,
  /** Reverse direction (RFC 5103 biflows, Cisco ASA NSEL responder counters). */
  rpackets,
  rbytes,
  startMs,
  endMs,
  inIf,
  outIf,
  srcAs,
  dstAs,
  tos,
  direction,
  sampling,
  icmpTypeCode,
  endReason,
  /** Sampler ID (v9 48 / IPFIX 302), to look the interval up in options data. */
  samplerId,
  /** Uptime-relative first/last (v9 22/21), resolved against the header or systemInitTime. */
  firstUptime,
  lastUptime,
  /** Flow start as a delta before export time, µs (IPFIX 158) and duration deltas. */
  startDeltaUs,
  endDeltaUs,
  /** IPv4 addresses (uint32) as read; `addr` holds the resolved ones. */
  src4,
  dst4,
  count,
}

/** One decoded flow record, reused for every record: copy what you keep. */
export class FlowFields {
  readonly f = new Float64Array(F.count);
  /** Source address in words 0–3, destination in 4–7 (IPv4: word 0 / 4). */
  readonly addr = new Uint32Array(8);
  /** Next-hop / exporter-side metadata are not kept. */
  exporter = '';
  protocol: ExportProtocol = 'netflow5';
  templateId = 0;
  reset(): void {
    this.f.fill(Number.NaN);
    this.addr.fill(0);
  }
}

// Field kinds a compiled template op can have.
enum K {
  skip,
  uint,
  ipv4Src,
  ipv4Dst,
  ipv6Src,
  ipv6Dst,
  /** dateTimeSeconds / Milliseconds / Microseconds (NTP) / Nanoseconds (NTP) → ms. */
  secs,
  millis,
  ntp,
  /** uint OR-ed into the slot (tcp flags in both directions). */
  orUint,
}

const NO_SLOT = -1;

/** IANA element id (enterprise 0) → [kind, slot]. Unlisted elements are skipped by length. */
const IANA_OPS: Record<number, [K, number]> = {
  1: [K.uint, F.bytes],
  2: [K.uint, F.packets],
  4: [K.uint, F.protocol],
  5: [K.uint, F.tos],
  6: [K.orUint, F.tcpFlags],
  7: [K.uint, F.srcPort],
  8: [K.ipv4Src, NO_SLOT],
  10: [K.uint, F.inIf],
  11: [K.uint, F.dstPort],
  12: [K.ipv4Dst, NO_SLOT],
  14: [K.uint, F.outIf],
  16: [K.uint, F.srcAs],
  17: [K.uint, F.dstAs],
  21: [K.uint, F.lastUptime],
  22: [K.uint, F.firstUptime],
  27: [K.ipv6Src, NO_SLOT],
  28: [K.ipv6Dst, NO_SLOT],
  32: [K.uint, F.icmpTypeCode],
  34: [K.uint, F.sampling],
  48: [K.uint, F.samplerId],
  50: [K.uint, F.sampling],
  60: [K.uint, F.ipVersion],
  61: [K.uint, F.direction],
  85: [K.uint, F.bytes],
  86: [K.uint, F.packets],
  136: [K.uint, F.endReason],
  139: [K.uint, F.icmpTypeCode],
  150: [K.secs, F.startMs],
  151: [K.secs, F.endMs],
  152: [K.millis, F.startMs],
  153: [K.millis, F.endMs],
  154: [K.ntp, F.startMs],
  155: [K.ntp, F.endMs],
  156: [K.ntp, F.startMs],
  157: [K.ntp, F.endMs],
  158: [K.uint, F.startDeltaUs],
  159: [K.uint, F.endDeltaUs],
  // Cisco ASA NSEL: initiator/responder octets and packets (bidirectional).
  231: [K.uint, F.bytes],
  232: [K.uint, F.rbytes],
  298: [K.uint, F.packets],
  299: [K.uint, F.rpackets],
  302: [K.uint, F.samplerId],
  305: [K.uint, F.sampling],
  // flowStartMilliseconds-like NSEL event time as a fallback start.
  323: [K.millis, F.startMs],
};

/** RFC 5103 reverse elements (PEN 29305). */
const REVERSE_OPS: Record<number, [K, number]> = {
  1: [K.uint, F.rbytes],
  2: [K.uint, F.rpackets],
  6: [K.orUint, F.tcpFlags],
  85: [K.uint, F.rbytes],
  86: [K.uint, F.rpackets],
};

/** Options-data elements the decoder remembers per exporter. */
const OPT_SAMPLING = new Set([34, 50, 305]);
const OPT_SAMPLER_ID = new Set([48, 302]);
const OPT_SYSINIT = 160;

interface Template {
  id: number;
  /** Per field: kind, slot, length (0xffff = variable), element id, enterprise. */
  kinds: Uint8Array;
  slots: Int16Array;
  lens: Uint16Array;
  ids: Uint16Array;
  pens: Uint32Array;
  /** Sum of fixed lengths (variable fields count their 1-byte minimum). */
  minLen: number;
  variable: boolean;
  /** Options template: number of scope fields (data records update exporter options). */
  options: boolean;
  scopeCount: number;
  /** v9 options template: its scope fields use their own type space (not IANA elements). */
  v9Scope: boolean;
  seenMs: number;
}

interface PendingSet {
  templateId: number;
  bytes: Uint8Array;
  exportMs: number;
  uptimeMs: number;
  atMs: number;
  /** Offset of the set in its datagram, for reports. */
  offset: number;
}

interface Exporter {
  /** `ip:port/domain`. */
  key: string;
  stats: ExporterStats;
  templates: Map<number, Template>;
  pending: PendingSet[];
  pendingBytes: number;
  /** From options data: sampling interval (default and per sampler ID), system init time. */
  sampling: number;
  samplerRates: Map<number, number>;
  sysInitMs: number;
}

export interface NetflowDecoderOptions {
  /** Most templates kept per exporter (beyond: the template is refused, counted). */
  maxTemplatesPerExporter: number;
  /** Bytes of data sets kept per exporter while their template is unknown. */
  maxPendingBytes: number;
  /** How long such data waits for its template. */
  pendingTtlMs: number;
  /** Most exporters tracked (beyond: the least recently seen is forgotten). */
  maxExporters: number;
  /** Templates not refreshed for this long are dropped (RFC 7011 leaves UDP templates to timeout). */
  templateTimeoutMs: number;
}

export const DEFAULT_NETFLOW_DECODER: NetflowDecoderOptions = {
  maxTemplatesPerExporter: 1024,
  maxPendingBytes: 1 << 20,
  pendingTtlMs: 60_000,
  maxExporters: 10_000,
  templateTimeoutMs: 30 * 60_000,
};

export interface NetflowHandlers {
  /** A decoded flow record; `fields` is reused after the call returns. */
  flow(fields: FlowFields): void;
  problem(p: DatagramProblem): void;
  /** A data record in slow, named form (every element by IANA name), when asked for. */
  named?(exporter: string, templateId: number, record: Record<string, number | string>): void;
}

const TWO32 = 4294967296;

/** Decoder for NetFlow v5/v9 and IPFIX datagrams from any number of exporters. */
export class NetflowDecoder {
  readonly exporters = new Map<string, Exporter>();
  private readonly o: NetflowDecoderOptions;
  private readonly ff = new FlowFields();
  private dv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  private buf: Uint8Array = new Uint8Array(0);
  /** Data records (flow and options) decoded so far, for IPFIX sequence numbers. */
  private dataRecords = 0;
  private lastExporter: Exporter | null = null;
  private lastAddress = '';
  private lastDomain = -1;

  constructor(
    private readonly h: NetflowHandlers,
    opts: Partial<NetflowDecoderOptions> = {},
  ) {
    this.o = { ...DEFAULT_NETFLOW_DECODER, ...opts };
  }

  /** Per-exporter statistics. */
  stats(): ExporterStats[] {
    return [...this.exporters.values()].map((e) => e.stats);
  }

  /** Decodes one UDP payload received from `address` (ip:port) at `nowMs`. Returns records decoded. */
  datagram(b: Uint8Array, address: string, nowMs: number): number {
    this.buf = b;
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.length < 2) {
      this.problem(address, 'unknown', 'truncated', 0, undefined, `datagram of ${b.length} bytes`);
      return 0;
    }
    const version = this.dv.getUint16(0);
    switch (version) {
      case 5:
        return this.v5(address, nowMs);
      case 9:
        return this.v9(address, nowMs);
      case 10:
        return this.ipfix(address, nowMs);
      default:
        this.problem(
          address,
          'unknown',
          'unknown-version',
          0,
          undefined,
          `version ${version} is not NetFlow 5, 9 or IPFIX (10)`,
        );
        return 0;
    }
  }

  /** Drops pending data older than the TTL and templates past their timeout. */
  expire(nowMs: number): void {
    for (const [key, e] of this.exporters) {
      this.expirePending(e, key, nowMs);
      for (const [id, t] of e.templates)
        if (nowMs - t.seenMs > this.o.templateTimeoutMs) e.templates.delete(id);
      e.stats.templates = e.templates.size;
    }
  }

  private problem(
    exporter: string,
    protocol: DatagramProblem['protocol'],
    reason: string,
    offset: number,
    template: number | undefined,
    message: string,
  ): void {
    this.h.problem({ exporter, protocol, reason, offset, template, message });
  }

  private exporter(address: string, domain: number, protocol: ExportProtocol, nowMs: number): Exporter {
    // Most datagrams come from the exporter of the one before: skip building the key for them.
    let e =
      this.lastExporter && address === this.lastAddress && domain === this.lastDomain
        ? this.lastExporter
        : undefined;
    const key = e ? e.key : `${address}/${domain}`;
    e ??= this.exporters.get(key);
    if (!e) {
      if (this.exporters.size >= this.o.maxExporters) {
        let oldest = '';
        let t = Number.POSITIVE_INFINITY;
        for (const [k, x] of this.exporters)
          if (x.stats.lastSeenMs < t) {
            t = x.stats.lastSeenMs;
            oldest = k;
          }
        this.exporters.delete(oldest);
        this.lastExporter = null;
      }
      e = {
        key,
        stats: newExporterStats(address, domain, protocol, nowMs),
        templates: new Map(),
        pending: [],
        pendingBytes: 0,
        sampling: 1,
        samplerRates: new Map(),
        sysInitMs: Number.NaN,
      };
      this.exporters.set(key, e);
    }
    this.lastExporter = e;
    this.lastAddress = address;
    this.lastDomain = domain;
    e.stats.protocol = protocol;
    e.stats.lastSeenMs = nowMs;
    e.stats.datagrams++;
    return e;
  }

  // ---- NetFlow v5 -------------------------------------------------------------------------

  private v5(address: string, nowMs: number): number {
    const b = this.buf;
    const dv = this.dv;
    if (b.length < 24) {
      this.problem(
        address,
        'netflow5',
        'truncated',
        b.length,
        undefined,
        `v5 header needs 24 bytes, datagram has ${b.length}`,
      );
      return 0;
    }
    const count = dv.getUint16(2);
    const uptime = dv.getUint32(4);
    const exportMs = dv.getUint32(8) * 1000 + Math.floor(dv.getUint32(12) / 1e6);
    const seq = dv.getUint32(16);
    const engine = (b[20] << 8) | b[21];
    const samplingWord = dv.getUint16(22);
    const e = this.exporter(address, engine, 'netflow5', nowMs);
    const st = e.stats;
    const interval = samplingWord & 0x3fff;
    st.sampling = interval > 0 ? interval : 1;
    const key = e.key;
    if (count === 0 || count > 30) {
      st.bad++;
      this.problem(key, 'netflow5', 'bad-count', 2, undefined, `v5 record count ${count} (must be 1–30)`);
      if (count === 0) return 0;
    }
    let n = count;
    if (24 + n * 48 > b.length) {
      st.bad++;
      const fit = Math.floor((b.length - 24) / 48);
      this.problem(
        key,
        'netflow5',
        'truncated',
        24 + fit * 48,
        undefined,
        `v5 header says ${count} records, datagram holds ${fit}`,
      );
      n = fit;
    }
    this.sequence(st, seq, count, true);
    const ff = this.ff;
    const f = ff.f;
    ff.exporter = key;
    ff.protocol = 'netflow5';
    ff.templateId = 0;
    for (let i = 0, o = 24; i < n; i++, o += 48) {
      ff.reset();
      ff.addr[0] = dv.getUint32(o);
      ff.addr[4] = dv.getUint32(o + 4);
      f[F.ipVersion] = 4;
      f[F.inIf] = dv.getUint16(o + 12);
      f[F.outIf] = dv.getUint16(o + 14);
      f[F.packets] = dv.getUint32(o + 16);
      f[F.bytes] = dv.getUint32(o + 20);
      f[F.startMs] = exportMs + sinceUptime(dv.getUint32(o + 24), uptime);
      f[F.endMs] = exportMs + sinceUptime(dv.getUint32(o + 28), uptime);
      f[F.srcPort] = dv.getUint16(o + 32);
      f[F.dstPort] = dv.getUint16(o + 34);
      f[F.tcpFlags] = b[o + 37];
      f[F.protocol] = b[o + 38];
      f[F.tos] = b[o + 39];
      f[F.srcAs] = dv.getUint16(o + 40);
      f[F.dstAs] = dv.getUint16(o + 42);
      f[F.sampling] = st.sampling;
      st.records++;
      this.h.flow(ff);
    }
    return n;
  }

  /**
   * Sequence accounting: `perRecord` sequences count data records (v5, IPFIX), else datagrams
   * (v9). RFC 7011 numbers a message by the records sent before it; some exporters (softflowd)
   * include the message's own records: an exporter whose numbers fit only that reading is switched
   * to it (`sequenceMode`), so neither kind shows phantom losses.
   */
  private sequence(st: ExporterStats, seq: number, records: number, perRecord: boolean): void {
    const step = perRecord ? records : 1;
    if (st.nextSequence >= 0) {
      let expected = st.sequenceMode === 'inclusive' ? (st.lastSequence + step) % TWO32 : st.nextSequence;
      if (
        seq !== expected &&
        perRecord &&
        st.sequenceMode === 'standard' &&
        seq === (st.lastSequence + step) % TWO32
      ) {
        st.sequenceMode = 'inclusive';
        expected = seq;
      }
      const gap = (seq - expected + TWO32) % TWO32;
      // Small forward jumps are losses; anything else is a restart or reordering.
      if (gap > 0 && gap < 1 << 30) st.lost += gap;
    }
    st.lastSequence = seq;
    st.nextSequence = (seq + step) % TWO32;
  }

  // ---- NetFlow v9 -------------------------------------------------------------------------

  private v9(address: string, nowMs: number): number {
    const b = this.buf;
    const dv = this.dv;
    if (b.length < 20) {
      this.problem(
        address,
        'netflow9',
        'truncated',
        b.length,
        undefined,
        `v9 header needs 20 bytes, datagram has ${b.length}`,
      );
      return 0;
    }
    const uptime = dv.getUint32(4);
    const exportMs = dv.getUint32(8) * 1000;
    const seq = dv.getUint32(12);
    const sourceId = dv.getUint32(16);
    const e = this.exporter(address, sourceId, 'netflow9', nowMs);
    const key = e.key;
    this.sequence(e.stats, seq, 1, false);
    return this.sets(e, key, 'netflow9', 20, exportMs, uptime, nowMs);
  }

  // ---- IPFIX ------------------------------------------------------------------------------

  private ipfix(address: string, nowMs: number): number {
    const b = this.buf;
    const dv = this.dv;
    let n = 0;
    // One datagram holds one message; a file or stream (RFC 5655) holds several back to back.
    for (let m = 0; m + 16 <= b.length || m === 0; ) {
      if (b.length - m < 16) {
        this.problem(
          address,
          'ipfix',
          'truncated',
          m,
          undefined,
          `IPFIX header needs 16 bytes, ${b.length - m} left`,
        );
        return n;
      }
      if (dv.getUint16(m) !== 10) {
        this.problem(
          address,
          'ipfix',
          'bad-length',
          m,
          undefined,
          `${b.length - m} bytes after the IPFIX message are not another message`,
        );
        return n;
      }
      const length = dv.getUint16(m + 2);
      const exportMs = dv.getUint32(m + 4) * 1000;
      const seq = dv.getUint32(m + 8);
      const domain = dv.getUint32(m + 12);
      const e = this.exporter(address, domain, 'ipfix', nowMs);
      const key = e.key;
      let end = m + length;
      if (length < 16 || end > b.length) {
        e.stats.bad++;
        this.problem(
          key,
          'ipfix',
          'bad-length',
          m + 2,
          undefined,
          `message length ${length}, but ${b.length - m} bytes are left in the datagram`,
        );
        if (length < 16) return n;
        end = b.length;
      }
      const before = this.dataRecords;
      n += this.sets(e, key, 'ipfix', m + 16, exportMs, Number.NaN, nowMs, end);
      this.sequence(e.stats, seq, this.dataRecords - before, true);
      m = end;
      if (m >= b.length) break;
    }
    return n;
  }

  // ---- Sets (v9 flow sets, IPFIX sets) ----------------------------------------------------

  private sets(
    e: Exporter,
    key: string,
    proto: 'netflow9' | 'ipfix',
    start: number,
    exportMs: number,
    uptimeMs: number,
    nowMs: number,
    end = this.buf.length,
  ): number {
    const b = this.buf;
    const dv = this.dv;
    const tplSet = proto === 'ipfix' ? 2 : 0;
    const optSet = proto === 'ipfix' ? 3 : 1;
    let n = 0;
    let o = start;
    while (o + 4 <= end) {
      const setId = dv.getUint16(o);
      const len = dv.getUint16(o + 2);
      if (len < 4 || o + len > end) {
        // v9 exporters pad datagrams with zeros (a zero set header ends the datagram).
        if (setId === 0 && len === 0 && proto === 'netflow9' && b.subarray(o, end).every((x) => x === 0))
          break;
        e.stats.bad++;
        this.problem(
          key,
          proto,
          'bad-length',
          o + 2,
          setId,
          `set ${setId} says ${len} bytes, ${end - o} left in the datagram${len < 4 ? ' (a set is at least 4 bytes)' : ''}`,
        );
        break;
      }
      const body = o + 4;
      const setEnd = o + len;
      if (setId === tplSet) this.templates(e, key, proto, body, setEnd, false, nowMs);
      else if (setId === optSet) this.templates(e, key, proto, body, setEnd, true, nowMs);
      else if (setId >= 256) {
        const t = e.templates.get(setId);
        if (t) n += this.data(e, key, proto, t, body, setEnd, exportMs, uptimeMs, o);
        else this.park(e, key, proto, setId, o, len, exportMs, uptimeMs, nowMs);
      } else {
        e.stats.bad++;
        this.problem(
          key,
          proto,
          'reserved-set',
          o,
          setId,
          `set ID ${setId} is reserved; ${len} bytes skipped`,
        );
      }
      o = setEnd;
    }
    if (o < end && o + 4 > end && proto === 'ipfix') {
      e.stats.bad++;
      this.problem(key, proto, 'truncated', o, undefined, `${end - o} stray bytes after the last set`);
    }
    return n;
  }

  private templates(
    e: Exporter,
    key: string,
    proto: 'netflow9' | 'ipfix',
    o: number,
    end: number,
    options: boolean,
    nowMs: number,
  ): void {
    const dv = this.dv;
    const ipfix = proto === 'ipfix';
    const headerLen = options ? (ipfix ? 6 : 6) : 4;
    while (o + headerLen <= end) {
      const id = dv.getUint16(o);
      let fieldCount: number;
      let scopeCount = 0;
      let p: number;
      if (!options) {
        fieldCount = dv.getUint16(o + 2);
        p = o + 4;
      } else if (ipfix) {
        fieldCount = dv.getUint16(o + 2);
        scopeCount = fieldCount === 0 ? 0 : dv.getUint16(o + 4);
        p = fieldCount === 0 ? o + 4 : o + 6;
      } else {
        // v9 options template: scope and option lengths in bytes.
        const scopeLen = dv.getUint16(o + 2);
        const optLen = dv.getUint16(o + 4);
        if (scopeLen % 4 || optLen % 4) {
          e.stats.bad++;
          this.problem(
            key,
            proto,
            'bad-length',
            o + 2,
            id,
            `options template ${id}: scope ${scopeLen} / option ${optLen} bytes are not multiples of 4`,
          );
          return;
        }
        scopeCount = scopeLen / 4;
        fieldCount = scopeCount + optLen / 4;
        p = o + 6;
      }
      if (id === 0 && fieldCount === 0) return; // v9 padding
      if (id < 256 && !(ipfix && fieldCount === 0 && (id === 2 || id === 3))) {
        e.stats.bad++;
        this.problem(key, proto, 'bad-template', o, id, `template ID ${id} is below 256`);
        return;
      }
      if (ipfix && fieldCount === 0) {
        // Template withdrawal (RFC 7011 §8.1): one ID, or all of the set's kind with ID 2 / 3.
        if (id === 2 || id === 3) {
          for (const [tid, t] of e.templates) if (t.options === options) e.templates.delete(tid);
        } else e.templates.delete(id);
        e.stats.templates = e.templates.size;
        o += 4;
        continue;
      }
      if (ipfix && scopeCount > fieldCount) {
        e.stats.bad++;
        this.problem(
          key,
          proto,
          'bad-template',
          o + 4,
          id,
          `options template ${id}: ${scopeCount} scope fields of ${fieldCount}`,
        );
        return;
      }
      const kinds = new Uint8Array(fieldCount);
      const slots = new Int16Array(fieldCount);
      const lens = new Uint16Array(fieldCount);
      const ids = new Uint16Array(fieldCount);
      const pens = new Uint32Array(fieldCount);
      let minLen = 0;
      let variable = false;
      let ok = true;
      for (let i = 0; i < fieldCount; i++) {
        if (p + 4 > end) {
          ok = false;
          break;
        }
        let fid = dv.getUint16(p);
        const flen = dv.getUint16(p + 2);
        p += 4;
        let pen = 0;
        if (ipfix && fid & 0x8000) {
          if (p + 4 > end) {
            ok = false;
            break;
          }
          pen = dv.getUint32(p);
          p += 4;
          fid &= 0x7fff;
        }
        ids[i] = fid;
        pens[i] = pen;
        lens[i] = flen;
        if (flen === 0xffff) {
          // Variable length (RFC 7011 §7); some v9 exporters (H3C NetStream) use it too.
          variable = true;
          minLen += 1;
        } else minLen += flen;
        // v9 option scope fields have their own type space (1 system, 2 interface, …): never data.
        const op =
          options && !ipfix && i < scopeCount
            ? undefined
            : pen === 0
              ? IANA_OPS[fid]
              : pen === 29305
                ? REVERSE_OPS[fid]
                : undefined;
        let kind = op ? op[0] : K.skip;
        // An op only applies at a length its type allows; anything else is kept out (skipped).
        if (kind === K.uint || kind === K.orUint) {
          if (flen < 1 || flen > 8) kind = K.skip;
        } else if (kind === K.ipv4Src || kind === K.ipv4Dst) {
          if (flen !== 4) kind = K.skip;
        } else if (kind === K.ipv6Src || kind === K.ipv6Dst) {
          if (flen !== 16) kind = K.skip;
        } else if (kind === K.secs) {
          if (flen !== 4) kind = K.skip;
        } else if (kind === K.millis || kind === K.ntp) {
          if (flen !== 8) kind = K.skip;
        }
        kinds[i] = kind;
        slots[i] = op ? op[1] : NO_SLOT;
      }
      if (!ok) {
        e.stats.bad++;
        this.problem(
          key,
          proto,
          'truncated',
          p,
          id,
          `template ${id} declares ${fieldCount} fields; the set ends first`,
        );
        return;
      }
      if (!e.templates.has(id) && e.templates.size >= this.o.maxTemplatesPerExporter) {
        e.stats.bad++;
        this.problem(
          key,
          proto,
          'too-many-templates',
          o,
          id,
          `more than ${this.o.maxTemplatesPerExporter} templates from one exporter; template ${id} refused`,
        );
      } else {
        e.templates.set(id, {
          id,
          kinds,
          slots,
          lens,
          ids,
          pens,
          minLen,
          variable,
          options,
          scopeCount,
          v9Scope: options && !ipfix,
          seenMs: nowMs,
        });
        e.stats.templates = e.templates.size;
        this.replay(e, key, proto, id);
      }
      o = p;
    }
  }

  /** Keeps a data set whose template is not known yet (bounded); decoded when the template comes. */
  private park(
    e: Exporter,
    key: string,
    proto: 'netflow9' | 'ipfix',
    setId: number,
    offset: number,
    len: number,
    exportMs: number,
    uptimeMs: number,
    nowMs: number,
  ): void {
    this.expirePending(e, key, nowMs);
    if (len > this.o.maxPendingBytes) {
      this.dropUnknown(e, key, proto, setId, offset, len, 'larger than the wait buffer');
      return;
    }
    while (e.pendingBytes + len > this.o.maxPendingBytes && e.pending.length) {
      const old = e.pending.shift()!;
      e.pendingBytes -= old.bytes.length;
      this.dropUnknown(e, key, proto, old.templateId, old.offset, old.bytes.length, 'wait buffer full');
    }
    const bytes = this.buf.slice(offset, offset + len);
    e.pending.push({ templateId: setId, bytes, exportMs, uptimeMs, atMs: nowMs, offset });
    e.pendingBytes += len;
    e.stats.pending = e.pending.length;
  }

  private dropUnknown(
    e: Exporter,
    key: string,
    proto: 'netflow9' | 'ipfix',
    setId: number,
    offset: number,
    len: number,
    why: string,
  ): void {
    e.stats.bad++;
    this.problem(
      key,
      proto,
      'unknown-template',
      offset,
      setId,
      `data set for template ${setId} (${len} bytes) dropped: no template arrived (${why})`,
    );
  }

  private expirePending(e: Exporter, key: string, nowMs: number): void {
    while (e.pending.length && nowMs - e.pending[0].atMs > this.o.pendingTtlMs) {
      const old = e.pending.shift()!;
      e.pendingBytes -= old.bytes.length;
      this.dropUnknown(
        e,
        key,
        e.stats.protocol as 'netflow9' | 'ipfix',
        old.templateId,
        old.offset,
        old.bytes.length,
        `waited over ${this.o.pendingTtlMs / 1000} s`,
      );
    }
    e.stats.pending = e.pending.length;
  }

  private replay(e: Exporter, key: string, proto: 'netflow9' | 'ipfix', id: number): void {
    if (!e.pending.some((s) => s.templateId === id)) return;
    const t = e.templates.get(id)!;
    const keep: PendingSet[] = [];
    const saved = this.buf;
    const savedDv = this.dv;
    for (const s of e.pending) {
      if (s.templateId !== id) {
        keep.push(s);
        continue;
      }
      e.pendingBytes -= s.bytes.length;
      this.buf = s.bytes;
      this.dv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
      this.data(e, key, proto, t, 4, s.bytes.length, s.exportMs, s.uptimeMs, s.offset);
    }
    this.buf = saved;
    this.dv = savedDv;
    e.pending = keep;
    e.stats.pending = keep.length;
  }

  // ---- Data records -----------------------------------------------------------------------

  private data(
    e: Exporter,
    key: string,
    proto: 'netflow9' | 'ipfix',
    t: Template,
    o: number,
    end: number,
    exportMs: number,
    uptimeMs: number,
    setOffset: number,
  ): number {
    const b = this.buf;
    const dv = this.dv;
    const ff = this.ff;
    const f = ff.f;
    ff.exporter = key;
    ff.protocol = proto;
    ff.templateId = t.id;
    const nf = t.kinds.length;
    const st = e.stats;
    // A template whose records take no bytes describes nothing (and would loop forever).
    if (t.minLen === 0) {
      st.bad++;
      this.problem(
        key,
        proto,
        'empty-template',
        setOffset,
        t.id,
        `template ${t.id} has records of 0 bytes; ${end - o} bytes skipped`,
      );
      return 0;
    }
    let n = 0;
    while (o + t.minLen <= end) {
      const recStart = o;
      ff.reset();
      let bad = false;
      for (let i = 0; i < nf; i++) {
        let len = t.lens[i];
        if (len === 0xffff) {
          if (o >= end) {
            bad = true;
            break;
          }
          len = b[o++];
          if (len === 255) {
            if (o + 2 > end) {
              bad = true;
              break;
            }
            len = dv.getUint16(o);
            o += 2;
          }
        }
        if (o + len > end) {
          bad = true;
          break;
        }
        switch (t.kinds[i]) {
          case K.uint: {
            f[t.slots[i]] =
              len === 4
                ? dv.getUint32(o)
                : len === 8
                  ? dv.getUint32(o) * TWO32 + dv.getUint32(o + 4)
                  : len === 2
                    ? (b[o] << 8) | b[o + 1]
                    : len === 1
                      ? b[o]
                      : readUint(b, o, len);
            break;
          }
          case K.orUint: {
            const prev = f[t.slots[i]];
            const v = readUint(b, o, len);
            f[t.slots[i]] = Number.isNaN(prev) ? v : prev | v;
            break;
          }
          case K.ipv4Src:
            f[F.src4] = dv.getUint32(o);
            break;
          case K.ipv4Dst:
            f[F.dst4] = dv.getUint32(o);
            break;
          case K.ipv6Src:
            for (let w = 0; w < 4; w++) ff.addr[w] = dv.getUint32(o + 4 * w);
            break;
          case K.ipv6Dst:
            for (let w = 0; w < 4; w++) ff.addr[4 + w] = dv.getUint32(o + 4 * w);
            break;
          case K.secs:
            f[t.slots[i]] = dv.getUint32(o) * 1000;
            break;
          case K.millis:
            f[t.slots[i]] = dv.getUint32(o) * TWO32 + dv.getUint32(o + 4);
            break;
          case K.ntp: {
            // NTP era seconds (since 1900) and a 2^-32 fraction.
            const s = dv.getUint32(o) - 2208988800;
            f[t.slots[i]] = s * 1000 + (dv.getUint32(o + 4) / TWO32) * 1000;
            break;
          }
        }
        o += len;
      }
      if (bad) {
        st.bad++;
        this.problem(
          key,
          proto,
          'truncated',
          recStart,
          t.id,
          `record of template ${t.id} runs past the end of its set (set at offset ${setOffset})`,
        );
        break;
      }
      if (o === recStart) break;
      this.dataRecords++;
      if (t.options) this.options(e, t, recStart);
      else {
        resolveAddresses(ff);
        this.times(e, f, exportMs, uptimeMs);
        if (Number.isNaN(f[F.sampling])) {
          const bySampler = Number.isNaN(f[F.samplerId]) ? undefined : e.samplerRates.get(f[F.samplerId]);
          f[F.sampling] = bySampler ?? e.sampling;
        }
        st.sampling = f[F.sampling] || 1;
        st.records++;
        n++;
        this.h.flow(ff);
      }
      if (this.h.named) this.h.named(key, t.id, this.namedRecord(t, recStart));
    }
    return n;
  }

  /** Resolves uptime-relative and delta times into absolute ms. */
  private times(e: Exporter, f: Float64Array, exportMs: number, uptimeMs: number): void {
    if (Number.isNaN(f[F.startMs]) && !Number.isNaN(f[F.firstUptime])) {
      // v9: relative to the header's sysUptime (32-bit ms, wrapping); IPFIX: to
      // systemInitTimeMilliseconds from options data.
      if (!Number.isNaN(uptimeMs)) {
        f[F.startMs] = exportMs + sinceUptime(f[F.firstUptime], uptimeMs);
        if (!Number.isNaN(f[F.lastUptime])) f[F.endMs] = exportMs + sinceUptime(f[F.lastUptime], uptimeMs);
      } else if (!Number.isNaN(e.sysInitMs)) {
        f[F.startMs] = e.sysInitMs + f[F.firstUptime];
        if (!Number.isNaN(f[F.lastUptime])) f[F.endMs] = e.sysInitMs + f[F.lastUptime];
      } else if (!Number.isNaN(f[F.lastUptime])) {
        // No boot time known: keep the duration, end at export time.
        f[F.endMs] = exportMs;
        f[F.startMs] = exportMs - Math.max(0, f[F.lastUptime] - f[F.firstUptime]);
      }
    }
    if (Number.isNaN(f[F.startMs]) && !Number.isNaN(f[F.startDeltaUs])) {
      f[F.startMs] = exportMs - f[F.startDeltaUs] / 1000;
      if (!Number.isNaN(f[F.endDeltaUs])) f[F.endMs] = exportMs - f[F.endDeltaUs] / 1000;
    }
  }

  /** Options data: remember sampling intervals (per sampler ID) and the system init time. */
  private options(e: Exporter, t: Template, o: number): void {
    const b = this.buf;
    let interval = Number.NaN;
    let sampler = Number.NaN;
    eachField(b, t, o, (i, at, len) => {
      const id = t.ids[i];
      if (t.pens[i] !== 0 || (t.v9Scope && i < t.scopeCount)) return;
      if (OPT_SAMPLING.has(id) && len <= 8) interval = readUint(b, at, len);
      else if (OPT_SAMPLER_ID.has(id) && len <= 8) sampler = readUint(b, at, len);
      else if (id === OPT_SYSINIT && len === 8) e.sysInitMs = readUint(b, at, 8);
    });
    if (interval > 0) {
      if (Number.isNaN(sampler)) e.sampling = interval;
      else e.samplerRates.set(sampler, interval);
      if (!Number.isNaN(sampler) && e.samplerRates.size === 1) e.sampling = interval;
    }
  }

  /** Slow path: a record with every element by IANA name (unsigned as numbers, others as text). */
  private namedRecord(t: Template, o: number): Record<string, number | string> {
    const b = this.buf;
    const rec: Record<string, number | string> = {};
    eachField(b, t, o, (i, at, len) => {
      const scope = t.v9Scope && i < t.scopeCount;
      const name = scope ? `scope${t.ids[i]}` : elementName(t.pens[i], t.ids[i]);
      rec[name] = scope ? readUint(b, at, Math.min(len, 6)) : formatElement(b, at, len, t.pens[i], t.ids[i]);
    });
    return rec;
  }
}

/**
 * Templates may carry IPv4 and IPv6 address fields at once (one of them zero): the flow is IPv6
 * when an IPv6 address is set, else IPv4 when IPv4 fields are present.
 */
function resolveAddresses(ff: FlowFields): void {
  const a = ff.addr;
  const f = ff.f;
  const v6 = (a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7]) !== 0;
  if (v6) f[F.ipVersion] = 6;
  else if (!Number.isNaN(f[F.src4]) || !Number.isNaN(f[F.dst4])) {
    f[F.ipVersion] = 4;
    a[0] = Number.isNaN(f[F.src4]) ? 0 : f[F.src4];
    a[4] = Number.isNaN(f[F.dst4]) ? 0 : f[F.dst4];
  }
}

/** ms from `uptime` (the header's sysUptime) back to `t` (a sysUptime stamp), across a 2^32 wrap. */
function sinceUptime(t: number, uptime: number): number {
  let d = (t - uptime) % TWO32;
  if (d > TWO32 / 2) d -= TWO32;
  else if (d < -TWO32 / 2) d += TWO32;
  return d;
}

/**
 * Calls `fn(field, offset, length)` for each field of a record of template `t` starting at `o`
 * (variable lengths resolved). For the slow paths on records `data` has already bounds-checked.
 */
function eachField(
  b: Uint8Array,
  t: Template,
  o: number,
  fn: (i: number, at: number, len: number) => void,
): void {
  for (let i = 0; i < t.kinds.length; i++) {
    let len = t.lens[i];
    if (len === 0xffff) {
      len = b[o++];
      if (len === 255) {
        len = (b[o] << 8) | b[o + 1];
        o += 2;
      }
    }
    fn(i, o, len);
    o += len;
  }
}

/** Unsigned big-endian integer of 1–8 bytes (exact up to 2^53). */
export function readUint(b: Uint8Array, o: number, len: number): number {
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + b[o + i];
  return v;
}

function formatElement(b: Uint8Array, o: number, len: number, pen: number, id: number): number | string {
  const type = pen === 0 || pen === REVERSE_PEN ? ianaElement(id)?.type : undefined;
  switch (type) {
    case 'ipv4Address':
      if (len === 4) return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
      break;
    case 'ipv6Address':
      if (len === 16) {
        const w = new Uint32Array(4);
        for (let i = 0; i < 4; i++) w[i] = readUint(b, o + 4 * i, 4);
        return formatIpWords(w, 0, 6);
      }
      break;
    case 'macAddress':
      return Array.from(b.subarray(o, o + len), (x) => x.toString(16).padStart(2, '0')).join(':');
    case 'string':
      return new TextDecoder().decode(b.subarray(o, o + len)).replace(/\0+$/, '');
    case 'octetArray':
    case 'basicList':
    case 'subTemplateList':
    case 'subTemplateMultiList':
      break;
    default:
      if (len >= 1 && len <= 8) return readUint(b, o, len);
  }
  let hex = '';
  for (let i = 0; i < len; i++) hex += b[o + i].toString(16).padStart(2, '0');
  return hex;
}
