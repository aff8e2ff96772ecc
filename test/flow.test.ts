/**
 * The flow meter against hand-computed features of a scripted TCP conversation (written to a pcap
 * by NADIR's own writer), plus termination rules, time-based expiry and eviction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PcapWriter } from '../src/capture/pcap-writer.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../src/decode/decode.js';
import { COL, type FlowColumn } from '../src/flow/features.js';
import { FlowMeter, type FlowRow } from '../src/flow/meter.js';
import { captureFlows } from '../src/pipeline/capture-flows.js';
import { tmp, writeFile } from './helpers.js';
import { ethernet, ipv4, tcp, udp } from './packets.js';

const C = '10.0.0.1';
const S = '10.0.0.2';
const MSS = [2, 4, 5, 0xb4];

/** [time µs, from client?, flags, payload bytes, tcp options] */
type Step = [number, boolean, number, number, number[]?];
const conversation: Step[] = [
  [0, true, TCP_SYN, 0, MSS],
  [1000, false, TCP_SYN | TCP_ACK, 0, MSS],
  [2000, true, TCP_ACK, 0],
  [3000, true, TCP_PSH | TCP_ACK, 100],
  [4000, true, TCP_ACK, 200],
  [5000, true, TCP_ACK, 300],
  [6000, true, TCP_PSH | TCP_ACK, 400],
  [7000, false, TCP_ACK, 0],
  [7_007_000, false, TCP_PSH | TCP_ACK, 50],
  [7_008_000, true, TCP_FIN | TCP_ACK, 0],
  [7_009_000, false, TCP_FIN | TCP_ACK, 0],
  [7_010_000, true, TCP_ACK, 0],
];

function packet(step: Step): Uint8Array {
  const [, client, flags, len, opts] = step;
  const seg = tcp(client ? 40000 : 80, client ? 80 : 40000, flags, new Uint8Array(len), {
    window: client ? 64240 : 65160,
    options: opts,
  });
  // Minimum-size frames get Ethernet padding, which must not count as payload.
  return ethernet(0x0800, ipv4(client ? C : S, client ? S : C, 6, seg), 60);
}

function sampleStd(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
}

const T0 = 1_600_000_000_000_000;

