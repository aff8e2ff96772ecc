/**
 * Alert delivery channels: webhook (signed JSON), Slack (incoming webhook), e-mail (SMTP through
 * nodemailer) and a JSON-lines log file. `deliver` sends one alert over one channel with retries
 * and reports every attempt through `onAttempt` (the caller records them as deliveries).
 *
 * Retries: up to `attempts` tries, waiting baseDelayMs·2^(n-1) (capped at maxDelayMs, ±20% jitter)
 * after failure n. HTTP: 2xx delivered; 408, 429 and 5xx, network errors and timeouts retried (a
 * Retry-After header, seconds or HTTP date, replaces the backoff, capped at maxDelayMs); other
 * 4xx and 3xx are permanent (redirects are not followed, so a signed body never goes elsewhere).
 * SMTP: 4xx replies and connection errors retried, 5xx (except 503) permanent.
 *
 * Webhook signature: `X-Nadir-Signature: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>` with
 * `X-Nadir-Timestamp: <ts>` (unix seconds, fresh on every attempt) over the exact body bytes;
 * `X-Nadir-Delivery` is one id for all attempts of a delivery, so a receiver can drop duplicates
 * (a timed-out attempt may still have arrived). Credentials in a webhook URL are sent as HTTP
 * Basic auth, never as part of the URL.
 *
 * E-mail TLS: `secure: true` is implicit TLS (port 465). Otherwise the connection upgrades with
 * STARTTLS whenever the server offers it, and STARTTLS is *required* when a user/password is set
 * and the host is not loopback, so credentials never cross a network in clear. On a loopback host
 * (localhost, 127.0.0.0/8, ::1) with `secure: false` STARTTLS is skipped (`ignoreTLS`): the
 * traffic never leaves the machine and local relays often have self-signed certificates.
 * Certificates are always verified; there is no switch to turn that off.
 *
 * Secrets (webhook secret and URL credentials/query, Slack URL path, SMTP password, webhook header
 * values) never appear in attempt details: messages are scrubbed, and `redactChannel` masks them
 * with `***` for GET /config and logs.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { NADIR_VERSION } from '../core/version.js';
import type { Alert, Delivery, DeliveryInput, Severity } from '../store/store.js';

export type ChannelConfig =
  | {
      name: string;
      type: 'webhook';
      url: string;
      secret?: string;
      headers?: Record<string, string>;
      enabled?: boolean;
    }
  | { name: string; type: 'slack'; url: string; enabled?: boolean }
  | {
      name: string;
      type: 'email';
      host: string;
      port: number;
      secure?: boolean;
      user?: string;
      pass?: string;
      from: string;
      to: string[];
      enabled?: boolean;
    }
  | { name: string; type: 'log'; path: string; enabled?: boolean };

export type ChannelType = ChannelConfig['type'];
export const CHANNEL_TYPES: readonly ChannelType[] = ['webhook', 'slack', 'email', 'log'];

export interface RetryPolicy {
  /** Tries in all (≥ 1). */
  attempts: number;
  /** Wait after the first failure; doubles after each further one. */
  baseDelayMs: number;
  /** Cap on any wait, Retry-After included. */
  maxDelayMs: number;
  /** Per-attempt limit (HTTP request, SMTP connection/greeting/idle socket). */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 30000,
  timeoutMs: 10000,
};

export interface AlertMessage {
  alert: Alert;
  /** A test alert from POST /test-alert. */
  test?: boolean;
}

export interface DeliveryOutcome {
  channel: string;
  kind: string;
  ok: boolean;
  attempts: number;
  /** Detail of the last attempt. */
  detail: string;
  /** Total time, waits included. */
  ms: number;
}

export type AttemptReport = Omit<DeliveryInput, 'alertId'>;

export const SECRET_MARK = '***';

