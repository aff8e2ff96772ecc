/**
 * Streaming pcap and pcapng reader. Bytes are pushed in chunks of any size (a file, gunzip
 * output, a child process's stdout); every packet is handed to a callback as a reused record
 * pointing into the current buffer, so reading allocates nothing per packet. Only a packet that
 * straddles two chunks is copied.
 *
 * pcap: both byte orders, microsecond and nanosecond magic, snaplen. pcapng: sections (SHB, either
 * byte order, several per file), interfaces (IDB) with their link type, snaplen, if_tsresol and
 * if_tsoffset, enhanced/simple/obsolete packet blocks; name-resolution, statistics and unknown
 * blocks are skipped. A damaged file stops the reader with the byte offset and the reason;
 * everything before it has been delivered.
 */

import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
import { maybeGunzip } from '../core/streams.js';

/** One captured packet; valid only during the callback. */
export interface RawPacket {
  /** Buffer holding the packet bytes at [offset, offset + capLen). */
  buf: Uint8Array;
  offset: number;
  /** Bytes captured (may be less than origLen when the capture was cut at snaplen). */
  capLen: number;
  /** Length of the packet on the wire. */
  origLen: number;
  /** Timestamp in microseconds since the epoch (sub-µs digits approximate). */
  tsUs: number;
  /** LINKTYPE_* of the packet's interface. */
  linkType: number;
  /** pcapng interface index (0 for pcap). */
  iface: number;
  /** 1-based packet number in the file. */
  number: number;
  /** Byte offset of the packet's record (header) in the file. */
  fileOffset: number;
}

export type CaptureFormat = 'pcap' | 'pcapng' | 'unknown';

export interface ReaderStats {
  format: CaptureFormat;
  packets: number;
  /** Packets whose captured length is below their wire length. */
  truncated: number;
  /** Bytes consumed. */
  bytes: number;
  /** pcapng blocks skipped (name resolution, statistics, unknown). */
  skippedBlocks: number;
  /** Set when the reader stopped on damaged input. */
  error: { offset: number; reason: string } | null;
}

interface Iface {
  linkType: number;
  snapLen: number;
  /** Timestamp units per second. */
  unitsPerSec: number;
  /** if_tsoffset in seconds. */
  offsetSec: number;
}

const PCAP_HEADER = 24;
/** Larger records are taken for corruption (libpcap's own maximum snaplen). */
const MAX_RECORD = 262144;
const MAX_BLOCK = 16 * 1024 * 1024;

export class CaptureReader {
  readonly stats: ReaderStats = {
    format: 'unknown',
    packets: 0,
    truncated: 0,
    bytes: 0,
    skippedBlocks: 0,
    error: null,
  };
  private carry: Uint8Array | null = null;
  /** File offset of carry[0] / of the current buffer's first byte. */
  private base = 0;
  private le = true;
  private started = false;
  // pcap
  private pcapLink = 0;
  private pcapSnap = 0;
  private pcapUnits = 1e6;
  // pcapng
  private ifaces: Iface[] = [];
  private readonly rec: RawPacket = {
    buf: new Uint8Array(0),
    offset: 0,
    capLen: 0,
    origLen: 0,
    tsUs: 0,
    linkType: 0,
    iface: 0,
    number: 0,
    fileOffset: 0,
  };

  constructor(private readonly onPacket: (p: RawPacket) => void) {}

  /** True once the reader has stopped on an error; further input is ignored. */
  get stopped(): boolean {
    return this.stats.error !== null;
  }

  push(chunk: Uint8Array): void {
    if (this.stopped || chunk.length === 0) return;
    let buf = chunk;
    if (this.carry) {
      const joined = new Uint8Array(this.carry.length + chunk.length);
      joined.set(this.carry);
      joined.set(chunk, this.carry.length);
      buf = joined;
      this.carry = null;
    }
    const used = this.parse(buf);
    if (!this.stopped && used < buf.length) this.carry = buf.slice(used);
    this.base += used;
    this.stats.bytes = this.base;
  }

  /** Call at end of input: leftover bytes mean a cut-off file. */
  end(): void {
    if (this.stopped) return;
    if (!this.started) {
      this.fail(0, 'empty input: not a pcap or pcapng file');
      return;
    }
    if (this.carry && this.carry.length > 0)
      this.fail(
        this.base,
        `file ends inside a ${this.stats.format === 'pcap' ? 'packet record' : 'block'} (${this.carry.length} bytes left over; the capture was cut off)`,
      );
    this.carry = null;
  }

  private fail(offset: number, reason: string): void {
    this.stats.error = { offset, reason };
  }

