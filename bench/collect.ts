/**
 * Flow-export collector benchmark: decoded flow records/s per core for NetFlow v5, v9 and IPFIX,
 * NADIR against nfcapd (nfdump) on the same generated stream, in the same run.
 *
 *   npx tsc -p . && node dist/bench/collect.js [--seconds 5] [--versions 5,9,10]
 *       [--stages decode,rows,paired] [--repeat 3] [--inproc-seconds 3]
 *       [--rates 100k,250k,500k,750k,1M | --rates none] [--sweep-stages decode,paired]
 *       [--feed sequential|both] [--rcvbuf 33554432] [--pool 4000] [--seed 1] [--no-nfcapd]
 *       [--no-full] [--profile [--profile-stage paired]] [--json]
 *
 * Generator (here, independent of the decoder): a pool of realistic datagrams from a seeded RNG —
 * v5 (30 records of 48 bytes), v9 (a softflowd-like template of 14 fields, 40-byte records, 30 per
 * datagram, the template flow set in every 100th datagram) and IPFIX (a 14-field template with
 * 8-byte octet/packet delta counts and flowStart/EndMilliseconds, 57-byte records, 24 per message,
 * the template set in every 100th message). Records come as the two directions of a flow (TCP
 * 75%, UDP 20%, ICMP echo 5%), as exporters send them. The sender patches the sequence number of
 * each datagram as it goes (v5/IPFIX: records before it, v9: datagrams before it), so sequence
 * accounting sees a continuous stream while the pool repeats.
 *
 * Sender: a child process with a connected UDP socket per receiver, sending the pool over
 * loopback either as fast as it can (`setImmediate` between bursts of 32) or paced to a target
 * records/s (bursts every ~1 ms). It counts datagrams and records sent.
 *
 * Receivers:
 *   NADIR, a child process: `decode` = a UDP socket + NetflowDecoder counting records;
 *   `rows` = the Collector (socket, decoder, ExportMapper with pairing off) producing ExportRows;
 *   `paired` = the Collector as `nadir collect` runs it (pairing on, the default). Rows are
 *   counted, not written. CPU time from process.cpuUsage() over the run (all threads of the
 *   process); records/s per core = records / CPU seconds; wall records/s = records over the time
 *   from the first to the last datagram decoded (10 ms resolution).
 *   nfcapd 1.7 (`nfcapd -b 127.0.0.1 -p PORT -w DIR -t 3600 -B RCVBUF`): CPU from
 *   /proc/PID/stat utime+stime (all threads, including the one writing its file) just before
 *   SIGINT; records from `nfdump -r FILE -I` (Flows:).
 * Loss = 1 − received / sent, per receiver; kernel drops per socket from /proc/net/udp.
 *
 * `--feed sequential` (default): each receiver gets its own run of the identical stream (same
 * seed, same datagrams, same pacing), one after the other, so on a small machine a receiver only
 * competes with the sender. `--feed both`: every datagram is sent to both receivers at once.
 *
 * Two modes: full speed (records/s per core and loss at the sender's maximum; `--repeat` runs per
 * receiver, the median shown with the range) and a paced sweep (`--rates`, loss per target rate
 * for each of `--sweep-stages` and nfcapd). Also, per stage, the receiver's work on datagrams fed
 * from memory in one process (no socket, no sender: the cleanest per-core figure on a small
 * machine). `--profile` adds one profiled full-speed run per version (`node --cpu-prof`, stage
 * `--profile-stage`) and prints where the receiver's time goes (self time per function).
 *
 * On a 2-vCPU machine the sender takes one core and the receiver the other; loopback delivery
 * (the kernel's copy into the receiver's socket) is mostly charged to the sender's core.
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Collector } from '../src/collect/collector.js';
import { NetflowDecoder } from '../src/collect/netflow.js';
import { Rng } from '../src/core/rng.js';

// --- options -----------------------------------------------------------------------------------

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const flag = (name: string) => args.includes(`--${name}`);
/** `100k`, `1.5M`, `250000` → number. */
const amount = (s: string): number => {
  const m = /^([\d.]+)\s*([kKmM]?)$/.exec(s.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2].toLowerCase() === 'k' ? 1e3 : m[2].toLowerCase() === 'm' ? 1e6 : 1);
};
const ROLE = opt('role', 'main');
const SECONDS = Number(opt('seconds', '5'));
const VERSIONS = opt('versions', '5,9,10')
  .split(',')
  .map(Number)
  .filter((v) => v === 5 || v === 9 || v === 10) as Version[];
type Stage = 'decode' | 'rows' | 'paired';
const STAGES = opt('stages', 'decode,rows,paired')
  .split(',')
  .filter((s): s is Stage => s === 'decode' || s === 'rows' || s === 'paired');
const RATES_ARG = opt('rates', '100k,250k,500k,750k,1M');
const RATES =
  RATES_ARG === 'none'
    ? []
    : RATES_ARG.split(',')
        .map(amount)
        .filter((r) => r > 0);
const SWEEP_STAGES = opt('sweep-stages', 'decode,paired')
  .split(',')
  .filter((x): x is Stage => x === 'decode' || x === 'rows' || x === 'paired');
const FEED = opt('feed', 'sequential') === 'both' ? 'both' : 'sequential';
const RCVBUF = Number(opt('rcvbuf', String(32 << 20)));
const POOL = Number(opt('pool', '4000'));
const SEED = Number(opt('seed', '1'));
/** Full-speed runs per (version, receiver); the table shows the median run and the range. */
const REPEAT = flag('no-full') ? 0 : Math.max(1, Number(opt('repeat', '3')));
/** In-process runs (datagrams from memory, no socket): seconds per (version, stage); 0 = off. */
const INPROC_SECONDS = Number(opt('inproc-seconds', '3'));
const JSON_OUT = flag('json');
const PROFILE = flag('profile');
const SELF = fileURLToPath(import.meta.url);

type Version = 5 | 9 | 10;
const VNAME: Record<Version, string> = { 5: 'NetFlow v5', 9: 'NetFlow v9', 10: 'IPFIX' };

