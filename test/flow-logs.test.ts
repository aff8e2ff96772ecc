/**
 * Zeek conn.log (TSV, JSON) and Suricata eve.json importers. Expectations are counted here from
 * the files themselves with plain line filters, or read off single records by hand (the values
 * in the hand-checked rows are copied from the log lines quoted beside them), never taken from
 * the importer. The JSON fixtures in test/fixtures/ are this project's own: each is the Zeek
 * JSON rendering (one object per record, unset fields left out, as Zeek's JSON writer does) of a
 * TSV baseline from ../shared/datasets/zeek_conn_logs_baseline: `zeek-conn.core.ppp.ndjson` of
 * logs/core.ppp.conn.log (real timestamps), `zeek-conn.core.tunnels.ayiya.ndjson` of
 * logs/core.tunnels.ayiya.conn.log (whose canonified `ts` is left out).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Diagnostics, type Problem } from '../src/core/diagnostics.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../src/decode/decode.js';
import { type ExportRow, type FlowCounts, NF, netflowValues } from '../src/features/netflow.js';
import {
  type FlowLogSummary,
  historyFlags,
  isoToMicros,
  readFlowLog,
  sniffFlowLog,
} from '../src/ingest/flow-logs.js';
import { datasets, MLCVE_HEADER, NO_DATASETS, ROOT, tmp, writeFile } from './helpers.js';

const root = datasets();
const ZEEK = root ? join(root, 'zeek_conn_logs_baseline', 'logs') : '';
const EVE = root ? join(root, 'suricata_eve_zeus', 'eve.json') : '';
const FIXTURES = join(ROOT, 'test', 'fixtures');

interface Read {
  rows: ExportRow[];
  summary: FlowLogSummary;
  problems: Problem[];
  diag: Diagnostics;
}

async function read(file: string): Promise<Read> {
  const rows: ExportRow[] = [];
  const problems: Problem[] = [];
  const diag = new Diagnostics((p) => problems.push(p), 1_000_000);
  const summary = await readFlowLog(file, diag, (r) => rows.push(r));
  return { rows, summary, problems, diag };
}

function counts(c: Partial<FlowCounts>): FlowCounts {
  return { durationUs: 0, fwdPackets: 0, bwdPackets: 0, fwdBytes: 0, bwdBytes: 0, tcpFlags: 0, ...c };
}

/** The row's values against the base measurements (every derived feature through netflowValues). */
function assertValues(r: ExportRow, protocol: number, c: Partial<FlowCounts>): void {
  assert.deepEqual([...r.values], [...netflowValues(protocol, counts(c))]);
}

function skippedTotal(s: FlowLogSummary): number {
  return Object.values(s.skipped).reduce((a, b) => a + b, 0);
}

/** Rows without their `source` (to compare the same flows read from different files). */
function strip(rows: ExportRow[]): Omit<ExportRow, 'source'>[] {
  return rows.map(({ source: _, ...r }) => ({ ...r, values: [...r.values] as unknown as Float64Array }));
}

describe('historyFlags', () => {
  it('maps Zeek history letters of both directions onto TCP flags', () => {
    assert.equal(historyFlags('ShADadFf'), TCP_SYN | TCP_ACK | TCP_PSH | TCP_FIN);
    assert.equal(historyFlags('H'), TCP_SYN | TCP_ACK);
    assert.equal(historyFlags('^r'), TCP_RST);
    assert.equal(historyFlags('Q'), TCP_SYN);
    assert.equal(historyFlags('Dd'), TCP_PSH);
    assert.equal(historyFlags('CcGgTtWw^'), 0);
    assert.equal(historyFlags(''), 0);
  });
});

