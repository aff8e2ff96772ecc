/**
 * `nadir serve` with a NetFlow collector (from the config file): the real CLI server receives
 * NetFlow v5 datagrams over UDP, learns a baseline from the exported flows (no model, no API call),
 * and then stores a verdict for every collected flow and flags a flood-sized flow as an anomaly,
 * with source `collector`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, tmp, writeFile } from './helpers.js';

interface V5Flow {
  src: number;
  dst: number;
  sp: number;
  dp: number;
  pk: number;
  by: number;
  durMs: number;
  flags: number;
}

/** A NetFlow v5 datagram (header + 48-byte records), written independently of the decoder. */
function v5(flows: V5Flow[], seq: number): Buffer {
  const b = Buffer.alloc(24 + 48 * flows.length);
  const uptime = 600_000;
  b.writeUInt16BE(5, 0);
  b.writeUInt16BE(flows.length, 2);
  b.writeUInt32BE(uptime, 4);
  b.writeUInt32BE(Math.floor(Date.now() / 1000), 8);
  b.writeUInt32BE(seq, 16);
  flows.forEach((f, i) => {
    const o = 24 + 48 * i;
    b.writeUInt32BE(f.src >>> 0, o);
    b.writeUInt32BE(f.dst >>> 0, o + 4);
    b.writeUInt32BE(f.pk, o + 16);
    b.writeUInt32BE(f.by, o + 20);
    b.writeUInt32BE(uptime - 1000 - f.durMs, o + 24);
    b.writeUInt32BE(uptime - 1000, o + 28);
    b.writeUInt16BE(f.sp, o + 32);
    b.writeUInt16BE(f.dp, o + 34);
    b.writeUInt8(f.flags, o + 37);
    b.writeUInt8(6, o + 38);
  });
  return b;
}

const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

describe('nadir serve collecting NetFlow', () => {
  let child: ChildProcess | null = null;

  it('learns from exported flows, then scores, stores and flags them', { timeout: 90_000 }, async () => {
    const dir = tmp();
    const config = writeFile(
      dir,
      'nadir.json',
      JSON.stringify({
        server: { netflow: 0, collectHost: '127.0.0.1' },
        config: { learning: { baselineFlows: 200 } },
      }),
    );
    const env = { ...process.env };
    delete env.DATABASE_URL;
    child = spawn(
      process.execPath,
      [CLI, 'serve', '--port', '0', '--data-dir', dir, '--config', config, '--log-level', 'warn'],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      err += s;
    });
    let base = '';
    let port = 0;
    for (let i = 0; i < 200 && !port; i++) {
      await sleep(100);
      base = /listening on (http:\/\/\S+)/.exec(err)?.[1] ?? '';
      port = Number(/collecting netflow udp\/(\d+)/.exec(err)?.[1] ?? 0);
    }
    assert.ok(base && port, `server did not start collecting:\n${err}`);

    const sock = createSocket('udp4');
    let seq = 0;
    const send = async (flows: V5Flow[]) => {
      for (let i = 0; i < flows.length; i += 30) {
        const chunk = flows.slice(i, i + 30);
        await new Promise<void>((r) => sock.send(v5(chunk, seq), port, '127.0.0.1', () => r()));
        seq += chunk.length;
        await sleep(2);
      }
    };
    // 300 ordinary web requests, both directions exported (the collector pairs them).
    const normal: V5Flow[] = [];
    for (let n = 0; n < 300; n++) {
      const client = ip(10, 0, n >> 8, 1 + (n & 127));
      const server = ip(192, 168, 1, 10 + (n % 5));
      const pk = 6 + (n % 7);
      const sp = 20000 + n;
      normal.push({
        src: client,
        dst: server,
        sp,
        dp: 443,
        pk,
        by: pk * 80,
        durMs: 40 + (n % 50),
        flags: 0x1b,
      });
      normal.push({
        src: server,
        dst: client,
        sp: 443,
        dp: sp,
        pk: pk + 2,
        by: (pk + 2) * 900,
        durMs: 40 + (n % 50),
        flags: 0x1b,
      });
    }
    await send(normal);
    let mode = '';
    for (let i = 0; i < 100 && mode !== 'detecting'; i++) {
      await sleep(200);
      mode = ((await (await fetch(`${base}/api/v1/ready`)).json()) as { mode: string }).mode;
    }
    assert.equal(mode, 'detecting', `no model learned from the collected flows:\n${err}`);
    // A flood-sized one-way flow, and a normal request.
    const flood = ip(203, 0, 113, 66);
    await send([
      {
        src: flood,
        dst: ip(192, 168, 1, 10),
        sp: 4444,
        dp: 443,
        pk: 2_000_000,
        by: 80_000_000,
        durMs: 1000,
        flags: 0x02,
      },
      {
        src: ip(10, 0, 9, 9),
        dst: ip(192, 168, 1, 11),
        sp: 31000,
        dp: 443,
        pk: 8,
        by: 640,
        durMs: 60,
        flags: 0x1b,
      },
      {
        src: ip(192, 168, 1, 11),
        dst: ip(10, 0, 9, 9),
        sp: 443,
        dp: 31000,
        pk: 10,
        by: 9000,
        durMs: 60,
        flags: 0x1b,
      },
    ]);
    let found: { src_ip: string; source: string; is_anomaly: boolean; contributions?: unknown[] } | undefined;
    for (let i = 0; i < 60 && !found; i++) {
      await sleep(250);
      const r = (await (await fetch(`${base}/api/v1/anomalies?limit=50`)).json()) as {
        items: { src_ip: string; source: string; is_anomaly: boolean }[];
      };
      found = r.items.find((x) => x.src_ip === '203.0.113.66');
    }
    assert.ok(found, `the flood was not flagged:\n${err}`);
    assert.equal(found.source, 'collector');
    assert.ok((found.contributions ?? []).length > 0, 'the verdict explains itself');
    const logs = (await (await fetch(`${base}/api/v1/logs?limit=10`)).json()) as {
      items: { source: string; src_ip: string; is_anomaly: boolean }[];
    };
    const normalVerdict = logs.items.find((x) => x.src_ip === '10.0.9.9');
    assert.ok(normalVerdict, 'the normal flow was scored and stored');
    assert.equal(normalVerdict.source, 'collector');
    assert.equal(normalVerdict.is_anomaly, false);
    sock.close();
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
    child = null;
  });

  it('stops the server whatever happened', () => {
    child?.kill('SIGKILL');
  });
});
