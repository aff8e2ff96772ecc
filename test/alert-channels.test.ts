/**
 * Alert delivery channels against real peers on 127.0.0.1 ephemeral ports: a node:http server
 * for webhooks and Slack (signatures checked with verifySignature and with an independent HMAC
 * over the raw received bytes), an smtp-server for e-mail (raw message parsed here), a temporary
 * directory for the log channel. Retry timings use small delays so the whole file runs in seconds.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import {
  type AlertMessage,
  type AttemptReport,
  alertDocument,
  alertText,
  type ChannelConfig,
  deliver,
  redactChannel,
  SECRET_MARK,
  signPayload,
  validateChannel,
  verifySignature,
} from '../src/alert/channels.js';
import { NADIR_VERSION } from '../src/core/version.js';
import type { Alert } from '../src/store/store.js';

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function makeAlert(over: Partial<Alert> = {}): Alert {
  return {
    id: 42,
    rule: 'score-threshold',
    key: 'score-threshold:dst=10.0.0.5',
    severity: 'high',
    status: 'open',
    firstSeen: T0,
    lastSeen: T0 + 90_000,
    count: 17,
    score: 0.91,
    threshold: 0.62,
    model: 'iforest-2024-05-01',
    summary: 'Flow burst towards 10.0.0.5:443',
    details: {
      contributions: [
        { feature: 'Flow Packets/s', value: 5400, typical: 35, share: 0.21 },
        { feature: 'Flow Bytes/s', value: 98000, typical: 1200, share: 0.62 },
        { feature: 'Protocol', value: 'UDP', typical: 'TCP', share: 0.05 },
      ],
      flow: { srcIp: '10.0.0.9', srcPort: 51234, dstIp: '10.0.0.5', dstPort: 443, protocol: 6 },
    },
    statusChangedAt: null,
    ...over,
  };
}

const MSG: AlertMessage = { alert: makeAlert() };
const TOP = 'Flow Bytes/s: observed 98000 (typical 1200, share 62%)';

interface Hit {
  t: number;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

/** A real HTTP server; `respond` answers hit n (1-based) or leaves it hanging. */
async function httpPeer(respond: (hit: Hit, n: number, res: ServerResponse) => void) {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const t = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { t, url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      hits.push(hit);
      respond(hit, hits.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  closers.push(close);
  return { url, hits };
}

function reply(res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}) {
  res.writeHead(status, headers);
  res.end(body);
}

function recorder() {
  const seen: AttemptReport[] = [];
  return { seen, onAttempt: (d: AttemptReport) => void seen.push(d) };
}

describe('webhook', () => {
  it('posts the alert JSON with a signature that verifies over the raw bytes', async () => {
    const peer = await httpPeer((_h, _n, res) => reply(res, 204));
    const secret = 'whsec-0123456789';
    const ch: ChannelConfig = {
      name: 'hook',
      type: 'webhook',
      url: `${peer.url}/hook`,
      secret,
      headers: { 'X-Team': 'noc' },
    };
    const rec = recorder();
    const out = await deliver(ch, { alert: makeAlert({ summary: 'Ünïcode → summary' }) }, {}, rec.onAttempt);
    assert.equal(out.ok, true, out.detail);
    assert.equal(out.attempts, 1);
    assert.equal(out.kind, 'webhook');
    assert.equal(out.channel, 'hook');
    assert.match(out.detail, /^HTTP 204/);
    assert.deepEqual(
      rec.seen.map((s) => [s.channel, s.kind, s.attempt, s.ok]),
      [['hook', 'webhook', 1, true]],
    );

    assert.equal(peer.hits.length, 1);
    const { headers, body, url } = peer.hits[0];
    assert.equal(url, '/hook');
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['user-agent'], `nadir/${NADIR_VERSION}`);
    assert.equal(headers['x-team'], 'noc');
    assert.equal(headers.authorization, undefined);
    const doc = JSON.parse(body.toString('utf8'));
    assert.equal(doc.type, 'nadir.alert');
    assert.equal(doc.test, false);
    assert.equal(doc.alert.id, 42);
    assert.equal(doc.alert.summary, 'Ünïcode → summary');
    assert.deepEqual(doc.alert.details.flow, MSG.alert.details.flow);

    const ts = Number(headers['x-nadir-timestamp']);
    assert.ok(Math.abs(ts - Date.now() / 1000) < 5);
    const sigHeader = String(headers['x-nadir-signature']);
    assert.match(sigHeader, /^sha256=[0-9a-f]{64}$/);
    // independent computation over the exact received bytes
    const independent = createHmac('sha256', secret)
      .update(Buffer.concat([Buffer.from(`${ts}.`), body]))
      .digest('hex');
    assert.equal(sigHeader, `sha256=${independent}`);
    assert.equal(signPayload(secret, ts, body.toString('utf8')), independent);
    // verifySignature: headers object, combined string, raw bytes or text
    assert.equal(verifySignature(secret, headers, body), true);
    assert.equal(verifySignature(secret, `t=${ts},${sigHeader}`, body.toString('utf8')), true);
    // tampered body, wrong secret, stale or future timestamp
    const tampered = Buffer.from(body);
    tampered[tampered.indexOf('42')] = '3'.charCodeAt(0);
    assert.equal(verifySignature(secret, headers, tampered), false);
    assert.equal(verifySignature('whsec-wrong', headers, body), false);
    assert.equal(verifySignature(secret, headers, body, ts + 300), true);
    assert.equal(verifySignature(secret, headers, body, ts + 301), false);
    assert.equal(verifySignature(secret, headers, body, ts - 301), false);
    assert.equal(verifySignature(secret, headers, body, ts + 3600, 7200), true);
    // a signature made for another timestamp does not verify under this one
    assert.equal(verifySignature(secret, `t=${ts - 1},${sigHeader}`, body), false);
    assert.equal(verifySignature(secret, 'garbage', body), false);
    assert.equal(verifySignature(secret, {}, body), false);
  });

  it('sends no signature without a secret, marks test alerts, and moves URL credentials to Basic auth', async () => {
    const peer = await httpPeer((_h, _n, res) => reply(res, 200, 'ok'));
    const u = new URL(peer.url);
    const out = await deliver(
      { name: 'h', type: 'webhook', url: `http://ops:p%40ss@${u.host}/in?x=1` },
      { alert: makeAlert(), test: true },
    );
    assert.equal(out.ok, true, out.detail);
    const hit = peer.hits[0];
    assert.equal(hit.headers['x-nadir-signature'], undefined);
    assert.equal(hit.url, '/in?x=1');
    assert.equal(hit.headers.authorization, `Basic ${Buffer.from('ops:p@ss').toString('base64')}`);
    assert.equal(JSON.parse(hit.body.toString()).test, true);
  });

  it('retries 500, 500 then succeeds, with growing delays', async () => {
    const peer = await httpPeer((_h, n, res) => reply(res, n < 3 ? 500 : 200, n < 3 ? 'boom' : 'ok'));
    const rec = recorder();
    const secret = 'retry-secret';
    const out = await deliver(
      { name: 'hook', type: 'webhook', url: `${peer.url}/x`, secret },
      MSG,
      { attempts: 4, baseDelayMs: 40, maxDelayMs: 5000, timeoutMs: 2000 },
      rec.onAttempt,
    );
    assert.equal(out.ok, true, out.detail);
    assert.equal(out.attempts, 3);
    assert.equal(peer.hits.length, 3);
    assert.deepEqual(
      rec.seen.map((s) => [s.attempt, s.ok]),
      [
        [1, false],
        [2, false],
        [3, true],
      ],
    );
    assert.match(rec.seen[0].detail, /^HTTP 500 Internal Server Error: boom$/);
    const gap1 = peer.hits[1].t - peer.hits[0].t;
    const gap2 = peer.hits[2].t - peer.hits[1].t;
    assert.ok(gap1 >= 30, `first wait ${gap1} ms`); // 40 ms −20%
    assert.ok(gap2 >= 62, `second wait ${gap2} ms`); // 80 ms −20%
    assert.ok(gap2 > gap1, `waits ${gap1} then ${gap2} ms`);
    // every attempt signs the same body afresh, each verifiable
    for (const h of peer.hits) assert.equal(verifySignature(secret, h.headers, h.body), true);
    assert.equal(peer.hits[0].body.toString(), peer.hits[2].body.toString());
    // one delivery id across the retries
    assert.equal(new Set(peer.hits.map((h) => h.headers['x-nadir-delivery'])).size, 1);
  });

  it('gives up at once on 400 and on a redirect', async () => {
    const peer = await httpPeer((h, _n, res) =>
      h.url === '/moved' ? reply(res, 302, '', { location: '/elsewhere' }) : reply(res, 400, 'bad'),
    );
    const rec = recorder();
    const out = await deliver(
      { name: 'h', type: 'webhook', url: `${peer.url}/x` },
      MSG,
      { baseDelayMs: 1 },
      rec.onAttempt,
    );
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 1);
    assert.equal(rec.seen.length, 1);
    assert.match(out.detail, /^HTTP 400/);
    const moved = await deliver({ name: 'h', type: 'webhook', url: `${peer.url}/moved` }, MSG, {
      baseDelayMs: 1,
    });
    assert.equal(moved.ok, false);
    assert.equal(moved.attempts, 1);
    assert.match(moved.detail, /HTTP 302.*not followed/);
    assert.equal(peer.hits.length, 2);
    // an unusable URL is one failed, permanent attempt (so it is recorded as a delivery)
    const rec2 = recorder();
    const bad = await deliver({ name: 'h', type: 'webhook', url: 'not a url' }, MSG, {}, rec2.onAttempt);
    assert.deepEqual([bad.ok, bad.attempts, bad.detail], [false, 1, 'invalid URL']);
    assert.deepEqual(
      rec2.seen.map((s) => [s.attempt, s.ok, s.detail]),
      [[1, false, 'invalid URL']],
    );
  });

  it('retries 429 honouring Retry-After (instead of the backoff, capped by maxDelayMs)', async () => {
    const peer = await httpPeer((_h, n, res) =>
      n === 1
        ? reply(res, 429, 'slow down', { 'retry-after': '0' })
        : n === 2
          ? reply(res, 429, 'slow down', { 'retry-after': '3600' })
          : reply(res, 200),
    );
    const t = performance.now();
    // a 5 s backoff would blow the elapsed-time bound: Retry-After 0 replaces it, and
    // Retry-After 3600 is capped to maxDelayMs
    const out = await deliver({ name: 'h', type: 'webhook', url: peer.url }, MSG, {
      attempts: 3,
      baseDelayMs: 5000,
      maxDelayMs: 50,
      timeoutMs: 2000,
    });
    const ms = performance.now() - t;
    assert.equal(out.ok, true, out.detail);
    assert.equal(out.attempts, 3);
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.ok(peer.hits[2].t - peer.hits[1].t >= 45, 'capped Retry-After still waited');
  });

  it('counts a server that never answers as a timeout and retries it', async () => {
    const peer = await httpPeer(() => {
      // never answers
    });
    const rec = recorder();
    const t = performance.now();
    const out = await deliver(
      { name: 'h', type: 'webhook', url: peer.url },
      MSG,
      { attempts: 2, baseDelayMs: 20, maxDelayMs: 100, timeoutMs: 150 },
      rec.onAttempt,
    );
    const ms = performance.now() - t;
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 2);
    assert.equal(peer.hits.length, 2);
    assert.deepEqual(
      rec.seen.map((s) => [s.attempt, s.ok, s.detail]),
      [
        [1, false, 'timeout after 150 ms'],
        [2, false, 'timeout after 150 ms'],
      ],
    );
    assert.ok(ms >= 300 && ms < 1500, `took ${ms} ms`);
  });

  it('keeps URL credentials, query and secrets out of details and outcomes', async () => {
    const rec = recorder();
    const out = await deliver(
      { name: 'failing', type: 'webhook', url: 'http://user:pw@127.0.0.1:1/hook?token=abc', secret: 's' },
      MSG,
      { attempts: 2, baseDelayMs: 1, timeoutMs: 1000 },
      rec.onAttempt,
    );
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 2);
    assert.match(out.detail, /^network error: /);
    const text = JSON.stringify([out, rec.seen]);
    assert.ok(!text.includes('pw'), text);
    assert.ok(!text.includes('abc'), text);

    // a peer that echoes the request target (query included) in its error body
    const peer = await httpPeer((h, _n, res) =>
      reply(res, 503, `cannot handle ${h.url} for ${peer.url}${h.url}`),
    );
    const u = new URL(peer.url);
    const echoed = await deliver(
      { name: 'echo', type: 'webhook', url: `http://admin:hunter22@${u.host}/hook?token=abcdef&k=zz` },
      MSG,
      { attempts: 1 },
    );
    assert.match(echoed.detail, /^HTTP 503/);
    assert.ok(!/hunter22|abcdef|zz/.test(echoed.detail), echoed.detail);
    assert.ok(echoed.detail.includes('/hook?***'), echoed.detail);
  });
});

