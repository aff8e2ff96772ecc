/**
 * Flow-meter benchmark: packets/s with the full CIC feature set and peak RSS, on
 *   (a) a real capture (zeek's echo-connections.pcap.gz) replicated to ≥ 5M packets, each copy
 *       shifted by an hour so its flows are new ones, and
 *   (b) a worst case of 1M concurrent UDP flows (every flow's first packet, then every second one),
 * with argus (`argus -r`, flow records) and tshark (`tshark -q -z conv,tcp -z conv,udp`) on the
 * same files in the same run when they are installed, and the ratios.
 *
 *   npm run build && node dist/bench/flows.js [--copies 61] [--flows 1000000]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CaptureReader } from '../src/capture/pcap.js';

const args = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const COPIES = arg('copies', 61);
const FLOWS = arg('flows', 1_000_000);
const ROOT = new URL('../../', import.meta.url).pathname;
const SRC = join(
  ROOT,
  '..',
  'shared',
  'datasets',
  'pcap_zeek_traces',
  'captures',
  'echo-connections.pcap.gz',
);

/** Replicates a pcap `copies` times, shifting each copy's timestamps by `shiftSec` more. */
function replicate(
  pcap: Uint8Array,
  copies: number,
  shiftSec: number,
): { bytes: Uint8Array; packets: number } {
  const header = pcap.subarray(0, 24);
  const records: [number, number][] = [];
  const r = new CaptureReader((p) => records.push([p.fileOffset, 16 + p.capLen]));
  r.push(pcap);
  r.end();
  const body = pcap.length - 24;
  const out = new Uint8Array(24 + body * copies);
  out.set(header);
  const dv = new DataView(out.buffer);
  let o = 24;
  for (let c = 0; c < copies; c++) {
    for (const [off, len] of records) {
      out.set(pcap.subarray(off, off + len), o);
      dv.setUint32(o, dv.getUint32(o, true) + c * shiftSec, true);
      o += len;
    }
  }
  return { bytes: out.subarray(0, o), packets: records.length * copies };
}

/** n UDP flows open at once: every flow's first packet, then every flow's reply. */
function concurrent(n: number): { bytes: Uint8Array; packets: number } {
  const frame = 14 + 20 + 8 + 16;
  const out = new Uint8Array(24 + 2 * n * (16 + frame));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 65535, true);
  dv.setUint32(20, 1, true);
  let o = 24;
  for (let round = 0; round < 2; round++)
    for (let i = 0; i < n; i++) {
      const us = round * 30_000_000 + Math.floor((i * 25_000_000) / n);
      dv.setUint32(o, 1_600_000_000 + Math.floor(us / 1e6), true);
      dv.setUint32(o + 4, us % 1e6, true);
      dv.setUint32(o + 8, frame, true);
      dv.setUint32(o + 12, frame, true);
      const p = o + 16;
      dv.setUint16(p + 12, 0x0800);
      out[p + 14] = 0x45;
      dv.setUint16(p + 16, 20 + 8 + 16);
      out[p + 22] = 64;
      out[p + 23] = 17;
      // Client 10.x.y.z:port ↔ server 192.168.0.1:53; the reply swaps them.
      const client = 0x0a000000 + (i >>> 8);
      const port = 1024 + (i & 0xff);
      dv.setUint32(p + 26, round === 0 ? client : 0xc0a80001);
      dv.setUint32(p + 30, round === 0 ? 0xc0a80001 : client);
      dv.setUint16(p + 34, round === 0 ? port : 53);
      dv.setUint16(p + 36, round === 0 ? 53 : port);
      dv.setUint16(p + 38, 8 + 16);
      o += 16 + frame;
    }
  return { bytes: out, packets: 2 * n };
}

interface Run {
  seconds: number;
  rssMb: number;
  ok: boolean;
}

/** Runs a command under /usr/bin/time for wall time and peak RSS. */
function timed(cmd: string, argv: string[]): Run {
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = (performance.now() - t) / 1000;
  const lines = r.stderr.trim().split('\n');
  const rssKb = Number(lines[lines.length - 1]);
  if (r.status !== 0) process.stderr.write(`${cmd} failed: ${r.stderr.slice(-400)}\n`);
  return { seconds, rssMb: rssKb / 1024, ok: r.status === 0 };
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function main() {
  if (!existsSync(SRC)) {
    console.log(`missing ${SRC}; the shared datasets are needed`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nadir-flows-bench-'));
  const cli = join(ROOT, 'bin', 'nadir.js');
  const cases: [string, string, number][] = [];
  const a = replicate(gunzipSync(readFileSync(SRC)), COPIES, 3600);
  writeFileSync(join(dir, 'real.pcap'), a.bytes);
  cases.push([`echo-connections ×${COPIES}`, join(dir, 'real.pcap'), a.packets]);
  const b = concurrent(FLOWS);
  writeFileSync(join(dir, 'concurrent.pcap'), b.bytes);
  cases.push([`${FLOWS.toLocaleString()} concurrent flows`, join(dir, 'concurrent.pcap'), b.packets]);
  const peers: [string, string, (f: string) => string[]][] = [];
  if (have('argus')) peers.push(['argus -r', 'argus', (f) => ['-r', f, '-w', join(dir, 'out.argus')]]);
  if (have('tshark'))
    peers.push(['tshark conv', 'tshark', (f) => ['-r', f, '-n', '-q', '-z', 'conv,tcp', '-z', 'conv,udp']]);
  console.log('one core, full CIC features, flows written to a CSV file');
  const fmt = (x: number) => Math.round(x).toLocaleString();
  for (const [name, file, packets] of cases) {
    const mine = timed(process.execPath, [cli, 'flows', file, '-o', join(dir, 'flows.csv'), '-q']);
    const flows = readFileSync(join(dir, 'flows.csv'), 'utf8').split('\n').length - 2;
    console.log(`\n${name}: ${fmt(packets)} packets, ${fmt(flows)} flows`);
    console.log(
      `  NADIR        ${fmt(packets / mine.seconds).padStart(12)} packets/s   peak RSS ${mine.rssMb.toFixed(0)} MB`,
    );
    for (const [label, cmd, argv] of peers) {
      const p = timed(cmd, argv(file));
      console.log(
        `  ${label.padEnd(12)} ${fmt(packets / p.seconds).padStart(12)} packets/s   peak RSS ${p.rssMb.toFixed(0)} MB   NADIR ${(p.seconds / mine.seconds).toFixed(1)}× faster`,
      );
    }
    rmSync(join(dir, 'flows.csv'), { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}

main();
