/**
 * NetFlow v5/v9 and IPFIX decoding: the 92 real exporter datagrams of the logstash fixtures against
 * an independent decoder (tshark's cflow dissector reads the same datagrams wrapped in a pcap),
 * hand-checked values, pairing and sampling, and bad input (truncation at every offset, lying
 * lengths, zero-length templates, unknown versions, template floods) that must never throw or grow
 * memory without bound.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PcapWriter } from '../src/capture/pcap-writer.js';
import { ExportMapper } from '../src/collect/mapper.js';
import { F, type FlowFields, NetflowDecoder } from '../src/collect/netflow.js';
import type { DatagramProblem } from '../src/collect/types.js';
import { Rng } from '../src/core/rng.js';
import type { ExportRow } from '../src/features/netflow.js';
import { formatIp } from '../src/flow/meter.js';
import { datasets, NO_DATASETS, tmp, writeFile } from './helpers.js';
import { ethernet, ipv4, udp } from './packets.js';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const NO_TSHARK = 'tshark not installed (apt-get install tshark); skipped';
const root = datasets();
const DAT = root ? join(root, 'netflow_ipfix_logstash_dat', 'dat') : '';

/** Fixture files grouped per exporter: template files first, then data, as an exporter sends them. */
function groups(): Map<string, string[]> {
  const files = readdirSync(DAT)
    .filter((f) => f.endsWith('.dat'))
    .sort();
  const g = new Map<string, string[]>();
  for (const f of files) {
    const k = f.replace(/\.dat$/, '').replace(/_(tpl|data|opttpl|tplopt|tpldata|tpls)[\w-]*$/, '');
    g.set(k, [...(g.get(k) ?? []), f]);
  }
  for (const fs of g.values()) fs.sort((a, b) => Number(/tpl/.test(b)) - Number(/tpl/.test(a)));
  return g;
}

interface Decoded {
  /** Per datagram: per field, the values of its flow records. */
  perDatagram: Record<string, (string | number)[]>[];
  problems: DatagramProblem[];
  records: number;
}

function decodeGroup(files: string[]): Decoded {
  const problems: DatagramProblem[] = [];
  let cur: Record<string, (string | number)[]> = {};
  let records = 0;
  const push = (k: string, v: string | number) => {
    cur[k] ??= [];
    cur[k].push(v);
  };
  const d = new NetflowDecoder({
    flow: (ff: FlowFields) => {
      records++;
      const v = ff.f[F.ipVersion] === 6 ? 6 : 4;
      const suffix = v === 6 ? 'v6' : '';
      push(`srcaddr${suffix}`, formatIp(ff.addr, 0, v));
      push(`dstaddr${suffix}`, formatIp(ff.addr, 4, v));
      if (!Number.isNaN(ff.f[F.packets])) push('packets', ff.f[F.packets]);
      if (!Number.isNaN(ff.f[F.protocol])) push('protocol', ff.f[F.protocol]);
    },
    problem: (p) => problems.push(p),
  });
  const perDatagram: Decoded['perDatagram'] = [];
  for (const f of files) {
    cur = {};
    d.datagram(readFileSync(join(DAT, f)), '192.0.2.1:2055', 1_700_000_000_000);
    perDatagram.push(cur);
  }
  return { perDatagram, problems, records };
}

/**
 * tshark's reading of the same datagrams, all groups in one capture (each group from its own UDP
 * source port, so templates stay apart): per group, per file, the listed cflow fields.
 */
