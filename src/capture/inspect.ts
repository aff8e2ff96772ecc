/**
 * Per-capture totals (like capinfos): format, packets, link types, how many decode to IP flows
 * and why the others do not, and where a damaged file stops.
 */
import { basename } from 'node:path';
import { DecodeStats, decode, PacketView } from '../decode/decode.js';
import { readCapture } from './pcap.js';

export interface CaptureSummary {
  file: string;
  format: string;
  packets: number;
  bytes: number;
  /** Packets cut short by the capture's snaplen. */
  truncated: number;
  decoded: number;
  undecodable: { reason: string; count: number }[];
  linkTypes: Record<string, number>;
  unsupportedLinkTypes: Record<string, number>;
  firstUs: number | null;
  lastUs: number | null;
  error: { offset: number; reason: string } | null;
}

export async function inspectCapture(
  path: string,
  onProgress?: (bytes: number) => void,
): Promise<CaptureSummary> {
  const stats = new DecodeStats();
  const view = new PacketView();
  const links = new Map<number, number>();
  let first: number | null = null;
  let last: number | null = null;
  let wire = 0;
  const r = await readCapture(
    path,
    (p) => {
      stats.add(decode(p.buf, p.offset, p.capLen, p.linkType, view), p.linkType);
      links.set(p.linkType, (links.get(p.linkType) ?? 0) + 1);
      if (p.tsUs > 0) {
        if (first === null || p.tsUs < first) first = p.tsUs;
        if (last === null || p.tsUs > last) last = p.tsUs;
      }
      wire += p.origLen;
    },
    onProgress,
  );
  return {
    file: basename(path),
    format: r.format,
    packets: r.packets,
    bytes: wire,
    truncated: r.truncated,
    decoded: stats.decoded,
    undecodable: stats.summary(),
    linkTypes: Object.fromEntries([...links].map(([k, v]) => [String(k), v])),
    unsupportedLinkTypes: Object.fromEntries([...stats.unsupportedLinks].map(([k, v]) => [String(k), v])),
    firstUs: first,
    lastUs: last,
    error: r.error,
  };
}