describe('isoToMicros', () => {
  it('reads the ISO 8601 forms Zeek and Suricata write, to the microsecond', () => {
    const t = Date.UTC(2024, 11, 19, 0, 35, 54) * 1000 + 312357;
    assert.equal(isoToMicros('2024-12-18T19:35:54.312357-0500'), t);
    assert.equal(isoToMicros('2024-12-19T00:35:54.312357Z'), t);
    assert.equal(isoToMicros('2024-12-19T06:05:54.312357+05:30'), t);
    assert.equal(isoToMicros('2024-12-19 00:35:54.3123574'), t); // no zone: UTC; ns rounded
    assert.equal(isoToMicros('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29) * 1000);
    assert.equal(isoToMicros('1969-12-31T23:59:59.5Z'), -500_000);
    for (const bad of [
      '',
      'yesterday',
      '2024-13-01T00:00:00Z',
      '2024-01-01T00:00:00.Z',
      '2024-01-01T00:00:00+5',
    ])
      assert.ok(Number.isNaN(isoToMicros(bad)), bad);
  });
});

describe('Zeek conn.log baselines (shared datasets)', () => {
  it('imports every log with zero rejects and one row per data line', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    const files = readdirSync(ZEEK).filter((f) => f.endsWith('.conn.log'));
    assert.equal(files.length, 187);
    let nonComment = 0;
    let dataLines = 0;
    let rows = 0;
    let projections = 0;
    const warnings: Problem[] = [];
    for (const f of files) {
      const path = join(ZEEK, f);
      const lines = readFileSync(path, 'utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      const records = lines.filter((l) => l !== '' && !l.startsWith('#')).length;
      // Logs without a #fields header are zeek-cut projections: their first line names the fields.
      const cut = !lines.some((l) => l.startsWith('#fields'));
      nonComment += records;
      dataLines += records - (cut ? 1 : 0);
      if (cut) projections++;

      assert.equal(sniffFlowLog(path), 'zeek-tsv', f);
      const r = await read(path);
      assert.equal(r.summary.format, 'zeek-tsv');
      assert.equal(r.summary.rejected, 0, `${f}: ${JSON.stringify(r.summary.reasons)}`);
      assert.equal(r.summary.rows, records - (cut ? 1 : 0), f);
      assert.equal(r.rows.length, r.summary.rows);
      assert.equal(r.summary.lines, lines.length, f);
      assert.equal(r.summary.rows + r.summary.rejected + skippedTotal(r.summary), r.summary.lines, f);
      assert.equal(r.problems.filter((p) => p.severity === 'error').length, 0, f);
      warnings.push(...r.problems.filter((p) => p.severity !== 'error'));
      rows += r.summary.rows;
    }
    // SOURCE.md's "900 records" counts every non-comment line, the 63 zeek-cut name lines included.
    assert.equal(nonComment, 900);
    assert.equal(projections, 63);
    assert.equal(dataLines, 837);
    assert.equal(rows, 837);
    // The only warnings: layouts lacking flow fields (62 projections, and one `#fields uid` log).
    assert.ok(warnings.every((p) => p.reason === 'missing-fields'));
    assert.equal(warnings.length, 63);
  });

  it('reads hand-checked rows of three layout variants exactly', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    // core.ppp.conn.log line 12, a plain layout with a real timestamp:
    // 0.669020 C4J4Th3PJpwUYZZ6gc 193.167.0.100 42834 193.167.100.100 443 udp - 0.112400 4039 11996 SF F F 0 Dd 10 4319 12 12332 - 17
    const ppp = await read(join(ZEEK, 'core.ppp.conn.log'));
    const u = ppp.rows[2];
    assert.equal(u.srcIp, '193.167.0.100');
    assert.equal(u.dstIp, '193.167.100.100');
    assert.equal(u.srcPort, 42834);
    assert.equal(u.dstPort, 443);
    assert.equal(u.protocol, 17);
    assert.ok(Math.abs(u.startMs - 669.02) < 1e-6, String(u.startMs));
    assert.equal(u.values[NF['Flow Duration']], 112400);
    assert.equal(u.values[NF['Total Fwd Packet']], 10);
    assert.equal(u.values[NF['Total Bwd packets']], 12);
    assert.equal(u.values[NF['Fwd IP Bytes']], 4319);
    assert.equal(u.values[NF['Bwd IP Bytes']], 12332);
    assertValues(u, 17, {
      durationUs: 112400,
      fwdPackets: 10,
      bwdPackets: 12,
      fwdBytes: 4319,
      bwdBytes: 12332,
    });
    assert.equal(u.label, undefined);
    // Line 10, ICMPv6 (Zeek's proto `icmp`, ip_proto 58): type 135 and counterpart 136 as ports.
    // 0.000000 CHhAvVGS1DHFjwGM9 :: 135 ff02::1:ff00:3 136 icmp - 0.008000 48 0 OTH T F 0 - 2 144 0 0 - 58
    const i6 = ppp.rows[0];
    assert.deepEqual(
      [i6.srcIp, i6.srcPort, i6.dstIp, i6.dstPort, i6.protocol, i6.startMs],
      ['::', 135, 'ff02::1:ff00:3', 136, 58, 0],
    );
    assertValues(i6, 58, { durationUs: 8000, fwdPackets: 2, fwdBytes: 144 });

    // field-name-map.conn.log line 10, renamed fields (src, src_port, dst, dst_port):
    // XXXXXXXXXX.XXXXXX CFSwNi4CNGxcuffo49 173.192.163.128 80 141.142.220.235 6705 tcp - - - - OTH F F 0 H 1 48 0 0 - 6
    const map = await read(join(ZEEK, 'scripts.base.frameworks.logging.field-name-map.conn.log'));
    const m = map.rows[0];
    assert.deepEqual(
      [m.srcIp, m.srcPort, m.dstIp, m.dstPort, m.protocol],
      ['173.192.163.128', 80, '141.142.220.235', 6705, 6],
    );
    assert.ok(Number.isNaN(m.startMs));
    assert.equal(m.values[NF['Flow Duration']], 0); // duration unset
    assert.equal(m.values[NF['SYN Flag']], 1); // H: SYN+ACK
    assert.equal(m.values[NF['ACK Flag']], 1);
    assert.equal(m.values[NF['FIN Flag']], 0);
    assertValues(m, 6, { fwdPackets: 1, fwdBytes: 48, tcpFlags: TCP_SYN | TCP_ACK });

    // core.tunnels.ayiya.conn.log line 13, canonified timestamp, IPv6 TCP:
    // XXXXXXXXXX.XXXXXX C37jN32gN3y3AZzyf6 2001:4978:f:4c::2 53382 2001:4860:b002::68 80 tcp http 2.101052 2981 4665 S1 F F 0 ShADad 10 3605 11 5329 C4J4Th3PJpwUYZZ6gc 6
    const ayiya = await read(join(ZEEK, 'core.tunnels.ayiya.conn.log'));
    const t = ayiya.rows[3];
    assert.deepEqual(
      [t.srcIp, t.srcPort, t.dstIp, t.dstPort, t.protocol],
      ['2001:4978:f:4c::2', 53382, '2001:4860:b002::68', 80, 6],
    );
    assert.ok(Number.isNaN(t.startMs));
    assert.equal(t.values[NF['Flow Duration']], 2101052);
    assert.equal(t.values[NF['PSH Flag']], 1);
    assert.equal(t.values[NF['RST Flag']], 0);
    assertValues(t, 6, {
      durationUs: 2101052,
      fwdPackets: 10,
      bwdPackets: 11,
      fwdBytes: 3605,
      bwdBytes: 5329,
      tcpFlags: TCP_SYN | TCP_ACK | TCP_PSH,
    });

    // The same first record under the other layouts: `id_orig_h` scope separator, extension
    // columns in front, both renamings at once.
    for (const f of [
      'scripts.base.frameworks.logging.scope_sep.conn.log',
      'scripts.base.frameworks.logging.field-extension-complex.conn.log',
      'scripts.base.frameworks.logging.scope_sep_and_field_name_map.conn.log',
    ]) {
      const r = await read(join(ZEEK, f));
      assert.deepEqual(strip(r.rows.slice(0, 1)), strip([m]), f);
    }
  });

  it('reads a header-less zeek-cut projection by its name line', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    // core.tunnels.geneve-arp.conn.log: a line of field names, then
    // XXXXXXXXXX.XXXXXX CHhAvVGS1DHFjwGM9 10.0.0.1 12345 10.0.0.2 6081 udp geneve - - - S0 T T 0 D 1 64 0 0 - 17
    const r = await read(join(ZEEK, 'core.tunnels.geneve-arp.conn.log'));
    assert.deepEqual(r.summary.skipped, { comment: 1, header: 1 });
    assert.equal(r.rows.length, 1);
    assert.deepEqual([r.rows[0].srcIp, r.rows[0].dstPort, r.rows[0].protocol], ['10.0.0.1', 6081, 17]);
    assertValues(r.rows[0], 17, { fwdPackets: 1, fwdBytes: 64 });
    assert.equal(r.problems.length, 0);
  });

  it('imports the JSON renderings exactly as the TSV logs they come from', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    for (const [json, log] of [
      ['zeek-conn.core.ppp.ndjson', 'core.ppp.conn.log'],
      ['zeek-conn.core.tunnels.ayiya.ndjson', 'core.tunnels.ayiya.conn.log'],
    ]) {
      const j = await read(join(FIXTURES, json));
      const t = await read(join(ZEEK, log));
      assert.equal(j.summary.format, 'zeek-json');
      assert.equal(j.summary.rejected, 0);
      assert.ok(j.rows.length > 0);
      assert.deepEqual(strip(j.rows), strip(t.rows), json);
    }
  });
});