/** Result of one attempt. */
interface Attempt {
  ok: boolean;
  detail: string;
  /** Worth trying again. */
  retry: boolean;
  /** Server-requested wait (Retry-After), ms. */
  retryAfterMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Delivery

/**
 * Delivers one alert over one channel, retrying per `policy`. Never throws: failures come back as
 * `ok: false` with the last attempt's detail. Errors thrown by `onAttempt` are ignored, so a
 * failing delivery log never turns a delivered alert into a failed (and re-sent) one.
 */
export async function deliver(
  ch: ChannelConfig,
  msg: AlertMessage,
  policy?: Partial<RetryPolicy>,
  onAttempt?: (d: AttemptReport) => void | Promise<void>,
): Promise<DeliveryOutcome> {
  const p = resolvePolicy(policy);
  const t0 = Date.now();
  const kind = String((ch as { type?: unknown }).type);
  const scrub = scrubber(ch);
  let send: ((attempt: number) => Promise<Attempt>) | null = null;
  let last: Attempt = { ok: false, detail: 'not attempted', retry: false };
  try {
    send = sender(ch, msg, p);
  } catch (err) {
    // a configuration that cannot be sent at all (bad URL, unknown type): one failed attempt
    last = { ok: false, detail: errText(err), retry: false };
  }
  let n = 0;
  while (n < p.attempts) {
    n++;
    if (send)
      try {
        last = await send(n);
      } catch (err) {
        last = { ok: false, detail: errText(err), retry: true };
      }
    last.detail = scrub(last.detail);
    if (onAttempt) {
      try {
        await onAttempt({
          channel: ch.name,
          kind,
          attempt: n,
          ok: last.ok,
          detail: last.detail,
          ts: Date.now(),
        });
      } catch {
        // see above: the delivery's result does not depend on its bookkeeping
      }
    }
    if (last.ok || !last.retry || n >= p.attempts) break;
    await sleep(retryDelay(n, p, last.retryAfterMs));
  }
  return { channel: ch.name, kind, ok: last.ok, attempts: n, detail: last.detail, ms: Date.now() - t0 };
}

function resolvePolicy(policy?: Partial<RetryPolicy>): RetryPolicy {
  const p = { ...DEFAULT_RETRY };
  for (const k of Object.keys(p) as (keyof RetryPolicy)[]) {
    const v = policy?.[k];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) p[k] = v;
  }
  p.attempts = Math.max(1, Math.floor(p.attempts));
  p.timeoutMs = Math.max(1, p.timeoutMs);
  return p;
}

/** Wait after failed attempt `n` (1-based). */
export function retryDelay(n: number, p: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), p.maxDelayMs);
  const d = Math.min(p.baseDelayMs * 2 ** (n - 1), p.maxDelayMs);
  return Math.round(d * (0.8 + 0.4 * Math.random()));
}

function sender(ch: ChannelConfig, msg: AlertMessage, p: RetryPolicy): (attempt: number) => Promise<Attempt> {
  switch (ch.type) {
    case 'webhook':
      return webhookSender(ch, msg, p);
    case 'slack':
      return slackSender(ch, msg, p);
    case 'email':
      return emailSender(ch, msg, p);
    case 'log':
      return logSender(ch, msg);
    default:
      throw new Error(`unknown channel type "${String((ch as { type?: unknown }).type)}"`);
  }
}

/** The JSON document sent to webhooks and written to log files. */
/**
 * An alert as the REST API shows it (`GET /api/v1/alerts`): snake_case, times in ISO 8601. Webhook
 * and log payloads use the same document, so one parser serves both.
 */
export function alertDocument(a: Alert, deliveries: Delivery[] = []) {
  return {
    id: a.id,
    rule: a.rule,
    key: a.key,
    severity: a.severity,
    status: a.status,
    first_seen: new Date(a.firstSeen).toISOString(),
    last_seen: new Date(a.lastSeen).toISOString(),
    status_changed_at: a.statusChangedAt === null ? null : new Date(a.statusChangedAt).toISOString(),
    count: a.count,
    score: a.score,
    threshold: a.threshold,
    model: a.model,
    summary: a.summary,
    details: a.details,
    deliveries: deliveries
      .filter((d) => d.alertId === a.id)
      .map((d) => ({
        id: d.id,
        channel: d.channel,
        kind: d.kind,
        attempt: d.attempt,
        ok: d.ok,
        detail: d.detail,
        ts: new Date(d.ts).toISOString(),
      })),
  };
}

