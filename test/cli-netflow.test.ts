/**
 * The NetFlow feature set through the CLI, as a user runs it: `nadir collect` receives NetFlow v5
 * over UDP and writes a CSV; `nadir train --features netflow` on CIC data makes a model that
 * scores that CSV, a Zeek conn.log and a Suricata eve.json (row counts checked against the files);
 * a CIC model refuses flow logs with what to do instead.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportCsvHeader, exportCsvRow, exportJsonRow } from '../src/cli/collect.js';
import { type ExportRow, netflowValues } from '../src/features/netflow.js';
import { CLI, datasets, NO_DATASETS, tmp, writeFile } from './helpers.js';

function nadir(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One NetFlow v5 datagram of TCP flows (src, dst as 32-bit, ports, packets, bytes). */
function v5(flows: [number, number, number, number, number, number][], seq: number): Buffer {
  const b = Buffer.alloc(24 + 48 * flows.length);
  b.writeUInt16BE(5, 0);
  b.writeUInt16BE(flows.length, 2);
  b.writeUInt32BE(100_000, 4);
  b.writeUInt32BE(1_700_000_000, 8);
  b.writeUInt32BE(seq, 16);
  flows.forEach(([src, dst, sp, dp, pk, by], i) => {
    const o = 24 + 48 * i;
    b.writeUInt32BE(src >>> 0, o);
    b.writeUInt32BE(dst >>> 0, o + 4);
    b.writeUInt32BE(pk, o + 16);
    b.writeUInt32BE(by, o + 20);
    b.writeUInt32BE(90_000, o + 24);
    b.writeUInt32BE(99_000, o + 28);
    b.writeUInt16BE(sp, o + 32);
    b.writeUInt16BE(dp, o + 34);
    b.writeUInt8(0x1b, o + 37);
    b.writeUInt8(6, o + 38);
  });
  return b;
}

describe('nadir collect', () => {
  it('writes the flows it receives (directions paired) and an exporter table on SIGINT', {
    timeout: 60_000,
  }, async () => {
    const dir = tmp();
    const out = join(dir, 'flows.csv');
    const child = spawn(
      process.execPath,
      [CLI, 'collect', '--netflow', '0', '--collect-host', '127.0.0.1', '-o', out],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err += s;
    });
    let port = 0;
    for (let i = 0; i < 200 && !port; i++) {
      await sleep(100);
      port = Number(/netflow udp\/(\d+)/.exec(err)?.[1] ?? 0);
    }
    assert.ok(port, err);
    const sock = createSocket('udp4');
    const A = 0x0a000001;
    const B = 0xc0a80102;
    // 10 request/reply pairs, then one record whose reverse never comes.
    const flows: [number, number, number, number, number, number][] = [];
    for (let i = 0; i < 10; i++) flows.push([A, B, 40000 + i, 443, 5, 400], [B, A, 443, 40000 + i, 7, 7000]);
    flows.push([A, B, 50000, 22, 3, 180]);
    await new Promise<void>((r) => sock.send(v5(flows, 0), port, '127.0.0.1', () => r()));
    // A sequence gap of 100 records: lost.
    await new Promise<void>((r) =>
      sock.send(v5([[A, B, 50001, 22, 1, 60]], 121), port, '127.0.0.1', () => r()),
    );
    sock.close();
    await sleep(500);
    child.kill('SIGINT');
    await once(child, 'exit');
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.match(lines[0], /^Flow ID,Src IP,Src Port,Dst IP,Dst Port,Timestamp,Protocol,Flow Duration,/);
    assert.equal(lines.length - 1, 12, '10 paired flows + 2 one-way');
    const header = lines[0].split(',');
    const paired = lines
      .slice(1)
      .map((l) => l.split(','))
      .find((c) => c[2] === '40003')!;
    const col = (name: string) => paired[header.indexOf(name)];
    assert.deepEqual(
      [
        'Src IP',
        'Dst IP',
        'Total Fwd Packet',
        'Total Bwd packets',
        'Fwd IP Bytes',
        'Bwd IP Bytes',
        'Flow Duration',
      ].map(col),
      ['10.0.0.1', '192.168.1.2', '5', '7', '400', '7000', '9000000'],
    );
    assert.match(err, /exporter.*datagrams.*records.*lost/s);
    assert.match(err, /127\.0\.0\.1:\d+\/0 .* netflow5 .* 2 .* 22 .* 100 /);
    assert.match(err, /12 flows written/);
  });
});