describe('Zeek JSON variants', () => {
  const ppp = () => readFileSync(join(FIXTURES, 'zeek-conn.core.ppp.ndjson'), 'utf8');

  it('reads ISO 8601 and millisecond timestamps, other scope separators and nested ids', async () => {
    const base = await read(join(FIXTURES, 'zeek-conn.core.ppp.ndjson'));
    assert.equal(base.rows.length, 3);
    const dir = tmp();
    const objs = ppp()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // ISO 8601 with microseconds, as Zeek's JSON::TS_ISO8601 writes it.
    const isoMicros = (ts: number) => {
      const us = Math.round(ts * 1e6);
      return new Date(Math.floor(us / 1000))
        .toISOString()
        .replace('Z', `${String(us % 1000).padStart(3, '0')}Z`);
    };
    const iso = objs.map((o) => ({ ...o, ts: isoMicros(o.ts as number) }));
    const millis = objs.map((o) => ({ ...o, ts: Math.round((o.ts as number) * 1e6) / 1e3 + 1e12 }));
    const under = objs.map((o) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace('.', '_'), v])),
    );
    const nested = objs.map((o) => {
      const { 'id.orig_h': oh, 'id.orig_p': op, 'id.resp_h': rh, 'id.resp_p': rp, ...rest } = o;
      return { ...rest, id: { orig_h: oh, orig_p: op, resp_h: rh, resp_p: rp } };
    });
    const lines = (a: object[]) => `${a.map((o) => JSON.stringify(o)).join('\n')}\n`;
    for (const [name, data, shift] of [
      ['iso.json', iso, 0],
      ['under.json', under, 0],
      ['nested.json', nested, 0],
      ['millis.json', millis, 1e12],
    ] as const) {
      const f = writeFile(dir, name, lines(data));
      assert.equal(sniffFlowLog(f), 'zeek-json', name);
      const r = await read(f);
      assert.equal(r.summary.rejected, 0, name);
      const want = strip(base.rows).map((x) => ({ ...x, startMs: x.startMs + shift }));
      const got = strip(r.rows);
      got.forEach((g, i) => {
        assert.ok(Math.abs(g.startMs - want[i].startMs) < 1e-3, `${name}: ${g.startMs}`);
        g.startMs = want[i].startMs;
      });
      assert.deepEqual(got, want, name);
    }
  });

  it('skips other logs of a mixed stream by their _path', async () => {
    const dir = tmp();
    const conn = ppp().trim().split('\n')[2];
    const f = writeFile(
      dir,
      'mixed.json',
      `${JSON.stringify({ _path: 'conn', ...JSON.parse(conn) })}\n{"_path":"dns","ts":1,"uid":"x","id.orig_h":"10.0.0.1","query":"a"}\n`,
    );
    const r = await read(f);
    assert.equal(r.rows.length, 1);
    assert.deepEqual(r.summary.skipped, { dns: 1 });
  });
});