function tsharkGroups(all: string[][], dir: string): Record<string, string[]>[][] {
  const w = new PcapWriter();
  // A fixture may hold several IPFIX messages back to back (a message stream); tshark reads one
  // message per UDP datagram, so each goes in its own packet and the results are merged per file.
  const at: [number, number][] = [];
  all.forEach((files, g) => {
    files.forEach((f, i) => {
      const payload = readFileSync(join(DAT, f));
      const parts: Uint8Array[] = [];
      if (payload.readUInt16BE(0) === 10)
        for (let o = 0; o + 16 <= payload.length; ) {
          const len = payload.readUInt16BE(o + 2);
          if (len < 16) break;
          parts.push(payload.subarray(o, o + len));
          o += len;
        }
      else parts.push(payload);
      for (const part of parts) {
        at.push([g, i]);
        w.add(
          1e15 + at.length,
          ethernet(0x0800, ipv4('192.0.2.1', '192.0.2.2', 17, udp(10000 + g, 2055, part))),
        );
      }
    });
  });
  const pcap = writeFile(dir, 'fixtures.pcap', w.bytes());
  const fields = [
    'cflow.srcaddr',
    'cflow.dstaddr',
    'cflow.srcaddrv6',
    'cflow.dstaddrv6',
    'cflow.packets',
    'cflow.protocol',
    '_ws.malformed',
  ];
  const r = spawnSync(
    'tshark',
    [
      '-r',
      pcap,
      '-d',
      'udp.port==2055,cflow',
      '-T',
      'fields',
      '-E',
      'occurrence=a',
      ...fields.flatMap((x) => ['-e', x]),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = all.map((files) => files.map(() => ({}) as Record<string, string[]>));
  r.stdout
    .split('\n')
    .slice(0, at.length)
    .forEach((line, p) => {
      const cols = line.split('\t');
      const o = out[at[p][0]][at[p][1]];
      fields.forEach((fname, i) => {
        const k = fname.replace(/^[^.]*\./, '');
        if (cols[i]) o[k] = [...(o[k] ?? []), ...cols[i].split(',')];
      });
    });
  return out;
}

/** Problems the fixtures are known to contain (and nothing else may appear). */
const EXPECTED_PROBLEMS: Record<string, string[]> = {
  // A lying record count: the header claims 55582 / 163 records, the datagram holds 30.
  netflow5_test_invalid01: ['bad-count@2', 'truncated@1464'],
  netflow5_test_invalid02: ['bad-count@2', 'truncated@1464'],
};

describe('NetFlow / IPFIX fixtures from ~30 exporters', () => {
  it('every datagram decodes, or fails with its precise reason; field values equal tshark’s decoding', {
    skip: !root ? NO_DATASETS : !haveTshark ? NO_TSHARK : false,
  }, () => {
    const dir = tmp();
    let total = 0;
    let compared = 0;
    const peerFailed: string[] = [];
    const all = [...groups()];
    const peers = tsharkGroups(
      all.map(([, files]) => files),
      dir,
    );
    for (const [g, [name, files]] of all.entries()) {
      const got = decodeGroup(files);
      total += got.records;
      assert.deepEqual(
        got.problems.map((p) => `${p.reason}@${p.offset}`),
        EXPECTED_PROBLEMS[name] ?? [],
        `${name}: ${got.problems.map((p) => p.message).join('; ')}`,
      );
      for (const p of got.problems) assert.match(p.exporter, /^192\.0\.2\.1:2055\/\d+$/);
      const peer = peers[g];
      got.perDatagram.forEach((mine, i) => {
        // tshark gives up on some datagrams (e.g. H3C's v9 template: "Trying to fetch an IPv4
        // address with length 2"); those are compared by the hand-checked cases only.
        if (peer[i].malformed) {
          peerFailed.push(files[i]);
          return;
        }
        for (const field of ['srcaddr', 'dstaddr', 'srcaddrv6', 'dstaddrv6', 'protocol', 'packets']) {
          // Templates with both address families list the unused one as zeros: not a flow's address.
          const unset = (x: string) => x === '0.0.0.0' || x === '::';
          const ours = (mine[field] ?? [])
            .map(String)
            .filter((x) => !unset(x))
            .sort();
          const theirs = (peer[i][field] ?? []).filter((x) => !unset(x)).sort();
          if (ours.length === 0 && theirs.length === 0) continue;
          // tshark lists options-data and IPv6 fields under other names; compare where it lists ours.
          if (theirs.length === 0) continue;
          compared += ours.length;
          assert.deepEqual(ours, theirs, `${files[i]}: ${field}`);
        }
      });
    }
    assert.ok(total >= 500, `records decoded: ${total}`);
    assert.ok(compared > 1500, `values compared with tshark: ${compared}`);
    // tshark (4.0) raises "Malformed Packet" on these four; NADIR decodes them (values checked by
    // hand for the H3C one below).
    assert.deepEqual(peerFailed, [
      'ipfix_test_netscaler_data.dat',
      'netflow9_test_h3c_data3281.dat',
      'netflow9_test_h3c_netstream_varstring_data3281.dat',
      'netflow9_test_iptnetflow_reduced_size_encoding_tpldata260.dat',
    ]);
  });

  it('hand-checked: netflow5.dat record 1 (bytes read off the hex dump)', {
    skip: !root ? NO_DATASETS : false,
  }, () => {
    const rows: ExportRow[] = [];
    const m = new ExportMapper((r) => rows.push(r), { pairing: false });
    const d = new NetflowDecoder({ flow: (ff) => m.add(ff, 0), problem: (p) => assert.fail(p.message) });
    d.datagram(readFileSync(join(DAT, 'netflow5.dat')), '192.0.2.1:2055', 0);
    assert.equal(rows.length, 2);
    const r = rows[0];
    assert.deepEqual(
      [r.srcIp, r.srcPort, r.dstIp, r.dstPort, r.protocol],
      ['10.0.2.2', 54435, '10.0.2.15', 22, 6],
    );
    // Header: sysUptime 0x0d35, unix 0x55451990 s + 0x10b57740 ns. First 0xffffffff (wrapped: 1 ms
    // before boot) and last 0x0a11: 2578 ms long, starting 3382 ms before the export.
    assert.equal(r.startMs, 0x55451990 * 1000 + Math.floor(0x10b57740 / 1e6) - 0xd36);
    assert.equal(r.values[1], 2578e3);
    assert.equal(r.values[2], 5); // packets
    assert.equal(r.values[4], 230); // octets
    assert.deepEqual(Array.from(r.values.subarray(13)), [0, 0, 0, 0, 1, 0]); // flags 0x10: ACK
  });

  it('hand-checked: the H3C v9 record tshark cannot decode (template read field by field)', {
    skip: !root ? NO_DATASETS : false,
  }, () => {
    const rows: ExportRow[] = [];
    const m = new ExportMapper((r) => rows.push(r), { pairing: false });
    const d = new NetflowDecoder({ flow: (ff) => m.add(ff, 0), problem: (p) => assert.fail(p.message) });
    for (const f of ['netflow9_test_h3c_tpl3281.dat', 'netflow9_test_h3c_data3281.dat'])
      d.datagram(readFileSync(join(DAT, f)), '192.0.2.1:2055', 0);
    assert.equal(rows.length, 16);
    const r = rows[0];
    // Template 3281: packets(8) 0x2b9, octets(8) 0x0fac0f, first 0xebed4183, last 0xebee9f32, …
    assert.deepEqual([r.srcIp, r.dstIp, r.protocol], ['10.22.166.30', '10.22.163.21', 6]);
    assert.equal(r.values[2], 697);
    assert.equal(r.values[4], 1027087);
    assert.equal(r.values[1], (0xebee9f32 - 0xebed4183) * 1000);
  });
});

// ---- Hand-built datagrams --------------------------------------------------------------------

function v5(
  records: {
    src: number;
    dst: number;
    sp: number;
    dp: number;
    pk: number;
    by: number;
    first: number;
    last: number;
    flags?: number;
  }[],
  seq = 0,
  sampling = 0,
): Uint8Array {
  const b = new DataView(new ArrayBuffer(24 + 48 * records.length));
  b.setUint16(0, 5);
  b.setUint16(2, records.length);
  b.setUint32(4, 100_000); // uptime
  b.setUint32(8, 1_700_000_000);
  b.setUint32(16, seq);
  b.setUint16(22, sampling);
  records.forEach((r, i) => {
    const o = 24 + 48 * i;
    b.setUint32(o, r.src);
    b.setUint32(o + 4, r.dst);
    b.setUint32(o + 16, r.pk);
    b.setUint32(o + 20, r.by);
    b.setUint32(o + 24, r.first);
    b.setUint32(o + 28, r.last);
    b.setUint16(o + 32, r.sp);
    b.setUint16(o + 34, r.dp);
    b.setUint8(o + 37, r.flags ?? 0);
    b.setUint8(o + 38, 6);
  });
  return new Uint8Array(b.buffer);
}

/** An IPFIX message with one template (id 256: src4, dst4, sport, dport, proto, packets, octets). */
function ipfixMessage(sets: Uint8Array[], seq = 0, domain = 1): Uint8Array {
  const len = 16 + sets.reduce((t, s) => t + s.length, 0);
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 10);
  dv.setUint16(2, len);
  dv.setUint32(4, 1_700_000_000);
  dv.setUint32(8, seq);
  dv.setUint32(12, domain);
  let o = 16;
  for (const s of sets) {
    b.set(s, o);
    o += s.length;
  }
  return b;
}

function set(id: number, body: number[]): Uint8Array {
  const b = new Uint8Array(4 + body.length);
  new DataView(b.buffer).setUint16(0, id);
  new DataView(b.buffer).setUint16(2, 4 + body.length);
  b.set(body, 4);
  return b;
}

const u16 = (x: number) => [x >> 8, x & 255];
const u32 = (x: number) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255];
const TEMPLATE_256 = set(2, [
  ...u16(256),
  ...u16(7),
  ...[8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 2, 8, 1, 8].flatMap(u16),
]);
function record256(src: number, dst: number, sp: number, dp: number, pk: number, by: number): number[] {
  return [
    ...u32(src),
    ...u32(dst),
    ...u16(sp),
    ...u16(dp),
    6,
    0,
    0,
    0,
    0,
    ...u32(pk),
    0,
    0,
    0,
    0,
    ...u32(by),
  ];
}

