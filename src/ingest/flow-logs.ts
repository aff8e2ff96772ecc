/**
 * Flow logs from network monitors, read into the NetFlow feature set (`ExportRow`,
 * src/features/netflow.ts): Zeek conn.log (ASCII TSV or JSON lines) and Suricata eve.json
 * (`flow` and `netflow` events, `alert` events kept as labels). The format is recognised by
 * content (`sniffFlowLog`), gzip-compressed files included; files are streamed line by line in
 * 1 MiB chunks and never loaded whole.
 *
 * Zeek conn.log, field by field (by name, not position; docs/data.md#zeek-connlog-and-suricata-evejson):
 * - names are matched ignoring case and the scope separator (`id.orig_h`, `id_orig_h`, `id::orig_h`
 *   are one field), and the renamings of Zeek's field-name-map tests (`src`, `src_ip`, `src_port`,
 *   `dst`, …) are aliases; with an unknown name the first/second `addr` and `port` columns of
 *   `#types` are the originator/responder;
 * - `proto` tcp/udp/icmp → 6/17/1 (ICMP over IPv6, which Zeek also calls `icmp`, → 58, told by
 *   `ip_proto` or the address), `unknown_transport` → `ip_proto` when logged, else 0;
 * - `duration` seconds → µs (unset → 0); `ts` epoch seconds (or ISO 8601 text in JSON; a number
 *   above 1e11 is epoch milliseconds, Zeek's JSON::TS_MILLIS) → `startMs`; the btest canonified
 *   `XXXXXXXXXX.XXXXXX` → NaN (not an error);
 * - `orig_pkts`/`resp_pkts` → forward/backward packets; `orig_ip_bytes`/`resp_ip_bytes` (IP-level,
 *   like NetFlow octets) → forward/backward bytes. Without them, the payload bytes `orig_bytes`/
 *   `resp_bytes` plus, per packet, the IP header (20 bytes, 40 for IPv6) and the smallest transport
 *   header (TCP 20, UDP/ICMP 8): an estimate that misses IP and TCP options;
 * - TCP flags from `history` (an approximation: Zeek records events, not flag bits): S → SYN,
 *   H → SYN+ACK, A → ACK, D (payload) → PSH, F → FIN, R → RST, Q (SYN with FIN or RST) → SYN;
 *   upper case is the originator, lower case the responder, both directions are ORed. A data
 *   packet's ACK shows only through A/H; URG is never known. Only for TCP flows;
 * - ICMP: Zeek logs the type as `id.orig_p` and the code (in practice the counterpart type:
 *   8 → 0, 135 → 136) as `id.resp_p`; they stay source/destination port, as Zeek has them.
 * A header-less projection (zeek-cut output: a first line of field names) is read too; a layout
 * lacking identity or counter fields gets one warning naming them, and its rows carry '' / 0.
 *
 * Suricata eve.json: `flow` events are one bidirectional row (`pkts_toserver`/`pkts_toclient`,
 * `bytes_toserver`/`bytes_toclient`, `start`/`end` → duration and start, flags from
 * `tcp.tcp_flags_ts | tcp.tcp_flags_tc`, else `tcp.tcp_flags`, else the `tcp.syn/…` booleans);
 * `netflow` events one unidirectional row. Suricata's byte counters are whole captured packets
 * (GET_PKT_LEN: the link-layer header included, 14 bytes per packet on Ethernet; checked against
 * the Zeus capture, where a 143-byte IPv6 packet counts 157), so they exceed NetFlow's IP bytes by
 * that much; they are kept as Suricata reports them. `alert` events label the flow with their
 * `flow_id` (the most severe, i.e. lowest `alert.severity`, first on ties). Suricata writes a
 * flow's event when the flow ends, normally after its alerts; an alert that comes after its flow
 * row cannot label it in one pass and is counted as `skipped.alertsAfterFlow`. Other event types
 * are counted in `skipped` by type.
 *
 * Bad records (unparseable JSON, a wrong TSV field count, a counter that is not a number, a
 * missing or malformed address, …) are counted by reason and reported with file:line (and the
 * field); reading goes on.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import type { Diagnostics, Severity } from '../core/diagnostics.js';
import { canonicalLabel } from '../core/labels.js';
import { maybeGunzip } from '../core/streams.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../decode/decode.js';
import { type ExportRow, type FlowCounts, netflowValues } from '../features/netflow.js';

export type FlowLogFormat = 'zeek-tsv' | 'zeek-json' | 'suricata-eve';

export interface FlowLogSummary {
  file: string;
  format: FlowLogFormat;
  /** Physical lines read. rows + rejected + the sum of `skipped` equals it (but see `rejected`). */
  lines: number;
  rows: number;
  /**
   * Records rejected (each reported). A file whose content is not recognised, or cannot be read,
   * counts as one rejected record (reason `format` or `read`) and `format` is then only a guess.
   */
  rejected: number;
  /** reason -> count */
  reasons: Record<string, number>;
  /**
   * Records that are not flows and are not meant to be, by kind: Suricata event types (`dns`,
   * `dhcp`, `stats`, …), `alert` (kept as labels), `alertsAfterFlow` (alerts whose flow row was
   * already written, so they label nothing), `alertNoFlowId`; Zeek `comment` (`#` lines),
   * `header` (the field-name line of a zeek-cut projection), other `_path`s in a mixed JSON
   * stream; `blank` lines.
   */
  skipped: Record<string, number>;
  labelled: number;
}

const HEAD_BYTES = 64 * 1024;
const CHUNK = 1 << 20;
const MAX_LINE = 16 << 20;
/** Bound of the flow-id sets kept for Suricata labels; past it they start afresh. */
const MAX_TRACKED = 1 << 22;