describe('Suricata eve.json (shared datasets)', () => {
  it('imports every flow event, hand-checked rows, and labels from alerts', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    const text = readFileSync(EVE, 'utf8');
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    // Independent counts: flow-event line numbers, and alert flow ids seen before their flow event.
    const flowLines: number[] = [];
    const flowIds = new Set<string>();
    const alertIds = new Set<string>();
    const alertBeforeFlow = new Set<string>();
    lines.forEach((l, i) => {
      const id = /"flow_id":(\d+)/.exec(l)?.[1];
      if (l.includes('"event_type":"flow"')) {
        flowLines.push(i + 1);
        if (id) flowIds.add(id);
      } else if (l.includes('"event_type":"alert"') && id) {
        alertIds.add(id);
        if (!flowIds.has(id)) alertBeforeFlow.add(id);
      }
    });
    assert.equal(flowLines.length, 1092);
    const alertedFlows = [...alertIds].filter((id) => flowIds.has(id));
    assert.equal(alertedFlows.length, 583);
    assert.equal(alertBeforeFlow.size, 583); // every alert precedes its flow event here

    assert.equal(sniffFlowLog(EVE), 'suricata-eve');
    let progress = 0;
    const rows: ExportRow[] = [];
    const diag = new Diagnostics();
    const s = await readFlowLog(
      EVE,
      diag,
      (r) => rows.push(r),
      (b) => {
        progress = b;
      },
    );
    assert.equal(progress, statSync(EVE).size);
    assert.equal(s.format, 'suricata-eve');
    assert.equal(s.lines, 6814);
    assert.equal(s.rows, 1092);
    assert.equal(s.rejected, 0);
    assert.equal(diag.count(), 0);
    assert.deepEqual(s.skipped, { dns: 2432, dhcp: 40, stats: 4, alert: 3198, alertNoFlowId: 48 });
    assert.equal(s.labelled, alertedFlows.length);
    assert.equal(rows.filter((r) => r.label !== undefined).length, 583);

    // Line 14: {"flow_id":778615965085998,"event_type":"flow","src_ip":"fe80:0000:0000:0000:ed83:3917:1c6a:b113",
    // "src_port":546,"dest_ip":"ff02:0000:0000:0000:0000:0000:0001:0002","dest_port":547,"proto":"UDP",
    // "flow":{"pkts_toserver":6,"pkts_toclient":0,"bytes_toserver":942,"bytes_toclient":0,
    // "start":"2024-12-18T19:35:54.312357-0500","end":"2024-12-18T19:36:25.397248-0500",…}}
    const a = rows[flowLines.indexOf(14)];
    assert.deepEqual(
      [a.srcIp, a.srcPort, a.dstIp, a.dstPort, a.protocol],
      ['fe80:0000:0000:0000:ed83:3917:1c6a:b113', 546, 'ff02:0000:0000:0000:0000:0000:0001:0002', 547, 17],
    );
    assert.ok(Math.abs(a.startMs - (Date.UTC(2024, 11, 19, 0, 35, 54, 312) + 0.357)) < 1e-3);
    assertValues(a, 17, { durationUs: 31_084_891, fwdPackets: 6, fwdBytes: 942 });
    assert.equal(a.label, undefined);
    assert.equal(a.source, EVE);

    // Line 77: "proto":"IPv6-ICMP","icmp_type":135,"icmp_code":0, 1 packet, 86 bytes, start = end.
    const b = rows[flowLines.indexOf(77)];
    assert.deepEqual(
      [b.srcIp, b.srcPort, b.dstIp, b.dstPort, b.protocol],
      ['fe80:0000:0000:0000:870a:159e:acca:01b3', 135, 'ff02:0000:0000:0000:0000:0001:ff00:0001', 0, 58],
    );
    assert.ok(Math.abs(b.startMs - (Date.UTC(2024, 11, 19, 0, 36, 40, 530) + 0.459)) < 1e-3);
    assertValues(b, 58, { fwdPackets: 1, fwdBytes: 86 });

    // Flow 18185487985865 (192.168.230.133:52812 → 239.255.255.250:1900): 31 alerts, all severity 3,
    // the first (line 1113) "UDP Packet Detected"; its flow event: 15 packets, 2,625 bytes.
    const flowLine = lines.findIndex(
      (l) => l.includes('"flow_id":18185487985865,') && l.includes('"event_type":"flow"'),
    );
    const c = rows[flowLines.indexOf(flowLine + 1)];
    assert.equal(c.label, 'UDP Packet Detected');
    assert.equal(c.rawLabel, 'UDP Packet Detected');
    assert.deepEqual([c.srcPort, c.dstIp, c.dstPort], [52812, '239.255.255.250', 1900]);
    assertValues(c, 17, { durationUs: 45_348_324, fwdPackets: 15, fwdBytes: 2625 });
  });
});

