/**
 * Writes classic pcap files (microsecond or nanosecond timestamps, either byte order). Used to
 * build test captures from scripted packets and to save captures.
 */

export interface PcapWriterOptions {
  linkType?: number;
  snapLen?: number;
  nanoseconds?: boolean;
  bigEndian?: boolean;
}

export class PcapWriter {
  private readonly parts: Uint8Array[] = [];
  private readonly le: boolean;
  private readonly ns: boolean;

  constructor(opts: PcapWriterOptions = {}) {
    this.le = !opts.bigEndian;
    this.ns = opts.nanoseconds ?? false;
    const h = new DataView(new ArrayBuffer(24));
    h.setUint32(0, this.ns ? 0xa1b23c4d : 0xa1b2c3d4, this.le);
    h.setUint16(4, 2, this.le);
    h.setUint16(6, 4, this.le);
    h.setUint32(16, opts.snapLen ?? 262144, this.le);
    h.setUint32(20, opts.linkType ?? 1, this.le);
    this.parts.push(new Uint8Array(h.buffer));
  }

  /** Adds a packet; `tsUs` in microseconds (fractions kept with nanosecond timestamps). */
  add(tsUs: number, data: Uint8Array, origLen = data.length): this {
    const h = new DataView(new ArrayBuffer(16));
    const sec = Math.floor(tsUs / 1e6);
    const frac = this.ns ? Math.round((tsUs - sec * 1e6) * 1000) : Math.round(tsUs - sec * 1e6);
    h.setUint32(0, sec, this.le);
    h.setUint32(4, frac, this.le);
    h.setUint32(8, data.length, this.le);
    h.setUint32(12, origLen, this.le);
    this.parts.push(new Uint8Array(h.buffer), data);
    return this;
  }

  bytes(): Uint8Array {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