describe('flow meter', () => {
  it('computes the CIC features of a scripted TCP conversation as worked out by hand', async () => {
    const w = new PcapWriter();
    for (const s of conversation) w.add(T0 + s[0], packet(s));
    const file = writeFile(tmp(), 'conv.pcap', w.bytes());
    const rows: FlowRow[] = [];
    const r = await captureFlows([file], (f) => rows.push(f));
    assert.equal(r.flows, 1);
    const f = rows[0];
    assert.equal(f.reason, 'fin');
    assert.deepEqual([f.srcIp, f.srcPort, f.dstIp, f.dstPort, f.protocol], [C, 40000, S, 80, 6]);
    assert.equal(f.timestamp, '2020-09-13 12:26:40.000000');
    const get = (c: FlowColumn) => f.values[COL[c]];
    const close = (c: FlowColumn, want: number, tol = 1e-9) =>
      assert.ok(Math.abs(get(c) - want) <= tol * Math.max(1, Math.abs(want)), `${c}: ${get(c)} ≠ ${want}`);

    const fwdLens = [0, 0, 100, 200, 300, 400, 0, 0];
    const bwdLens = [0, 0, 50, 0];
    const allLens = conversation.map((s) => s[3]);
    const times = conversation.map((s) => s[0]);
    const flowIat = times.slice(1).map((t, i) => t - times[i]);
    const fwdT = conversation.filter((s) => s[1]).map((s) => s[0]);
    const bwdT = conversation.filter((s) => !s[1]).map((s) => s[0]);
    const fwdIat = fwdT.slice(1).map((t, i) => t - fwdT[i]);
    const bwdIat = bwdT.slice(1).map((t, i) => t - bwdT[i]);

    close('Flow Duration', 7_010_000);
    close('Total Fwd Packet', 8);
    close('Total Bwd packets', 4);
    close('Total Length of Fwd Packet', 1000);
    close('Total Length of Bwd Packet', 50);
    close('Fwd Packet Length Max', 400);
    close('Fwd Packet Length Min', 0);
    close('Fwd Packet Length Mean', 125);
    close('Fwd Packet Length Std', sampleStd(fwdLens));
    close('Bwd Packet Length Mean', 12.5);
    close('Bwd Packet Length Std', 25);
    close('Flow Bytes/s', 1050 / 7.01);
    close('Flow Packets/s', 12 / 7.01);
    close('Flow IAT Mean', 7_010_000 / 11);
    close('Flow IAT Std', sampleStd(flowIat));
    close('Flow IAT Max', 7_000_000);
    close('Flow IAT Min', 1000);
    close('Fwd IAT Total', 7_010_000);
    close('Fwd IAT Mean', 7_010_000 / 7);
    close('Fwd IAT Std', sampleStd(fwdIat));
    close('Fwd IAT Max', 7_002_000);
    close('Fwd IAT Min', 1000);
    close('Bwd IAT Total', 7_008_000);
    close('Bwd IAT Std', sampleStd(bwdIat));
    close('Bwd IAT Min', 2000);
    close('Fwd PSH Flags', 2);
    close('Bwd PSH Flags', 1);
    close('Fwd RST Flags', 0);
    close('Fwd Header Length', 24 + 7 * 20);
    close('Bwd Header Length', 24 + 3 * 20);
    close('Fwd Packets/s', 8 / 7.01);
    close('Packet Length Max', 400);
    close('Packet Length Mean', 87.5);
    close('Packet Length Std', sampleStd(allLens));
    close('Packet Length Variance', sampleStd(allLens) ** 2);
    close('FIN Flag Count', 2);
    close('SYN Flag Count', 2);
    close('ACK Flag Count', 11);
    close('PSH Flag Count', 3);
    close('RST Flag Count', 0);
    close('Down/Up Ratio', 0.5);
    close('Average Packet Size', 87.5);
    close('Fwd Segment Size Avg', 125);
    close('Bwd Segment Size Avg', 12.5);
    // One forward bulk: the 4 data packets 3000–6000 µs.
    close('Fwd Bytes/Bulk Avg', 1000);
    close('Fwd Packet/Bulk Avg', 4);
    close('Fwd Bulk Rate Avg', 1000 / 0.003);
    close('Bwd Bytes/Bulk Avg', 0);
    close('Subflow Fwd Packets', 0);
    close('Subflow Fwd Bytes', Math.floor(1000 / 12));
    close('Subflow Bwd Bytes', Math.floor(50 / 12));
    close('FWD Init Win Bytes', 64240);
    close('Bwd Init Win Bytes', 65160);
    close('Fwd Act Data Pkts', 4);
    close('Fwd Seg Size Min', 20);
    // Active 0–7000 µs, idle 7 s, active 7.007–7.010 s.
    close('Active Mean', 5000);
    close('Active Std', sampleStd([7000, 3000]));
    close('Active Max', 7000);
    close('Active Min', 3000);
    close('Idle Mean', 7_000_000);
    close('Idle Std', 0);
    close('ICMP Code', -1);
    close('ICMP Type', -1);
    close('Total TCP Flow Time', 7_010_000);
  });

  it('ends flows at RST and at the flow timeout, and expires idle flows as time advances', () => {
    const rows: FlowRow[] = [];
    const meter = new FlowMeter((f) => rows.push(f), { flowTimeoutUs: 10e6 });
    const { PacketView, decode } = decodeMod;
    const v = new PacketView();
    const feed = (t: number, pkt: Uint8Array) => {
      assert.equal(decode(pkt, 0, pkt.length, 1, v), 0);
      meter.add(t, v);
    };
    const syn = ethernet(0x0800, ipv4(C, S, 6, tcp(1, 2, TCP_SYN, new Uint8Array(0))));
    const rst = ethernet(0x0800, ipv4(S, C, 6, tcp(2, 1, TCP_RST | TCP_ACK, new Uint8Array(0))));
    feed(0, syn);
    feed(10, rst);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].reason, 'rst');
    assert.equal(rows[0].values[COL['Bwd RST Flags']], 1);
    // UDP: a packet 11 s after the first (timeout 10 s) starts a new flow.
    const dns = (t: number) => feed(t, ethernet(0x0800, ipv4(C, S, 17, udp(5353, 53, new Uint8Array(30)))));
    dns(1e6);
    dns(2e6);
    dns(12e6);
    assert.equal(rows.length, 2);
    assert.equal(rows[1].reason, 'timeout');
    assert.equal(rows[1].values[COL['Total Fwd Packet']], 2);
    // Idle expiry: nothing for longer than the idle timeout (= flow timeout) emits the open flow.
    meter.advance(12e6 + 10e6 + 1);
    assert.equal(rows.length, 3);
    assert.equal(rows[2].reason, 'idle');
    assert.equal(meter.activeFlows, 0);
  });

  it('keeps memory bounded: beyond maxFlows the least recently active flow is evicted and counted', () => {
    const rows: FlowRow[] = [];
    const meter = new FlowMeter((f) => rows.push(f), { maxFlows: 100 });
    const { PacketView, decode } = decodeMod;
    const v = new PacketView();
    for (let i = 0; i < 1000; i++) {
      const pkt = ethernet(0x0800, ipv4(C, S, 17, udp(1000 + i, 53, new Uint8Array(4))));
      decode(pkt, 0, pkt.length, 1, v);
      meter.add(i, v);
    }
    assert.equal(meter.stats.evicted, 900);
    assert.equal(meter.activeFlows, 100);
    assert.ok(
      rows.every((r, i) => r.srcPort === 1000 + i && r.reason === 'evicted'),
      'oldest first',
    );
    meter.flush();
    assert.equal(rows.length, 1000);
    assert.equal(meter.stats.peakFlows, 100);
  });
});

