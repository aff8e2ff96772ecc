/**
 * Packet decoding into one reused, allocation-free view: link layer (Ethernet, 802.1Q/QinQ,
 * MPLS, PPPoE session, Linux SLL/SLL2, raw IP, BSD loopback/NULL), IPv4 (options, fragments),
 * IPv6 (extension headers, fragment header), and TCP, UDP, ICMP, ICMPv6 headers. A packet that
 * cannot be decoded is not an error to throw: `decode` returns a reason code, and `DecodeStats`
 * counts them.
 *
 * Lengths come from the IP header, not from the captured bytes: Ethernet padding of short frames
 * is not payload, and a packet cut at snaplen still has its true length.
 *
 * Fragments: the first fragment of an IPv4/IPv6 datagram carries the transport header and is
 * decoded as usual (with `fragment` set); later fragments have no ports and are reported as
 * `FRAGMENT` (no reassembly), so flows are keyed on the first fragment (documented in
 * docs/features.md).
 */

export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_OLD: 12,
  RAW_OLD2: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** Outcome codes of `decode`: OK, or why the packet has no usable IP/transport layer. */
export const Decode = {
  OK: 0,
  UNSUPPORTED_LINK: 1,
  TRUNCATED_LINK: 2,
  NOT_IP: 3,
  TRUNCATED_IP: 4,
  BAD_IP: 5,
  FRAGMENT: 6,
  TRUNCATED_TRANSPORT: 7,
  BAD_TRANSPORT: 8,
  OTHER_TRANSPORT: 9,
} as const;

export const DECODE_REASONS = [
  'ok',
  'unsupported link type',
  'truncated link header',
  'not IP (ARP, LLDP, …)',
  'truncated IP header',
  'malformed IP header',
  'non-first fragment',
  'truncated transport header',
  'malformed transport header',
  'other transport (not TCP/UDP/ICMP)',
] as const;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** The decoded fields of the current packet (reset by each `decode`). */
export class PacketView {
  /** 4 or 6 (0 when there is no IP layer). */
  ipVersion = 0;
  /** Source and destination address: IPv4 in word 0 of each, IPv6 in four big-endian words. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  /** IP protocol / IPv6 next header of the transport (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6). */
  protocol = 0;
  srcPort = 0;
  dstPort = 0;
  /** Bytes from the start of the IP header to the end of the IP payload (IPv4 total length). */
  ipLength = 0;
  /** IP header bytes, IPv6 extension headers included. */
  ipHeaderLength = 0;
  /** Transport header bytes (TCP data offset × 4, 8 for UDP and ICMP). */
  transportHeaderLength = 0;
  /** Transport payload bytes according to the IP length (padding and snaplen cuts excluded). */
  payloadLength = 0;
  tcpFlags = 0;
  tcpWindow = 0;
  tcpSeq = 0;
  tcpAck = 0;
  icmpType = 0;
  icmpCode = 0;
  ttl = 0;
  /** The packet is a first fragment (more follow). */
  fragment = false;
  /** 802.1Q VLAN id of the outermost tag (0 without). */
  vlan = 0;
  /** Offset of the IP header in the packet buffer. */
  ipOffset = 0;
  /** The flow is inside a tunnel: 47 for GRE, 4789 for VXLAN, 6081 for Geneve (0: none). */
  tunnel = 0;

  reset(): void {
    this.ipVersion = 0;
    this.protocol = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.ipLength = 0;
    this.ipHeaderLength = 0;
    this.transportHeaderLength = 0;
    this.payloadLength = 0;
    this.tcpFlags = 0;
    this.tcpWindow = 0;
    this.tcpSeq = 0;
    this.tcpAck = 0;
    this.icmpType = 0;
    this.icmpCode = 0;
    this.ttl = 0;
    this.fragment = false;
    this.vlan = 0;
    this.ipOffset = 0;
    this.tunnel = 0;
    const s = this.src;
    const d = this.dst;
    s[0] = s[1] = s[2] = s[3] = 0;
    d[0] = d[1] = d[2] = d[3] = 0;
  }
}

