/**
 * Builders of packets and pcapng files for tests: each header written field by field from the
 * RFCs, independently of the decoder under test.
 */

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytes(...xs: number[]): Uint8Array {
  return Uint8Array.from(xs);
}

function u16(x: number): number[] {
  return [(x >> 8) & 255, x & 255];
}

function u32(x: number): number[] {
  return [(x >>> 24) & 255, (x >>> 16) & 255, (x >>> 8) & 255, x & 255];
}

export function ip4(a: string): number[] {
  return a.split('.').map(Number);
}

export function ethernet(etherType: number, payload: Uint8Array, padTo = 0): Uint8Array {
  const frame = concat(bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...u16(etherType)), payload);
  return frame.length < padTo ? concat(frame, new Uint8Array(padTo - frame.length)) : frame;
}

/** An 802.1Q tag body (the TPID is the ethertype before it) followed by `payload`. */
export function vlan(id: number, etherType: number, payload: Uint8Array): Uint8Array {
  return concat(bytes(...u16(id), ...u16(etherType)), payload);
}

export function ipv4(
  src: string,
  dst: string,
  protocol: number,
  payload: Uint8Array,
  opts: { options?: number[]; fragOffset?: number; more?: boolean; ttl?: number } = {},
): Uint8Array {
  const options = opts.options ?? [];
  const ihl = 5 + options.length / 4;
  const total = ihl * 4 + payload.length;
  const frag = ((opts.more ? 1 : 0) << 13) | ((opts.fragOffset ?? 0) & 0x1fff);
  return concat(
    bytes(
      0x40 | ihl,
      0,
      ...u16(total),
      0,
      1,
      ...u16(frag),
      opts.ttl ?? 64,
      protocol,
      0,
      0,
      ...ip4(src),
      ...ip4(dst),
      ...options,
    ),
    payload,
  );
}

export function ipv6(src: number[], dst: number[], next: number, payload: Uint8Array): Uint8Array {
  return concat(bytes(0x60, 0, 0, 0, ...u16(payload.length), next, 64, ...src, ...dst), payload);
}

export function tcp(
  sport: number,
  dport: number,
  flags: number,
  payload: Uint8Array,
  opts: { window?: number; options?: number[]; seq?: number } = {},
): Uint8Array {
  const options = opts.options ?? [];
  const off = 5 + options.length / 4;
  return concat(
    bytes(
      ...u16(sport),
      ...u16(dport),
      ...u32(opts.seq ?? 1000),
      ...u32(0),
      off << 4,
      flags,
      ...u16(opts.window ?? 8192),
      0,
      0,
      0,
      0,
      ...options,
    ),
    payload,
  );
}

export function udp(sport: number, dport: number, payload: Uint8Array): Uint8Array {
  return concat(bytes(...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0), payload);
}

/** pcapng blocks, in either byte order. */
export class PcapngBuilder {
  private readonly parts: Uint8Array[] = [];
  constructor(private le = true) {}

  private block(type: number, body: Uint8Array): this {
    const padded = concat(body, new Uint8Array((4 - (body.length % 4)) % 4));
    const len = 12 + padded.length;
    const h = new DataView(new ArrayBuffer(8));
    h.setUint32(0, type, this.le);
    h.setUint32(4, len, this.le);
    const t = new DataView(new ArrayBuffer(4));
    t.setUint32(0, len, this.le);
    this.parts.push(new Uint8Array(h.buffer), padded, new Uint8Array(t.buffer));
    return this;
  }

  section(le = this.le): this {
    this.le = le;
    const b = new DataView(new ArrayBuffer(16));
    b.setUint32(0, 0x1a2b3c4d, le);
    b.setUint16(4, 1, le);
    b.setUint16(6, 0, le);
    b.setInt32(8, -1, le);
    b.setInt32(12, -1, le);
    return this.block(0x0a0d0d0a, new Uint8Array(b.buffer));
  }

  /** Interface description; tsresol as the raw if_tsresol byte (6 = µs, 9 = ns, 0x8a = 2^-10). */
  iface(linkType: number, tsresol?: number, snapLen = 0): this {
    const b = new DataView(new ArrayBuffer(8 + (tsresol !== undefined ? 12 : 0)));
    b.setUint16(0, linkType, this.le);
    b.setUint32(4, snapLen, this.le);
    if (tsresol !== undefined) {
      b.setUint16(8, 9, this.le);
      b.setUint16(10, 1, this.le);
      b.setUint8(12, tsresol);
      // end of options
      b.setUint16(16, 0, this.le);
      b.setUint16(18, 0, this.le);
    }
    return this.block(1, new Uint8Array(b.buffer));
  }

  /** Enhanced packet block with a timestamp in the interface's units. */
  packet(ifaceId: number, tsUnits: number, data: Uint8Array, origLen = data.length): this {
    const b = new DataView(new ArrayBuffer(20));
    b.setUint32(0, ifaceId, this.le);
    b.setUint32(4, Math.floor(tsUnits / 4294967296), this.le);
    b.setUint32(8, tsUnits % 4294967296, this.le);
    b.setUint32(12, data.length, this.le);
    b.setUint32(16, origLen, this.le);
    return this.block(6, concat(new Uint8Array(b.buffer), data));
  }

  simple(data: Uint8Array): this {
    const b = new DataView(new ArrayBuffer(4));
    b.setUint32(0, data.length, this.le);
    return this.block(3, concat(new Uint8Array(b.buffer), data));
  }

  /** A block type the reader must skip (name resolution). */
  nameResolution(): this {
    return this.block(4, new Uint8Array(8));
  }

  bytes(): Uint8Array {
    return concat(...this.parts);
  }
}