// ---------------------------------------------------------------------------------------------
// Zeek field names

/** Slots of the Zeek fields the mapping reads. */
const TS = 0;
const ORIG_H = 1;
const ORIG_P = 2;
const RESP_H = 3;
const RESP_P = 4;
const PROTO = 5;
const DURATION = 6;
const ORIG_BYTES = 7;
const RESP_BYTES = 8;
const ORIG_PKTS = 9;
const RESP_PKTS = 10;
const ORIG_IP_BYTES = 11;
const RESP_IP_BYTES = 12;
const HISTORY = 13;
const IP_PROTO = 14;
const SLOTS = 15;

/** Zeek's own names of the slots (used in messages when the log has no name of its own). */
const SLOT_NAMES = [
  'ts',
  'id.orig_h',
  'id.orig_p',
  'id.resp_h',
  'id.resp_p',
  'proto',
  'duration',
  'orig_bytes',
  'resp_bytes',
  'orig_pkts',
  'resp_pkts',
  'orig_ip_bytes',
  'resp_ip_bytes',
  'history',
  'ip_proto',
];

/** Lower-case alphanumerics only: `id.orig_h`, `id_orig_h`, `ID::orig_h` → `idorigh`. */
function normName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const ALIASES = new Map<string, number>();
function alias(slot: number, ...names: string[]): void {
  for (const n of names) ALIASES.set(normName(n), slot);
}
alias(TS, 'ts');
alias(ORIG_H, 'id.orig_h', 'orig_h', 'src', 'src_ip', 'src_addr', 'srcaddr', 'source_ip', 'saddr');
alias(ORIG_P, 'id.orig_p', 'orig_p', 'src_port', 'sport', 'source_port');
alias(RESP_H, 'id.resp_h', 'resp_h', 'dst', 'dst_ip', 'dst_addr', 'dest_ip', 'destination_ip', 'daddr');
alias(RESP_P, 'id.resp_p', 'resp_p', 'dst_port', 'dport', 'dest_port', 'destination_port');
for (let s = PROTO; s < SLOTS; s++) alias(s, SLOT_NAMES[s]);

/** Fields only a conn.log has (other Zeek logs share ts/uid/id.*). */
const CONN_ONLY = new Set(
  [
    'conn_state',
    'orig_pkts',
    'resp_pkts',
    'orig_ip_bytes',
    'resp_ip_bytes',
    'orig_bytes',
    'resp_bytes',
    'missed_bytes',
    'history',
  ].map(normName),
);

/** conn.log field names (standard and common extensions), for zeek-cut header lines. */
const CONN_FIELDS = new Set(
  [
    ...SLOT_NAMES,
    'uid',
    'service',
    'conn_state',
    'local_orig',
    'local_resp',
    'missed_bytes',
    'tunnel_parents',
    'orig_l2_addr',
    'resp_l2_addr',
    'vlan',
    'inner_vlan',
    'failed_service',
    'community_id',
    'orig_cc',
    'resp_cc',
    'app',
    'speculative_service',
    'id.vlan',
    'id.inner_vlan',
  ].map(normName),
);

/** A zeek-cut style header: every tab-separated name is a conn.log field. */
function isConnNameLine(line: string): string[] | null {
  if (line.length === 0 || line.length > 4096) return null;
  const names = line.split('\t');
  for (const n of names) if (!/^[A-Za-z_][\w.:-]*$/.test(n) || !CONN_FIELDS.has(normName(n))) return null;
  return names;
}

// ---------------------------------------------------------------------------------------------
// Values

const NUM_RE = /^\+?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A non-negative number from a JSON number or numeric text; NaN otherwise. */
function num(v: unknown): number {
  if (typeof v === 'number') return v >= 0 ? v : Number.NaN;
  if (typeof v !== 'string') return Number.NaN;
  // Fast path: plain integers (counts, ports), the common case in Zeek logs.
  const n = v.length;
  if (n > 0 && n <= 15) {
    let x = 0;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      x = x * 10 + c;
    }
    if (i === n) return x;
  }
  return NUM_RE.test(v) ? Number(v) : Number.NaN;
}

