/**
 * The UDP collectors: NetFlow v5/v9 and IPFIX (both ports accept every version, told apart by the
 * header) and sFlow v5, in one process. Datagrams are decoded on arrival; flows go through the
 * ExportMapper (sampling expansion, pairing) to `onRow`. Per-exporter statistics, sequence-gap
 * accounting and problem counts are kept; problems are logged with the exporter, at most a few per
 * exporter and reason per minute so a broken exporter cannot flood the log.
 */
import { createSocket, type Socket } from 'node:dgram';
import { UserError } from '../core/diagnostics.js';
import type { ExportRow } from '../features/netflow.js';
import { ExportMapper, type MapperOptions, type MapperStats } from './mapper.js';
import { NetflowDecoder, type NetflowDecoderOptions } from './netflow.js';
import { type InterfaceCounters, SflowDecoder } from './sflow.js';
import type { DatagramProblem, ExporterStats } from './types.js';

export interface CollectorOptions {
  /** UDP ports (0 = any free port, undefined = off). */
  netflow?: number;
  ipfix?: number;
  sflow?: number;
  /** Address to listen on (default 0.0.0.0; `::` listens on IPv6 and IPv4). */
  host: string;
  /** Socket receive buffer to ask for, bytes (the kernel caps it at net.core.rmem_max). */
  receiveBuffer: number;
  /** Only datagrams from these exporter IPs are decoded (empty: any). */
  allow: string[];
  mapper: Partial<MapperOptions>;
  decoder: Partial<NetflowDecoderOptions>;
  /** Called for problems that pass the log rate limit. */
  log?: (p: DatagramProblem) => void;
  /** sFlow interface counter samples (interface time series). */
  counters?: (c: InterfaceCounters) => void;
}

export const DEFAULT_COLLECTOR: CollectorOptions = {
  host: '0.0.0.0',
  receiveBuffer: 32 << 20,
  allow: [],
  mapper: {},
  decoder: {},
};

export interface CollectorStats {
  datagrams: number;
  /** Datagrams from exporters not in `allow`. */
  refused: number;
  records: number;
  rows: number;
  problems: Record<string, number>;
  exporters: ExporterStats[];
  mapper: MapperStats;
  /** Receive buffer the kernel granted per socket, bytes. */
  receiveBuffer: Record<string, number>;
}

export class Collector {
  private readonly o: CollectorOptions;
  private readonly sockets: { name: string; socket: Socket }[] = [];
  private readonly mapper: ExportMapper;
  private readonly nf: NetflowDecoder;
  private readonly sf: SflowDecoder;
  private timer: NodeJS.Timeout | null = null;
  private datagrams = 0;
  /** Arrival time of the datagram being decoded. */
  private nowMs = 0;
  private refused = 0;
  private readonly problems = new Map<string, number>();
  /** Problems logged per `exporter|reason` in the current minute. */
  private readonly logged = new Map<string, number>();
  private logMinute = 0;
  private readonly allow: Set<string>;
  /** Bound ports by collector name. */
  readonly ports: Record<string, number> = {};

  constructor(
    private readonly onRow: (r: ExportRow) => void,
    opts: Partial<CollectorOptions> = {},
  ) {
    this.o = { ...DEFAULT_COLLECTOR, ...opts };
    this.allow = new Set(this.o.allow.map(normaliseIp));
    this.mapper = new ExportMapper(onRow, this.o.mapper);
    const problem = (p: DatagramProblem) => this.problem(p);
    this.nf = new NetflowDecoder({ flow: (ff) => this.mapper.add(ff, this.nowMs), problem }, this.o.decoder);
    this.sf = new SflowDecoder({ row: onRow, problem, counters: this.o.counters });
  }

  /** Decodes one datagram as if it had arrived from `address` (also used by tests and replays). */
  datagram(buf: Uint8Array, address: string, kind: 'netflow' | 'sflow', nowMs = Date.now()): void {
    this.datagrams++;
    this.nowMs = nowMs;
    if (kind === 'sflow') this.sf.datagram(buf, address, nowMs);
    else this.nf.datagram(buf, address, nowMs);
  }