describe('slack', () => {
  it('posts a readable {text, blocks} message', async () => {
    const peer = await httpPeer((_h, _n, res) => reply(res, 200, 'ok'));
    const out = await deliver(
      { name: 'slack', type: 'slack', url: `${peer.url}/services/T0/B0/XyZsecret` },
      MSG,
    );
    assert.equal(out.ok, true, out.detail);
    assert.equal(out.kind, 'slack');
    const hit = peer.hits[0];
    assert.equal(hit.url, '/services/T0/B0/XyZsecret');
    assert.equal(hit.headers['content-type'], 'application/json');
    const doc = JSON.parse(hit.body.toString('utf8'));
    assert.equal(typeof doc.text, 'string');
    assert.ok(Array.isArray(doc.blocks) && doc.blocks.length >= 3);
    assert.ok(doc.text.includes('HIGH'), doc.text);
    assert.ok(doc.text.includes(':large_orange_circle:'), doc.text);
    assert.ok(doc.text.includes(MSG.alert.summary), doc.text);
    assert.ok(doc.text.includes(TOP), doc.text);
    assert.ok(doc.text.includes('iforest-2024-05-01'), doc.text);
    assert.ok(doc.text.includes('0.91 vs threshold 0.62'), doc.text);
    assert.ok(doc.text.includes('10.0.0.9:51234 → 10.0.0.5:443 (TCP)'), doc.text);
    assert.ok(doc.text.includes('2024-05-01 12:00:00 UTC'), doc.text);
    // the top feature comes first (sorted by share)
    assert.ok(doc.text.indexOf('Flow Bytes/s') < doc.text.indexOf('Flow Packets/s'));
    const blocksText = JSON.stringify(doc.blocks);
    assert.ok(blocksText.includes('Flow Bytes/s: observed 98000'), blocksText);
  });

  it('retries 5xx and never shows the secret webhook path', async () => {
    const peer = await httpPeer((h, n, res) =>
      n === 1 ? reply(res, 502, `bad gateway ${h.url}`) : reply(res, 404, 'no_service'),
    );
    const rec = recorder();
    const out = await deliver(
      { name: 'slack', type: 'slack', url: `${peer.url}/services/T0/B0/XyZsecret` },
      MSG,
      { attempts: 3, baseDelayMs: 5 },
      rec.onAttempt,
    );
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 2);
    assert.match(rec.seen[0].detail, /^HTTP 502/);
    assert.match(out.detail, /^HTTP 404 Not Found: no_service$/);
    assert.ok(!JSON.stringify([out, rec.seen]).includes('XyZsecret'));
  });
});