export type AlertDocument = ReturnType<typeof alertDocument>;

export function alertPayload(msg: AlertMessage): {
  type: 'nadir.alert';
  test: boolean;
  alert: Omit<AlertDocument, 'deliveries'>;
} {
  const { deliveries: _, ...alert } = alertDocument(msg.alert);
  return { type: 'nadir.alert', test: msg.test === true, alert };
}

// ---------------------------------------------------------------------------------------------
// HTTP (webhook, Slack)

function webhookSender(
  ch: Extract<ChannelConfig, { type: 'webhook' }>,
  msg: AlertMessage,
  p: RetryPolicy,
): (attempt: number) => Promise<Attempt> {
  const { url, auth } = splitCredentials(ch.url);
  const body = JSON.stringify(alertPayload(msg));
  const deliveryId = randomUUID();
  return async () => {
    const ts = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {};
    if (auth) headers.authorization = auth;
    for (const [k, v] of Object.entries(ch.headers ?? {})) headers[k.toLowerCase()] = v;
    headers['content-type'] = 'application/json';
    headers['user-agent'] = `nadir/${NADIR_VERSION}`;
    headers['x-nadir-timestamp'] = String(ts);
    headers['x-nadir-delivery'] = deliveryId;
    if (ch.secret) headers['x-nadir-signature'] = `sha256=${signPayload(ch.secret, ts, body)}`;
    return httpPost(url, headers, body, p);
  };
}

function slackSender(
  ch: Extract<ChannelConfig, { type: 'slack' }>,
  msg: AlertMessage,
  p: RetryPolicy,
): (attempt: number) => Promise<Attempt> {
  const { url } = splitCredentials(ch.url);
  const body = JSON.stringify(slackPayload(msg));
  const headers = { 'content-type': 'application/json', 'user-agent': `nadir/${NADIR_VERSION}` };
  return () => httpPost(url, headers, body, p);
}