// --- datagram generator ------------------------------------------------------------------------

interface Flow {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  proto: number;
  flags: number;
  packets: number;
  bytes: number;
  /** ms before the export time. */
  ageEnd: number;
  duration: number;
  inIf: number;
  outIf: number;
  tos: number;
}

const SERVICES = [80, 443, 443, 443, 53, 53, 22, 123, 8080, 3306, 25, 993, 5432, 3389];

/** The two directions of one flow: a client to a service and the answer. */
function flowPair(r: Rng): [Flow, Flow] {
  const p = r.next();
  const proto = p < 0.75 ? 6 : p < 0.95 ? 17 : 1;
  const client = (10 << 24) | (r.int(256) << 16) | (r.int(256) << 8) | (1 + r.int(254));
  const server =
    r.next() < 0.5
      ? (172 << 24) | ((16 + r.int(16)) << 16) | (r.int(256) << 8) | (1 + r.int(254))
      : (((1 + r.int(223)) << 24) | (r.int(256) << 16) | (r.int(256) << 8) | (1 + r.int(254))) >>> 0;
  const sport = proto === 1 ? 0 : 32768 + r.int(28232);
  const dport = proto === 1 ? 8 << 8 : proto === 17 && r.next() < 0.7 ? 53 : SERVICES[r.int(SERVICES.length)];
  // Packets: heavy-tailed (most flows are short); bytes per packet by protocol.
  const pk = Math.max(1, Math.floor(Math.exp(r.next() * 7)));
  const back = proto === 1 ? pk : Math.max(1, Math.floor(pk * (0.5 + r.next())));
  const size = (min: number, max: number) => min + r.int(max - min + 1);
  const duration = pk === 1 ? 0 : r.int(60_000);
  const ageEnd = r.int(30_000);
  const inIf = 1 + r.int(8);
  const outIf = 1 + r.int(8);
  const fwd: Flow = {
    src: client >>> 0,
    dst: server >>> 0,
    sport,
    dport,
    proto,
    flags: proto === 6 ? (pk > 3 ? 0x1b : 0x02) : 0,
    packets: pk,
    bytes: pk * (proto === 6 ? size(52, 400) : proto === 17 ? size(60, 300) : 84),
    ageEnd,
    duration,
    inIf,
    outIf,
    tos: r.next() < 0.9 ? 0 : 0xb8,
  };
  const rev: Flow = {
    src: fwd.dst,
    dst: fwd.src,
    sport: proto === 1 ? 0 : fwd.dport,
    dport: proto === 1 ? 0 : fwd.sport,
    proto,
    flags: proto === 6 ? (pk > 3 ? 0x1b : 0x12) : 0,
    packets: back,
    bytes: back * (proto === 6 ? size(52, 1500) : proto === 17 ? size(60, 1200) : 84),
    ageEnd: Math.max(0, ageEnd - r.int(5)),
    duration: Math.max(0, duration - r.int(20)),
    inIf: outIf,
    outIf: inIf,
    tos: fwd.tos,
  };
  return [fwd, rev];
}

/** A datagram of the pool and the flow records it carries (its sequence is patched when sent). */
interface Datagram {
  buf: Buffer;
  records: number;
}

const BASE_SECS = Date.UTC(2026, 10, 28, 10, 0, 0) / 1000;
const BASE_UPTIME = 86_400_000;
const TEMPLATE_EVERY = 100;
const PER_DATAGRAM: Record<Version, number> = { 5: 30, 9: 30, 10: 24 };

/** v9 template (softflowd's field list): [type, length]. 40 bytes per record. */
const V9_FIELDS: [number, number][] = [
  [8, 4], // IPV4_SRC_ADDR
  [12, 4], // IPV4_DST_ADDR
  [21, 4], // LAST_SWITCHED
  [22, 4], // FIRST_SWITCHED
  [1, 4], // IN_BYTES
  [2, 4], // IN_PKTS
  [10, 4], // INPUT_SNMP
  [14, 4], // OUTPUT_SNMP
  [7, 2], // L4_SRC_PORT
  [11, 2], // L4_DST_PORT
  [4, 1], // PROTOCOL
  [6, 1], // TCP_FLAGS
  [60, 1], // IP_PROTOCOL_VERSION
  [5, 1], // SRC_TOS
];
/** IPFIX template: [element, length]. 57 bytes per record. */
const IPFIX_FIELDS: [number, number][] = [
  [8, 4], // sourceIPv4Address
  [12, 4], // destinationIPv4Address
  [7, 2], // sourceTransportPort
  [11, 2], // destinationTransportPort
  [4, 1], // protocolIdentifier
  [6, 2], // tcpControlBits (RFC 7125: 2 bytes)
  [5, 1], // ipClassOfService
  [10, 4], // ingressInterface
  [14, 4], // egressInterface
  [1, 8], // octetDeltaCount
  [2, 8], // packetDeltaCount
  [152, 8], // flowStartMilliseconds
  [153, 8], // flowEndMilliseconds
  [136, 1], // flowEndReason
];
const recLen = (fields: [number, number][]) => fields.reduce((t, [, l]) => t + l, 0);