describe('Suricata events (made up here)', () => {
  const ev = (o: object) => JSON.stringify(o);
  const flow = (id: number, extra: object = {}) => ({
    timestamp: '2024-01-01T00:00:00.000000+0000',
    flow_id: id,
    event_type: 'flow',
    src_ip: '10.0.0.1',
    src_port: 40000,
    dest_ip: '10.0.0.2',
    dest_port: 80,
    proto: 'TCP',
    flow: {
      pkts_toserver: 3,
      pkts_toclient: 2,
      bytes_toserver: 300,
      bytes_toclient: 200,
      start: '2024-01-01T01:00:00.000000+0100',
      end: '2024-01-01T00:00:01.500000Z',
    },
    ...extra,
  });
  const alert = (id: number, signature: string, severity: number) => ({
    event_type: 'alert',
    flow_id: id,
    src_ip: '10.0.0.1',
    dest_ip: '10.0.0.2',
    alert: { signature, severity, signature_id: 1 },
  });

  it('reads TCP flags, netflow events, labels by severity, and counts alerts after their flow', async () => {
    const dir = tmp();
    const f = writeFile(
      dir,
      'eve.json',
      [
        ev(alert(1, 'ET INFO low', 3)),
        ev(alert(1, 'Portscan', 1)),
        ev(alert(1, 'ET later but not worse', 1)),
        ev(flow(1, { tcp: { tcp_flags: '1b', tcp_flags_ts: '02', tcp_flags_tc: '12', syn: true } })),
        ev(flow(2, { tcp: { syn: true, rst: true, urg: true } })),
        ev(alert(2, 'too late', 1)),
        ev({
          flow_id: 3,
          event_type: 'netflow',
          src_ip: '10.0.0.2',
          src_port: 80,
          dest_ip: '10.0.0.1',
          dest_port: 40000,
          proto: 6,
          netflow: { pkts: 4, bytes: 400, start: '2024-01-01T00:00:00Z', end: '2024-01-01T00:00:02Z' },
          tcp: { tcp_flags: '11' },
        }),
        ev({ event_type: 'anomaly', anomaly: {} }),
        '',
      ].join('\n'),
    );
    assert.equal(sniffFlowLog(f), 'suricata-eve');
    const r = await read(f);
    assert.equal(r.summary.rejected, 0);
    assert.deepEqual(r.summary.skipped, { alert: 3, alertsAfterFlow: 1, anomaly: 1 });
    assert.equal(r.rows.length, 3);
    const [a, b, n] = r.rows;
    assert.equal(a.label, 'PortScan'); // severity 1 beats 3; the first of two severity-1 alerts
    assert.equal(a.rawLabel, 'Portscan');
    assert.equal(a.startMs, Date.UTC(2024, 0, 1));
    assertValues(a, 6, {
      durationUs: 1_500_000,
      fwdPackets: 3,
      bwdPackets: 2,
      fwdBytes: 300,
      bwdBytes: 200,
      tcpFlags: TCP_SYN | TCP_ACK, // ts 0x02 | tc 0x12, not the total 0x1b
    });
    assert.equal(b.label, undefined);
    assert.equal(b.values[NF['SYN Flag']], 1);
    assert.equal(b.values[NF['RST Flag']], 1);
    assert.equal(b.values[NF['URG Flag']], 1);
    assertValues(b, 6, {
      durationUs: 1_500_000,
      fwdPackets: 3,
      bwdPackets: 2,
      fwdBytes: 300,
      bwdBytes: 200,
      tcpFlags: TCP_SYN | TCP_RST | TCP_URG,
    });
    assert.equal(b.values[NF['ACK Flag']], 0);
    assertValues(n, 6, { durationUs: 2_000_000, fwdPackets: 4, fwdBytes: 400, tcpFlags: TCP_ACK | TCP_FIN });
    assert.equal(r.summary.labelled, 1);
  });
});