  async start(): Promise<void> {
    const want: [string, number | undefined][] = [
      ['netflow', this.o.netflow],
      ['ipfix', this.o.ipfix],
      ['sflow', this.o.sflow],
    ];
    try {
      for (const [name, port] of want) {
        if (port === undefined) continue;
        const kind = name === 'sflow' ? 'sflow' : 'netflow';
        const socket = await this.bind(name, port);
        socket.on('message', (msg, rinfo) => {
          if (this.allow.size && !this.allow.has(normaliseIp(rinfo.address))) {
            this.refused++;
            return;
          }
          const addr =
            rinfo.family === 'IPv6' ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`;
          this.datagram(msg, addr, kind);
        });
        // A socket error (not input) is logged; the collector keeps its other sockets.
        socket.on('error', (e) =>
          this.problem({
            exporter: '-',
            protocol: 'unknown',
            reason: 'socket',
            offset: 0,
            message: `${name}: ${e.message}`,
          }),
        );
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.timer = setInterval(() => this.tick(Date.now()), 1000);
    this.timer.unref();
  }

  private bind(name: string, port: number): Promise<Socket> {
    const v6 = this.o.host.includes(':');
    const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', recvBufferSize: this.o.receiveBuffer });
    return new Promise((resolve, reject) => {
      socket.once('error', (e: NodeJS.ErrnoException) => {
        socket.close();
        reject(
          new UserError(
            `--${name} ${port}: cannot listen on ${this.o.host} (${e.code ?? e.message})`,
            e.code === 'EACCES'
              ? 'ports below 1024 need privileges; use a port ≥ 1024 (2055, 4739, 6343 are the usual ones)'
              : 'is another collector already listening on that port? choose another with the flag',
          ),
        );
      });
      socket.bind(port, this.o.host, () => {
        socket.removeAllListeners('error');
        this.sockets.push({ name, socket });
        this.ports[name] = socket.address().port;
        resolve(socket);
      });
    });
  }

  /** Periodic work: pair timeouts, pending-template expiry, sFlow flow expiry. */
  tick(nowMs: number): void {
    this.mapper.flush(nowMs);
    this.nf.expire(nowMs);
    this.sf.flush(nowMs);
  }

  /** Stops listening and emits every flow still held (waiting for a pair, sFlow aggregates). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.socket.close(() => r()))));
    this.sockets.length = 0;
    this.drain();
  }

  /** Emits everything held now (end of a replay or shutdown). */
  drain(): void {
    this.mapper.flush(Date.now(), true);
    this.sf.flush(Date.now(), true);
  }

  stats(): CollectorStats {
    const exporters = [...this.nf.stats(), ...[...this.sf.exporters.values()]];
    const receiveBuffer: Record<string, number> = {};
    for (const s of this.sockets) receiveBuffer[s.name] = s.socket.getRecvBufferSize();
    return {
      datagrams: this.datagrams,
      refused: this.refused,
      records: exporters.reduce((t, e) => t + e.records, 0),
      rows: this.mapper.stats.rows,
      problems: Object.fromEntries(this.problems),
      exporters,
      mapper: { ...this.mapper.stats },
      receiveBuffer,
    };
  }

  private problem(p: DatagramProblem): void {
    this.problems.set(p.reason, (this.problems.get(p.reason) ?? 0) + 1);
    if (!this.o.log) return;
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.logMinute) {
      this.logMinute = minute;
      this.logged.clear();
    }
    const k = `${p.exporter}|${p.reason}`;
    const n = (this.logged.get(k) ?? 0) + 1;
    if (this.logged.size < 10_000) this.logged.set(k, n);
    if (n <= 5) this.o.log(p);
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, so allow lists work for IPv4 exporters on a dual-stack socket. */
function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip.toLowerCase();
}