function generate(version: Version, n: number, seed: number): Datagram[] {
  const r = new Rng(seed * 1000 + version);
  const out: Datagram[] = [];
  const per = PER_DATAGRAM[version];
  for (let i = 0; i < n; i++) {
    const flows: Flow[] = [];
    while (flows.length < per) flows.push(...flowPair(r));
    const uptime = BASE_UPTIME + i * 7;
    const secs = BASE_SECS + Math.floor((i * 7) / 1000);
    const withTemplate = i % TEMPLATE_EVERY === 0;
    let b: Buffer;
    if (version === 5) {
      b = Buffer.alloc(24 + per * 48);
      b.writeUInt16BE(5, 0);
      b.writeUInt16BE(per, 2);
      b.writeUInt32BE(uptime, 4);
      b.writeUInt32BE(secs, 8);
      b.writeUInt32BE(((i * 7) % 1000) * 1e6, 12);
      b[20] = 0;
      b[21] = 1;
      let o = 24;
      for (const f of flows) {
        b.writeUInt32BE(f.src, o);
        b.writeUInt32BE(f.dst, o + 4);
        b.writeUInt32BE(0xc0a80001, o + 8);
        b.writeUInt16BE(f.inIf, o + 12);
        b.writeUInt16BE(f.outIf, o + 14);
        b.writeUInt32BE(f.packets, o + 16);
        b.writeUInt32BE(f.bytes, o + 20);
        b.writeUInt32BE(uptime - f.ageEnd - f.duration, o + 24);
        b.writeUInt32BE(uptime - f.ageEnd, o + 28);
        b.writeUInt16BE(f.sport, o + 32);
        b.writeUInt16BE(f.dport, o + 34);
        b[o + 37] = f.flags;
        b[o + 38] = f.proto;
        b[o + 39] = f.tos;
        b[o + 44] = 24;
        b[o + 45] = 24;
        o += 48;
      }
    } else if (version === 9) {
      const tpl = withTemplate ? 8 + 4 * V9_FIELDS.length : 0;
      const rl = recLen(V9_FIELDS);
      b = Buffer.alloc(20 + tpl + 4 + per * rl);
      b.writeUInt16BE(9, 0);
      b.writeUInt16BE(per + (withTemplate ? 1 : 0), 2);
      b.writeUInt32BE(uptime, 4);
      b.writeUInt32BE(secs, 8);
      b.writeUInt32BE(1, 16); // source ID
      let o = 20;
      if (withTemplate) {
        b.writeUInt16BE(0, o);
        b.writeUInt16BE(tpl, o + 2);
        b.writeUInt16BE(256, o + 4);
        b.writeUInt16BE(V9_FIELDS.length, o + 6);
        o += 8;
        for (const [t, l] of V9_FIELDS) {
          b.writeUInt16BE(t, o);
          b.writeUInt16BE(l, o + 2);
          o += 4;
        }
      }
      b.writeUInt16BE(256, o);
      b.writeUInt16BE(4 + per * rl, o + 2);
      o += 4;
      for (const f of flows) {
        b.writeUInt32BE(f.src, o);
        b.writeUInt32BE(f.dst, o + 4);
        b.writeUInt32BE(uptime - f.ageEnd, o + 8);
        b.writeUInt32BE(uptime - f.ageEnd - f.duration, o + 12);
        b.writeUInt32BE(f.bytes, o + 16);
        b.writeUInt32BE(f.packets, o + 20);
        b.writeUInt32BE(f.inIf, o + 24);
        b.writeUInt32BE(f.outIf, o + 28);
        b.writeUInt16BE(f.sport, o + 32);
        b.writeUInt16BE(f.dport, o + 34);
        b[o + 36] = f.proto;
        b[o + 37] = f.flags;
        b[o + 38] = 4;
        b[o + 39] = f.tos;
        o += rl;
      }
    } else {
      const tpl = withTemplate ? 8 + 4 * IPFIX_FIELDS.length : 0;
      const rl = recLen(IPFIX_FIELDS);
      b = Buffer.alloc(16 + tpl + 4 + per * rl);
      b.writeUInt16BE(10, 0);
      b.writeUInt16BE(b.length, 2);
      b.writeUInt32BE(secs, 4);
      b.writeUInt32BE(1, 12); // observation domain
      let o = 16;
      if (withTemplate) {
        b.writeUInt16BE(2, o);
        b.writeUInt16BE(tpl, o + 2);
        b.writeUInt16BE(256, o + 4);
        b.writeUInt16BE(IPFIX_FIELDS.length, o + 6);
        o += 8;
        for (const [t, l] of IPFIX_FIELDS) {
          b.writeUInt16BE(t, o);
          b.writeUInt16BE(l, o + 2);
          o += 4;
        }
      }
      b.writeUInt16BE(256, o);
      b.writeUInt16BE(4 + per * rl, o + 2);
      o += 4;
      const exportMs = secs * 1000;
      for (const f of flows) {
        b.writeUInt32BE(f.src, o);
        b.writeUInt32BE(f.dst, o + 4);
        b.writeUInt16BE(f.sport, o + 8);
        b.writeUInt16BE(f.dport, o + 10);
        b[o + 12] = f.proto;
        b.writeUInt16BE(f.flags, o + 13);
        b[o + 15] = f.tos;
        b.writeUInt32BE(f.inIf, o + 16);
        b.writeUInt32BE(f.outIf, o + 20);
        b.writeBigUInt64BE(BigInt(f.bytes), o + 24);
        b.writeBigUInt64BE(BigInt(f.packets), o + 32);
        b.writeBigUInt64BE(BigInt(exportMs - f.ageEnd - f.duration), o + 40);
        b.writeBigUInt64BE(BigInt(exportMs - f.ageEnd), o + 48);
        b[o + 56] = f.proto === 6 && f.flags & 0x01 ? 3 : 2; // end of flow / active timeout
        o += rl;
      }
    }
    out.push({ buf: b, records: per });
  }
  return out;
}

// --- sender (child process) --------------------------------------------------------------------

interface SenderReport {
  datagrams: number;
  records: number;
  bytes: number;
  seconds: number;
  errors: number;
  cpuSeconds: number;
  /** Average datagram size, bytes. */
  datagramBytes: number;
}

