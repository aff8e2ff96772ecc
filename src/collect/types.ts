/**
 * What the flow-export decoders (NetFlow v5/v9, IPFIX, sFlow) share: per-exporter statistics and
 * the problem report for a datagram that cannot be (fully) decoded. A decoder never throws on
 * input: it counts, reports and goes on with the next flow set / sample / datagram.
 */
import type { ExportRow } from '../features/netflow.js';

export type ExportProtocol = 'netflow5' | 'netflow9' | 'ipfix' | 'sflow';

/** One exporter (address + observation domain / source ID / sFlow agent + sub-agent). */
export interface ExporterStats {
  /** `ip:port` the datagrams come from. */
  address: string;
  /** Observation domain (IPFIX), source ID (v9), engine (v5) or sub-agent (sFlow). */
  domain: number;
  protocol: ExportProtocol;
  datagrams: number;
  /** Flow records decoded (before sampling expansion). */
  records: number;
  /** Datagrams (or parts) that could not be decoded, see `problems`. */
  bad: number;
  /** Datagrams (sFlow, v9) or flow records (v5, IPFIX) missing according to sequence numbers. */
  lost: number;
  /** Sequence number expected next, or -1 before the first datagram. */
  nextSequence: number;
  /** Last sequence number seen. */
  lastSequence: number;
  /** `inclusive`: the exporter numbers a message including its own records (softflowd's IPFIX). */
  sequenceMode: 'standard' | 'inclusive';
  /** Templates known (v9, IPFIX). */
  templates: number;
  /** Data records waiting for their template (v9, IPFIX). */
  pending: number;
  /** Sampling interval in force (1 = every packet). */
  sampling: number;
  firstSeenMs: number;
  lastSeenMs: number;
}

/** A datagram or part of one that could not be decoded, located precisely. */
export interface DatagramProblem {
  exporter: string;
  protocol: ExportProtocol | 'unknown';
  /** Short machine-readable reason: `truncated`, `bad-length`, `unknown-version`, … */
  reason: string;
  /** Byte offset in the datagram where the problem was found. */
  offset: number;
  /** Template or flow set ID involved, when any. */
  template?: number;
  message: string;
}

/** Where decoders deliver their output. */
export interface ExportSink {
  /** A decoded flow (the row is the caller's to keep). */
  row(r: ExportRow): void;
  problem(p: DatagramProblem): void;
}

export function newExporterStats(
  address: string,
  domain: number,
  protocol: ExportProtocol,
  nowMs: number,
): ExporterStats {
  return {
    address,
    domain,
    protocol,
    datagrams: 0,
    records: 0,
    bad: 0,
    lost: 0,
    nextSequence: -1,
    lastSequence: -1,
    sequenceMode: 'standard',
    templates: 0,
    pending: 0,
    sampling: 1,
    firstSeenMs: nowMs,
    lastSeenMs: nowMs,
  };
}