describe('malformed input', () => {
  const where = (r: Read) =>
    r.problems.filter((p) => p.severity === 'error').map((p) => [p.line, p.reason, p.column]);

  it('Zeek TSV: field count, non-numeric counters, addresses, garbage, truncation; custom separators', async () => {
    const dir = tmp();
    const hdr = [
      '#separator \\x2c',
      '#set_separator,;',
      '#empty_field,(empty)',
      '#unset_field,NA',
      '#path,conn',
      '#fields,ts,uid,id.orig_h,id.orig_p,id.resp_h,id.resp_p,proto,duration,orig_bytes,resp_bytes,history,orig_pkts,resp_pkts',
      '#types,time,string,addr,port,addr,port,enum,interval,count,count,string,count,count',
    ];
    const ok = '1700000000.5,C1,10.0.0.1,1234,10.0.0.2,80,tcp,1.25,100,50,ShAFf,2,1';
    const f = writeFile(
      dir,
      'conn.log',
      Buffer.concat([
        Buffer.from(
          [
            ...hdr, // lines 1-7
            ok, // 8
            '1700000000.5,C2,10.0.0.1,1234,10.0.0.2,80,tcp,1.25', // 9: too few fields
            '1700000000.5,C3,10.0.0.1,1234,10.0.0.2,80,tcp,1.25,100,50,S,two,1', // 10: non-numeric orig_pkts
            '1700000000.5,C4,NA,1234,10.0.0.2,80,tcp,1.25,100,50,S,2,1', // 11: unset address
            '1700000000.5,C5,10.0.0.1,99999,10.0.0.2,80,tcp,1.25,100,50,S,2,1', // 12: port out of range
            '1700000000.5,C6,10.0.0.999,1,10.0.0.2,80,tcp,1.25,100,50,S,2,1', // 13: not an address
            '', // 14: blank
            '', // (the line break of line 14)
          ].join('\n'),
        ),
        Buffer.from([0x00, 0xff, 0xfe, 0x2c, 0x89, 0x50, 0x4e, 0x47, 0x0a]), // 15: binary garbage
        Buffer.from(
          [
            '#fields,ts,uid,src,src_port,dst,dst_port,proto,orig_pkts,resp_pkts,orig_ip_bytes,resp_ip_bytes', // 16: new layout
            'NA,C7,192.0.2.1,53,192.0.2.2,53,udp,1,1,60,80', // 17
            'NA,C8,192.0.2.1,53,192.0.2.2', // 18: truncated last line
          ].join('\n'),
        ),
      ]),
    );
    assert.equal(sniffFlowLog(f), 'zeek-tsv');
    const r = await read(f);
    assert.deepEqual(where(r), [
      [9, 'field-count', undefined],
      [10, 'non-numeric', 'orig_pkts'],
      [11, 'missing-address', 'id.orig_h'],
      [12, 'non-numeric', 'id.orig_p'],
      [13, 'bad-address', 'id.orig_h'],
      [15, 'field-count', undefined],
      [18, 'truncated', undefined],
    ]);
    assert.equal(r.problems.find((p) => p.line === 10)?.columnIndex, 12);
    assert.match(
      r.problems.find((p) => p.line === 9)?.message ?? '',
      /expected 13 fields \(#fields on line 6\), found 8/,
    );
    assert.deepEqual(r.summary.reasons, {
      'field-count': 2,
      'non-numeric': 2,
      'missing-address': 1,
      'bad-address': 1,
      truncated: 1,
    });
    assert.equal(r.summary.rejected, 7);
    assert.equal(r.summary.lines, 18);
    assert.equal(r.summary.rows + r.summary.rejected + skippedTotal(r.summary), 18);
    assert.equal(r.rows.length, 2);
    const [a, b] = r.rows;
    // No IP bytes in the first layout: payload + 20 (IPv4) + 20 (TCP) per packet.
    assertValues(a, 6, {
      durationUs: 1_250_000,
      fwdPackets: 2,
      bwdPackets: 1,
      fwdBytes: 100 + 2 * 40,
      bwdBytes: 50 + 40,
      tcpFlags: TCP_SYN | TCP_ACK | TCP_FIN,
    });
    assert.equal(a.startMs, 1_700_000_000_500);
    assert.ok(Number.isNaN(b.startMs));
    assertValues(b, 17, { fwdPackets: 1, bwdPackets: 1, fwdBytes: 60, bwdBytes: 80 });
    assert.deepEqual([b.srcIp, b.srcPort, b.dstIp, b.dstPort], ['192.0.2.1', 53, '192.0.2.2', 53]);
  });

  it('JSON: bad JSON, non-objects, missing and bad fields, garbage, truncation; never throws', async () => {
    const dir = tmp();
    const good = readFileSync(join(FIXTURES, 'zeek-conn.core.ppp.ndjson'), 'utf8').trim().split('\n')[2];
    const o = JSON.parse(good) as Record<string, unknown>;
    const f = writeFile(
      dir,
      'conn.json',
      [
        good, // 1
        '{"ts":1,"id.orig_h":', // 2: bad JSON
        '[1,2,3]', // 3: not an object
        JSON.stringify({ ...o, 'id.resp_h': undefined }), // 4: no responder address
        JSON.stringify({ ...o, orig_ip_bytes: 'lots' }), // 5: non-numeric counter
        '\u0000\u0001garbage\u00ff', // 6
        '', // 7
        JSON.stringify({ ...o, ts: 'yesterday' }), // 8: kept, with a warning
        good.slice(0, 40), // 9: truncated
      ].join('\n'),
    );
    assert.equal(sniffFlowLog(f), 'zeek-json');
    const r = await read(f);
    assert.deepEqual(where(r), [
      [2, 'bad-json', undefined],
      [3, 'bad-json', undefined],
      [4, 'missing-address', 'id.resp_h'],
      [5, 'non-numeric', 'orig_ip_bytes'],
      [6, 'bad-json', undefined],
      [9, 'truncated', undefined],
    ]);
    assert.deepEqual(
      r.problems.filter((p) => p.severity === 'warning').map((p) => [p.line, p.reason]),
      [[8, 'timestamp']],
    );
    assert.equal(r.rows.length, 2);
    assert.deepEqual(r.summary.skipped, { blank: 1 });
    assert.equal(r.summary.rows + r.summary.rejected + skippedTotal(r.summary), r.summary.lines);
  });

  it('Suricata: bad JSON, missing counters, non-numeric values, garbage, no event_type', async () => {
    const dir = tmp();
    const flow = {
      event_type: 'flow',
      flow_id: 9,
      src_ip: '10.0.0.1',
      src_port: 1,
      dest_ip: '10.0.0.2',
      dest_port: 2,
      proto: 'UDP',
      flow: { pkts_toserver: 1, pkts_toclient: 1, bytes_toserver: 60, bytes_toclient: 60 },
    };
    const f = writeFile(
      dir,
      'eve.json',
      [
        JSON.stringify(flow), // 1 (no start: kept, warned)
        '{"event_type":"flow",', // 2
        JSON.stringify({ ...flow, flow: { ...flow.flow, pkts_toclient: undefined } }), // 3
        JSON.stringify({ ...flow, flow: { ...flow.flow, bytes_toserver: '12k' } }), // 4
        JSON.stringify({ ...flow, dest_ip: undefined }), // 5
        JSON.stringify({ ...flow, event_type: undefined }), // 6
        '\u0089PNG\u001a\u0000', // 7
        JSON.stringify({ ...flow, src_port: 'http' }), // 8
      ].join('\n'),
    );
    const r = await read(f);
    assert.deepEqual(where(r), [
      [2, 'bad-json', undefined],
      [3, 'missing-field', 'flow.pkts_toclient'],
      [4, 'non-numeric', 'flow.bytes_toserver'],
      [5, 'missing-address', 'dest_ip'],
      [6, 'missing-field', 'event_type'],
      [7, 'bad-json', undefined],
      [8, 'non-numeric', 'src_port'],
    ]);
    assert.equal(r.rows.length, 1);
    assert.ok(Number.isNaN(r.rows[0].startMs));
    assert.deepEqual(
      r.problems.filter((p) => p.severity === 'warning').map((p) => [p.line, p.reason]),
      [[1, 'timestamp']],
    );
  });

  it('a file that is none of the formats, or missing, is one reported problem', async () => {
    const dir = tmp();
    const bin = writeFile(
      dir,
      'x.bin',
      Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) & 0xff)),
    );
    const empty = writeFile(dir, 'empty.log', '');
    for (const f of [bin, empty, join(dir, 'nope.log')]) {
      const r = await read(f);
      assert.equal(r.rows.length, 0);
      assert.equal(r.summary.rejected, 1, f);
      assert.equal(r.problems.length, 1);
      assert.equal(r.problems[0].line, 0);
      assert.ok(['format', 'read'].includes(r.problems[0].reason));
    }
  });
});