/** Counts of decode outcomes, by reason and by unsupported link type. */
export class DecodeStats {
  readonly byReason = new Float64Array(DECODE_REASONS.length);
  readonly unsupportedLinks = new Map<number, number>();

  add(code: number, linkType: number): void {
    this.byReason[code]++;
    if (code === Decode.UNSUPPORTED_LINK)
      this.unsupportedLinks.set(linkType, (this.unsupportedLinks.get(linkType) ?? 0) + 1);
  }

  get decoded(): number {
    return this.byReason[Decode.OK];
  }

  /** Reasons with a count, for reports. */
  summary(): { reason: string; count: number }[] {
    const out: { reason: string; count: number }[] = [];
    for (let i = 1; i < DECODE_REASONS.length; i++)
      if (this.byReason[i] > 0) out.push({ reason: DECODE_REASONS[i], count: this.byReason[i] });
    return out;
  }
}

const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const be32 = (b: Uint8Array, o: number) =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Most nested VLAN/MPLS labels followed before giving up. */
const MAX_SHIMS = 8;

/** Decodes the packet at b[off, off + len) of link type `link` into `v`; returns a Decode code. */
export function decode(b: Uint8Array, off: number, len: number, link: number, v: PacketView): number {
  v.reset();
  const end = off + len;
  let p = off;
  let etherType = 0;
  switch (link) {
    case LINKTYPE.ETHERNET: {
      if (len < 14) return Decode.TRUNCATED_LINK;
      etherType = be16(b, p + 12);
      p += 14;
      break;
    }
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      if (len < 4) return Decode.TRUNCATED_LINK;
      // Address family in host order (NULL) or network order (LOOP); values 2 (IPv4), 24/28/30 (IPv6).
      const le = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
      const af = link === LINKTYPE.LOOP || le > 0xffff ? be32(b, p) : le;
      p += 4;
      if (af === 2) etherType = 0x0800;
      else if (af === 24 || af === 28 || af === 30 || af === 10) etherType = 0x86dd;
      else return Decode.NOT_IP;
      break;
    }
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_OLD:
    case LINKTYPE.RAW_OLD2:
    case LINKTYPE.IPV4:
    case LINKTYPE.IPV6: {
      if (len < 1) return Decode.TRUNCATED_LINK;
      const ver = b[p] >> 4;
      if (ver === 4) etherType = 0x0800;
      else if (ver === 6) etherType = 0x86dd;
      else return Decode.NOT_IP;
      break;
    }
    case LINKTYPE.LINUX_SLL: {
      if (len < 16) return Decode.TRUNCATED_LINK;
      etherType = be16(b, p + 14);
      p += 16;
      break;
    }
    case LINKTYPE.LINUX_SLL2: {
      if (len < 20) return Decode.TRUNCATED_LINK;
      etherType = be16(b, p);
      p += 20;
      break;
    }
    default:
      return Decode.UNSUPPORTED_LINK;
  }
  depth = 0;
  return network(b, p, end, etherType, v);
}

/** Tunnels followed inside one packet (GRE in VXLAN in …) before giving up. */
const MAX_TUNNELS = 3;
let depth = 0;

/** From an EtherType at b[p]: VLAN/MPLS/PPPoE shims, then IPv4 or IPv6. */
function network(b: Uint8Array, p: number, end: number, etherType: number, v: PacketView): number {
  // VLAN tags, MPLS labels and PPPoE sessions in front of IP.
  for (let shim = 0; shim <= MAX_SHIMS; shim++) {
    if (etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100) {
      if (p + 4 > end) return Decode.TRUNCATED_LINK;
      if (v.vlan === 0) v.vlan = be16(b, p) & 0x0fff;
      etherType = be16(b, p + 2);
      p += 4;
    } else if (etherType === 0x8847 || etherType === 0x8848) {
      // MPLS: labels until bottom-of-stack, then guess IPv4/IPv6 from the version nibble.
      let bottom = false;
      while (!bottom) {
        if (p + 4 > end) return Decode.TRUNCATED_LINK;
        bottom = (b[p + 2] & 1) === 1;
        p += 4;
      }
      if (p >= end) return Decode.TRUNCATED_IP;
      const ver = b[p] >> 4;
      if (ver === 4) etherType = 0x0800;
      else if (ver === 6) etherType = 0x86dd;
      else return Decode.NOT_IP;
    } else if (etherType === 0x8864) {
      // PPPoE session: 6-byte header, then a PPP protocol field.
      if (p + 8 > end) return Decode.TRUNCATED_LINK;
      const ppp = be16(b, p + 6);
      p += 8;
      if (ppp === 0x0021) etherType = 0x0800;
      else if (ppp === 0x0057) etherType = 0x86dd;
      else return Decode.NOT_IP;
    } else break;
  }
  if (etherType === 0x0800) return ipv4(b, p, end, v);
  if (etherType === 0x86dd) return ipv6(b, p, end, v);
  return Decode.NOT_IP;
}