  private u16(b: Uint8Array, o: number): number {
    return this.le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1];
  }

  private u32(b: Uint8Array, o: number): number {
    return this.le
      ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
      : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }

  /** Parses as much of buf as holds complete units; returns the bytes consumed. */
  private parse(b: Uint8Array): number {
    let pos = 0;
    if (!this.started) {
      if (b.length < 4) return 0;
      const m = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      if (m === 0x0a0d0d0a) {
        this.stats.format = 'pcapng';
        this.started = true;
      } else if (m === 0xa1b2c3d4 || m === 0xa1b23c4d || m === 0xd4c3b2a1 || m === 0x4d3cb2a1) {
        if (b.length < PCAP_HEADER) return 0;
        this.le = m === 0xd4c3b2a1 || m === 0x4d3cb2a1;
        this.pcapUnits = m === 0xa1b23c4d || m === 0x4d3cb2a1 ? 1e9 : 1e6;
        this.pcapSnap = this.u32(b, 16);
        this.pcapLink = this.u32(b, 20) & 0x0fffffff;
        this.stats.format = 'pcap';
        this.started = true;
        pos = PCAP_HEADER;
      } else {
        const hex = Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');
        this.fail(0, `not a pcap or pcapng file (first bytes ${hex})`);
        return 0;
      }
    }
    return this.stats.format === 'pcap' ? this.parsePcap(b, pos) : this.parsePcapng(b, pos);
  }

  private parsePcap(b: Uint8Array, pos: number): number {
    const r = this.rec;
    const scale = this.pcapUnits === 1e6 ? 1 : 1e-3;
    while (pos + 16 <= b.length) {
      const caplen = this.u32(b, pos + 8);
      const origlen = this.u32(b, pos + 12);
      if (caplen > MAX_RECORD) {
        this.fail(
          this.base + pos,
          `packet record ${this.stats.packets + 1} claims ${caplen} captured bytes (snaplen ${this.pcapSnap}); the file is damaged`,
        );
        return pos;
      }
      if (pos + 16 + caplen > b.length) break;
      r.buf = b;
      r.offset = pos + 16;
      r.capLen = caplen;
      r.origLen = origlen;
      r.tsUs = this.u32(b, pos) * 1e6 + this.u32(b, pos + 4) * scale;
      r.linkType = this.pcapLink;
      r.iface = 0;
      r.number = ++this.stats.packets;
      r.fileOffset = this.base + pos;
      if (caplen < origlen) this.stats.truncated++;
      this.onPacket(r);
      pos += 16 + caplen;
    }
    return pos;
  }

  private parsePcapng(b: Uint8Array, pos: number): number {
    while (pos + 12 <= b.length) {
      const type = ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
      if (type === 0x0a0d0d0a) {
        // Section header: the byte-order magic decides the endianness of this section.
        const bom = ((b[pos + 8] << 24) | (b[pos + 9] << 16) | (b[pos + 10] << 8) | b[pos + 11]) >>> 0;
        if (bom === 0x1a2b3c4d) this.le = false;
        else if (bom === 0x4d3c2b1a) this.le = true;
        else {
          this.fail(this.base + pos, 'section header with an unknown byte-order magic');
          return pos;
        }
        this.ifaces = [];
      }
      const t = this.u32(b, pos);
      const len = this.u32(b, pos + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK) {
        this.fail(this.base + pos, `block of type 0x${t.toString(16)} has an invalid length ${len}`);
        return pos;
      }
      if (pos + len > b.length) break;
      if (this.u32(b, pos + len - 4) !== len) {
        this.fail(this.base + pos, `block of type 0x${t.toString(16)}: trailing length differs from ${len}`);
        return pos;
      }
      const ok = this.block(t, b, pos, len);
      if (!ok) return pos;
      pos += len;
    }
    return pos;
  }

  /** Handles one complete block; false when it stopped the reader. */
  private block(t: number, b: Uint8Array, pos: number, len: number): boolean {
    const body = pos + 8;
    const end = pos + len - 4;
    switch (t) {
      case 0x0a0d0d0a:
        return true;
      case 1: {
        // Interface description.
        if (end - body < 8) return this.blockError(pos, 'interface description block too short');
        const iface: Iface = {
          linkType: this.u16(b, body),
          snapLen: this.u32(b, body + 4),
          unitsPerSec: 1e6,
          offsetSec: 0,
        };
        let o = body + 8;
        while (o + 4 <= end) {
          const code = this.u16(b, o);
          const olen = this.u16(b, o + 2);
          if (code === 0 || o + 4 + olen > end) break;
          if (code === 9 && olen >= 1) {
            const v = b[o + 4];
            iface.unitsPerSec = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
          } else if (code === 14 && olen >= 8) {
            iface.offsetSec =
              this.u32(b, o + (this.le ? 8 : 4)) * 4294967296 + this.u32(b, o + (this.le ? 4 : 8));
          }
          o += 4 + ((olen + 3) & ~3);
        }
        this.ifaces.push(iface);
        return true;
      }
      case 6:
      case 2: {
        // Enhanced packet block, or the obsolete packet block (16-bit interface id).
        if (end - body < 20) return this.blockError(pos, 'packet block too short');
        const id = t === 6 ? this.u32(b, body) : this.u16(b, body);
        const iface = this.ifaces[id];
        if (!iface)
          return this.blockError(pos, `packet block for interface ${id}, which was never described`);
        const caplen = this.u32(b, body + 12);
        if (body + 20 + caplen > end)
          return this.blockError(
            pos,
            `packet block claims ${caplen} captured bytes, more than the block holds`,
          );
        const units = this.u32(b, body + 4) * 4294967296 + this.u32(b, body + 8);
        this.emit(
          b,
          body + 20,
          caplen,
          this.u32(b, body + 16),
          (units / iface.unitsPerSec + iface.offsetSec) * 1e6,
          iface,
          id,
          pos,
        );
        return true;
      }
      case 3: {
        // Simple packet block: interface 0, no timestamp.
        const iface = this.ifaces[0];
        if (!iface) return this.blockError(pos, 'simple packet block before any interface description');
        const origlen = this.u32(b, body);
        let caplen = Math.min(origlen, end - body - 4);
        if (iface.snapLen > 0) caplen = Math.min(caplen, iface.snapLen);
        this.emit(b, body + 4, caplen, origlen, 0, iface, 0, pos);
        return true;
      }
      default:
        this.stats.skippedBlocks++;
        return true;
    }
  }

  private blockError(pos: number, reason: string): false {
    this.fail(this.base + pos, reason);
    return false;
  }

  private emit(
    b: Uint8Array,
    off: number,
    caplen: number,
    origlen: number,
    tsUs: number,
    iface: Iface,
    id: number,
    pos: number,
  ): void {
    const r = this.rec;
    r.buf = b;
    r.offset = off;
    r.capLen = caplen;
    r.origLen = origlen;
    r.tsUs = tsUs;
    r.linkType = iface.linkType;
    r.iface = id;
    r.number = ++this.stats.packets;
    r.fileOffset = this.base + pos;
    if (caplen < origlen) this.stats.truncated++;
    this.onPacket(r);
  }
}