describe('sniffFlowLog', () => {
  it('recognises each format, gzip-compressed too, by content', async () => {
    const dir = tmp();
    const tsv =
      '#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\n#types\ttime\tstring\taddr\n1\tC\t10.0.0.1\n';
    const json = readFileSync(join(FIXTURES, 'zeek-conn.core.ppp.ndjson'));
    const eve = '{"timestamp":"2024-01-01T00:00:00Z","event_type":"stats","stats":{}}\n';
    assert.equal(sniffFlowLog(writeFile(dir, 'a.txt', tsv)), 'zeek-tsv');
    assert.equal(sniffFlowLog(writeFile(dir, 'b.txt', json)), 'zeek-json');
    assert.equal(sniffFlowLog(writeFile(dir, 'c.txt', eve)), 'suricata-eve');
    assert.equal(sniffFlowLog(writeFile(dir, 'a.gz', gzipSync(tsv))), 'zeek-tsv');
    const gz = writeFile(dir, 'b.json.gz', gzipSync(json));
    assert.equal(sniffFlowLog(gz), 'zeek-json');
    // A large gzip file: only its beginning is inflated.
    const big = gzipSync(Buffer.from(eve.repeat(20_000)));
    assert.equal(sniffFlowLog(writeFile(dir, 'big.gz', big)), 'suricata-eve');
    const r = await read(gz);
    const plain = await read(join(FIXTURES, 'zeek-conn.core.ppp.ndjson'));
    assert.deepEqual(strip(r.rows), strip(plain.rows));
  });

  it('returns null for other Zeek logs, a CIC CSV, a pcap and text', () => {
    const dir = tmp();
    const dns = '#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tquery\n1\tC\t10.0.0.1\tx\n';
    assert.equal(sniffFlowLog(writeFile(dir, 'dns.log', dns)), null);
    assert.equal(
      sniffFlowLog(writeFile(dir, 'dns.json', '{"ts":1,"uid":"C","id.orig_h":"10.0.0.1","query":"x"}\n')),
      null,
    );
    assert.equal(sniffFlowLog(writeFile(dir, 'cic.csv', `${MLCVE_HEADER}\n80,1,1,1\n`)), null);
    const pcapHeader = Buffer.alloc(24);
    pcapHeader.writeUInt32LE(0xa1b2c3d4, 0);
    pcapHeader.writeUInt16LE(2, 4);
    pcapHeader.writeUInt16LE(4, 6);
    pcapHeader.writeUInt32LE(65535, 16);
    pcapHeader.writeUInt32LE(1, 20);
    assert.equal(sniffFlowLog(writeFile(dir, 'x.pcap', pcapHeader)), null);
    assert.equal(sniffFlowLog(writeFile(dir, 'notes.txt', 'hello\nworld\n')), null);
    assert.equal(sniffFlowLog(join(dir, 'missing')), null);
  });

  it('returns null for the shared CIC CSVs and captures', { skip: root ? false : NO_DATASETS }, () => {
    const cic = join(root!, 'cicids2017_mlcve_head1000');
    for (const f of readdirSync(cic).filter((x) => x.endsWith('.csv')))
      assert.equal(sniffFlowLog(join(cic, f)), null, f);
    const caps = join(root!, 'pcap_tcpdump_tests', 'captures');
    for (const f of readdirSync(caps).slice(0, 20)) assert.equal(sniffFlowLog(join(caps, f)), null, f);
  });
});