function ipv4(b: Uint8Array, p: number, end: number, v: PacketView): number {
  if (p + 20 > end) return Decode.TRUNCATED_IP;
  if (b[p] >> 4 !== 4) return Decode.BAD_IP;
  const ihl = (b[p] & 0x0f) * 4;
  let total = be16(b, p + 2);
  // Total length 0: segmentation offload on the capturing host; the captured bytes are all there is.
  if (total === 0) total = end - p;
  if (ihl < 20 || total < ihl) return Decode.BAD_IP;
  if (p + ihl > end) return Decode.TRUNCATED_IP;
  v.ipVersion = 4;
  v.ipOffset = p;
  v.ipLength = total;
  v.ipHeaderLength = ihl;
  v.ttl = b[p + 8];
  v.protocol = b[p + 9];
  v.src[0] = be32(b, p + 12);
  v.dst[0] = be32(b, p + 16);
  const frag = be16(b, p + 6);
  const fragOffset = frag & 0x1fff;
  const more = (frag & 0x2000) !== 0;
  if (fragOffset !== 0) return Decode.FRAGMENT;
  v.fragment = more;
  return transport(b, p + ihl, end, total - ihl, v);
}

function ipv6(b: Uint8Array, p: number, end: number, v: PacketView): number {
  if (p + 40 > end) return Decode.TRUNCATED_IP;
  if (b[p] >> 4 !== 6) return Decode.BAD_IP;
  v.ipVersion = 6;
  v.ipOffset = p;
  const payload = be16(b, p + 4);
  v.ipLength = 40 + payload;
  v.ttl = b[p + 7];
  for (let i = 0; i < 4; i++) {
    v.src[i] = be32(b, p + 8 + 4 * i);
    v.dst[i] = be32(b, p + 24 + 4 * i);
  }
  let next = b[p + 6];
  let q = p + 40;
  let headers = 40;
  // Extension headers: hop-by-hop, routing, destination options, fragment, AH, mobility.
  for (let n = 0; n < 16; n++) {
    if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
      if (q + 8 > end) return Decode.TRUNCATED_IP;
      const hl = (b[q + 1] + 1) * 8;
      next = b[q];
      q += hl;
      headers += hl;
    } else if (next === 44) {
      if (q + 8 > end) return Decode.TRUNCATED_IP;
      const fo = be16(b, q + 2);
      next = b[q];
      q += 8;
      headers += 8;
      if (fo >> 3 !== 0) {
        v.protocol = next;
        v.ipHeaderLength = headers;
        return Decode.FRAGMENT;
      }
      v.fragment = (fo & 1) === 1;
    } else if (next === 51) {
      if (q + 8 > end) return Decode.TRUNCATED_IP;
      const hl = (b[q + 1] + 2) * 4;
      next = b[q];
      q += hl;
      headers += hl;
    } else break;
  }
  if (headers > v.ipLength) return Decode.BAD_IP;
  v.protocol = next;
  v.ipHeaderLength = headers;
  return transport(b, q, end, v.ipLength - headers, v);
}