async function senderRole(): Promise<void> {
  const version = Number(opt('version', '5')) as Version;
  const ports = opt('ports', '')
    .split(',')
    .map(Number)
    .filter((p) => p > 0);
  const rate = Number(opt('rate', '0'));
  const seconds = Number(opt('seconds', '5'));
  const pool = generate(version, POOL, SEED);
  const seqAt = version === 5 ? 16 : version === 9 ? 12 : 8;
  let errors = 0;
  const sockets: Socket[] = [];
  for (const port of ports) {
    const s = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    s.on('error', () => errors++);
    await new Promise<void>((res) => s.connect(port, '127.0.0.1', () => res()));
    sockets.push(s);
  }
  const send = process.send!.bind(process);
  send({ type: 'ready', datagramBytes: pool.reduce((t, d) => t + d.buf.length, 0) / pool.length });
  await new Promise<void>((res) => process.once('message', () => res()));
  let i = 0;
  let records = 0;
  let bytes = 0;
  let seqRecords = 0;
  const one = () => {
    const d = pool[i % POOL];
    d.buf.writeUInt32BE((version === 9 ? i : seqRecords) >>> 0, seqAt);
    for (const s of sockets) s.send(d.buf);
    i++;
    records += d.records;
    seqRecords += d.records;
    bytes += d.buf.length;
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let tEnd = t0;
  await new Promise<void>((done) => {
    if (rate <= 0) {
      const loop = () => {
        for (let k = 0; k < 32; k++) one();
        const now = performance.now();
        if (now < deadline) setImmediate(loop);
        else {
          tEnd = now;
          done();
        }
      };
      loop();
    } else {
      const perDatagram = PER_DATAGRAM[version];
      const tick = () => {
        const now = performance.now();
        const until = Math.min(now, deadline);
        // Datagrams owed by now; after a stall send at most 20 ms worth at once.
        let owed = Math.floor((((until - t0) / 1000) * rate) / perDatagram) - i;
        owed = Math.min(owed, Math.ceil((rate / perDatagram) * 0.02));
        for (let k = 0; k < owed; k++) one();
        if (now < deadline) setTimeout(tick, 1);
        else {
          tEnd = now;
          done();
        }
      };
      tick();
    }
  });
  // Let libuv flush anything it queued (sends that would have blocked).
  await new Promise((r) => setTimeout(r, 100));
  const cpu = process.cpuUsage(cpu0);
  const report: SenderReport = {
    datagrams: i,
    records,
    bytes,
    seconds: (tEnd - t0) / 1000,
    errors,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    datagramBytes: bytes / Math.max(1, i),
  };
  send({ type: 'done', report });
  for (const s of sockets) s.close();
  process.disconnect();
}

// --- NADIR receiver (child process) ------------------------------------------------------------

interface NadirReport {
  stage: Stage;
  datagrams: number;
  records: number;
  rows: number;
  /** First to last change of the count, s. */
  activeSeconds: number;
  cpuSeconds: number;
  cpuUser: number;
  cpuSystem: number;
  peakRssMB: number;
  /** Records missing by the exporter's sequence numbers (NADIR's own accounting). */
  sequenceLost: number;
  problems: Record<string, number>;
  granted: number;
}

async function nadirRole(): Promise<void> {
  const stage = opt('stage', 'decode') as Stage;
  const rcvbuf = Number(opt('rcvbuf', String(32 << 20)));
  const problems: Record<string, number> = {};
  let datagrams = 0;
  let records = 0;
  let rows = 0;
  let port = 0;
  let granted = 0;
  let decoder: NetflowDecoder | undefined;
  let collector: Collector | undefined;
  let socket: Socket | undefined;
  if (stage === 'decode') {
    const dec = new NetflowDecoder({
      flow: () => {
        records++;
      },
      problem: (p) => {
        problems[p.reason] = (problems[p.reason] ?? 0) + 1;
      },
    });
    decoder = dec;
    const s = createSocket({ type: 'udp4', recvBufferSize: rcvbuf });
    s.on('message', (msg, rinfo) => {
      datagrams++;
      dec.datagram(msg, `${rinfo.address}:${rinfo.port}`, Date.now());
    });
    await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
    port = s.address().port;
    granted = s.getRecvBufferSize();
    socket = s;
  } else {
    const c = new Collector(
      () => {
        rows++;
      },
      {
        netflow: 0,
        host: '127.0.0.1',
        receiveBuffer: rcvbuf,
        mapper: { pairing: stage === 'paired' },
      },
    );
    await c.start();
    collector = c;
    port = c.ports.netflow;
    granted = c.stats().receiveBuffer.netflow ?? 0;
  }
  // What grows while data comes: records (decode) or rows (collector; paired rows are emitted as
  // the reverse direction arrives).
  const progress = () => (collector ? rows : records);
  let first = 0;
  let last = 0;
  let prev = 0;
  const watch = setInterval(() => {
    const n = progress();
    if (n !== prev) {
      const now = performance.now();
      if (prev === 0) first = now - 10;
      last = now;
      prev = n;
    }
  }, 10);
  let cpu0 = process.cpuUsage();
  const send = process.send!.bind(process);
  send({ type: 'ready', port, granted });
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'go') {
      cpu0 = process.cpuUsage();
      send({ type: 'going' });
    } else if (m.type === 'count') send({ type: 'count', n: progress() });
    else if (m.type === 'stop') {
      const cpu = process.cpuUsage(cpu0);
      clearInterval(watch);
      let sequenceLost = 0;
      if (collector) {
        await collector.stop();
        const st = collector.stats();
        datagrams = st.datagrams;
        records = st.records;
        for (const e of st.exporters) sequenceLost += e.lost;
        Object.assign(problems, st.problems);
      } else if (decoder) {
        for (const e of decoder.stats()) sequenceLost += e.lost;
        socket?.close();
      }
      const report: NadirReport = {
        stage,
        datagrams,
        records,
        rows,
        activeSeconds: Math.max(0.001, (last - first) / 1000),
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        cpuUser: cpu.user / 1e6,
        cpuSystem: cpu.system / 1e6,
        peakRssMB: process.resourceUsage().maxRSS / 1024,
        sequenceLost,
        problems,
        granted,
      };
      send({ type: 'report', report });
      process.disconnect();
    }
  });
}

// --- in-process (no socket) ---------------------------------------------------------------------

interface InprocReport {
  stage: Stage;
  records: number;
  rows: number;
  seconds: number;
  cpuSeconds: number;
  /** Records per CPU-s of the slowest and the fastest slice. */
  min: number;
  max: number;
}

