/**
 * Packets to flows: reads captures, decodes every packet and feeds the flow meter; per-file
 * totals (packets, decoded, undecodable by reason, damaged-file offsets) come back with the flows.
 */
import { basename } from 'node:path';
import { readCapture } from '../capture/pcap.js';
import { Decode, DecodeStats, decode, PacketView } from '../decode/decode.js';
import { FlowMeter, type FlowMeterOptions, type FlowRow } from '../flow/meter.js';

export interface CaptureFileTotals {
  file: string;
  format: string;
  packets: number;
  decoded: number;
  undecodable: { reason: string; count: number }[];
  error: { offset: number; reason: string } | null;
}

export interface CaptureFlowsResult {
  files: CaptureFileTotals[];
  flows: number;
  packets: number;
  evicted: number;
  peakFlows: number;
  seconds: number;
}

/**
 * Turns the packets of `files` into flows, calling `onFlow` for each finished flow. One meter
 * spans all files (in the order given), so a capture split into several files yields whole flows.
 */
export async function captureFlows(
  files: string[],
  onFlow: (f: FlowRow) => void,
  opts: Partial<FlowMeterOptions> = {},
  onProgress?: (bytes: number) => void,
  afterChunk?: () => Promise<void>,
): Promise<CaptureFlowsResult> {
  const t0 = performance.now();
  const meter = new FlowMeter(onFlow, opts);
  const view = new PacketView();
  const totals: CaptureFileTotals[] = [];
  let done = 0;
  for (const file of files) {
    const stats = new DecodeStats();
    let raw = 0;
    // "-" reads standard input (e.g. `tcpdump -w - | nadir flows -`).
    const r = await readCapture(
      file === '-' ? (process.stdin as AsyncIterable<Buffer>) : file,
      (p) => {
        const code = decode(p.buf, p.offset, p.capLen, p.linkType, view);
        stats.add(code, p.linkType);
        if (code === Decode.OK) {
          meter.add(p.tsUs, view, p.origLen);
        }
      },
      (b) => {
        raw = b;
        onProgress?.(done + b);
      },
      afterChunk,
    );
    done += raw;
    totals.push({
      file: file === '-' ? '(stdin)' : basename(file),
      format: r.format,
      packets: r.packets,
      decoded: stats.decoded,
      undecodable: stats.summary(),
      error: r.error,
    });
  }
  // Flush in slices so a consumer can write or score them with backpressure.
  while (meter.flush(8192) > 0) if (afterChunk) await afterChunk();
  if (afterChunk) await afterChunk();
  return {
    files: totals,
    flows: meter.stats.flows,
    packets: meter.stats.packets,
    evicted: meter.stats.evicted,
    peakFlows: meter.stats.peakFlows,
    seconds: (performance.now() - t0) / 1000,
  };
}
