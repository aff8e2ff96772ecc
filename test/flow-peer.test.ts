/**
 * The flow meter against an independent peer: tshark decodes the same shared captures, and its
 * per-packet addresses, ports and frame lengths, summed per conversation and direction, must equal
 * NADIR's flows (packets and wire bytes per direction, flows split by timeouts summed back).
 * Rules applied to both sides: IP fragments are not reassembled (tshark -o ip.defragment:FALSE),
 * packets quoted inside ICMP errors are not flows; tunnelled packets (GRE, VXLAN) count for their
 * inner addresses and ports, on both sides.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { captureFlows } from '../src/pipeline/capture-flows.js';
import { datasets, NO_DATASETS } from './helpers.js';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const NO_TSHARK = 'tshark not installed (apt-get install tshark); skipped';

/** Key of an unordered conversation; the direction is from the lexically smaller endpoint. */
function conv(a: string, pa: string, b: string, pb: string, proto: string): { key: string; aFirst: boolean } {
  const x = `${a}|${pa}`;
  const y = `${b}|${pb}`;
  return x <= y ? { key: `${proto} ${x} ${y}`, aFirst: true } : { key: `${proto} ${y} ${x}`, aFirst: false };
}

interface Tally {
  pktsAB: number;
  pktsBA: number;
  bytesAB: number;
  bytesBA: number;
}

function add(m: Map<string, Tally>, key: string, aFirst: boolean, pkts: number, bytes: number): void {
  const t = m.get(key) ?? { pktsAB: 0, pktsBA: 0, bytesAB: 0, bytesBA: 0 };
  if (aFirst) {
    t.pktsAB += pkts;
    t.bytesAB += bytes;
  } else {
    t.pktsBA += pkts;
    t.bytesBA += bytes;
  }
  m.set(key, t);
}

describe('flows against tshark', () => {
  const root = datasets();
  const skip = !root ? NO_DATASETS : !haveTshark ? NO_TSHARK : false;
  const requireAll = process.env.NADIR_REQUIRE_SERVICES === '1';
  if (requireAll && !haveTshark)
    it('tshark must be installed for the peer comparison', () => assert.fail(NO_TSHARK));

  for (const name of [
    'amp.TCP.reflection.SYNACK.pcap',
    'amp.UDP.isakmp.pcap',
    'amp.dns.RRSIG.fragmented.pcap',
    'pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng',
    'amp.UDP.bacnet.IOT.37810.pcapng',
  ])
    it(`per-conversation packets and bytes in both directions equal tshark's: ${name}`, {
      skip,
    }, async () => {
      const file = join(root!, 'pcap_ddos_stopddos', 'captures', name);
      const r = spawnSync(
        'tshark',
        [
          '-r',
          file,
          '-n',
          '-o',
          'ip.defragment:FALSE',
          '-o',
          'ipv6.defragment:FALSE',
          '-Y',
          '(tcp or udp) and not icmp and not icmpv6',
          '-T',
          'fields',
          '-E',
          // The innermost addresses: a GRE-tunnelled packet belongs to its inner flow.
          'occurrence=l',
          '-e',
          'ip.src',
          '-e',
          'ip.dst',
          '-e',
          'ipv6.src',
          '-e',
          'ipv6.dst',
          '-e',
          'tcp.srcport',
          '-e',
          'tcp.dstport',
          '-e',
          'udp.srcport',
          '-e',
          'udp.dstport',
          '-e',
          'frame.len',
        ],
        { encoding: 'utf8', maxBuffer: 1 << 28 },
      );
      assert.equal(r.status, 0, r.stderr);
      const peer = new Map<string, Tally>();
      for (const line of r.stdout.split('\n')) {
        if (!line) continue;
        const [s4, d4, s6, d6, ts, td, us, ud, len] = line.split('\t');
        const tcp = ts !== '';
        const c = conv(s4 || s6, tcp ? ts : us, d4 || d6, tcp ? td : ud, tcp ? '6' : '17');
        add(peer, c.key, c.aFirst, 1, Number(len));
      }
      const mine = new Map<string, Tally>();
      await captureFlows([file], (f) => {
        if (f.protocol !== 6 && f.protocol !== 17) return;
        const c = conv(f.srcIp, String(f.srcPort), f.dstIp, String(f.dstPort), String(f.protocol));
        const fwdPk = f.values[8];
        const bwdPk = f.values[9];
        add(mine, c.key, c.aFirst, fwdPk, f.wireBytesFwd);
        add(mine, c.key, !c.aFirst, bwdPk, f.wireBytesBwd);
      });
      assert.ok(peer.size > 0);
      assert.equal(mine.size, peer.size, 'number of conversations');
      for (const [k, t] of peer) assert.deepEqual(mine.get(k), t, k);
    });
});