/** Parses `raw`, moving any user:password into a Basic authorization header value. */
function splitCredentials(raw: string): { url: URL; auth?: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('invalid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('URL must be http(s)');
  if (!url.username && !url.password) return { url };
  const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  url.username = '';
  url.password = '';
  return { url, auth: `Basic ${Buffer.from(cred).toString('base64')}` };
}

async function httpPost(
  url: URL,
  headers: Record<string, string>,
  body: string,
  p: RetryPolicy,
): Promise<Attempt> {
  let res: Response;
  const signal = AbortSignal.timeout(p.timeoutMs);
  try {
    res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal });
  } catch (err) {
    return { ok: false, retry: true, detail: fetchErrorText(err, p.timeoutMs) };
  }
  let text = '';
  try {
    text = await res.text();
  } catch (err) {
    if (res.status < 200 || res.status >= 300)
      text = `(body unreadable: ${fetchErrorText(err, p.timeoutMs)})`;
  }
  const line = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.status >= 200 && res.status < 300) return { ok: true, retry: false, detail: line };
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  const detail = snippet ? `${line}: ${snippet}` : line;
  if (res.status >= 300 && res.status < 400)
    return { ok: false, retry: false, detail: `${line} (redirects are not followed)` };
  const retry = res.status === 408 || res.status === 429 || res.status >= 500;
  const retryAfterMs = retry ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
  return { ok: false, retry, detail, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

/** Retry-After as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | undefined {
  if (v === null) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function fetchErrorText(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timeout after ${timeoutMs} ms`;
  const cause = e?.cause;
  if (cause?.message) return `network error: ${cause.message}`;
  if (cause?.code) return `network error: ${cause.code}`;
  return `network error: ${errText(err)}`;
}

// ---------------------------------------------------------------------------------------------
// E-mail

function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

interface SmtpError {
  code?: string;
  responseCode?: number;
  permanent?: boolean;
  response?: string;
  message?: string;
}

/** Nodemailer error codes that no retry can fix (bad configuration or message). */
const SMTP_PERMANENT_CODES = new Set([
  'ECONFIG',
  'ENOAUTH',
  'EENVELOPE',
  'EMESSAGE',
  'EMAXRECIPIENTS',
  'EFILEACCESS',
  'EURLACCESS',
]);

function emailSender(
  ch: Extract<ChannelConfig, { type: 'email' }>,
  msg: AlertMessage,
  p: RetryPolicy,
): (attempt: number) => Promise<Attempt> {
  const { subject, text } = alertText(msg);
  const html = alertHtml(msg);
  const secure = ch.secure === true;
  const loopback = isLoopbackHost(ch.host);
  return async () => {
    const transport = nodemailer.createTransport({
      host: ch.host,
      port: ch.port,
      secure,
      ...(ch.user ? { auth: { user: ch.user, pass: ch.pass ?? '' } } : {}),
      ...(!secure && loopback ? { ignoreTLS: true } : {}),
      ...(!secure && !loopback && ch.user ? { requireTLS: true } : {}),
      connectionTimeout: p.timeoutMs,
      greetingTimeout: p.timeoutMs,
      socketTimeout: p.timeoutMs,
      dnsTimeout: p.timeoutMs,
    });
    try {
      const info = await transport.sendMail({
        from: ch.from,
        to: ch.to,
        subject,
        text,
        html,
        headers: { 'X-Nadir-Alert': String(msg.alert.id), 'X-Mailer': `nadir/${NADIR_VERSION}` },
      });
      const rejected = (info.rejected ?? []).length;
      const resp = String(info.response ?? '').trim();
      return {
        ok: true,
        retry: false,
        detail: rejected ? `${resp} (${rejected} recipient(s) rejected)` : resp,
      };
    } catch (err) {
      const e = err as SmtpError;
      let permanent: boolean;
      if (typeof e.permanent === 'boolean') permanent = e.permanent;
      else if (typeof e.responseCode === 'number')
        permanent = e.responseCode >= 500 && e.responseCode !== 503;
      else permanent = e.code !== undefined && SMTP_PERMANENT_CODES.has(e.code);
      const code = e.responseCode ? `SMTP ${e.responseCode}: ` : e.code ? `${e.code}: ` : '';
      return { ok: false, retry: !permanent, detail: `${code}${errText(err)}` };
    } finally {
      transport.close();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Log file

function logSender(ch: Extract<ChannelConfig, { type: 'log' }>, msg: AlertMessage): () => Promise<Attempt> {
  const line = `${JSON.stringify({ loggedAt: new Date().toISOString(), ...alertPayload(msg) })}\n`;
  return async () => {
    await mkdir(dirname(ch.path), { recursive: true });
    await appendFile(ch.path, line, 'utf8');
    return { ok: true, retry: false, detail: `appended to ${ch.path}` };
  };
}

// ---------------------------------------------------------------------------------------------
// Signatures

/** Hex HMAC-SHA256 of `${timestamp}.${body}`. */
export function signPayload(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/**
 * Verifies a webhook signature over the raw body. `header` is either the request's headers (as
 * Node's `req.headers`: x-nadir-timestamp and x-nadir-signature are read), or one string
 * `t=<X-Nadir-Timestamp>,sha256=<hex>` (order free, comma or space separated). Fails when the
 * timestamp is more than `toleranceSec` away from `nowSec` (either way). Timing-safe.
 */
export function verifySignature(
  secret: string,
  header: string | Record<string, string | string[] | undefined>,
  body: string | Uint8Array,
  nowSec: number = Math.floor(Date.now() / 1000),
  toleranceSec = 300,
): boolean {
  let tsText: string | undefined;
  let sig: string | undefined;
  if (typeof header === 'string') {
    for (const part of header.split(/[,\s]+/)) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const k = part.slice(0, eq).trim().toLowerCase();
      const v = part.slice(eq + 1).trim();
      if (k === 't') tsText = v;
      else if (k === 'sha256') sig = v;
    }
  } else {
    const get = (name: string) => {
      const key = Object.keys(header).find((k) => k.toLowerCase() === name);
      const v = key === undefined ? undefined : header[key];
      return Array.isArray(v) ? v[0] : v;
    };
    tsText = get('x-nadir-timestamp')?.trim();
    const s = get('x-nadir-signature')?.trim();
    if (s?.toLowerCase().startsWith('sha256=')) sig = s.slice(7);
  }
  if (!tsText || !/^\d{1,15}$/.test(tsText) || !sig || !/^[0-9a-fA-F]{64}$/.test(sig)) return false;
  const ts = Number(tsText);
  if (!(Math.abs(nowSec - ts) <= toleranceSec)) return false;
  const expected = Buffer.from(signPayload(secret, ts, body), 'hex');
  return timingSafeEqual(expected, Buffer.from(sig, 'hex'));
}

// ---------------------------------------------------------------------------------------------
// Message text

const SEVERITY_EMOJI: Record<Severity, string> = {
  info: ':information_source:',
  low: ':large_blue_circle:',
  medium: ':large_yellow_circle:',
  high: ':large_orange_circle:',
  critical: ':red_circle:',
};

const PROTOCOLS: Record<number, string> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  47: 'GRE',
  50: 'ESP',
  58: 'ICMPv6',
  132: 'SCTP',
};

interface FeatureLine {
  feature: string;
  value: unknown;
  typical: unknown;
  share: number | null;
}

/** Number formatting for people: integers whole, others to ~4 significant digits. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    if (Math.abs(v) >= 1000) return String(Math.round(v));
    if (Math.abs(v) >= 100) return String(Number(v.toFixed(1)));
    return String(Number(v.toPrecision(4)));
  }
  if (v === null || v === undefined) return '?';
  return String(v);
}

function topFeatures(alert: Alert, max = 5): FeatureLine[] {
  const list = (alert.details as { contributions?: unknown })?.contributions;
  if (!Array.isArray(list)) return [];
  const out: FeatureLine[] = [];
  for (const c of list) {
    if (!c || typeof c !== 'object') continue;
    const r = c as Record<string, unknown>;
    if (typeof r.feature !== 'string') continue;
    out.push({
      feature: r.feature,
      value: r.value,
      typical: r.typical,
      share: typeof r.share === 'number' && Number.isFinite(r.share) ? r.share : null,
    });
  }
  return out.sort((a, b) => (b.share ?? -1) - (a.share ?? -1)).slice(0, max);
}

function featureText(f: FeatureLine): string {
  const share = f.share === null ? '' : `, share ${Math.round(f.share * 100)}%`;
  return `${f.feature}: observed ${formatValue(f.value)} (typical ${formatValue(f.typical)}${share})`;
}

/** `ip:port` (`[v6]:port`), the address alone without a port, or null without an address. */
export function endpoint(ip: unknown, port: unknown): string | null {
  if (typeof ip !== 'string' || !ip) return null;
  if (typeof port !== 'number' && typeof port !== 'string') return ip;
  if (port === '') return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A protocol number's name (`TCP`), or `proto N`. */
export function protocolName(proto: number): string {
  return PROTOCOLS[proto] ?? `proto ${proto}`;
}

/** "src:port → dst:port (TCP)" from details.flow, or null. */
function flowText(alert: Alert): string | null {
  const f = (alert.details as { flow?: unknown })?.flow;
  if (!f || typeof f !== 'object') return null;
  const r = f as Record<string, unknown>;
  const src = endpoint(r.srcIp ?? r.src_ip ?? r.src, r.srcPort ?? r.src_port);
  const dst = endpoint(r.dstIp ?? r.dst_ip ?? r.dst, r.dstPort ?? r.dst_port);
  const proto = r.protocol ?? r.proto;
  const protoText = typeof proto === 'number' ? protocolName(proto) : typeof proto === 'string' ? proto : '';
  if (!src && !dst) return null;
  return `${src ?? '*'} → ${dst ?? '*'}${protoText ? ` (${protoText})` : ''}`;
}

function timeText(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, ' UTC');
}

function scoreText(a: Alert): string {
  const ratio =
    a.threshold > 0 && Number.isFinite(a.score) ? ` (${(a.score / a.threshold).toFixed(2)}× threshold)` : '';
  return `${formatValue(a.score)} vs threshold ${formatValue(a.threshold)}${ratio}`;
}

interface AlertFacts {
  sev: string;
  title: string;
  rows: [string, string][];
  features: string[];
}

function facts(msg: AlertMessage): AlertFacts {
  const a = msg.alert;
  const rows: [string, string][] = [];
  rows.push(['Rule', a.rule]);
  const d = a.details as { threatType?: unknown; threat_type?: unknown };
  const threat = d?.threat_type ?? d?.threatType;
  if (typeof threat === 'string' && threat) rows.push(['Threat', threat]);
  rows.push(['Model', a.model ?? '(none)']);
  rows.push(['Score', scoreText(a)]);
  const flow = flowText(a);
  if (flow) rows.push(['Flow', flow]);
  rows.push(['First seen', timeText(a.firstSeen)]);
  rows.push(['Last seen', timeText(a.lastSeen)]);
  rows.push(['Count', String(a.count)]);
  rows.push(['Status', a.status]);
  rows.push(['Alert', `#${a.id} (key ${a.key})`]);
  return {
    sev: String(a.severity).toUpperCase(),
    title: `${msg.test ? '[test] ' : ''}${a.summary}`,
    rows,
    features: topFeatures(a).map(featureText),
  };
}

/** Readable plain text of an alert, shared by Slack, e-mail and log consumers. */
export function alertText(msg: AlertMessage): { subject: string; text: string } {
  const f = facts(msg);
  const subject = `[NADIR ${f.sev}] ${f.title}`.replace(/[\r\n]+/g, ' ');
  const lines = [`${f.sev}: ${f.title}`];
  if (msg.test) lines.push('This is a test alert sent from NADIR; no action is needed.');
  lines.push('');
  const w = Math.max(...f.rows.map(([k]) => k.length)) + 1;
  for (const [k, v] of f.rows) lines.push(`${`${k}:`.padEnd(w)} ${v}`);
  if (f.features.length) {
    lines.push('', 'Top contributing features:');
    for (const t of f.features) lines.push(`  - ${t}`);
  }
  lines.push('', `-- NADIR ${NADIR_VERSION}`);
  return { subject, text: `${lines.join('\n')}\n` };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A simple HTML version of alertText (e-mail). */
export function alertHtml(msg: AlertMessage): string {
  const f = facts(msg);
  const rows = f.rows
    .map(
      ([k, v]) =>
        `<tr><th align="left" style="padding-right:1em">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`,
    )
    .join('');
  const feats = f.features.length
    ? `<p><b>Top contributing features</b></p><ul>${f.features.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ul>`
    : '';
  const test = msg.test ? '<p><i>This is a test alert sent from NADIR; no action is needed.</i></p>' : '';
  return (
    `<!doctype html><html><body style="font-family:sans-serif">` +
    `<h2>${escapeHtml(`${f.sev}: ${f.title}`)}</h2>${test}<table>${rows}</table>${feats}` +
    `<p style="color:#888">NADIR ${escapeHtml(NADIR_VERSION)}</p></body></html>`
  );
}

/** Slack mrkdwn escaping (only &, <, > are special). */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** Slack incoming-webhook body: `text` (notification and fallback) plus Block Kit blocks. */
export function slackPayload(msg: AlertMessage): { text: string; blocks: unknown[] } {
  const f = facts(msg);
  const emoji = SEVERITY_EMOJI[msg.alert.severity] ?? ':warning:';
  const text = clip(`${emoji} ${slackEscape(alertText(msg).text)}`, 3900);
  const fields = f.rows
    .filter(([k]) => k !== 'Alert')
    .slice(0, 10)
    .map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${k}*\n${slackEscape(v)}`, 2000) }));
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${f.sev}: ${f.title}`, 150), emoji: true } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`${emoji} *${f.sev}* ${slackEscape(f.title)}`, 3000) },
    },
    { type: 'section', fields },
  ];
  if (f.features.length)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          `*Top contributing features*\n${f.features.map((t) => `• ${slackEscape(t)}`).join('\n')}`,
          3000,
        ),
      },
    });
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: clip(
          `NADIR ${NADIR_VERSION} · alert #${msg.alert.id} · key ${slackEscape(msg.alert.key)}${msg.test ? ' · test alert' : ''}`,
          2000,
        ),
      },
    ],
  });
  return { text, blocks };
}