// ---------------------------------------------------------------------------------------------
// e-mail

interface Received {
  from: string;
  to: string[];
  raw: string;
  user?: string;
}

async function smtpPeer(opts: Partial<SMTPServerOptions> = {}) {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'nadir' && auth.password === 'smtp-pass-1') cb(null, { user: auth.username });
      else cb(new Error('bad credentials'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: session.user as string | undefined,
        });
        cb();
      });
    },
    ...opts,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port, received };
}

/** Header fields (unfolded, lower-cased names) and the body of a raw RFC 5322 message. */
function parseMessage(raw: string): { headers: Map<string, string>; body: string } {
  const cut = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, cut).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !headers.has(line.slice(0, i).toLowerCase()))
      headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  return { headers, body: raw.slice(cut + 4) };
}

function decodeQuotedPrintable(s: string): string {
  const soft = s.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(soft[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function emailChannel(
  port: number,
  over: Partial<Extract<ChannelConfig, { type: 'email' }>> = {},
): ChannelConfig {
  return {
    name: 'mail',
    type: 'email',
    host: '127.0.0.1',
    port,
    from: 'NADIR <nadir@example.test>',
    to: ['noc@example.test', 'oncall@example.test'],
    ...over,
  };
}

describe('email', () => {
  it('sends a message the SMTP server receives with the right headers and body', async () => {
    const peer = await smtpPeer();
    const rec = recorder();
    const out = await deliver(emailChannel(peer.port), MSG, { timeoutMs: 3000 }, rec.onAttempt);
    assert.equal(out.ok, true, out.detail);
    assert.equal(out.attempts, 1);
    assert.equal(out.kind, 'email');
    assert.match(out.detail, /^250/);
    assert.equal(peer.received.length, 1);
    const got = peer.received[0];
    assert.equal(got.from, 'nadir@example.test');
    assert.deepEqual(got.to, ['noc@example.test', 'oncall@example.test']);
    assert.equal(got.user, undefined);
    const { headers, body } = parseMessage(got.raw);
    assert.equal(headers.get('from'), 'NADIR <nadir@example.test>');
    assert.equal(headers.get('to'), 'noc@example.test, oncall@example.test');
    assert.equal(headers.get('subject'), `[NADIR HIGH] ${MSG.alert.summary}`);
    assert.equal(headers.get('subject'), alertText(MSG).subject);
    assert.equal(headers.get('x-nadir-alert'), '42');
    assert.match(headers.get('content-type') ?? '', /multipart\/alternative/);
    const decoded = decodeQuotedPrintable(body);
    assert.ok(decoded.includes(MSG.alert.summary), decoded);
    assert.ok(decoded.includes(TOP), decoded);
    assert.ok(decoded.includes('Protocol: observed UDP (typical TCP, share 5%)'), decoded);
    assert.ok(decoded.includes('10.0.0.9:51234 → 10.0.0.5:443 (TCP)'), decoded);
    assert.ok(/<html/i.test(decoded), 'has an HTML part');
  });

  it('logs in when a user is set (plain SMTP allowed on loopback)', async () => {
    const peer = await smtpPeer();
    const out = await deliver(
      emailChannel(peer.port, { host: 'localhost', user: 'nadir', pass: 'smtp-pass-1' }),
      { alert: makeAlert(), test: true },
      { timeoutMs: 3000 },
    );
    assert.equal(out.ok, true, out.detail);
    assert.equal(peer.received[0].user, 'nadir');
    assert.match(
      parseMessage(peer.received[0].raw).headers.get('subject') ?? '',
      /^\[NADIR HIGH\] \[test\] /,
    );
    const bad = await deliver(emailChannel(peer.port, { user: 'nadir', pass: 'wrong-pass-9' }), MSG, {
      attempts: 3,
      baseDelayMs: 5,
      timeoutMs: 3000,
    });
    assert.equal(bad.ok, false);
    assert.equal(bad.attempts, 1, 'a 535 authentication failure is permanent');
    assert.ok(!bad.detail.includes('wrong-pass-9'), bad.detail);
  });

  it('treats a 550 recipient rejection as permanent', async () => {
    const peer = await smtpPeer({
      onRcptTo(_a, _s, cb) {
        cb(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      },
    });
    const rec = recorder();
    const out = await deliver(
      emailChannel(peer.port),
      MSG,
      { attempts: 4, baseDelayMs: 5, timeoutMs: 3000 },
      rec.onAttempt,
    );
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 1);
    assert.equal(rec.seen.length, 1);
    assert.match(out.detail, /550/);
    assert.equal(peer.received.length, 0);
  });

  it('retries a 451 temporary rejection', async () => {
    let n = 0;
    const peer = await smtpPeer({
      onRcptTo(_a, _s, cb) {
        n++;
        if (n <= 2) cb(Object.assign(new Error('Try again later'), { responseCode: 451 }));
        else cb();
      },
    });
    const rec = recorder();
    const out = await deliver(
      emailChannel(peer.port, { to: ['noc@example.test'] }),
      MSG,
      { attempts: 4, baseDelayMs: 5, timeoutMs: 3000 },
      rec.onAttempt,
    );
    assert.equal(out.ok, true, out.detail);
    assert.deepEqual(
      rec.seen.map((s) => s.ok),
      [false, false, true],
    );
    assert.match(rec.seen[0].detail, /451/);
    assert.equal(n, 3);
    assert.equal(peer.received.length, 1);
  });

  it('retries when nothing listens', async () => {
    const rec = recorder();
    const out = await deliver(
      emailChannel(1),
      MSG,
      { attempts: 2, baseDelayMs: 5, timeoutMs: 1000 },
      rec.onAttempt,
    );
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 2);
    assert.match(out.detail, /ECONNREFUSED|ECONNECTION|ESOCKET/);
  });
});

describe('log', () => {
  it('appends one JSON line per alert, creating directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nadir-alert-log-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'a', 'b', 'alerts.jsonl');
    const ch: ChannelConfig = { name: 'file', type: 'log', path };
    const o1 = await deliver(ch, { alert: makeAlert({ id: 1 }) });
    const o2 = await deliver(ch, { alert: makeAlert({ id: 2, severity: 'critical' }), test: true });
    assert.equal(o1.ok && o2.ok, true);
    const text = await readFile(path, 'utf8');
    assert.ok(text.endsWith('\n'));
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((l) => [l.type, l.test, l.alert.id, l.alert.severity]),
      [
        ['nadir.alert', false, 1, 'high'],
        ['nadir.alert', true, 2, 'critical'],
      ],
    );
    // The REST API's alert document (snake_case, ISO times), without deliveries.
    const { deliveries: _, ...doc } = alertDocument(makeAlert({ id: 1 }));
    assert.deepEqual(lines[0].alert, doc);
    assert.equal(lines[0].alert.first_seen, new Date(makeAlert({ id: 1 }).firstSeen).toISOString());
  });

  it('retries and fails when the path cannot be written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nadir-alert-log-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    // the path is a directory: appendFile fails every time
    const out = await deliver({ name: 'file', type: 'log', path: dir }, MSG, { attempts: 2, baseDelayMs: 1 });
    assert.equal(out.ok, false);
    assert.equal(out.attempts, 2);
    assert.match(out.detail, /EISDIR/);
  });
});

