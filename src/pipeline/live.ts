/**
 * Live capture: spawns `tcpdump -U -w -` on an interface (with an optional BPF filter), reads the
 * pcap stream as it is written, and turns packets into flows continuously. Idle flows are emitted
 * by a wall-clock timer even when no packets arrive; stopping (SIGINT, or `stop()`) ends tcpdump
 * and flushes every flow still open.
 */
import { spawn } from 'node:child_process';
import { readCapture } from '../capture/pcap.js';
import { Decode, DecodeStats, decode, PacketView } from '../decode/decode.js';
import { FlowMeter, type FlowMeterOptions, type FlowRow } from '../flow/meter.js';

export interface LiveOptions {
  iface: string;
  bpf?: string;
  meter?: Partial<FlowMeterOptions>;
  /** Awaited after each chunk of packets (lets a consumer score batches). */
  afterChunk?: () => Promise<void>;
  /** Called once tcpdump reports that it is listening. */
  onListening?: () => void;
}

export interface LiveResult {
  packets: number;
  decoded: number;
  undecodable: { reason: string; count: number }[];
  flows: number;
  error: { offset: number; reason: string } | null;
  tcpdump: string;
}

export class LiveCapture {
  private child: ReturnType<typeof spawn> | null = null;
  private stopped = false;

  /** Runs until stop() or until tcpdump exits; resolves after every flow has been emitted. */
  async run(onFlow: (f: FlowRow) => void, o: LiveOptions): Promise<LiveResult> {
    const meter = new FlowMeter(onFlow, o.meter);
    const view = new PacketView();
    const stats = new DecodeStats();
    const args = ['-i', o.iface, '-U', '-n', '-s', '0', '-w', '-'];
    if (o.bpf) args.push(o.bpf);
    const child = spawn('tcpdump', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    let spawnError: Error | null = null;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/listening on/.test(stderr)) o.onListening?.();
    });
    // Packet time vs wall clock: idle flows expire even when the interface is silent.
    let lastPacketUs = 0;
    let lastPacketWall = 0;
    const timer = setInterval(() => {
      if (lastPacketUs > 0) meter.advance(lastPacketUs + (Date.now() * 1000 - lastPacketWall));
    }, 1000);
    if (this.stopped) child.kill('SIGTERM');
    let r: Awaited<ReturnType<typeof readCapture>>;
    try {
      r = await readCapture(
        child.stdout! as AsyncIterable<Buffer>,
        (p) => {
          const code = decode(p.buf, p.offset, p.capLen, p.linkType, view);
          stats.add(code, p.linkType);
          if (code === Decode.OK) meter.add(p.tsUs, view, p.origLen);
          lastPacketUs = p.tsUs;
          lastPacketWall = Date.now() * 1000;
        },
        undefined,
        o.afterChunk,
      );
    } finally {
      clearInterval(timer);
    }
    await new Promise<void>((res) =>
      child.exitCode !== null || child.signalCode !== null ? res() : child.on('close', () => res()),
    );
    while (meter.flush(8192) > 0) if (o.afterChunk) await o.afterChunk();
    if (o.afterChunk) await o.afterChunk();
    if (spawnError)
      throw new Error(
        `cannot run tcpdump: ${(spawnError as Error).message} (install it: apt-get install tcpdump)`,
      );
    return {
      packets: r.packets,
      decoded: stats.decoded,
      undecodable: stats.summary(),
      flows: meter.stats.flows,
      // An empty stream (tcpdump refused the interface) is reported through tcpdump's own words.
      error:
        r.packets === 0 && r.error
          ? { offset: 0, reason: stderr.split('\n').find((l) => l.startsWith('tcpdump:')) ?? r.error.reason }
          : null,
      tcpdump: stderr.trim(),
    };
  }

  /** Ends the capture: tcpdump exits, the stream ends, remaining flows are flushed by run(). */
  stop(): void {
    this.stopped = true;
    this.child?.kill('SIGTERM');
  }
}