import * as decodeMod from '../src/decode/decode.js';

describe('nadir flows and nadir detect on captures', () => {
  it('a model scores a capture exactly as it scores the flows CSV written from it', async () => {
    const { spawnSync } = await import('node:child_process');
    const { join } = await import('node:path');
    const { CLI } = await import('./helpers.js');
    const { Rng } = await import('../src/core/rng.js');
    const rng = new Rng(3);
    const w = new PcapWriter();
    let t = T0;
    for (let f = 0; f < 300; f++) {
      const n = 1 + rng.int(6);
      for (let i = 0; i < n; i++) {
        t += 1000 + rng.int(50_000);
        const toServer = i % 2 === 0;
        const size = 20 + rng.int(f === 299 ? 1400 : 200);
        const pkt = udp(toServer ? 20000 + f : 53, toServer ? 53 : 20000 + f, new Uint8Array(size));
        w.add(t, ethernet(0x0800, ipv4(toServer ? C : S, toServer ? S : C, 17, pkt)));
      }
    }
    const dir = tmp();
    const cap = writeFile(dir, 'dns.pcap', w.bytes());
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
    const flows = run('flows', cap, '-o', join(dir, 'flows.csv'), '-q');
    assert.equal(flows.status, 0, flows.stderr);
    const tr = run(
      'train',
      '--data',
      join(dir, 'flows.csv'),
      '--split',
      'none',
      '--out',
      join(dir, 'm'),
      '-q',
    );
    assert.equal(tr.status, 0, tr.stderr);
    const fromCsv = run(
      'detect',
      '--model',
      join(dir, 'm'),
      '--data',
      join(dir, 'flows.csv'),
      '--format',
      'csv',
      '--all',
      '-q',
    );
    const fromPcap = run(
      'detect',
      '--model',
      join(dir, 'm'),
      '--data',
      cap,
      '--format',
      'csv',
      '--all',
      '-q',
    );
    assert.equal(fromCsv.status, 0, fromCsv.stderr);
    assert.equal(fromPcap.status, 0, fromPcap.stderr);
    const scores = (out: string) =>
      new Map(
        out
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.split(','))
          .map((c) => [c[2], c[10]]),
      );
    const a = scores(fromCsv.stdout);
    const b = scores(fromPcap.stdout);
    assert.equal(a.size, 300);
    assert.deepEqual(b, a, 'same flow IDs, same scores');
    const mixed = run('detect', '--model', join(dir, 'm'), '--data', cap, join(dir, 'flows.csv'));
    assert.equal(mixed.status, 2);
    assert.match(mixed.stderr, /separate `nadir detect` runs/);
  });
});