describe('alertText', () => {
  it('is readable plain text with subject, score, flow, times and features', () => {
    const { subject, text } = alertText(MSG);
    assert.equal(subject, '[NADIR HIGH] Flow burst towards 10.0.0.5:443');
    for (const s of [
      'HIGH: Flow burst towards 10.0.0.5:443',
      'Model:',
      '0.91 vs threshold 0.62 (1.47× threshold)',
      'Flow:       10.0.0.9:51234 → 10.0.0.5:443 (TCP)',
      'First seen: 2024-05-01 12:00:00 UTC',
      'Last seen:  2024-05-01 12:01:30 UTC',
      'Count:      17',
      `  - ${TOP}`,
      '  - Flow Packets/s: observed 5400 (typical 35, share 21%)',
    ])
      assert.ok(text.includes(s), `missing "${s}" in\n${text}`);
    // an alert without details still renders
    const bare = alertText({ alert: makeAlert({ details: {}, model: null }) });
    assert.ok(bare.text.includes('Model:      (none)'), bare.text);
    assert.ok(!bare.text.includes('Top contributing'));
  });
});

describe('redactChannel', () => {
  it('hides every secret', () => {
    const chans: ChannelConfig[] = [
      {
        name: 'w',
        type: 'webhook',
        url: 'https://bob:pa55word@hooks.example.test/in?token=t0k3n&sig=s1g',
        secret: 'hmac-secret',
        headers: { Authorization: 'Bearer bearer-tok' },
      },
      { name: 's', type: 'slack', url: 'https://hooks.slack.com/services/T01/B02/slackpath' },
      {
        name: 'm',
        type: 'email',
        host: 'smtp.example.test',
        port: 587,
        user: 'bob',
        pass: 'smtp-pw',
        from: 'a@b.test',
        to: ['c@d.test'],
      },
      { name: 'l', type: 'log', path: '/var/log/nadir/alerts.jsonl' },
    ];
    const red = chans.map(redactChannel);
    const text = JSON.stringify(red);
    for (const s of [
      'pa55word',
      'bob:',
      't0k3n',
      's1g',
      'hmac-secret',
      'bearer-tok',
      'T01',
      'B02',
      'slackpath',
      'smtp-pw',
    ])
      assert.ok(!text.includes(s), `${s} leaked in ${text}`);
    assert.equal(
      (red[0] as { url: string }).url,
      `https://${SECRET_MARK}@hooks.example.test/in?${SECRET_MARK}`,
    );
    assert.equal((red[0] as { secret: string }).secret, SECRET_MARK);
    assert.deepEqual((red[0] as { headers: unknown }).headers, { Authorization: SECRET_MARK });
    assert.equal((red[1] as { url: string }).url, `https://hooks.slack.com/${SECRET_MARK}`);
    assert.equal((red[2] as { pass: string; user: string }).pass, SECRET_MARK);
    assert.equal((red[2] as { user: string }).user, 'bob');
    assert.deepEqual(red[3], chans[3]);
    // the original is untouched
    assert.equal((chans[0] as { secret: string }).secret, 'hmac-secret');
  });
});