const CANONIFIED_TS = /^X+(?:\.X+)?$/;
/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y--;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The decimal number in `s[i, i + k)`; -1 when a character is not a digit. */
function digits(s: string, i: number, k: number): number {
  let v = 0;
  for (const e = i + k; i < e; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * ISO 8601 time → µs since the epoch; NaN if not one. Accepts what Zeek and Suricata write:
 * `2024-12-18T19:35:54.312357-0500`, `…+05:00`, `…Z`, a space for the `T`, up to 9 fraction
 * digits (rounded to µs); no zone means UTC. Parsed by hand: it runs twice per Suricata flow.
 */
export function isoToMicros(s: string): number {
  const n = s.length;
  if (n < 19) return Number.NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const hh = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const ss = digits(s, 17, 2);
  const t = s.charCodeAt(10);
  if (
    (y | mo | d | hh | mi | ss) < 0 ||
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (t !== 84 && t !== 116 && t !== 32) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58 ||
    mo < 1 ||
    mo > 12 ||
    d < 1 ||
    d > 31 ||
    hh > 23 ||
    mi > 59 ||
    ss > 60
  )
    return Number.NaN;
  let i = 19;
  let frac = 0;
  const sep = s.charCodeAt(i);
  if (sep === 46 || sep === 44) {
    let k = ++i;
    let v = 0;
    for (; k < n && k - i < 9; k++) {
      const c = s.charCodeAt(k) - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
    }
    if (k === i) return Number.NaN;
    frac = Math.round(v * 10 ** (6 - (k - i)));
    i = k;
  }
  while (i < n && s.charCodeAt(i) === 32) i++;
  let offsetMin = 0;
  if (i < n) {
    const z = s.charCodeAt(i);
    if ((z === 90 || z === 122) && i + 1 === n) {
      // Z
    } else if (z === 43 || z === 45) {
      const rest = n - i - 1;
      let oh = 0;
      let om = 0;
      if (rest === 2) oh = digits(s, i + 1, 2);
      else if (rest === 4) {
        oh = digits(s, i + 1, 2);
        om = digits(s, i + 3, 2);
      } else if (rest === 5 && s.charCodeAt(i + 3) === 58) {
        oh = digits(s, i + 1, 2);
        om = digits(s, i + 4, 2);
      } else return Number.NaN;
      if (oh < 0 || om < 0 || oh > 23 || om > 59) return Number.NaN;
      offsetMin = (z === 45 ? -1 : 1) * (oh * 60 + om);
    } else return Number.NaN;
  }
  const secs = daysFromCivil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - offsetMin * 60;
  return secs * 1e6 + frac;
}

/**
 * Zeek `ts` → ms since the epoch: epoch seconds (number or text), epoch milliseconds when above
 * 1e11 (JSON::TS_MILLIS), or ISO 8601 text. NaN for canonified or unset values; undefined when
 * the value is none of these.
 */
function zeekTs(v: unknown): number | undefined {
  if (v === undefined || v === null) return Number.NaN;
  if (typeof v === 'string' && CANONIFIED_TS.test(v)) return Number.NaN;
  const x = num(v);
  if (Number.isFinite(x)) return x > 1e11 ? x : x * 1000;
  if (typeof v === 'string') {
    const us = isoToMicros(v);
    if (Number.isFinite(us)) return us / 1000;
  }
  return undefined;
}

/** IP protocol numbers of the names Zeek and Suricata write (upper case). */
const PROTO_NUMBERS: Record<string, number> = {
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMP6: 58,
  ICMPV6: 58,
  'IPV6-ICMP': 58,
  SCTP: 132,
  IGMP: 2,
  GRE: 47,
  ESP: 50,
  AH: 51,
  IPIP: 4,
  IPV6: 41,
  OSPF: 89,
  PIM: 103,
  VRRP: 112,
  UDPLITE: 136,
};

/**
 * Zeek's history letters → the TCP flag bits they imply (see the module comment: an
 * approximation). Case-insensitive: both directions are ORed.
 */
export function historyFlags(h: string): number {
  let f = 0;
  for (let i = 0; i < h.length; i++) {
    switch (h.charCodeAt(i) | 0x20) {
      case 0x73: // s: SYN without ACK
        f |= TCP_SYN;
        break;
      case 0x68: // h: SYN+ACK
        f |= TCP_SYN | TCP_ACK;
        break;
      case 0x61: // a: pure ACK
        f |= TCP_ACK;
        break;
      case 0x64: // d: payload; PSH stands for it
        f |= TCP_PSH;
        break;
      case 0x66: // f: FIN
        f |= TCP_FIN;
        break;
      case 0x72: // r: RST
        f |= TCP_RST;
        break;
      case 0x71: // q: SYN together with FIN or RST
        f |= TCP_SYN;
        break;
    }
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Sniffing

function readHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    let n = 0;
    while (n < HEAD_BYTES) {
      const r = readSync(fd, buf, n, HEAD_BYTES - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The first 64 KiB as text (gunzipped when gzip; a partial gzip stream decodes what it can). */
function headText(raw: Buffer): { text: string; whole: boolean } {
  let buf = raw;
  let whole = raw.length < HEAD_BYTES;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    // Inflate a growing prefix until 64 KiB of text come out (a prefix decodes as far as it goes).
    let out: Buffer | null = null;
    let used = 0;
    for (let n = 4096; ; n *= 2) {
      const take = raw.subarray(0, Math.min(n, raw.length));
      try {
        out = gunzipSync(take, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 1 << 22 });
        used = take.length;
      } catch {
        break;
      }
      if (out.length >= HEAD_BYTES || take.length === raw.length) break;
    }
    if (!out) return { text: '', whole: false };
    buf = out.length > HEAD_BYTES ? out.subarray(0, HEAD_BYTES) : out;
    whole = whole && used === raw.length && out.length < HEAD_BYTES;
  }
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { text, whole };
}

function looksBinary(text: string): boolean {
  let bad = 0;
  const n = Math.min(text.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0xfffd) bad++;
  }
  return bad > n / 100 + 1;
}

function isConnJson(o: Record<string, unknown>): boolean {
  if (typeof o._path === 'string') return o._path.toLowerCase().includes('conn');
  let conn = false;
  let addr = false;
  forEachLeaf(o, '', (k) => {
    if (CONN_ONLY.has(k)) conn = true;
    const s = ALIASES.get(k);
    if (s === ORIG_H || s === RESP_H) addr = true;
  });
  return conn && addr;
}

/** What the beginning of a file is. */
function sniffText(text: string, whole: boolean): FlowLogFormat | null {
  if (text.length === 0 || looksBinary(text)) return null;
  const lines = text.split('\n');
  if (!whole) lines.pop(); // the last one may be cut
  if (lines.every((l) => l.trim() === '') && text.trimStart().startsWith('{')) {
    // One JSON line longer than 64 KiB: judge by its keys.
    if (/^\s*\{[^\n]*"event_type"\s*:\s*"/.test(text)) return 'suricata-eve';
    return /"(?:conn_state|orig_pkts|history)"\s*:/.test(text) ? 'zeek-json' : null;
  }
  let sep = '\t';
  let zeekHeader = false;
  let path: string | null = null;
  let fields: string[] | null = null;
  let jsonSeen = 0;
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.trim() === '') continue;
    if (raw.startsWith('#')) {
      if (raw.startsWith('#separator ')) {
        zeekHeader = true;
        sep = unescapeZeek(raw.slice(11).trim()) || '\t';
      } else if (raw.startsWith('#path')) path = raw.slice(5).split(sep).join('').trim();
      else if (raw.startsWith('#fields')) {
        zeekHeader = true;
        fields = raw
          .slice(7)
          .split(sep)
          .filter((f) => f !== '');
      }
      continue;
    }
    if (zeekHeader || fields) break;
    if (raw.trimStart().startsWith('{')) {
      let o: unknown;
      try {
        o = JSON.parse(raw);
      } catch {
        return null;
      }
      if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
      const obj = o as Record<string, unknown>;
      if (typeof obj.event_type === 'string') return 'suricata-eve';
      if (isConnJson(obj)) return 'zeek-json';
      // A mixed Zeek stream may start with other logs: look a little further.
      if (++jsonSeen >= 50 || typeof obj._path !== 'string') return null;
      continue;
    }
    return isConnNameLine(raw) ? 'zeek-tsv' : null;
  }
  if (fields) {
    if (path?.toLowerCase().includes('conn')) return 'zeek-tsv';
    return fields.some((f) => CONN_ONLY.has(normName(f))) ? 'zeek-tsv' : null;
  }
  return zeekHeader && path?.toLowerCase().includes('conn') ? 'zeek-tsv' : null;
}

/**
 * Reads the first 64 KiB (gunzipped when the file is gzip-compressed) and says which flow-log
 * format it is, or null (not one of them, unreadable, empty, binary). By content, not file name.
 */
export function sniffFlowLog(path: string): FlowLogFormat | null {
  let raw: Buffer;
  try {
    raw = readHead(path);
  } catch {
    return null;
  }
  const { text, whole } = headText(raw);
  return sniffText(text, whole);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Calls `fn` for each line of the file (without its line break); `text` null for an oversize line. */
async function eachLine(
  path: string,
  onProgress: ((bytes: number) => void) | undefined,
  fn: (text: string | null, line: number, complete: boolean) => void,
  afterChunk?: () => Promise<void>,
): Promise<void> {
  async function* counted(): AsyncGenerator<Buffer> {
    let bytes = 0;
    for await (const c of createReadStream(path, { highWaterMark: CHUNK })) {
      bytes += (c as Buffer).length;
      onProgress?.(bytes);
      yield c as Buffer;
    }
  }
  let carry: Buffer | null = null;
  let discarding = false;
  let no = 0;
  const text = (b: Buffer, s: number, e: number): string => {
    if (e > s && b[e - 1] === 13) e--;
    if (no === 1 && e - s >= 3 && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3;
    return b.toString('utf8', s, e);
  };
  for await (const chunk of maybeGunzip(counted())) {
    let buf = chunk;
    if (carry) {
      buf = Buffer.concat([carry, chunk]);
      carry = null;
    }
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      no++;
      if (discarding) {
        discarding = false;
        fn(null, no, true);
      } else fn(text(buf, start, nl), no, true);
      start = nl + 1;
    }
    if (!discarding) {
      if (buf.length - start > MAX_LINE) discarding = true;
      else if (start < buf.length) carry = buf.subarray(start);
    }
    if (afterChunk) await afterChunk();
  }
  if (discarding) fn(null, ++no, false);
  else if (carry && carry.length > 0) {
    no++;
    fn(text(carry, 0, carry.length), no, false);
  }
}

/** Shared bookkeeping of one file: counts, problems, rows. */
class Sink {
  readonly counts: FlowCounts = {
    durationUs: 0,
    fwdPackets: 0,
    bwdPackets: 0,
    fwdBytes: 0,
    bwdBytes: 0,
    tcpFlags: 0,
  };

  constructor(
    readonly s: FlowLogSummary,
    private readonly diag: Diagnostics,
    private readonly onRow: (r: ExportRow) => void,
  ) {}

  reject(line: number, reason: string, message: string, column?: string, columnIndex?: number): void {
    this.s.rejected++;
    this.s.reasons[reason] = (this.s.reasons[reason] ?? 0) + 1;
    this.diag.report({
      severity: 'error',
      reason,
      file: this.s.file,
      line,
      column,
      columnIndex,
      message: `${message}; record skipped`,
    });
  }

  note(severity: Severity, line: number, reason: string, message: string, column?: string): void {
    this.diag.report({ severity, reason, file: this.s.file, line, column, message });
  }

  skip(kind: string): void {
    this.s.skipped[kind] = (this.s.skipped[kind] ?? 0) + 1;
  }

  /** A row from `counts` and the identity. */
  emit(
    protocol: number,
    srcIp: string,
    dstIp: string,
    srcPort: number,
    dstPort: number,
    startMs: number,
    label?: string,
    rawLabel?: string,
  ): void {
    const r: ExportRow = {
      values: netflowValues(protocol, this.counts),
      srcIp,
      dstIp,
      srcPort,
      dstPort,
      protocol,
      startMs,
      source: this.s.file,
    };
    if (label !== undefined) {
      r.label = label;
      r.rawLabel = rawLabel;
      this.s.labelled++;
    }
    this.s.rows++;
    this.onRow(r);
  }
}

interface LineParser {
  line(text: string, no: number, complete: boolean): void;
}

/**
 * One Zeek record (TSV or JSON) → a row: `raw[slot]` is the value (undefined when unset),
 * `has[slot]` whether the log has the field at all (a JSON record always "has" its addresses).
 */
function zeekRecord(
  sink: Sink,
  no: number,
  raw: unknown[],
  has: boolean[],
  name: (slot: number) => string,
  index: (slot: number) => number | undefined,
): void {
  const bad = (slot: number, reason: string, message: string) =>
    sink.reject(no, reason, message, name(slot), index(slot));
  const addr = (slot: number): string | null => {
    const v = raw[slot];
    if (!has[slot]) return '';
    if (v === undefined || v === '') {
      bad(slot, 'missing-address', 'no address');
      return null;
    }
    if (typeof v !== 'string' || isIP(v) === 0) {
      bad(slot, 'bad-address', `${JSON.stringify(v)} is not an IP address`);
      return null;
    }
    return v;
  };
  const port = (slot: number): number => {
    const v = raw[slot];
    if (v === undefined) return 0;
    const x = num(v);
    if (!Number.isInteger(x) || x > 65535) {
      bad(slot, 'non-numeric', `${JSON.stringify(v)} is not a port number`);
      return -1;
    }
    return x;
  };
  /** A counter: 0 when unset, NaN (reported) when not a number. */
  const count = (slot: number): number => {
    const v = raw[slot];
    if (v === undefined) return 0;
    const x = num(v);
    if (!Number.isFinite(x)) bad(slot, 'non-numeric', `${JSON.stringify(v)} is not a number`);
    return x;
  };

  const srcIp = addr(ORIG_H);
  if (srcIp === null) return;
  const dstIp = addr(RESP_H);
  if (dstIp === null) return;
  const srcPort = port(ORIG_P);
  if (srcPort < 0) return;
  const dstPort = port(RESP_P);
  if (dstPort < 0) return;
  const dur = count(DURATION);
  const op = count(ORIG_PKTS);
  const rp = count(RESP_PKTS);
  if (Number.isNaN(dur) || Number.isNaN(op) || Number.isNaN(rp)) return;

  const ipProtoRaw = raw[IP_PROTO];
  const ipProto = ipProtoRaw === undefined ? Number.NaN : num(ipProtoRaw);
  if (ipProtoRaw !== undefined && !Number.isInteger(ipProto)) {
    bad(IP_PROTO, 'non-numeric', `${JSON.stringify(ipProtoRaw)} is not a protocol number`);
    return;
  }
  const v6 = srcIp.includes(':') || dstIp.includes(':');
  const protoText = typeof raw[PROTO] === 'string' ? (raw[PROTO] as string).toUpperCase() : '';
  let protocol: number;
  if (protoText === 'TCP') protocol = 6;
  else if (protoText === 'UDP') protocol = 17;
  else if (protoText === 'ICMP') protocol = ipProto === 1 || ipProto === 58 ? ipProto : v6 ? 58 : 1;
  else if (Number.isInteger(ipProto)) protocol = ipProto;
  else if (Object.hasOwn(PROTO_NUMBERS, protoText)) protocol = PROTO_NUMBERS[protoText];
  else if (NUM_RE.test(protoText)) protocol = Number(protoText);
  else {
    protocol = 0;
    if (protoText !== '' && protoText !== 'UNKNOWN_TRANSPORT')
      sink.note(
        'warning',
        no,
        'unknown-protocol',
        `protocol ${JSON.stringify(raw[PROTO])} unknown; 0 used`,
        name(PROTO),
      );
  }

  // IP-level bytes; without them payload bytes plus minimal IP and transport headers per packet.
  const hdr = (v6 ? 40 : 20) + (protocol === 6 ? 20 : 8);
  const ipBytes = (ipSlot: number, paySlot: number, pkts: number): number => {
    if (raw[ipSlot] !== undefined) return count(ipSlot);
    if (raw[paySlot] !== undefined) {
      const p = count(paySlot);
      return p + hdr * pkts;
    }
    return 0;
  };
  const ob = ipBytes(ORIG_IP_BYTES, ORIG_BYTES, op);
  if (Number.isNaN(ob)) return;
  const rb = ipBytes(RESP_IP_BYTES, RESP_BYTES, rp);
  if (Number.isNaN(rb)) return;

  let startMs = zeekTs(raw[TS]);
  if (startMs === undefined) {
    sink.note(
      'warning',
      no,
      'timestamp',
      `${JSON.stringify(raw[TS])} is not a time; start unknown`,
      name(TS),
    );
    startMs = Number.NaN;
  }
  const c = sink.counts;
  c.durationUs = Math.round(dur * 1e6);
  c.fwdPackets = op;
  c.bwdPackets = rp;
  c.fwdBytes = ob;
  c.bwdBytes = rb;
  c.tcpFlags = protocol === 6 && typeof raw[HISTORY] === 'string' ? historyFlags(raw[HISTORY] as string) : 0;
  sink.emit(protocol, srcIp, dstIp, srcPort, dstPort, startMs);
}

/** Decodes Zeek's `\xHH` escapes (header values such as `#separator \x09`). */
function unescapeZeek(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

interface ZeekLayout {
  names: string[];
  /** Column of each slot, -1 when absent. */
  col: Int32Array;
  /** Line of the `#fields` (or zeek-cut header) line. */
  line: number;
  checked: boolean;
}

class ZeekTsvParser implements LineParser {
  private sep = '\t';
  private empty = '(empty)';
  private unset = '-';
  private layout: ZeekLayout | null = null;
  private readonly raw: unknown[] = new Array(SLOTS);
  private readonly has: boolean[] = new Array(SLOTS).fill(false);
  private readonly name = (s: number) =>
    this.layout && this.layout.col[s] >= 0 ? this.layout.names[this.layout.col[s]] : SLOT_NAMES[s];
  private readonly index = (s: number) =>
    this.layout && this.layout.col[s] >= 0 ? this.layout.col[s] + 1 : undefined;

  constructor(private readonly sink: Sink) {}

  private setLayout(names: string[], line: number): void {
    const col = new Int32Array(SLOTS).fill(-1);
    names.forEach((n, i) => {
      const s = ALIASES.get(normName(n));
      if (s !== undefined && col[s] < 0) col[s] = i;
    });
    this.layout = { names, col, line, checked: false };
  }

  /** Unnamed addresses and ports from `#types`: the first addr/port is the originator's. */
  private applyTypes(types: string[]): void {
    const l = this.layout;
    if (!l || types.length !== l.names.length) return;
    const fill = (type: string, a: number, b: number) => {
      if (l.col[a] >= 0 && l.col[b] >= 0) return;
      const at = types.flatMap((t, i) => (t === type ? [i] : []));
      if (at.length < 2) return;
      if (l.col[a] < 0 && !l.col.includes(at[0])) l.col[a] = at[0];
      if (l.col[b] < 0 && !l.col.includes(at[1])) l.col[b] = at[1];
    };
    fill('addr', ORIG_H, RESP_H);
    fill('port', ORIG_P, RESP_P);
  }

  private directive(text: string, no: number): void {
    if (text.startsWith('#separator')) {
      // A new header block starts: the old layout is gone.
      this.sep = unescapeZeek(text.slice(10).trim()) || '\t';
      this.layout = null;
      return;
    }
    const parts = text.split(this.sep);
    const value = unescapeZeek(parts[1] ?? '');
    switch (parts[0]) {
      case '#set_separator':
        break;
      case '#empty_field':
        this.empty = value;
        break;
      case '#unset_field':
        this.unset = value;
        break;
      case '#fields':
        this.setLayout(parts.slice(1), no);
        break;
      case '#types':
        this.applyTypes(parts.slice(1));
        break;
    }
  }

  line(text: string, no: number, complete: boolean): void {
    const sink = this.sink;
    if (text.length === 0 || (text.trim() === '' && !text.includes(this.sep))) {
      sink.skip('blank');
      return;
    }
    if (text.charCodeAt(0) === 0x23 /* # */) {
      this.directive(text, no);
      sink.skip('comment');
      return;
    }
    const l = this.layout;
    if (!l) {
      const names = isConnNameLine(text);
      if (names) {
        this.setLayout(names, no);
        sink.skip('header');
        return;
      }
      sink.reject(
        no,
        'no-header',
        'data before any #fields header (not a Zeek log, or its header is missing)',
      );
      return;
    }
    if (!l.checked) this.check(l);
    const f = text.split(this.sep);
    if (f.length !== l.names.length) {
      if (!complete && f.length < l.names.length)
        sink.reject(
          no,
          'truncated',
          `last line is incomplete (no newline at end of file): ${f.length} of ${l.names.length} fields`,
        );
      else
        sink.reject(
          no,
          'field-count',
          `expected ${l.names.length} fields (#fields on line ${l.line}), found ${f.length}`,
        );
      return;
    }
    for (let s = 0; s < SLOTS; s++) {
      const c = l.col[s];
      const v = c >= 0 ? f[c] : undefined;
      this.raw[s] = v === undefined || v === this.unset || v === this.empty || v === '' ? undefined : v;
    }
    zeekRecord(sink, no, this.raw, this.has, this.name, this.index);
  }

  /** Once per layout: which slots it has, and a warning naming the missing ones. */
  private check(l: ZeekLayout): void {
    l.checked = true;
    const missing: string[] = [];
    for (let s = 0; s < SLOTS; s++) {
      this.has[s] = l.col[s] >= 0;
      if (this.has[s] || s === ORIG_BYTES || s === RESP_BYTES || s === IP_PROTO || s === TS) continue;
      if (s === ORIG_IP_BYTES && l.col[ORIG_BYTES] >= 0) continue;
      if (s === RESP_IP_BYTES && l.col[RESP_BYTES] >= 0) continue;
      missing.push(SLOT_NAMES[s]);
    }
    if (missing.length > 0)
      this.sink.note(
        'warning',
        l.line,
        'missing-fields',
        `this layout has no ${missing.join(', ')} (a zeek-cut projection?): its rows get '' for missing addresses and 0 for missing ports, protocol and counters`,
      );
  }
}

/** Calls `fn` with the normalised flattened key and value of every non-object leaf. */
function forEachLeaf(
  o: Record<string, unknown>,
  prefix: string,
  fn: (key: string, v: unknown, name: string) => void,
  namePrefix = '',
): void {
  for (const k in o) {
    const v = o[k];
    const key = prefix + normName(k);
    const name = namePrefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      forEachLeaf(v as Record<string, unknown>, key, fn, `${name}.`);
    else fn(key, v, name);
  }
}

function parseObject(
  sink: Sink,
  text: string,
  no: number,
  complete: boolean,
): Record<string, unknown> | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    if (!complete)
      sink.reject(no, 'truncated', 'last line is incomplete (no newline at end of file) and not valid JSON');
    else sink.reject(no, 'bad-json', `not valid JSON: ${(e as Error).message}`);
    return null;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    sink.reject(
      no,
      'bad-json',
      `not a JSON object (${Array.isArray(o) ? 'array' : o === null ? 'null' : typeof o})`,
    );
    return null;
  }
  return o as Record<string, unknown>;
}

class ZeekJsonParser implements LineParser {
  private readonly raw: unknown[] = new Array(SLOTS);
  private readonly names: string[] = SLOT_NAMES.slice();
  /** A JSON record names its own fields: a missing address is missing, not a projection. */
  private readonly has: boolean[] = new Array(SLOTS).fill(true);
  private readonly name = (s: number) => this.names[s];
  private readonly index = () => undefined;

  constructor(private readonly sink: Sink) {}

  line(text: string, no: number, complete: boolean): void {
    const sink = this.sink;
    if (text.trim() === '') {
      sink.skip('blank');
      return;
    }
    const o = parseObject(sink, text, no, complete);
    if (!o) return;
    if (typeof o._path === 'string' && !o._path.toLowerCase().includes('conn')) {
      sink.skip(o._path);
      return;
    }
    this.raw.fill(undefined);
    for (let s = 0; s < SLOTS; s++) this.names[s] = SLOT_NAMES[s];
    // Nested records ({"id": {"orig_h": …}}) are flattened.
    forEachLeaf(o, '', this.set);
    zeekRecord(sink, no, this.raw, this.has, this.name, this.index);
  }

  private readonly set = (key: string, v: unknown, name: string): void => {
    const s = ALIASES.get(key);
    if (s === undefined || this.raw[s] !== undefined) return;
    this.raw[s] = v === null ? undefined : v;
    this.names[s] = name;
  };
}

interface AlertLabel {
  severity: number;
  signature: string;
}

class SuricataParser implements LineParser {
  private readonly alerts = new Map<number | string, AlertLabel>();
  private readonly written = new Set<number | string>();

  constructor(private readonly sink: Sink) {}

  /** `flow_id` as a key: the number when exact, else its digits as written. */
  private flowKey(o: Record<string, unknown>, text: string): number | string | undefined {
    const v = o.flow_id;
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return v;
      return /"flow_id"\s*:\s*(\d+)/.exec(text)?.[1] ?? String(v);
    }
    if (typeof v === 'string' && v !== '') return v;
    return undefined;
  }

  line(text: string, no: number, complete: boolean): void {
    const sink = this.sink;
    if (text.trim() === '') {
      sink.skip('blank');
      return;
    }
    const o = parseObject(sink, text, no, complete);
    if (!o) return;
    const type = o.event_type;
    if (typeof type !== 'string' || type === '') {
      sink.reject(no, 'missing-field', 'no event_type', 'event_type');
      return;
    }
    if (type === 'flow' || type === 'netflow') this.flow(o, type, text, no);
    else if (type === 'alert') this.alert(o, text);
    else sink.skip(type);
  }

  private alert(o: Record<string, unknown>, text: string): void {
    const key = this.flowKey(o, text);
    if (key === undefined) {
      this.sink.skip('alertNoFlowId');
      return;
    }
    if (this.written.has(key)) {
      this.sink.skip('alertsAfterFlow');
      return;
    }
    this.sink.skip('alert');
    const a = o.alert as Record<string, unknown> | undefined;
    const signature = typeof a?.signature === 'string' ? a.signature : `signature ${a?.signature_id ?? '?'}`;
    const severity = typeof a?.severity === 'number' ? a.severity : 255;
    const prev = this.alerts.get(key);
    if (prev && prev.severity <= severity) return;
    if (this.alerts.size >= MAX_TRACKED) this.alerts.clear();
    this.alerts.set(key, { severity, signature });
  }

  private flow(o: Record<string, unknown>, type: string, text: string, no: number): void {
    const sink = this.sink;
    const address = (k: string): string | null => {
      const v = o[k];
      if (v === undefined || v === null || v === '') {
        sink.reject(no, 'missing-address', 'no address', k);
        return null;
      }
      if (typeof v !== 'string' || isIP(v) === 0) {
        sink.reject(no, 'bad-address', `${JSON.stringify(v)} is not an IP address`, k);
        return null;
      }
      return v;
    };
    const srcIp = address('src_ip');
    if (srcIp === null) return;
    const dstIp = address('dest_ip');
    if (dstIp === null) return;

    let protocol = 0;
    const p = o.proto;
    if (typeof p === 'number' && Number.isInteger(p) && p >= 0) protocol = p;
    else if (typeof p === 'string' && /^\d+$/.test(p)) protocol = Number(p);
    else if (typeof p === 'string' && Object.hasOwn(PROTO_NUMBERS, p.toUpperCase()))
      protocol = PROTO_NUMBERS[p.toUpperCase()];
    else
      sink.note('warning', no, 'unknown-protocol', `protocol ${JSON.stringify(p)} unknown; 0 used`, 'proto');

    const icmp = protocol === 1 || protocol === 58;
    const port = (k: string): number => {
      const v = o[k];
      if (v === undefined || v === null) return 0;
      const x = num(v);
      if (!Number.isInteger(x) || x > 65535) {
        sink.reject(
          no,
          'non-numeric',
          `${JSON.stringify(v)} is not a ${icmp ? 'ICMP type/code' : 'port number'}`,
          k,
        );
        return -1;
      }
      return x;
    };
    // ICMP: type and code as source/destination port, as Zeek logs them.
    const srcPort = port(icmp ? 'icmp_type' : 'src_port');
    if (srcPort < 0) return;
    const dstPort = port(icmp ? 'icmp_code' : 'dest_port');
    if (dstPort < 0) return;

    const f = o[type];
    if (f === null || typeof f !== 'object' || Array.isArray(f)) {
      sink.reject(no, 'missing-field', `a ${type} event without its "${type}" object`, type);
      return;
    }
    const fo = f as Record<string, unknown>;
    const counter = (k: string): number => {
      const v = fo[k];
      if (v === undefined || v === null) {
        sink.reject(no, 'missing-field', 'no value', `${type}.${k}`);
        return Number.NaN;
      }
      const x = num(v);
      if (!Number.isFinite(x))
        sink.reject(no, 'non-numeric', `${JSON.stringify(v)} is not a number`, `${type}.${k}`);
      return x;
    };
    const c = sink.counts;
    if (type === 'flow') {
      c.fwdPackets = counter('pkts_toserver');
      if (Number.isNaN(c.fwdPackets)) return;
      c.bwdPackets = counter('pkts_toclient');
      if (Number.isNaN(c.bwdPackets)) return;
      // Whole captured packets, link-layer header included (see the module comment).
      c.fwdBytes = counter('bytes_toserver');
      if (Number.isNaN(c.fwdBytes)) return;
      c.bwdBytes = counter('bytes_toclient');
      if (Number.isNaN(c.bwdBytes)) return;
    } else {
      c.fwdPackets = counter('pkts');
      if (Number.isNaN(c.fwdPackets)) return;
      c.fwdBytes = counter('bytes');
      if (Number.isNaN(c.fwdBytes)) return;
      c.bwdPackets = 0;
      c.bwdBytes = 0;
    }

    const start = typeof fo.start === 'string' ? isoToMicros(fo.start) : Number.NaN;
    const end = typeof fo.end === 'string' ? isoToMicros(fo.end) : Number.NaN;
    if (Number.isNaN(start))
      sink.note(
        'warning',
        no,
        'timestamp',
        `${JSON.stringify(fo.start)} is not a time; start unknown`,
        `${type}.start`,
      );
    c.durationUs = end >= start ? end - start : 0;
    c.tcpFlags = protocol === 6 ? tcpFlags(o.tcp) : 0;

    const key = this.flowKey(o, text);
    let label: AlertLabel | undefined;
    if (key !== undefined) {
      label = this.alerts.get(key);
      if (this.written.size >= MAX_TRACKED) this.written.clear();
      this.written.add(key);
    }
    sink.emit(
      protocol,
      srcIp,
      dstIp,
      srcPort,
      dstPort,
      start / 1000,
      label ? canonicalLabel(label.signature) : undefined,
      label?.signature,
    );
  }
}

function hexFlags(v: unknown): number {
  return typeof v === 'string' && /^[0-9a-fA-F]{1,2}$/.test(v) ? Number.parseInt(v, 16) : -1;
}

/** Suricata's `tcp` object → flag bits: per-direction hex, else the total, else the booleans. */
function tcpFlags(t: unknown): number {
  if (t === null || typeof t !== 'object') return 0;
  const o = t as Record<string, unknown>;
  const ts = hexFlags(o.tcp_flags_ts);
  const tc = hexFlags(o.tcp_flags_tc);
  if (ts >= 0 || tc >= 0) return Math.max(ts, 0) | Math.max(tc, 0);
  const all = hexFlags(o.tcp_flags);
  if (all >= 0) return all;
  return (
    (o.fin === true ? TCP_FIN : 0) |
    (o.syn === true ? TCP_SYN : 0) |
    (o.rst === true ? TCP_RST : 0) |
    (o.psh === true ? TCP_PSH : 0) |
    (o.ack === true ? TCP_ACK : 0) |
    (o.urg === true ? TCP_URG : 0)
  );
}

/**
 * Streams a Zeek conn.log (TSV or JSON) or a Suricata eve.json (plain or gzip) and calls `onRow`
 * for each flow. Malformed records are counted in `rejected`/`reasons` and reported to `diag`
 * with file, 1-based line and field; reading goes on. Nothing is thrown for bad input: a file
 * that cannot be read or is none of the formats is one reported problem.
 */
export async function readFlowLog(
  path: string,
  diag: Diagnostics,
  onRow: (r: ExportRow) => void,
  onProgress?: (bytes: number) => void,
  /** Awaited after each chunk of the file (e.g. to score the rows so far: memory stays bounded). */
  afterChunk?: () => Promise<void>,
): Promise<FlowLogSummary> {
  const summary: FlowLogSummary = {
    file: path,
    format: 'zeek-tsv',
    lines: 0,
    rows: 0,
    rejected: 0,
    reasons: {},
    skipped: {},
    labelled: 0,
  };
  const sink = new Sink(summary, diag, onRow);
  let head: Buffer;
  try {
    head = readHead(path);
  } catch (e) {
    sink.reject(0, 'read', `cannot read the file: ${(e as Error).message}`);
    return summary;
  }
  const { text, whole } = headText(head);
  const format = sniffText(text, whole);
  if (!format) {
    const what =
      head.length === 0
        ? 'the file is empty'
        : looksBinary(text) || text === ''
          ? 'the file holds binary data'
          : `its first line is ${JSON.stringify(text.split('\n', 1)[0].slice(0, 80))}`;
    if (text.trimStart().startsWith('{')) summary.format = 'zeek-json';
    sink.reject(0, 'format', `not a Zeek conn.log (TSV or JSON) nor a Suricata eve.json: ${what}`);
    return summary;
  }
  summary.format = format;
  const parser: LineParser =
    format === 'zeek-tsv'
      ? new ZeekTsvParser(sink)
      : format === 'zeek-json'
        ? new ZeekJsonParser(sink)
        : new SuricataParser(sink);
  try {
    await eachLine(
      path,
      onProgress,
      (t, no, complete) => {
        summary.lines = no;
        if (t === null) sink.reject(no, 'oversize', `a line longer than ${MAX_LINE >> 20} MiB`);
        else parser.line(t, no, complete);
      },
      afterChunk,
    );
  } catch (e) {
    sink.reject(summary.lines + 1, 'read', `reading stopped: ${(e as Error).message}`);
  }
  return summary;
}