describe('decoder semantics', () => {
  it('pairs the two directions of a flow; expands counters by the sampling interval', () => {
    const rows: ExportRow[] = [];
    const m = new ExportMapper((r) => rows.push(r));
    const d = new NetflowDecoder({ flow: (ff) => m.add(ff, 0), problem: (p) => assert.fail(p.message) });
    const A = 0x0a000001;
    const B = 0x0a000002;
    // The server's reply starts 10 ms after the client's first packet; sampling 1 in 10.
    d.datagram(
      v5(
        [
          { src: B, dst: A, sp: 80, dp: 40000, pk: 3, by: 3000, first: 90_010, last: 99_000, flags: 0x12 },
          { src: A, dst: B, sp: 40000, dp: 80, pk: 4, by: 400, first: 90_000, last: 99_500, flags: 0x02 },
        ],
        0,
        (1 << 14) | 10,
      ),
      '192.0.2.9:5000',
      0,
    );
    assert.equal(rows.length, 1);
    const r = rows[0];
    assert.deepEqual([r.srcIp, r.srcPort, r.dstIp, r.dstPort], ['10.0.0.1', 40000, '10.0.0.2', 80]);
    assert.equal(r.values[1], 9_500e3); // 90.000 s → 99.500 s
    assert.deepEqual(Array.from(r.values.subarray(2, 6)), [40, 30, 4000, 30000]);
    assert.equal(r.values[14], 1); // SYN
    assert.equal(r.values[17], 1); // ACK from the reply
  });

  it('counts lost records from sequence gaps (v5 counts records, IPFIX records, v9 datagrams)', () => {
    const d = new NetflowDecoder({ flow: () => {}, problem: () => {} });
    const one = [{ src: 1, dst: 2, sp: 1, dp: 2, pk: 1, by: 1, first: 1, last: 1 }];
    d.datagram(v5(one, 100), '192.0.2.1:1', 0);
    d.datagram(v5(one, 101), '192.0.2.1:1', 0);
    d.datagram(v5(one, 110), '192.0.2.1:1', 0); // 8 records missing (102–109)
    d.datagram(v5(one, 5), '192.0.2.1:1', 0); // restart: not a loss
    const st = d.stats()[0];
    assert.equal(st.lost, 8);
    assert.equal(st.records, 4);
  });

  it('waits for a late template (bounded), applies IPFIX template withdrawal', () => {
    const rows: FlowFields[] = [];
    const problems: DatagramProblem[] = [];
    const d = new NetflowDecoder(
      { flow: (ff) => rows.push(ff), problem: (p) => problems.push(p) },
      { pendingTtlMs: 1000 },
    );
    const data = set(256, record256(1, 2, 3, 4, 5, 6));
    d.datagram(ipfixMessage([data], 0), '192.0.2.1:1', 0);
    assert.equal(rows.length, 0);
    assert.equal(d.stats()[0].pending, 1);
    d.datagram(ipfixMessage([TEMPLATE_256], 0), '192.0.2.1:1', 10);
    assert.equal(rows.length, 1, 'the parked data decodes when its template arrives');
    // Withdraw template 256: data for it now waits, then expires with a reported problem.
    d.datagram(ipfixMessage([set(2, [...u16(256), 0, 0])], 1), '192.0.2.1:1', 20);
    d.datagram(ipfixMessage([data], 1), '192.0.2.1:1', 30);
    assert.equal(rows.length, 1);
    d.expire(5000);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].reason, 'unknown-template');
    assert.equal(problems[0].template, 256);
    assert.equal(problems[0].exporter, '192.0.2.1:1/1');
  });
});