describe('validateChannel', () => {
  const P = '/alerts/channels/2';
  it('accepts valid configurations', () => {
    assert.deepEqual(
      validateChannel({ name: 'w', type: 'webhook', url: 'https://x.test/h', secret: 's' }, P),
      [],
    );
    assert.deepEqual(
      validateChannel({ name: 's', type: 'slack', url: 'https://hooks.slack.com/services/a' }, P),
      [],
    );
    assert.deepEqual(
      validateChannel(
        { name: 'm', type: 'email', host: 'h', port: 25, from: 'N <n@x.test>', to: ['a@x.test'] },
        P,
      ),
      [],
    );
    assert.deepEqual(
      validateChannel({ name: 'l', type: 'log', path: 'alerts.jsonl', enabled: false }, P),
      [],
    );
  });

  it('names each problem with its exact path', () => {
    assert.deepEqual(validateChannel(null, P), [`${P}: must be an object`]);
    assert.deepEqual(validateChannel({ name: 'w', type: 'webhook', url: 'ftp://x.test/h' }, P), [
      `${P}/url: must be an http(s) URL`,
    ]);
    assert.deepEqual(validateChannel({ name: '', type: 'sms' }, P), [
      `${P}/name: must be a non-empty string`,
      `${P}/type: must be one of webhook, slack, email, log`,
    ]);
    assert.deepEqual(validateChannel({ name: 's', type: 'slack' }, P), [`${P}/url: is required`]);
    assert.deepEqual(
      validateChannel({ name: 'l', type: 'log', path: '/tmp/x', enabled: 'yes', colour: 'red' }, P),
      [`${P}/enabled: must be a boolean`, `${P}/colour: unknown property for a log channel`],
    );
    assert.deepEqual(
      validateChannel(
        {
          name: 'w',
          type: 'webhook',
          url: 'http://x.test',
          headers: { 'X-Nadir-Signature': 'x', 'Bad Header': 'v', 'X-A': 1 },
        },
        P,
      ),
      [
        `${P}/headers/X-Nadir-Signature: is set by NADIR and cannot be overridden`,
        `${P}/headers/Bad Header: not a valid header name`,
        `${P}/headers/X-A: must be a string`,
      ],
    );
    assert.deepEqual(
      validateChannel(
        {
          name: 'm',
          type: 'email',
          host: 'h',
          port: 70000,
          pass: 'p',
          from: 'nope',
          to: ['a@x.test', 'bad'],
        },
        P,
      ),
      [
        `${P}/port: must be an integer from 1 to 65535`,
        `${P}/pass: is set but user is not`,
        `${P}/from: must be an e-mail address ("a@b.example" or "Name <a@b.example>")`,
        `${P}/to/1: must be an e-mail address`,
      ],
    );
    assert.deepEqual(
      validateChannel({ name: 'm', type: 'email', host: 'h', port: 25, from: 'a@x.test', to: [] }, P),
      [`${P}/to: must be a non-empty array of e-mail addresses`],
    );
    assert.deepEqual(validateChannel({ name: 'l', type: 'log' }, P), [`${P}/path: is required`]);
  });
});