describe('--cic-compat original', () => {
  it('writes the MachineLearningCVE names, which the CSV reader maps back to the same features', async () => {
    const { spawnSync } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { CLI } = await import('./helpers.js');
    const { FlowReader } = await import('../src/ingest/table.js');
    const { Diagnostics } = await import('../src/core/diagnostics.js');
    const w = new PcapWriter();
    for (const s of conversation) w.add(T0 + s[0], packet(s));
    const dir = tmp();
    const cap = writeFile(dir, 'conv.pcap', w.bytes());
    const run = (compat: string) => {
      const r = spawnSync(process.execPath, [
        CLI,
        'flows',
        cap,
        '--cic-compat',
        compat,
        '-o',
        join(dir, `${compat}.csv`),
        '-q',
      ]);
      assert.equal(r.status, 0, String(r.stderr));
      return join(dir, `${compat}.csv`);
    };
    const improved = run('improved');
    const original = run('original');
    const header = readFileSync(original, 'utf8').split('\n')[0].split(',');
    for (const name of [
      'Source IP',
      'Total Fwd Packets',
      'Total Backward Packets',
      'Init_Win_bytes_forward',
      'act_data_pkt_fwd',
    ])
      assert.ok(header.includes(name), name);
    for (const name of ['Fwd RST Flags', 'ICMP Type', 'Total TCP Flow Time'])
      assert.ok(!header.includes(name), name);
    const read = async (f: string) => {
      const rows: Record<string, number>[] = [];
      for await (const b of new FlowReader([f], {}, new Diagnostics()).batches()) {
        const k = b.plan.numericNames.length;
        for (let i = 0; i < b.n; i++)
          rows.push(Object.fromEntries(b.plan.numericNames.map((n, j) => [n, b.numeric[i * k + j]])));
      }
      return rows;
    };
    const [a] = await read(improved);
    const [o] = await read(original);
    for (const [name, v] of Object.entries(o)) assert.equal(v, a[name], name);
    assert.equal(o['Total Fwd Packet'], 8);
  });
});

describe('nadir flows from standard input', () => {
  it('reads a (gzip-compressed) capture piped to "-" like the file itself', async () => {
    const { spawnSync } = await import('node:child_process');
    const { gzipSync } = await import('node:zlib');
    const { CLI } = await import('./helpers.js');
    const w = new PcapWriter();
    for (const s of conversation) w.add(T0 + s[0], packet(s));
    const file = writeFile(tmp(), 'conv.pcap', w.bytes());
    const fromFile = spawnSync(process.execPath, [CLI, 'flows', file, '-q'], { encoding: 'utf8' });
    const fromStdin = spawnSync(process.execPath, [CLI, 'flows', '-', '-q'], {
      input: gzipSync(w.bytes()),
      encoding: 'utf8',
    });
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, fromFile.stdout);
    assert.equal(fromStdin.stdout.trim().split('\n').length, 2);
  });
});