/** The receiver's work on datagrams from memory: what one core does without the socket and sender. */
async function inprocRole(): Promise<void> {
  const version = Number(opt('version', '5')) as Version;
  const stage = opt('stage', 'decode') as Stage;
  const seconds = Number(opt('seconds', '3'));
  const pool = generate(version, POOL, SEED);
  const seqAt = version === 5 ? 16 : version === 9 ? 12 : 8;
  let records = 0;
  let rows = 0;
  const address = '127.0.0.1:40000';
  let feed: (b: Buffer) => void;
  let collector: Collector | undefined;
  if (stage === 'decode') {
    const dec = new NetflowDecoder({
      flow: () => {
        records++;
      },
      problem: () => {},
    });
    feed = (b) => dec.datagram(b, address, Date.now());
  } else {
    const c = new Collector(
      () => {
        rows++;
      },
      { mapper: { pairing: stage === 'paired' } },
    );
    collector = c;
    feed = (b) => c.datagram(b, address, 'netflow', Date.now());
  }
  let i = 0;
  let seq = 0;
  const one = () => {
    const d = pool[i % POOL];
    d.buf.writeUInt32BE((version === 9 ? i : seq) >>> 0, seqAt);
    seq += d.records;
    i++;
    feed(d.buf);
  };
  const count = () => (collector ? collector.stats().records : records);
  // Warm-up (the JIT settles), then five slices; the report is the median slice, with the range.
  const warm = performance.now() + Math.min(1000, seconds * 300);
  while (performance.now() < warm) for (let k = 0; k < 256; k++) one();
  const slices: InprocReport[] = [];
  for (let sl = 0; sl < 5; sl++) {
    const before = count();
    const rowsBefore = rows;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + (seconds * 1000) / 5;
    let now = t0;
    while (now < end) {
      for (let k = 0; k < 256; k++) one();
      now = performance.now();
    }
    const cpu = process.cpuUsage(cpu0);
    slices.push({
      stage,
      records: count() - before,
      rows: rows - rowsBefore,
      seconds: (now - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      min: 0,
      max: 0,
    });
  }
  const per = (r: InprocReport) => r.records / r.cpuSeconds;
  slices.sort((x, y) => per(x) - per(y));
  const report: InprocReport = { ...slices[2], min: per(slices[0]), max: per(slices[4]) };
  process.send!({ type: 'report', report });
  process.disconnect();
}

async function runInproc(version: Version, stage: Stage): Promise<InprocReport> {
  const child = fork(SELF, [
    '--role',
    'inproc',
    '--version',
    String(version),
    '--stage',
    stage,
    '--seconds',
    String(INPROC_SECONDS),
    '--pool',
    String(POOL),
    '--seed',
    String(SEED),
  ]);
  const r = (await reply<{ report: InprocReport }>(child, 'report', (INPROC_SECONDS + 60) * 1000)).report;
  await new Promise((res) => (child.exitCode === null ? child.once('exit', res) : res(null)));
  return r;
}

// --- orchestration -----------------------------------------------------------------------------

function reply<T>(child: ChildProcess, type: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      cleanup();
      rej(new Error(`no '${type}' from child ${child.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMsg = (m: { type: string }) => {
      if (m.type !== type) return;
      cleanup();
      res(m as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      rej(new Error(`child ${child.pid} exited (${code}) before '${type}'`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This machine's UDP socket on 127.0.0.1:port: receive queue bytes and drops (/proc/net/udp). */
function udpSocket(port: number): { rxQueue: number; drops: number } | undefined {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c[1] === want) return { rxQueue: Number.parseInt(c[4].split(':')[1], 16), drops: Number(c[12]) };
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const CLK_TCK = Number((spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout ?? '').trim()) || 100;
function procCpu(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
function procHwmMB(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const HAVE_NFCAPD =
  !flag('no-nfcapd') &&
  spawnSync('nfcapd', ['-V']).error === undefined &&
  spawnSync('nfdump', ['-V']).error === undefined;
const NFCAPD_VERSION = HAVE_NFCAPD
  ? spawnSync('nfcapd', ['-V'], { encoding: 'utf8' })
      .stdout.trim()
      .replace(/^nfcapd: /, '')
  : '';

interface NfcapdReport {
  records: number;
  cpuSeconds: number;
  peakRssMB: number;
  sequenceFailures: number;
  granted: number;
  kernelDrops: number;
}

interface NfcapdHandle {
  proc: ChildProcess;
  port: number;
  dir: string;
  log: string[];
  cpu0: number;
}

async function startNfcapd(work: string): Promise<NfcapdHandle> {
  const port = await freePort();
  const dir = mkdtempSync(join(work, 'nfcapd-'));
  const proc = spawn(
    'nfcapd',
    ['-b', '127.0.0.1', '-p', String(port), '-w', dir, '-t', '3600', '-B', String(RCVBUF)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log: string[] = [];
  proc.stdout?.on('data', (d) => log.push(String(d)));
  proc.stderr?.on('data', (d) => log.push(String(d)));
  for (let t = 0; t < 250 && !udpSocket(port); t++) await sleep(20);
  if (!udpSocket(port)) throw new Error(`nfcapd did not bind 127.0.0.1:${port}: ${log.join('')}`);
  await sleep(100);
  return { proc, port, dir, log, cpu0: procCpu(proc.pid!) };
}

async function stopNfcapd(h: NfcapdHandle, drops: number): Promise<NfcapdReport> {
  const cpuSeconds = procCpu(h.proc.pid!) - h.cpu0;
  const peakRssMB = procHwmMB(h.proc.pid!);
  const exited = new Promise((r) => h.proc.once('exit', r));
  h.proc.kill('SIGINT');
  const t = setTimeout(() => h.proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
  let records = 0;
  let sequenceFailures = 0;
  for (const f of readdirSync(h.dir).filter((x) => x.startsWith('nfcapd.') && !x.includes('current'))) {
    const r = spawnSync('nfdump', ['-r', join(h.dir, f), '-I'], { encoding: 'utf8' });
    records += Number(/^Flows: (\d+)/m.exec(r.stdout)?.[1] ?? 0);
    sequenceFailures += Number(/^Sequence failures: (\d+)/m.exec(r.stdout)?.[1] ?? 0);
  }
  const granted = Number(/SO_RCVBUF to (\d+)/.exec(h.log.join(''))?.[1] ?? Number.NaN);
  rmSync(h.dir, { recursive: true, force: true });
  return { records, cpuSeconds, peakRssMB, sequenceFailures, granted, kernelDrops: drops };
}

interface Trial {
  version: Version;
  /** Target records/s; 0 = full speed. */
  rate: number;
  stage?: Stage;
  nfcapd: boolean;
  profileDir?: string;
}

interface TrialResult {
  version: Version;
  rate: number;
  sender: SenderReport;
  nadir?: NadirReport & { kernelDrops: number };
  nfcapd?: NfcapdReport;
}

async function runTrial(t: Trial, work: string): Promise<TrialResult> {
  let nadir: ChildProcess | undefined;
  let nadirPort = 0;
  let nf: NfcapdHandle | undefined;
  if (t.stage) {
    nadir = fork(SELF, ['--role', 'nadir', '--stage', t.stage, '--rcvbuf', String(RCVBUF)], {
      execArgv: t.profileDir ? ['--cpu-prof', '--cpu-prof-dir', t.profileDir] : [],
    });
    nadirPort = (await reply<{ port: number }>(nadir, 'ready')).port;
  }
  if (t.nfcapd) nf = await startNfcapd(work);
  const ports = [nadirPort, nf?.port ?? 0].filter((p) => p > 0);
  const sender = fork(SELF, [
    '--role',
    'sender',
    '--version',
    String(t.version),
    '--ports',
    ports.join(','),
    '--rate',
    String(t.rate),
    '--seconds',
    String(SECONDS),
    '--pool',
    String(POOL),
    '--seed',
    String(SEED),
  ]);
  await reply(sender, 'ready');
  if (nadir) {
    nadir.send({ type: 'go' });
    await reply(nadir, 'going');
  }
  if (nf) nf.cpu0 = procCpu(nf.proc.pid!);
  const done = reply<{ report: SenderReport }>(sender, 'done', (SECONDS + 60) * 1000);
  sender.send({ type: 'go' });
  const report = (await done).report;
  // Drain: until the receive queues are empty and nothing moves for 300 ms (at most 20 s).
  let stable = 0;
  let prevN = -1;
  let prevCpu = -1;
  for (let k = 0; k < 200 && stable < 3; k++) {
    await sleep(100);
    const q = ports.reduce((s, p) => s + (udpSocket(p)?.rxQueue ?? 0), 0);
    let n = 0;
    if (nadir) {
      const answer = reply<{ n: number }>(nadir, 'count');
      nadir.send({ type: 'count' });
      n = (await answer).n;
    }
    const c = nf ? procCpu(nf.proc.pid!) : 0;
    stable = q === 0 && n === prevN && c === prevCpu ? stable + 1 : 0;
    prevN = n;
    prevCpu = c;
  }
  const result: TrialResult = { version: t.version, rate: t.rate, sender: report };
  if (nadir) {
    const drops = udpSocket(nadirPort)?.drops ?? Number.NaN;
    const exited = new Promise((r) => nadir!.once('exit', r));
    nadir.send({ type: 'stop' });
    const r = (await reply<{ report: NadirReport }>(nadir, 'report')).report;
    result.nadir = { ...r, kernelDrops: drops };
    await exited;
  }
  if (nf) result.nfcapd = await stopNfcapd(nf, udpSocket(nf.port)?.drops ?? Number.NaN);
  await new Promise((r) => (sender.exitCode === null ? sender.once('exit', r) : r(null)));
  return result;
}

/** Trials for one (version, rate): per NADIR stage and nfcapd, fed one after the other or together. */
async function trials(version: Version, rate: number, stages: Stage[], work: string): Promise<TrialResult[]> {
  const out: TrialResult[] = [];
  if (FEED === 'both') {
    for (const stage of stages) out.push(await runTrial({ version, rate, stage, nfcapd: HAVE_NFCAPD }, work));
    if (!stages.length && HAVE_NFCAPD) out.push(await runTrial({ version, rate, nfcapd: true }, work));
  } else {
    for (const stage of stages) out.push(await runTrial({ version, rate, stage, nfcapd: false }, work));
    if (HAVE_NFCAPD) out.push(await runTrial({ version, rate, nfcapd: true }, work));
  }
  return out;
}

// --- profile summary ---------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

function summariseProfile(dir: string, top = 15): { fn: string; pct: number }[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return [];
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)' || !hits) continue;
    const where = url ? ` ${basename(url)}:${lineNumber + 1}` : '';
    const k = `${functionName || '(anonymous)'}${where}`;
    self.set(k, (self.get(k) ?? 0) + hits);
    total += hits;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, h]) => ({ fn, pct: (100 * h) / total }));
}

// --- output ------------------------------------------------------------------------------------

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 2)}%` : '–');
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const loss = (got: number, sent: number) => (sent > 0 ? Math.max(0, 1 - got / sent) : Number.NaN);
const rateName = (r: number) => (r >= 1e6 ? `${r / 1e6}M` : r >= 1e3 ? `${r / 1e3}k` : String(r));

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const nadirPerCpu = (r: TrialResult) => (r.nadir ? r.nadir.records / r.nadir.cpuSeconds : Number.NaN);
const nfPerCpu = (r: TrialResult) => (r.nfcapd ? r.nfcapd.records / r.nfcapd.cpuSeconds : Number.NaN);

/** The run with the median figure (the lower middle one for an even count) and the range. */
function median(
  runs: TrialResult[],
  by: (r: TrialResult) => number,
): { run?: TrialResult; min: number; max: number } {
  const s = runs.filter((r) => Number.isFinite(by(r))).sort((x, y) => by(x) - by(y));
  if (!s.length) return { min: Number.NaN, max: Number.NaN };
  return { run: s[(s.length - 1) >> 1], min: by(s[0]), max: by(s[s.length - 1]) };
}
const range = (m: { min: number; max: number }, runs: number) =>
  runs > 1 ? ` (${n0(m.min)}–${n0(m.max)})` : '';

/** The runs the full-speed table shows (median per version and receiver), in order. */
function medianRuns(results: TrialResult[]): TrialResult[] {
  const out: TrialResult[] = [];
  for (const v of VERSIONS) {
    for (const stage of STAGES) {
      const m = median(
        results.filter((r) => r.version === v && r.nadir?.stage === stage),
        nadirPerCpu,
      ).run;
      if (m) out.push(m);
    }
    const n = median(
      results.filter((r) => r.version === v && r.nfcapd && !r.nadir),
      nfPerCpu,
    ).run;
    if (n) out.push(n);
  }
  return out;
}

function fullSpeedTable(results: TrialResult[]): string {
  const rows: string[][] = [];
  for (const v of VERSIONS) {
    const nf = median(
      results.filter((r) => r.version === v && r.nfcapd),
      nfPerCpu,
    );
    const nfRuns = results.filter((r) => r.version === v && r.nfcapd).length;
    const nfr = nf.run;
    const nfc = nfr?.nfcapd;
    for (const stage of STAGES) {
      const runs = results.filter((r) => r.version === v && r.nadir?.stage === stage);
      const m = median(runs, nadirPerCpu);
      const r = m.run;
      if (!r?.nadir) continue;
      const a = r.nadir;
      rows.push([
        VNAME[v],
        a.stage,
        n0(r.sender.records),
        n0(a.records),
        pct(loss(a.records, r.sender.records)),
        n0(a.records / a.activeSeconds),
        `**${n0(nadirPerCpu(r))}**${range(m, runs.length)}`,
        a.cpuSeconds.toFixed(2),
        n0(a.peakRssMB),
        FEED === 'both' ? '(same)' : n0(nfr?.sender.records ?? Number.NaN),
        nfc ? n0(nfc.records) : 'skipped',
        nfc ? pct(loss(nfc.records, nfr!.sender.records)) : '–',
        nfc ? `${n0(nfPerCpu(nfr!))}${range(nf, nfRuns)}` : '–',
        ratio(nadirPerCpu(r) / (nfr ? nfPerCpu(nfr) : Number.NaN)),
      ]);
    }
  }
  return table(
    [
      'version',
      'NADIR stage',
      'sent (NADIR run)',
      'NADIR received',
      'NADIR loss',
      'NADIR records/s (wall)',
      'NADIR records per CPU-s',
      'NADIR CPU s',
      'NADIR peak RSS MB',
      'sent (nfcapd run)',
      'nfcapd received',
      'nfcapd loss',
      'nfcapd records per CPU-s',
      'NADIR / nfcapd per CPU-s',
    ],
    rows,
  );
}

function senderTable(results: TrialResult[]): string {
  return table(
    [
      'version',
      'receiver',
      'sent records/s',
      'datagrams/s',
      'bytes/datagram',
      'sender CPU (cores)',
      'kernel drops (datagrams)',
      'NADIR sequence gap (records)',
      'nfcapd sequence failures',
    ],
    results.map((r) => [
      VNAME[r.version],
      [r.nadir ? `NADIR ${r.nadir.stage}` : '', r.nfcapd ? 'nfcapd' : ''].filter(Boolean).join(' + '),
      n0(r.sender.records / r.sender.seconds),
      n0(r.sender.datagrams / r.sender.seconds),
      n0(r.sender.datagramBytes),
      (r.sender.cpuSeconds / r.sender.seconds).toFixed(2),
      [r.nadir ? n0(r.nadir.kernelDrops) : '', r.nfcapd ? n0(r.nfcapd.kernelDrops) : '']
        .filter(Boolean)
        .join(' / '),
      r.nadir ? n0(r.nadir.sequenceLost) : '–',
      r.nfcapd ? n0(r.nfcapd.sequenceFailures) : '–',
    ]),
  );
}

function sweepTable(results: TrialResult[]): string {
  const rows: string[][] = [];
  const keys = [...new Set(results.map((r) => `${r.rate}|${r.version}`))];
  for (const k of keys) {
    const [rate, v] = k.split('|').map(Number);
    const rs = results.filter((r) => r.rate === rate && r.version === v);
    const row = [rateName(rate), VNAME[v as Version], n0(rs[0].sender.records / rs[0].sender.seconds)];
    for (const stage of SWEEP_STAGES) {
      const a = rs.find((r) => r.nadir?.stage === stage);
      row.push(
        a?.nadir ? pct(loss(a.nadir.records, a.sender.records)) : '–',
        a?.nadir ? n0(nadirPerCpu(a)) : '–',
        a?.nadir ? (a.nadir.cpuSeconds / a.sender.seconds).toFixed(2) : '–',
      );
    }
    const b = rs.find((r) => r.nfcapd);
    row.push(
      b?.nfcapd ? pct(loss(b.nfcapd.records, b.sender.records)) : HAVE_NFCAPD ? '–' : 'skipped',
      b?.nfcapd ? n0(nfPerCpu(b)) : '–',
      b?.nfcapd ? (b.nfcapd.cpuSeconds / b.sender.seconds).toFixed(2) : '–',
    );
    rows.push(row);
  }
  return table(
    [
      'target records/s',
      'version',
      'sent/s',
      ...SWEEP_STAGES.flatMap((st) => [
        `NADIR ${st} loss`,
        `NADIR ${st} records per CPU-s`,
        `NADIR ${st} CPU (cores)`,
      ]),
      'nfcapd loss',
      'nfcapd records per CPU-s',
      'nfcapd CPU (cores)',
    ],
    rows,
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'nadir-collect-bench-'));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const env = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nfcapd: HAVE_NFCAPD ? NFCAPD_VERSION : null,
    rmemMax,
    requestedRcvbuf: RCVBUF,
    feed: FEED,
    seconds: SECONDS,
    pool: POOL,
    seed: SEED,
  };
  if (!HAVE_NFCAPD)
    log(
      flag('no-nfcapd')
        ? 'nfcapd: skipped (--no-nfcapd)'
        : 'nfcapd/nfdump not installed (apt-get install nfdump): the nfcapd columns are skipped',
    );
  log(
    `collect bench: ${env.cpus} CPUs (${env.cpuModel}), Node ${env.node}, nfcapd ${env.nfcapd ?? '–'}, ` +
      `rmem_max ${rmemMax} B, feed ${FEED}, ${SECONDS} s per run`,
  );
  if (env.cpus <= 2)
    log(
      `note: ${env.cpus} CPUs — the sender and the receiver compete for the cores (figures are a lower bound)`,
    );
  const full: TrialResult[] = [];
  for (const v of VERSIONS)
    for (let rep = 0; rep < REPEAT; rep++) {
      log(`full speed, ${VNAME[v]}${REPEAT > 1 ? ` (${rep + 1}/${REPEAT})` : ''} …`);
      for (const r of await trials(v, 0, STAGES, work)) {
        full.push(r);
        const what = r.nadir
          ? `NADIR ${r.nadir.stage}: ${n0(r.nadir.records)} of ${n0(r.sender.records)} records, ${n0(nadirPerCpu(r))} per CPU-s`
          : `nfcapd: ${n0(r.nfcapd?.records ?? 0)} of ${n0(r.sender.records)}, ${n0(nfPerCpu(r))} per CPU-s`;
        log(`  ${what}`);
      }
    }
  const inproc: (InprocReport & { version: Version })[] = [];
  if (INPROC_SECONDS > 0)
    for (const v of VERSIONS)
      for (const stage of STAGES) {
        const r = await runInproc(v, stage);
        inproc.push({ ...r, version: v });
        log(`in-process, ${VNAME[v]} ${stage}: ${n0(r.records / r.cpuSeconds)} records per CPU-s`);
      }
  const sweep: TrialResult[] = [];
  for (const rate of RATES)
    for (const v of VERSIONS) {
      log(`paced ${rateName(rate)} records/s, ${VNAME[v]} …`);
      for (const r of await trials(v, rate, SWEEP_STAGES, work)) {
        sweep.push(r);
        const got = r.nadir?.records ?? r.nfcapd?.records ?? 0;
        log(`  ${r.nadir ? `NADIR ${r.nadir.stage}` : 'nfcapd'}: loss ${pct(loss(got, r.sender.records))}`);
      }
    }
  const profiles: { version: Version; stage: Stage; top: { fn: string; pct: number }[] }[] = [];
  if (PROFILE) {
    const stage = (opt('profile-stage', 'paired') as Stage) || 'paired';
    for (const v of VERSIONS) {
      log(`profile, ${VNAME[v]} ${stage} at full speed …`);
      const dir = mkdtempSync(join(work, 'prof-'));
      await runTrial({ version: v, rate: 0, stage, nfcapd: false, profileDir: dir }, work);
      profiles.push({ version: v, stage, top: summariseProfile(dir) });
    }
  }
  const granted = full.find((r) => r.nadir)?.nadir?.granted;
  const nfGranted = full.find((r) => r.nfcapd)?.nfcapd?.granted;
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify({ env, full, inproc, sweep, profiles }, null, 2)}\n`);
  } else {
    const out: string[] = [];
    out.push(
      `Machine: ${env.cpus} CPUs (${env.cpuModel}), ${env.memGiB} GiB, Node ${env.node}; nfcapd ${env.nfcapd ?? 'not installed (skipped)'}.`,
      `Receive buffer: asked ${RCVBUF} B; kernel granted NADIR ${granted ?? '–'} B, nfcapd ${nfGranted ?? '–'} B (net.core.rmem_max ${rmemMax}; the kernel reports double the capped request).`,
      FEED === 'both'
        ? 'Feed: every datagram sent to both receivers at once (one sender, two sockets).'
        : 'Feed: sequential — each receiver gets its own run of the identical stream (same seed, same datagrams, same pacing).',
      env.cpus <= 2
        ? `Note: ${env.cpus} CPUs — sender and receiver compete for the cores; loopback delivery is charged mostly to the sender.`
        : '',
      '',
      `### Full speed over loopback (${SECONDS} s per run${REPEAT > 1 ? `; median of ${REPEAT} runs by records per CPU-s, range in brackets` : ''})`,
      '',
      fullSpeedTable(full),
      '',
      senderTable(medianRuns(full)),
    );
    if (inproc.length)
      out.push(
        '',
        `### In-process, one core (datagrams from memory, no socket, no sender; ${INPROC_SECONDS} s each after a warm-up: the median of five slices, range in brackets)`,
        '',
        table(
          ['version', 'NADIR stage', 'records/s', 'records per CPU-s', 'µs per record'],
          inproc.map((r) => [
            VNAME[r.version],
            r.stage,
            n0(r.records / r.seconds),
            `**${n0(r.records / r.cpuSeconds)}** (${n0(r.min)}–${n0(r.max)})`,
            ((r.cpuSeconds / r.records) * 1e6).toFixed(2),
          ]),
        ),
      );
    if (sweep.length)
      out.push(
        '',
        `### Paced sweep (${SECONDS} s per run; loss = 1 − received / sent; CPU in cores over the send window)`,
        '',
        sweepTable(sweep),
      );
    for (const p of profiles) {
      out.push('', `### Profile: ${VNAME[p.version]}, ${p.stage}, full speed (self time)`, '');
      out.push(
        table(
          ['function', 'self %'],
          p.top.map((t) => [`\`${t.fn}\``, t.pct.toFixed(1)]),
        ),
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  rmSync(work, { recursive: true, force: true });
}

if (ROLE === 'sender') await senderRole();
else if (ROLE === 'nadir') await nadirRole();
else if (ROLE === 'inproc') await inprocRole();
else {
  if (!existsSync('/proc/net/udp')) {
    process.stderr.write('this bench reads /proc (Linux only)\n');
    process.exit(2);
  }
  await main();
}
