/**
 * The export mapper's pairing table (typed-array pool, open addressing, backward-shift deletion,
 * FIFO expiry) against a plain reference written with string-keyed Maps: the same rows, in the
 * same order, for 200,000 seeded records over a small address space (many repeats, reverses,
 * collisions, table growth and expiries).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExportMapper } from '../src/collect/mapper.js';
import { F, FlowFields } from '../src/collect/netflow.js';
import { Rng } from '../src/core/rng.js';
import type { ExportRow } from '../src/features/netflow.js';

interface Rec {
  src: number;
  dst: number;
  sp: number;
  dp: number;
  pk: number;
  at: number;
  start: number;
}

/** The pairing rules, written plainly. */
function reference(recs: Rec[], windowMs: number, slackMs: number, maxWaiting: number): string[] {
  const out: string[] = [];
  const waiting = new Map<string, Rec>();
  const row = (f: Rec, b: Rec | null) => `${f.src}:${f.sp}>${f.dst}:${f.dp} ${f.pk}/${b ? b.pk : 0}`;
  const expire = (before: number, max: number) => {
    let n = 0;
    for (const [k, r] of waiting) {
      if (n >= max || r.at > before) break;
      waiting.delete(k);
      out.push(row(r, null));
      n++;
    }
  };
  for (const r of recs) {
    expire(r.at - windowMs - 1, Number.POSITIVE_INFINITY);
    const key = `${r.src}|${r.sp}|${r.dst}|${r.dp}`;
    const rkey = `${r.dst}|${r.dp}|${r.src}|${r.sp}`;
    const rev = waiting.get(rkey);
    if (rev && Math.abs(rev.start - r.start) <= slackMs) {
      waiting.delete(rkey);
      const revFirst = rev.start < r.start || (rev.start === r.start && rev.dp <= rev.sp);
      out.push(revFirst ? row(rev, r) : row(r, rev));
      continue;
    }
    const same = waiting.get(key);
    if (same) {
      waiting.delete(key);
      out.push(row(same, null));
    }
    waiting.set(key, r);
    if (waiting.size > maxWaiting) expire(Number.POSITIVE_INFINITY, 1);
  }
  expire(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
  return out;
}

describe('ExportMapper pairing', () => {
  it('matches the reference on 200,000 seeded records (repeats, reverses, growth, expiry, overflow)', () => {
    const rng = new Rng(11);
    const recs: Rec[] = [];
    let t = 0;
    for (let i = 0; i < 200_000; i++) {
      t += rng.next() < 0.001 ? 3000 : 1;
      const start = t - Math.floor(rng.next() * 50);
      if (i > 0 && rng.next() < 0.4) {
        // The reverse of a recent record (sometimes too late or too far apart in start time).
        const o = recs[Math.max(0, i - 1 - Math.floor(rng.next() * 600))];
        recs.push({ src: o.dst, dst: o.src, sp: o.dp, dp: o.sp, pk: 1 + i, at: t, start });
        continue;
      }
      const a = 1 + Math.floor(rng.next() * 30);
      const b = 1 + Math.floor(rng.next() * 30);
      const pa = 1 + Math.floor(rng.next() * 40);
      const pb = 1 + Math.floor(rng.next() * 3);
      recs.push({ src: a, dst: b, sp: pa, dp: pb, pk: 1 + i, at: t, start });
    }
    const windowMs = 2000;
    const slackMs = 300;
    const maxWaiting = 5000;
    const expected = reference(recs, windowMs, slackMs, maxWaiting);
    const got: string[] = [];
    const m = new ExportMapper(
      (r: ExportRow) =>
        got.push(
          `${r.srcIp.split('.')[3]}:${r.srcPort}>${r.dstIp.split('.')[3]}:${r.dstPort} ${r.values[2]}/${r.values[3]}`,
        ),
      { pairWindowMs: windowMs, pairSlackMs: slackMs, maxWaiting },
    );
    const ff = new FlowFields();
    ff.exporter = '192.0.2.1:2055/0';
    for (const r of recs) {
      m.flush(r.at - 1);
      ff.reset();
      ff.addr[0] = r.src;
      ff.addr[4] = r.dst;
      ff.f[F.ipVersion] = 4;
      ff.f[F.srcPort] = r.sp;
      ff.f[F.dstPort] = r.dp;
      ff.f[F.protocol] = 6;
      ff.f[F.packets] = r.pk;
      ff.f[F.bytes] = r.pk * 100;
      ff.f[F.startMs] = r.start;
      ff.f[F.endMs] = r.start + 10;
      m.add(ff, r.at);
    }
    m.flush(0, true);
    assert.equal(m.waitingCount, 0);
    const first = got.findIndex((g, i) => g !== expected[i]);
    assert.equal(
      first,
      -1,
      `first difference at row ${first}: got ${got.slice(first, first + 3).join(' | ')}; expected ${expected.slice(first, first + 3).join(' | ')}`,
    );
    assert.equal(got.length, expected.length);
    assert.ok(m.stats.paired > 10_000 && m.stats.unpaired > 10_000, JSON.stringify(m.stats));
  });
});
