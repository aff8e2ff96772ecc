/**
 * Capture reading and packet decoding: hand-built pcap/pcapng files and packets (test/packets.ts
 * writes every header from the RFCs), every shared capture against capinfos' packet counts
 * (MANIFEST.tsv), and a fuzz test over mutated real captures.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CaptureReader, type RawPacket, readCapture } from '../src/capture/pcap.js';
import { PcapWriter } from '../src/capture/pcap-writer.js';
import { Rng } from '../src/core/rng.js';
import {
  Decode,
  DecodeStats,
  decode,
  LINKTYPE,
  PacketView,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
} from '../src/decode/decode.js';
import { datasets, NO_DATASETS, tmp, writeFile } from './helpers.js';
import { bytes, concat, ethernet, ipv4, ipv6, PcapngBuilder, tcp, udp, vlan } from './packets.js';

interface Seen {
  tsUs: number;
  capLen: number;
  origLen: number;
  linkType: number;
  iface: number;
  first: number;
}

function readAll(data: Uint8Array, chunk = data.length): { seen: Seen[]; reader: CaptureReader } {
  const seen: Seen[] = [];
  const reader = new CaptureReader((p: RawPacket) =>
    seen.push({
      tsUs: p.tsUs,
      capLen: p.capLen,
      origLen: p.origLen,
      linkType: p.linkType,
      iface: p.iface,
      first: p.buf[p.offset],
    }),
  );
  for (let i = 0; i < data.length; i += chunk) reader.push(data.subarray(i, i + chunk));
  reader.end();
  return { seen, reader };
}

const payload = (n: number, fill = 0xab) => new Uint8Array(n).fill(fill);

describe('pcap and pcapng reading', () => {
  it('pcap: both byte orders, µs and ns timestamps, snaplen-cut packets, any chunking', () => {
    for (const opts of [
      {},
      { bigEndian: true },
      { nanoseconds: true },
      { nanoseconds: true, bigEndian: true },
    ]) {
      const w = new PcapWriter(opts);
      w.add(1_600_000_000_123_456, payload(60, 1));
      w.add(1_600_000_001_000_001.5, payload(40, 2), 1500);
      w.add(1_600_000_002_999_999, payload(1, 3));
      const data = w.bytes();
      const whole = readAll(data);
      assert.equal(whole.reader.stats.format, 'pcap');
      assert.equal(whole.reader.stats.error, null);
      assert.deepEqual(
        whole.seen.map((s) => [s.capLen, s.origLen, s.first]),
        [
          [60, 60, 1],
          [40, 1500, 2],
          [1, 1, 3],
        ],
      );
      const ns = 'nanoseconds' in opts;
      assert.equal(whole.seen[0].tsUs, 1_600_000_000_123_456);
      assert.equal(whole.seen[1].tsUs, ns ? 1_600_000_001_000_001.5 : 1_600_000_001_000_002);
      assert.equal(whole.reader.stats.truncated, 1);
      for (const size of [1, 3, 7, 16, 25])
        assert.deepEqual(readAll(data, size).seen, whole.seen, `chunks of ${size}`);
    }
  });

  it('pcapng: sections of either byte order, interfaces with their own link type and if_tsresol, simple and skipped blocks', () => {
    const data = new PcapngBuilder(true)
      .section(true)
      .iface(LINKTYPE.ETHERNET) // default resolution: µs
      .iface(LINKTYPE.RAW, 9) // ns
      .nameResolution()
      .packet(0, 1_700_000_000_000_001, payload(14, 0x11))
      .packet(1, 1_700_000_000_000_001_500, payload(20, 0x45), 1400)
      .section(false) // a second section, big-endian: interfaces start over
      .iface(LINKTYPE.LINUX_SLL, 0x8a) // 2^-10 s
      .packet(0, 1024 * 5 + 512, payload(16, 0x22))
      .simple(payload(9, 0x33))
      .bytes();
    for (const size of [data.length, 1, 5, 13]) {
      const { seen, reader } = readAll(data, size);
      assert.equal(reader.stats.error, null, JSON.stringify(reader.stats.error));
      assert.equal(reader.stats.format, 'pcapng');
      assert.equal(reader.stats.skippedBlocks, 1);
      assert.deepEqual(
        seen.map((s) => [s.linkType, s.iface, s.capLen, s.origLen, s.first]),
        [
          [LINKTYPE.ETHERNET, 0, 14, 14, 0x11],
          [LINKTYPE.RAW, 1, 20, 1400, 0x45],
          [LINKTYPE.LINUX_SLL, 0, 16, 16, 0x22],
          [LINKTYPE.LINUX_SLL, 0, 9, 9, 0x33],
        ],
      );
      assert.equal(seen[0].tsUs, 1_700_000_000_000_001);
      assert.ok(Math.abs(seen[1].tsUs - 1_700_000_000_000_001.5) < 1, String(seen[1].tsUs));
      assert.equal(seen[2].tsUs, 5.5e6);
    }
  });

  it('damaged input stops with the byte offset and a reason, after delivering what came before', () => {
    const w = new PcapWriter();
    for (let i = 0; i < 3; i++) w.add(i * 1e6, payload(50));
    const good = w.bytes();
    // Cut in the middle of the third packet.
    const cut = readAll(good.subarray(0, good.length - 10));
    assert.equal(cut.seen.length, 2);
    assert.match(cut.reader.stats.error!.reason, /file ends inside a packet record/);
    assert.equal(cut.reader.stats.error!.offset, 24 + 2 * 66);
    // A lying length field in the second record.
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(24 + 66 + 8, 0x7fffffff, true);
    const lied = readAll(bad);
    assert.equal(lied.seen.length, 1);
    assert.equal(lied.reader.stats.error!.offset, 24 + 66);
    assert.match(lied.reader.stats.error!.reason, /claims 2147483647 captured bytes/);
    // Not a capture at all.
    const text = readAll(new TextEncoder().encode('a,b,c\n1,2,3\n'));
    assert.match(text.reader.stats.error!.reason, /not a pcap or pcapng file \(first bytes 61 2c 62 2c\)/);
    // pcapng block whose trailing length disagrees.
    const ng = new PcapngBuilder().section().iface(1).packet(0, 1, payload(8)).bytes();
    ng[ng.length - 1] ^= 0x01;
    assert.match(readAll(ng).reader.stats.error!.reason, /trailing length differs/);
  });

  it('reads gzip-compressed captures', async () => {
    const { gzipSync } = await import('node:zlib');
    const w = new PcapWriter();
    for (let i = 0; i < 500; i++) w.add(i, payload(100, i & 255));
    const dir = tmp();
    const f = writeFile(dir, 'c.pcap.gz', gzipSync(w.bytes()));
    let n = 0;
    const stats = await readCapture(f, () => {
      n++;
    });
    assert.equal(stats.error, null);
    assert.equal(n, 500);
  });
});

describe('packet decoding', () => {
  const v = new PacketView();
  const run = (pkt: Uint8Array, link: number = LINKTYPE.ETHERNET) => decode(pkt, 0, pkt.length, link, v);
  const v6a = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
  const v6b = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2];

  it('Ethernet + 802.1Q + IPv4 with options + TCP with options; padding is not payload', () => {
    const seg = tcp(40000, 443, TCP_PSH | TCP_ACK, payload(5), { window: 502, options: [2, 4, 5, 0xb4] });
    const ip = ipv4('10.0.0.1', '192.168.1.2', 6, seg, { options: [1, 1, 1, 0] });
    const frame = ethernet(0x8100, vlan(42, 0x0800, ip), 80);
    assert.equal(run(frame), Decode.OK);
    assert.equal(v.vlan, 42);
    assert.equal(v.ipVersion, 4);
    assert.equal(v.src[0], 0x0a000001);
    assert.equal(v.dst[0], 0xc0a80102);
    assert.equal(v.ipHeaderLength, 24);
    assert.equal(v.protocol, 6);
    assert.equal(v.srcPort, 40000);
    assert.equal(v.dstPort, 443);
    assert.equal(v.tcpFlags, TCP_PSH | TCP_ACK);
    assert.equal(v.tcpWindow, 502);
    assert.equal(v.transportHeaderLength, 24);
    assert.equal(v.payloadLength, 5, 'IP length decides, the Ethernet padding does not count');
  });

  it('QinQ, MPLS, PPPoE, Linux SLL/SLL2, NULL/loopback and raw IP carry the same UDP datagram', () => {
    const ip = ipv4('1.2.3.4', '5.6.7.8', 17, udp(53, 33000, payload(20)));
    const sll = concat(bytes(0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00), ip);
    const sll2 = concat(bytes(0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 6, 0, 1, 2, 3, 4, 5, 6, 0, 0), ip);
    const cases: [string, Uint8Array, number][] = [
      ['QinQ', ethernet(0x88a8, vlan(100, 0x8100, vlan(200, 0x0800, ip))), LINKTYPE.ETHERNET],
      [
        'MPLS',
        ethernet(0x8847, concat(bytes(0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40), ip)),
        LINKTYPE.ETHERNET,
      ],
      [
        'PPPoE',
        ethernet(0x8864, concat(bytes(0x11, 0, 0, 1, 0, ip.length + 2, 0x00, 0x21), ip)),
        LINKTYPE.ETHERNET,
      ],
      ['SLL', sll, LINKTYPE.LINUX_SLL],
      ['SLL2', sll2, LINKTYPE.LINUX_SLL2],
      ['NULL', concat(bytes(2, 0, 0, 0), ip), LINKTYPE.NULL],
      ['LOOP', concat(bytes(0, 0, 0, 2), ip), LINKTYPE.LOOP],
      ['RAW', ip, LINKTYPE.RAW],
      ['IPV4', ip, LINKTYPE.IPV4],
    ];
    for (const [name, pkt, link] of cases) {
      assert.equal(run(pkt, link), Decode.OK, name);
      assert.deepEqual(
        [v.protocol, v.srcPort, v.dstPort, v.payloadLength, v.src[0]],
        [17, 53, 33000, 20, 0x01020304],
        name,
      );
    }
    assert.equal(v.vlan, 0);
    run(cases[0][1]);
    assert.equal(v.vlan, 100, 'the outer tag is kept');
  });

  it('IPv6 with hop-by-hop and destination options, first and later fragments, ICMPv6', () => {
    const seg = tcp(1234, 80, TCP_SYN, new Uint8Array(0));
    const hbh = bytes(60, 0, 1, 4, 0, 0, 0, 0); // next: destination options
    const dst = bytes(6, 0, 1, 4, 0, 0, 0, 0); // next: TCP
    assert.equal(run(ethernet(0x86dd, ipv6(v6a, v6b, 0, concat(hbh, dst, seg)))), Decode.OK);
    assert.deepEqual(
      [v.ipVersion, v.protocol, v.srcPort, v.dstPort, v.ipHeaderLength, v.tcpFlags],
      [6, 6, 1234, 80, 56, TCP_SYN],
    );
    assert.equal(v.src[3], 1);
    assert.equal(v.dst[3], 2);
    const firstFrag = bytes(17, 0, 0x00, 0x01, 0, 0, 0, 9); // offset 0, more fragments
    assert.equal(
      run(ethernet(0x86dd, ipv6(v6a, v6b, 44, concat(firstFrag, udp(5, 6, payload(4)))))),
      Decode.OK,
    );
    assert.equal(v.fragment, true);
    const laterFrag = bytes(17, 0, 0x00, 0x10, 0, 0, 0, 9); // offset 2 (×8 bytes)
    assert.equal(run(ethernet(0x86dd, ipv6(v6a, v6b, 44, concat(laterFrag, payload(16))))), Decode.FRAGMENT);
    assert.equal(run(ethernet(0x86dd, ipv6(v6a, v6b, 58, bytes(128, 0, 0, 0, 0, 1, 0, 1)))), Decode.OK);
    assert.deepEqual([v.protocol, v.icmpType, v.icmpCode], [58, 128, 0]);
  });

  it('GRE (with key and sequence), VXLAN and Geneve: the flow is the inner packet', () => {
    const innerIp = ipv4('172.16.0.5', '172.16.0.9', 6, tcp(5555, 22, TCP_SYN, new Uint8Array(0)));
    const gre = concat(bytes(0x30, 0x00, 0x08, 0x00, 0, 0, 0, 42, 0, 0, 0, 7), innerIp); // K and S bits
    assert.equal(run(ethernet(0x0800, ipv4('10.0.0.1', '10.0.0.2', 47, gre))), Decode.OK);
    assert.deepEqual(
      [v.tunnel, v.protocol, v.srcPort, v.dstPort, v.src[0], v.tcpFlags],
      [47, 6, 5555, 22, 0xac100005, TCP_SYN],
    );
    const innerFrame = ethernet(0x0800, innerIp);
    const vxlan = udp(40000, 4789, concat(bytes(0x08, 0, 0, 0, 0, 0, 100, 0), innerFrame));
    assert.equal(run(ethernet(0x0800, ipv4('10.0.0.1', '10.0.0.2', 17, vxlan))), Decode.OK);
    assert.deepEqual([v.tunnel, v.protocol, v.srcPort, v.dstPort, v.src[0]], [4789, 6, 5555, 22, 0xac100005]);
    const geneve = udp(40000, 6081, concat(bytes(0x00, 0, 0x65, 0x58, 0, 0, 100, 0), innerFrame));
    assert.equal(run(ethernet(0x0800, ipv4('10.0.0.1', '10.0.0.2', 17, geneve))), Decode.OK);
    assert.equal(v.tunnel, 6081);
    assert.equal(v.srcPort, 5555);
    // GRE carrying something that is not IP stays a GRE packet of its own.
    const greOther = concat(bytes(0, 0, 0x88, 0xbe), payload(20));
    assert.equal(run(ethernet(0x0800, ipv4('10.0.0.1', '10.0.0.2', 47, greOther))), Decode.OTHER_TRANSPORT);
    // Tunnels nested beyond the limit are not followed forever.
    let nested = innerIp;
    for (let i = 0; i < 10; i++)
      nested = ipv4('10.0.0.1', '10.0.0.2', 47, concat(bytes(0, 0, 0x08, 0x00), nested));
    assert.equal(run(ethernet(0x0800, nested)), Decode.OTHER_TRANSPORT);
  });

  it('IPv4 fragments, ICMP, non-IP, truncation and lies are classified, never thrown', () => {
    const frag1 = ipv4('1.1.1.1', '2.2.2.2', 17, udp(1, 2, payload(100)), { more: true });
    assert.equal(run(ethernet(0x0800, frag1)), Decode.OK);
    assert.equal(v.fragment, true);
    assert.equal(
      run(ethernet(0x0800, ipv4('1.1.1.1', '2.2.2.2', 17, payload(40), { fragOffset: 14 }))),
      Decode.FRAGMENT,
    );
    assert.equal(
      run(ethernet(0x0800, ipv4('1.1.1.1', '2.2.2.2', 1, bytes(8, 0, 0, 0, 0, 1, 0, 1)))),
      Decode.OK,
    );
    assert.deepEqual([v.protocol, v.icmpType], [1, 8]);
    assert.equal(run(ethernet(0x0806, payload(28))), Decode.NOT_IP);
    assert.equal(run(bytes(1, 2, 3)), Decode.TRUNCATED_LINK);
    const ip = ipv4('1.1.1.1', '2.2.2.2', 6, tcp(1, 2, TCP_SYN, payload(0)));
    assert.equal(run(ethernet(0x0800, ip.subarray(0, 30))), Decode.TRUNCATED_TRANSPORT);
    const liar = ip.slice();
    liar[0] = 0x4f; // IHL 60 bytes, more than the total length says
    assert.equal(run(ethernet(0x0800, liar)), Decode.BAD_IP);
    assert.equal(run(ethernet(0x0800, ip.subarray(0, 10))), Decode.TRUNCATED_IP);
    const badTcp = ip.slice();
    badTcp[20 + 12] = 0x20; // data offset 8 bytes < 20
    assert.equal(run(ethernet(0x0800, badTcp)), Decode.BAD_TRANSPORT);
    assert.equal(run(ip, 9999), Decode.UNSUPPORTED_LINK);
    assert.equal(run(ethernet(0x0800, ipv4('1.1.1.1', '2.2.2.2', 47, payload(12)))), Decode.OTHER_TRANSPORT);
  });
});

describe('shared captures', () => {
  const root = datasets();
  const skip = root ? false : NO_DATASETS;

  it("every capture reads to the end with capinfos' packet count, decode outcomes tallied", {
    skip,
  }, async () => {
    let files = 0;
    let matched = 0;
    let packets = 0;
    const totals = new DecodeStats();
    const view = new PacketView();
    for (const ds of ['pcap_tcpdump_tests', 'pcap_zeek_traces', 'pcap_ddos_stopddos']) {
      const rows = readFileSync(join(root!, ds, 'MANIFEST.tsv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
      for (const line of rows) {
        const [file, , , count] = line.split('\t');
        let n = 0;
        const stats = await readCapture(join(root!, ds, file), (p) => {
          n++;
          totals.add(decode(p.buf, p.offset, p.capLen, p.linkType, view), p.linkType);
        });
        files++;
        packets += n;
        // capinfos could not read a few exotic link types; every other count must agree.
        if (count !== '') {
          assert.equal(String(n), count, `${ds}/${file}: ${stats.error?.reason ?? ''}`);
          matched++;
        }
      }
    }
    assert.ok(files > 1600 && matched > 1600, `${files} files, ${matched} with a capinfos count`);
    assert.ok(totals.decoded > 0.5 * packets, `${totals.decoded} of ${packets} decoded`);
  });
});

describe('fuzzing the reader and decoder with mutated real captures', () => {
  const root = datasets();
  it('bit flips, truncation and bogus lengths never throw or hang', {
    skip: root ? false : NO_DATASETS,
  }, () => {
    const rng = new Rng(77);
    const dir = join(root!, 'pcap_tcpdump_tests', 'captures');
    const names = readFileSync(join(root!, 'pcap_tcpdump_tests', 'MANIFEST.tsv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t')[0].replace('captures/', ''));
    const view = new PacketView();
    const t0 = performance.now();
    let cases = 0;
    for (let round = 0; round < 400; round++) {
      const name = names[rng.int(names.length)];
      const orig = readFileSync(join(dir, name));
      const m = Uint8Array.from(orig);
      const kind = round % 3;
      if (kind === 0) for (let i = 0; i < 1 + rng.int(20); i++) m[rng.int(m.length)] ^= 1 << rng.int(8);
      else if (kind === 1 && m.length > 24) {
        // Overwrite a 32-bit field past the file header with a bogus length.
        const o = 24 + rng.int(Math.max(1, m.length - 28));
        new DataView(m.buffer).setUint32(
          o,
          [0, 1, 0xffffffff, 0x7fffffff, 65536][rng.int(5)],
          rng.next() < 0.5,
        );
      }
      const data = kind === 2 ? m.subarray(0, rng.int(m.length + 1)) : m;
      const reader = new CaptureReader((p) => {
        decode(p.buf, p.offset, p.capLen, p.linkType, view);
      });
      for (let i = 0; i < data.length; i += 4096) reader.push(data.subarray(i, i + 4096));
      reader.end();
      cases++;
    }
    assert.equal(cases, 400);
    assert.ok(performance.now() - t0 < 30_000, 'no pathological slowness');
  });
});
