/**
 * Series from flows (`nadir series aggregate`): a flow CSV in the NetFlow feature set (as
 * `nadir collect` writes it) with every bucket's figures worked out by hand, including the
 * entropies; a zero row for a key that fell silent; and a spoofed SYN flood capture whose totals
 * equal tshark's reading of the same packets (when tshark and the datasets are present).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXPORT_ID_COLUMNS, NETFLOW_FEATURES } from '../src/features/netflow.js';
import { CLI, datasets, NO_DATASETS, tmp, writeFile } from './helpers.js';

function nadir(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface F {
  t: string;
  src: string;
  dst: string;
  dport: number;
  proto: number;
  pk: [number, number];
  by: [number, number];
  syn: number;
  ack: number;
}

function flowCsv(flows: F[]): string {
  const head = [...EXPORT_ID_COLUMNS, ...NETFLOW_FEATURES];
  const lines = [head.join(',')];
  for (const f of flows) {
    const v: Record<string, number> = {
      Protocol: f.proto,
      'Total Fwd Packet': f.pk[0],
      'Total Bwd packets': f.pk[1],
      'Fwd IP Bytes': f.by[0],
      'Bwd IP Bytes': f.by[1],
      'SYN Flag': f.syn,
      'ACK Flag': f.ack,
    };
    const ids = [`${f.src}-${f.dst}`, f.src, 40000, f.dst, f.dport, f.t];
    lines.push([...ids, ...NETFLOW_FEATURES.map((c) => v[c] ?? 0)].join(','));
  }
  return `${lines.join('\n')}\n`;
}

const FLOWS: F[] = [
  {
    t: '2024-01-01 10:00:05',
    src: '10.0.0.1',
    dst: '10.9.9.9',
    dport: 80,
    proto: 6,
    pk: [3, 2],
    by: [300, 200],
    syn: 1,
    ack: 1,
  },
  {
    t: '2024-01-01 10:00:20',
    src: '10.0.0.2',
    dst: '10.9.9.9',
    dport: 80,
    proto: 6,
    pk: [1, 0],
    by: [60, 0],
    syn: 1,
    ack: 0,
  },
  {
    t: '2024-01-01 10:00:40',
    src: '10.0.0.2',
    dst: '10.9.9.9',
    dport: 443,
    proto: 6,
    pk: [1, 0],
    by: [60, 0],
    syn: 1,
    ack: 0,
  },
  {
    t: '2024-01-01 10:00:50',
    src: '10.0.0.1',
    dst: '10.8.8.8',
    dport: 53,
    proto: 17,
    pk: [1, 1],
    by: [70, 90],
    syn: 0,
    ack: 0,
  },
  {
    t: '2024-01-01 10:01:10',
    src: '10.0.0.3',
    dst: '10.9.9.9',
    dport: 80,
    proto: 6,
    pk: [2, 2],
    by: [120, 100],
    syn: 1,
    ack: 1,
  },
];

function parse(csv: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of csv.trim().split('\n').slice(1)) {
    const [t, k, metric, value] = l.split(',');
    m.set(`${t.slice(11, 16)} ${k} ${metric}`, Number(value));
  }
  return m;
}

describe('nadir series aggregate', () => {
  it('counts flows per bucket and destination; every figure as worked out by hand', () => {
    const dir = tmp();
    const file = writeFile(dir, 'flows.csv', flowCsv(FLOWS));
    const out = join(dir, 'series.csv');
    const r = nadir('series', 'aggregate', '-d', file, '--key', 'dst', '--bucket', '1m', '-o', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /5 flows from 1 file\(s\)/);
    const text = readFileSync(out, 'utf8');
    assert.equal(text.split('\n')[0], 'timestamp,dst,metric,value');
    const m = parse(text);
    const h = -((1 / 3) * Math.log2(1 / 3) + (2 / 3) * Math.log2(2 / 3));
    const expect: [string, number][] = [
      ['10:00 10.9.9.9 flows', 3],
      ['10:00 10.9.9.9 packets', 7],
      ['10:00 10.9.9.9 bytes', 620],
      ['10:00 10.9.9.9 sources', 2],
      ['10:00 10.9.9.9 dst_ports', 2],
      ['10:00 10.9.9.9 syn_only_ratio', 2 / 3],
      ['10:00 10.9.9.9 src_entropy', h],
      ['10:00 10.9.9.9 dst_entropy', 0],
      ['10:00 10.8.8.8 flows', 1],
      ['10:00 10.8.8.8 bytes', 160],
      ['10:01 10.9.9.9 flows', 1],
      ['10:01 10.9.9.9 syn_only_ratio', 0],
      // 10.8.8.8 fell silent: a zero row, not a missing one.
      ['10:01 10.8.8.8 flows', 0],
    ];
    for (const [k, v] of expect)
      assert.ok(Math.abs((m.get(k) ?? Number.NaN) - v) < 1e-5, `${k}: ${m.get(k)} vs ${v}`);
    assert.equal(m.has('10:00 10.8.8.8 syn_only_ratio'), false, 'no TCP flows: no ratio');
    // The output reads back as series (two buckets: too short to train, and said so).
    const t = nadir('series', 'train', '-d', out, '-k', 'dst', '-o', join(dir, 'm'));
    assert.equal(t.code, 0, t.stderr);
    // 2 keys × 8 metrics, less 10.8.8.8 syn_only_ratio (it never had a TCP flow).
    assert.match(t.stderr, /→ 15 series/);
    assert.match(t.stdout, /10\.9\.9\.9 flows: too short for the baseline: 2 points/);
  });

  it('JSON lines of flow records aggregate exactly as the same flows in CSV; a broken line is reported', () => {
    const dir = tmp();
    const csv = writeFile(dir, 'flows.csv', flowCsv(FLOWS));
    const records = FLOWS.map((f) =>
      JSON.stringify({
        srcIp: f.src,
        dstIp: f.dst,
        dstPort: f.dport,
        protocol: f.proto,
        timestamp: f.t,
        features: {
          'Total Fwd Packet': f.pk[0],
          'Total Bwd packets': f.pk[1],
          'Fwd IP Bytes': f.by[0],
          'Bwd IP Bytes': f.by[1],
          'SYN Flag': f.syn,
          'ACK Flag': f.ack,
        },
      }),
    );
    records.splice(2, 0, '{"srcIp": "10.0.0.9", broken');
    const jsonl = writeFile(dir, 'flows.jsonl', `${records.join('\n')}\n`);
    const a = nadir('series', 'aggregate', '-d', csv, '--key', 'dst', '--bucket', '1m');
    const b = nadir('series', 'aggregate', '-d', jsonl, '--key', 'dst', '--bucket', '1m');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, a.stdout);
    assert.match(b.stderr, /flows\.jsonl:3: not JSON/);
  });

  it('a spoofed SYN flood: packets, bytes and sources equal tshark on the same capture', (t) => {
    const ds = datasets();
    if (!ds) return t.skip(NO_DATASETS);
    const pcap = join(ds, 'pcap_ddos_stopddos', 'captures', 'pkt.TCP.synflood.spoofed.pcap');
    if (!existsSync(pcap)) return t.skip(NO_DATASETS);
    const ts = spawnSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'ip.src', '-e', 'frame.len'], {
      encoding: 'utf8',
    });
    if (ts.error) {
      if (process.env.NADIR_REQUIRE_SERVICES === '1') assert.fail('tshark is required under .ci/run');
      return t.skip('tshark not installed; skipped');
    }
    let packets = 0;
    let bytes = 0;
    const sources = new Set<string>();
    for (const l of ts.stdout.trim().split('\n')) {
      const [src, len] = l.split('\t');
      packets++;
      bytes += Number(len);
      sources.add(src);
    }
    const r = nadir('series', 'aggregate', '-d', pcap, '--key', 'none', '--bucket', '1h', '-q');
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    const sum = (metric: string) => rows.filter((f) => f[2] === metric).reduce((a, f) => a + Number(f[3]), 0);
    assert.equal(sum('packets'), packets);
    assert.equal(sum('bytes'), bytes);
    const srcRows = rows.filter((f) => f[2] === 'sources');
    if (srcRows.length === 1) assert.equal(Number(srcRows[0][3]), sources.size);
    assert.ok(
      rows.filter((f) => f[2] === 'syn_only_ratio').every((f) => Number(f[3]) > 0.95),
      'a SYN flood',
    );
  });
});
