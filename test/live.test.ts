/**
 * Live capture end to end: a veth pair in a network namespace made by the test, tcpreplay
 * replaying a shared capture onto one end, `nadir capture` on the other; the flows must equal
 * those of file mode on the same capture (packets and payload bytes per direction, per
 * conversation). Needs root, iproute2, tcpdump and tcpreplay: skipped with the reason otherwise,
 * and failing instead under .ci/run (NADIR_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { COL } from '../src/flow/features.js';
import { captureFlows } from '../src/pipeline/capture-flows.js';
import { CLI, datasets, NO_DATASETS, tmp } from './helpers.js';

function why(): string | null {
  if (process.getuid?.() !== 0) return 'live capture test needs root (network namespaces, raw sockets)';
  for (const t of ['ip', 'tcpdump', 'tcpreplay'])
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
      return `${t} is not installed (apt-get install iproute2 tcpdump tcpreplay)`;
  const probe = `nadirprobe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

const sh = (ns: string, cmd: string[]) => {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

type Tally = Map<string, string>;

/** Per-conversation tallies from flow rows: key → "fwdPkts/bwdPkts/fwdBytes/bwdBytes". */
function tally(rows: { key: string; v: number[] }[]): Tally {
  const m = new Map<string, number[]>();
  for (const { key, v } of rows) {
    const t = m.get(key) ?? [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) t[i] += v[i];
    m.set(key, t);
  }
  return new Map([...m].map(([k, t]) => [k, t.join('/')]));
}

describe('live capture', () => {
  const root = datasets();
  const reason = !root ? NO_DATASETS : why();
  const must = process.env.NADIR_REQUIRE_SERVICES === '1';
  if (reason && must && root) it('live capture prerequisites', () => assert.fail(reason));

  it('nadir capture on a veth pair gives the flows of file mode', {
    skip: reason ?? false,
    timeout: 60_000,
  }, async () => {
    const pcap = join(root!, 'pcap_ddos_stopddos', 'captures', 'amp.UDP.isakmp.pcap');
    const ns = `nadirtest${process.pid}`;
    const out = join(tmp(), 'live.csv');
    spawnSync('ip', ['netns', 'del', ns]);
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    try {
      sh(ns, ['ip', 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
      sh(ns, ['ip', 'link', 'set', 'va', 'up']);
      sh(ns, ['ip', 'link', 'set', 'vb', 'up']);
      const cap = spawn(
        'ip',
        ['netns', 'exec', ns, process.execPath, CLI, 'capture', '-i', 'va', '--bpf', 'udp or tcp', '-o', out],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let err = '';
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`capture did not start: ${err}`)), 20_000);
        cap.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('capturing on va')) {
            clearTimeout(t);
            res();
          }
        });
      });
      sh(ns, ['tcpreplay', '-i', 'vb', '--pps', '5000', pcap]);
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise<number | null>((res) => cap.on('close', (code) => res(code)));
      cap.kill('SIGINT');
      assert.equal(await exited, 0, err);
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      const live = tally(
        lines.slice(1).map((l) => {
          const c = l.split(',');
          return {
            key: `${c[COL['Src IP']]}:${c[COL['Src Port']]}>${c[COL['Dst IP']]}:${c[COL['Dst Port']]}/${c[COL.Protocol]}`,
            v: [
              Number(c[COL['Total Fwd Packet']]),
              Number(c[COL['Total Bwd packets']]),
              Number(c[COL['Total Length of Fwd Packet']]),
              Number(c[COL['Total Length of Bwd Packet']]),
            ],
          };
        }),
      );
      const rows: { key: string; v: number[] }[] = [];
      await captureFlows([pcap], (f) =>
        rows.push({
          key: `${f.srcIp}:${f.srcPort}>${f.dstIp}:${f.dstPort}/${f.protocol}`,
          v: [
            f.values[COL['Total Fwd Packet']],
            f.values[COL['Total Bwd packets']],
            f.values[COL['Total Length of Fwd Packet']],
            f.values[COL['Total Length of Bwd Packet']],
          ],
        }),
      );
      const file = tally(rows);
      assert.ok(file.size > 1000);
      assert.deepEqual(live, file);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });
});