/**
 * Reads a capture file or stream to the end (gzip-compressed input is recognised by its magic),
 * calling `onPacket` for each packet. Never throws on damaged input: the reader's stats carry the
 * error with its byte offset (offsets count decompressed bytes).
 */
export async function readCapture(
  source: string | AsyncIterable<Buffer>,
  onPacket: (p: RawPacket) => void,
  onProgress?: (rawBytes: number) => void,
  /** Awaited after each chunk: lets a consumer drain work (score batches) with backpressure. */
  afterChunk?: () => Promise<void>,
): Promise<ReaderStats> {
  const reader = new CaptureReader(onPacket);
  let raw = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
    for await (const c of input) {
      raw += (c as Buffer).length;
      onProgress?.(raw);
      yield c as Buffer;
    }
  }
  try {
    for await (const chunk of maybeGunzip(counted())) {
      reader.push(chunk);
      if (afterChunk) await afterChunk();
      if (reader.stopped) break;
    }
  } catch (e) {
    if (!reader.stopped)
      reader.stats.error = { offset: reader.stats.bytes, reason: `read error: ${(e as Error).message}` };
  }
  reader.end();
  return reader.stats;
}

/** 'pcap' or 'pcapng' when the file (gzip-compressed or not) starts like a capture, else null. */
export function sniffCaptureFormat(path: string): 'pcap' | 'pcapng' | null {
  let head: Buffer = Buffer.alloc(0);
  try {
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(4096);
      head = b.subarray(0, readSync(fd, b, 0, b.length, 0));
    } finally {
      closeSync(fd);
    }
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b)
      head = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return null;
  }
  if (head.length < 4) return null;
  const m = head.readUInt32BE(0);
  if (m === 0x0a0d0d0a) return 'pcapng';
  if (m === 0xa1b2c3d4 || m === 0xa1b23c4d || m === 0xd4c3b2a1 || m === 0x4d3cb2a1) return 'pcap';
  return null;
}