describe('bad input never throws and never grows without bound', () => {
  const valid: Uint8Array[] = [
    v5([{ src: 1, dst: 2, sp: 1, dp: 2, pk: 1, by: 1, first: 1, last: 1 }]),
    ipfixMessage([
      TEMPLATE_256,
      set(256, [...record256(1, 2, 3, 4, 5, 6), ...record256(7, 8, 9, 10, 11, 12)]),
    ]),
  ];
  if (root)
    for (const f of [
      'netflow9_test_cisco_asa_1_tpl.dat',
      'ipfix_test_yaf_tpls_option_tpl.dat',
      'netflow9_test_valid01.dat',
    ])
      valid.push(new Uint8Array(readFileSync(join(DAT, f))));

  it('truncated at every offset and mutated (10,000 seeded byte flips and lying lengths)', () => {
    let problems = 0;
    const d = new NetflowDecoder({ flow: () => {}, problem: () => problems++ });
    for (const v of valid)
      for (let cut = 0; cut < v.length; cut++) d.datagram(v.subarray(0, cut), '192.0.2.1:1', 0);
    const rng = new Rng(7);
    for (let i = 0; i < 10_000; i++) {
      const v = Uint8Array.from(valid[i % valid.length]);
      const flips = 1 + Math.floor(rng.next() * 4);
      for (let j = 0; j < flips; j++) v[Math.floor(rng.next() * v.length)] = Math.floor(rng.next() * 256);
      d.datagram(v, `192.0.2.${i % 50}:1`, i);
    }
    assert.ok(problems > 1000, `problems reported: ${problems}`);
  });

  it('zero-length templates, unknown versions, random bytes', () => {
    const problems: DatagramProblem[] = [];
    const d = new NetflowDecoder({ flow: () => {}, problem: (p) => problems.push(p) });
    // A template whose every field is 0 bytes long: its data set must not loop.
    const zero = set(2, [...u16(300), ...u16(2), 0, 1, 0, 0, 0, 2, 0, 0]);
    d.datagram(ipfixMessage([zero, set(300, [0, 0, 0, 0, 0, 0, 0, 0])]), '192.0.2.1:1', 0);
    assert.equal(problems.at(-1)?.reason, 'empty-template');
    d.datagram(Uint8Array.from([0, 7, 0, 0]), '192.0.2.1:1', 0);
    assert.equal(problems.at(-1)?.reason, 'unknown-version');
    assert.match(problems.at(-1)!.message, /version 7/);
    const rng = new Rng(3);
    for (let i = 0; i < 5000; i++) {
      const v = Uint8Array.from({ length: Math.floor(rng.next() * 1500) }, () =>
        Math.floor(rng.next() * 256),
      );
      if (v.length > 2) v[1] = [5, 9, 10][i % 3];
      if (v.length > 2) v[0] = 0;
      d.datagram(v, '192.0.2.2:1', i);
    }
  });

  it('a flood of unknown templates and data stays within the wait buffer and the template cap', () => {
    let problems = 0;
    const d = new NetflowDecoder(
      { flow: () => {}, problem: () => problems++ },
      { maxPendingBytes: 64 << 10, maxTemplatesPerExporter: 100, maxExporters: 20 },
    );
    for (let i = 0; i < 20_000; i++) {
      const id = 256 + (i % 60_000);
      d.datagram(ipfixMessage([set(id, new Array(200).fill(1))], i), `192.0.2.${i % 30}:1`, i);
      const tpl = set(2, [...u16(id), ...u16(1), ...u16(1), ...u16(4)]);
      d.datagram(ipfixMessage([tpl], i, 2), '192.0.2.200:1', i);
    }
    assert.ok(d.exporters.size <= 20);
    for (const e of d.exporters.values()) {
      assert.ok(e.pendingBytes <= 64 << 10);
      assert.ok(e.templates.size <= 100);
    }
    assert.ok(problems > 10_000);
  });
});