// ---------------------------------------------------------------------------------------------
// Secrets

function redactUrl(raw: string, keepPath: boolean): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return SECRET_MARK;
  }
  const cred = u.username || u.password ? `${SECRET_MARK}@` : '';
  const path = keepPath ? u.pathname : u.pathname === '/' ? '/' : `/${SECRET_MARK}`;
  const query = u.search ? `?${SECRET_MARK}` : '';
  return `${u.protocol}//${cred}${u.host}${path}${query}`;
}

/**
 * A copy with secrets replaced by SECRET_MARK: webhook secret, URL credentials and query, every
 * webhook header value (they often carry tokens), the Slack URL path, the SMTP password.
 */
export function redactChannel(ch: ChannelConfig): ChannelConfig {
  switch (ch.type) {
    case 'webhook': {
      const out = { ...ch, url: redactUrl(ch.url, true) };
      if (ch.secret !== undefined) out.secret = SECRET_MARK;
      if (ch.headers)
        out.headers = Object.fromEntries(Object.keys(ch.headers).map((k) => [k, SECRET_MARK] as const));
      return out;
    }
    case 'slack':
      return { ...ch, url: redactUrl(ch.url, false) };
    case 'email':
      return ch.pass !== undefined ? { ...ch, pass: SECRET_MARK } : { ...ch };
    default:
      return { ...ch };
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Secret strings of a channel that must never appear in a detail. */
function secretsOf(ch: ChannelConfig): string[] {
  const out: string[] = [];
  const urlParts = (raw: string, path: boolean) => {
    out.push(raw);
    try {
      const u = new URL(raw);
      out.push(u.href);
      for (const s of [u.username, u.password, u.search.slice(1)]) out.push(s, safeDecode(s));
      for (const v of u.searchParams.values()) out.push(v);
      if (path && u.pathname.length > 1) out.push(u.pathname, safeDecode(u.pathname));
    } catch {
      // an unparsable URL is scrubbed whole
    }
  };
  const c = ch as Partial<Record<string, unknown>> & { type?: unknown };
  if ((c.type === 'webhook' || c.type === 'slack') && typeof c.url === 'string')
    urlParts(c.url, c.type === 'slack');
  if (typeof c.secret === 'string') out.push(c.secret);
  if (typeof c.pass === 'string') out.push(c.pass);
  if (c.headers && typeof c.headers === 'object')
    for (const v of Object.values(c.headers as Record<string, unknown>))
      if (typeof v === 'string') out.push(v);
  // very short strings would mangle ordinary text; URL-shaped leaks are caught by the pattern below
  return [...new Set(out.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const URL_PATTERN = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*@)?([^\s/?#]*)([^\s?#]*)(\?[^\s#]*)?(#\S*)?/gi;

/** Returns a function removing the channel's secrets from a text. */
function scrubber(ch: ChannelConfig): (text: string) => string {
  const secrets = secretsOf(ch);
  const re = secrets.length ? new RegExp(secrets.map(escapeRegExp).join('|'), 'g') : null;
  const hidePath = ch.type === 'slack';
  return (text) => {
    let t = re ? text.replace(re, SECRET_MARK) : text;
    t = t.replace(
      URL_PATTERN,
      (_m, scheme: string, cred: string | undefined, host: string, path: string, q?: string) => {
        const p = hidePath && path && path !== '/' ? `/${SECRET_MARK}` : path;
        return `${scheme}${cred ? `${SECRET_MARK}@` : ''}${host}${p}${q ? `?${SECRET_MARK}` : ''}`;
      },
    );
    return t;
  };
}

function errText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// Validation

const COMMON_KEYS = ['name', 'type', 'enabled'];
const KEYS: Record<ChannelType, string[]> = {
  webhook: [...COMMON_KEYS, 'url', 'secret', 'headers'],
  slack: [...COMMON_KEYS, 'url'],
  email: [...COMMON_KEYS, 'host', 'port', 'secure', 'user', 'pass', 'from', 'to'],
  log: [...COMMON_KEYS, 'path'],
};

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers NADIR sets itself (or the HTTP stack owns). */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  'x-nadir-timestamp',
  'x-nadir-signature',
  'x-nadir-delivery',
]);

const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;
function isAddress(s: string): boolean {
  const m = /^[^<>]*<([^<>]+)>\s*$/.exec(s.trim());
  return ADDRESS.test(m ? m[1] : s.trim());
}

function isHttpUrl(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * Problems with one channel configuration, each `<path>/<field>: <what is wrong>`, empty when it
 * is valid. Name uniqueness across channels is the caller's job.
 */
export function validateChannel(ch: unknown, path: string): string[] {
  const out: string[] = [];
  if (!ch || typeof ch !== 'object' || Array.isArray(ch)) return [`${path}: must be an object`];
  const c = ch as Record<string, unknown>;
  const nonEmpty = (k: string, required: boolean) => {
    const v = c[k];
    if (v === undefined) {
      if (required) out.push(`${path}/${k}: is required`);
    } else if (typeof v !== 'string' || v.trim() === '') out.push(`${path}/${k}: must be a non-empty string`);
  };
  const bool = (k: string) => {
    if (c[k] !== undefined && typeof c[k] !== 'boolean') out.push(`${path}/${k}: must be a boolean`);
  };
  nonEmpty('name', true);
  bool('enabled');
  const type = c.type;
  if (type === undefined) {
    out.push(`${path}/type: is required`);
    return out;
  }
  if (typeof type !== 'string' || !(CHANNEL_TYPES as readonly string[]).includes(type)) {
    out.push(`${path}/type: must be one of ${CHANNEL_TYPES.join(', ')}`);
    return out;
  }
  const t = type as ChannelType;
  for (const k of Object.keys(c))
    if (!KEYS[t].includes(k)) out.push(`${path}/${k}: unknown property for a ${t} channel`);
  const url = (k: string) => {
    if (c[k] === undefined) out.push(`${path}/${k}: is required`);
    else if (!isHttpUrl(c[k])) out.push(`${path}/${k}: must be an http(s) URL`);
  };
  switch (t) {
    case 'webhook': {
      url('url');
      nonEmpty('secret', false);
      const h = c.headers;
      if (h !== undefined) {
        if (!h || typeof h !== 'object' || Array.isArray(h)) out.push(`${path}/headers: must be an object`);
        else
          for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
            const hp = `${path}/headers/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
            if (!HEADER_NAME.test(k)) out.push(`${hp}: not a valid header name`);
            else if (RESERVED_HEADERS.has(k.toLowerCase()))
              out.push(`${hp}: is set by NADIR and cannot be overridden`);
            if (typeof v !== 'string') out.push(`${hp}: must be a string`);
            else if (/[\r\n\0]/.test(v)) out.push(`${hp}: must not contain line breaks or NUL`);
          }
      }
      break;
    }
    case 'slack':
      url('url');
      break;
    case 'email': {
      nonEmpty('host', true);
      if (c.port === undefined) out.push(`${path}/port: is required`);
      else if (typeof c.port !== 'number' || !Number.isInteger(c.port) || c.port < 1 || c.port > 65535)
        out.push(`${path}/port: must be an integer from 1 to 65535`);
      bool('secure');
      nonEmpty('user', false);
      if (c.pass !== undefined && typeof c.pass !== 'string') out.push(`${path}/pass: must be a string`);
      else if (c.pass !== undefined && c.user === undefined) out.push(`${path}/pass: is set but user is not`);
      if (c.from === undefined) out.push(`${path}/from: is required`);
      else if (typeof c.from !== 'string' || !isAddress(c.from))
        out.push(`${path}/from: must be an e-mail address ("a@b.example" or "Name <a@b.example>")`);
      if (c.to === undefined) out.push(`${path}/to: is required`);
      else if (!Array.isArray(c.to) || c.to.length === 0)
        out.push(`${path}/to: must be a non-empty array of e-mail addresses`);
      else
        c.to.forEach((a, i) => {
          if (typeof a !== 'string' || !isAddress(a)) out.push(`${path}/to/${i}: must be an e-mail address`);
        });
      break;
    }
    case 'log':
      nonEmpty('path', true);
      break;
  }
  return out;
}