/** Transport header at p; `segment` is its length per the IP header. */
function transport(b: Uint8Array, p: number, end: number, segment: number, v: PacketView): number {
  switch (v.protocol) {
    case 6: {
      if (p + 20 > end) return Decode.TRUNCATED_TRANSPORT;
      const hl = (b[p + 12] >> 4) * 4;
      if (hl < 20 || hl > segment) return Decode.BAD_TRANSPORT;
      v.srcPort = be16(b, p);
      v.dstPort = be16(b, p + 2);
      v.tcpSeq = be32(b, p + 4);
      v.tcpAck = be32(b, p + 8);
      v.tcpFlags = b[p + 13];
      v.tcpWindow = be16(b, p + 14);
      v.transportHeaderLength = hl;
      v.payloadLength = segment - hl;
      return Decode.OK;
    }
    case 17: {
      if (p + 8 > end) return Decode.TRUNCATED_TRANSPORT;
      if (segment < 8) return Decode.BAD_TRANSPORT;
      const dport = be16(b, p + 2);
      // VXLAN (4789) and Geneve (6081) carry Ethernet frames: the flow is the inner one.
      // Only when the header is well-formed and an IP packet follows: other traffic may use
      // these ports too.
      if ((dport === 4789 || dport === 6081) && depth < MAX_TUNNELS && p + 16 + 14 + 20 <= end) {
        const q = p + 8;
        const vx = dport === 4789;
        const hdr = vx ? 8 : 8 + (b[q] & 0x3f) * 4;
        const proto = vx ? 0x6558 : be16(b, q + 2);
        const header = vx
          ? b[q] === 0x08 && b[q + 1] === 0 && b[q + 2] === 0 && b[q + 3] === 0 && b[q + 7] === 0
          : b[q] >> 6 === 0 && proto === 0x6558;
        const e = q + hdr;
        const ok = header && e + 15 <= end && isIpAfterEthernet(b, e);
        if (ok) {
          depth++;
          v.tunnel = dport;
          return inner(b, e, Math.min(end, p + segment), proto, v);
        }
      }
      v.srcPort = be16(b, p);
      v.dstPort = dport;
      v.transportHeaderLength = 8;
      v.payloadLength = segment - 8;
      return Decode.OK;
    }
    case 1:
    case 58: {
      if (p + 4 > end) return Decode.TRUNCATED_TRANSPORT;
      if (segment < 4) return Decode.BAD_TRANSPORT;
      v.icmpType = b[p];
      v.icmpCode = b[p + 1];
      v.transportHeaderLength = Math.min(8, segment);
      v.payloadLength = segment - v.transportHeaderLength;
      return Decode.OK;
    }
    case 47: {
      // GRE (version 0): optional checksum, key and sequence words, then the inner protocol.
      if (p + 4 > end) return Decode.TRUNCATED_TRANSPORT;
      const flags = b[p];
      if ((b[p + 1] & 0x07) !== 0 || depth >= MAX_TUNNELS) break;
      const hdr = 4 + (flags & 0x80 ? 4 : 0) + (flags & 0x20 ? 4 : 0) + (flags & 0x10 ? 4 : 0);
      if (p + hdr > end) return Decode.TRUNCATED_TRANSPORT;
      depth++;
      v.tunnel = 47;
      return inner(b, p + hdr, Math.min(end, p + segment), be16(b, p + 2), v);
    }
  }
  v.transportHeaderLength = 0;
  v.payloadLength = Math.max(0, segment);
  return Decode.OTHER_TRANSPORT;
}

/** An Ethernet header at b[e] announcing IPv4/IPv6 whose version nibble agrees. */
function isIpAfterEthernet(b: Uint8Array, e: number): boolean {
  const t = be16(b, e + 12);
  const ver = b[e + 14] >> 4;
  return (t === 0x0800 && ver === 4) || (t === 0x86dd && ver === 6);
}

/** A tunnel's payload: an EtherType-typed packet, or (0x6558) a whole Ethernet frame. */
function inner(b: Uint8Array, p: number, end: number, proto: number, v: PacketView): number {
  const tunnel = v.tunnel;
  if (proto === 0x6558) {
    if (p + 14 > end) return Decode.TRUNCATED_LINK;
    proto = be16(b, p + 12);
    p += 14;
  }
  if (proto !== 0x0800 && proto !== 0x86dd && proto !== 0x8100 && proto !== 0x88a8 && proto !== 0x8847)
    return Decode.OTHER_TRANSPORT;
  const r = network(b, p, end, proto, v);
  v.tunnel = tunnel;
  return r;
}