describe('the NetFlow feature set on CIC data, Zeek and Suricata (shared datasets)', () => {
  const root = datasets();
  it('a --features netflow model scores Zeek and Suricata logs; a CIC model refuses them', {
    skip: root ? false : NO_DATASETS,
    timeout: 120_000,
  }, () => {
    const dir = tmp();
    const cic = join(root!, 'cicids2017_improved_sampled');
    const nf = join(dir, 'nf');
    const t = nadir('train', '--data', cic, '--features', 'netflow', '--out', nf, '-q');
    assert.equal(t.status, 0, t.stderr);
    const manifest = JSON.parse(readFileSync(join(nf, 'manifest.json'), 'utf8'));
    assert.equal(manifest.featureSet, 'netflow');
    assert.ok(
      manifest.features.inputs.every((f: { name: string }) => !/IAT|Packet Length Std|Bulk/.test(f.name)),
    );
    // Every Suricata flow event is scored (counted independently from the file).
    const eve = join(root!, 'suricata_eve_zeus', 'eve.json');
    const flowEvents = readFileSync(eve, 'utf8')
      .split('\n')
      .filter((l) => /"event_type":\s*"flow"/.test(l)).length;
    const d = nadir('detect', '--model', nf, '--data', eve, '--format', 'json', '--all', '-q');
    assert.equal(d.status, 0, d.stderr);
    const verdicts = d.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(verdicts.length, flowEvents);
    assert.ok(verdicts.every((v) => typeof v.score === 'number' && typeof v.isAnomaly === 'boolean'));
    const zeek = join(root!, 'zeek_conn_logs_baseline', 'logs', 'core.tunnels.ayiya.conn.log');
    const z = nadir('detect', '--model', nf, '--data', zeek, '--format', 'json', '--all', '-q');
    assert.equal(z.status, 0, z.stderr);
    const zeekRows = readFileSync(zeek, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#')).length;
    assert.equal(z.stdout.trim().split('\n').length, zeekRows);
    // The same flows as collected CSV and as JSON lines score the same (one vocabulary, two readers).
    const rows: ExportRow[] = [];
    for (let i = 0; i < 40; i++)
      rows.push({
        values: netflowValues(i % 3 === 0 ? 17 : 6, {
          durationUs: 1000 * (i * 37),
          fwdPackets: 1 + (i % 9),
          bwdPackets: i % 4,
          fwdBytes: 60 * (1 + (i % 9)) + i,
          bwdBytes: 900 * (i % 4),
          tcpFlags: i % 3 === 0 ? 0 : 0x12,
        }),
        srcIp: `10.1.0.${i}`,
        dstIp: '10.2.0.1',
        srcPort: 30000 + i,
        dstPort: 443,
        protocol: i % 3 === 0 ? 17 : 6,
        startMs: 1_700_000_000_000 + i,
        source: 'test',
      });
    const csv = writeFile(dir, 'flows.csv', `${exportCsvHeader()}\n${rows.map(exportCsvRow).join('\n')}\n`);
    const jsonl = writeFile(dir, 'flows.jsonl', `${rows.map(exportJsonRow).join('\n')}\n`);
    const scores = (file: string) => {
      const r = nadir('detect', '--model', nf, '--data', file, '--format', 'json', '--all', '-q');
      assert.equal(r.status, 0, r.stderr);
      return r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((v) => `${v.srcIp} ${v.score.toFixed(6)}`);
    };
    assert.deepEqual(scores(jsonl), scores(csv));
    // A model on every CIC column cannot score a flow log: it says which columns and what to do.
    const full = join(dir, 'cic');
    assert.equal(nadir('train', '--data', cic, '--out', full, '-q').status, 0);
    const refused = nadir('detect', '--model', full, '--data', eve);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /cannot score flow logs: .*Flow IAT Mean|cannot score flow logs/);
    assert.match(refused.stderr, /--features netflow/);
  });
});
