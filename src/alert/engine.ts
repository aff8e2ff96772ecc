/**
 * Alert rules, de-duplication and dispatch. Anomalies from the detection service are matched
 * against the configured rules:
 *
 *   score   every anomaly scoring above `minScore` (default: the model's threshold) raises an
 *           alert for its group (source IP, destination IP, the pair, or everything);
 *   count   at least `k` anomalies of one group within a sliding `windowSeconds`.
 *
 * An alert's key is `<rule>:<group>`. While an alert with that key is not resolved and its last
 * anomaly is less than `suppressSeconds` old, new anomalies fold into it (count, last seen, top
 * score, severity can only rise) and nothing is sent again; otherwise a new alert is stored and
 * sent through every enabled channel, with retries, each attempt stored as a delivery.
 *
 * Severity `auto`: from score / threshold (≥1.5 critical, ≥1.25 high, ≥1.1 medium, else low),
 * at least `high` when a classifier named a threat type. Processing is serialised (one batch at a
 * time), so de-duplication has no races; the in-memory windows and caches are bounded.
 */
import { resolve } from 'node:path';
import type { Contribution } from '../core/records.js';
import type { ApiVerdict, Log } from '../pipeline/service.js';
import type { AlertRule, ServiceConfig } from '../server/config.js';
import type { Metrics } from '../server/metrics.js';
import type { Alert, AlertInput, Severity, Store } from '../store/store.js';
import {
  type ChannelConfig,
  type DeliveryOutcome,
  deliver,
  endpoint,
  formatValue,
  protocolName,
} from './channels.js';

const SEVERITIES: Severity[] = ['info', 'low', 'medium', 'high', 'critical'];
const MAX_KEYS = 100_000;

export function autoSeverity(score: number, threshold: number, threat: string | null): Severity {
  const r = threshold > 0 ? score / threshold : 1 + (score - threshold);
  let s: Severity = r >= 1.5 ? 'critical' : r >= 1.25 ? 'high' : r >= 1.1 ? 'medium' : 'low';
  if (threat && threat !== 'BENIGN' && SEVERITIES.indexOf(s) < SEVERITIES.indexOf('high')) s = 'high';
  return s;
}

function maxSeverity(a: Severity, b: Severity): Severity {
  return SEVERITIES.indexOf(a) >= SEVERITIES.indexOf(b) ? a : b;
}

function groupOf(rule: AlertRule, v: ApiVerdict): string {
  // A series anomaly has no addresses: it groups by its series whatever the rule's grouping
  // (except `none`), so one link's outage does not fold into another's.
  if (v.flow_id?.startsWith('series:') && rule.groupBy !== 'none') return v.flow_id;
  switch (rule.groupBy) {
    case 'src':
      return `src=${v.src_ip ?? '?'}`;
    case 'dst':
      return `dst=${v.dst_ip ?? '?'}`;
    case 'pair':
      return `pair=${v.src_ip ?? '?'}>${v.dst_ip ?? '?'}`;
    default:
      return 'all';
  }
}

/** One line saying why: the features that set this flow apart, observed vs typical. */
export function whyText(contributions: Contribution[] | undefined, n = 3): string {
  if (!contributions?.length) return 'no single feature stands out';
  return contributions
    .slice(0, n)
    .map(
      (c) =>
        `${c.feature} ${formatValue(c.value)} (typical ${formatValue(c.typical)}, ${Math.round(c.share * 100)}%)`,
    )
    .join('; ');
}

interface Anomaly {
  verdict: ApiVerdict;
  ts: number;
  features: Record<string, number> | null;
}

/** Anomalies of one alert key within a processed batch. */
interface Group {
  rule: AlertRule;
  key: string;
  group: string;
  /** The highest-scoring anomaly: its flow and explanation describe the alert. */
  top: Anomaly;
  count: number;
  firstSeen: number;
  lastSeen: number;
  severity: Severity;
  windowCount: number;
}

/** Anomalies waiting for the engine beyond this many are dropped (and counted). */
const MAX_PENDING = 200_000;

export class AlertEngine {
  private pending: Anomaly[] = [];
  private running: Promise<void> | null = null;
  private looping = false;
  private readonly windows = new Map<string, number[]>();
  private readonly active = new Map<string, Alert>();
  /** Deliveries still running (awaited on shutdown). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Anomalies dropped because the engine fell too far behind. */
  dropped = 0;
  /** Updates of open alerts (anomalies folded in) not yet written, by alert id. */
  private readonly dirty = new Map<number, Parameters<Store['updateAlert']>[1]>();
  private lastFlush = 0;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly config: () => ServiceConfig,
    private readonly metrics: Metrics,
    private readonly log: Log,
    private readonly dataDir: string,
    private readonly emit: (alert: Alert) => void,
  ) {}

  /**
   * Queues anomalies. Whatever has queued while the engine was busy is processed together, so
   * under load each alert key costs one store write per round, not one per anomaly.
   */
  handle(batch: Anomaly[]): void {
    const room = MAX_PENDING - this.pending.length;
    if (batch.length > room) {
      this.dropped += batch.length - Math.max(0, room);
      this.metrics.rejected.inc({ reason: 'alert-backlog' }, batch.length - Math.max(0, room));
      batch = batch.slice(0, Math.max(0, room));
    }
    for (const a of batch) this.pending.push(a);
    this.kick();
  }

  /** Starts the processing loop unless it runs. */
  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    this.running = this.loop();
  }

  /**
   * Processes until nothing is pending; anomalies handed over while it was finishing start a new
   * loop, so `handle` never queues anomalies that no loop will take.
   */
  private async loop(): Promise<void> {
    await null;
    try {
      for (;;) {
        while (this.pending.length) {
          const batch = this.pending;
          this.pending = [];
          try {
            await this.process(batch);
            if (Date.now() - this.lastFlush >= 1000) await this.flushUpdates();
          } catch (e) {
            this.log.error(`alert processing failed: ${(e as Error).message}`);
          }
        }
        if (this.dirty.size && Date.now() - this.lastFlush >= 1000) {
          await this.flushUpdates().catch((e) =>
            this.log.error(`alert update failed: ${(e as Error).message}`),
          );
          continue;
        }
        break;
      }
      if (this.dirty.size && !this.flushTimer) {
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null;
          this.kick();
        }, 1000);
        this.flushTimer.unref();
      }
    } finally {
      this.looping = false;
      this.running = null;
      if (this.pending.length) this.kick();
    }
  }

  /**
   * Writes folded counts of open alerts: under a flood, one write per alert per second instead
   * of one per anomaly batch (they share the store with the verdicts).
   */
  private async flushUpdates(): Promise<void> {
    this.lastFlush = Date.now();
    const updates = [...this.dirty];
    this.dirty.clear();
    for (const [id, patch] of updates) await this.store.updateAlert(id, patch);
  }

  /** Waits for queued anomalies, pending alert updates and running deliveries. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await this.flushUpdates();
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Keeps the cache in step with status changes made through the API. */
  statusChanged(a: Alert): void {
    if (a.status === 'resolved') this.active.delete(a.key);
    else if (this.active.has(a.key)) this.active.set(a.key, a);
  }

  private async process(batch: Anomaly[]): Promise<void> {
    const cfg = this.config();
    const groups = new Map<string, Group>();
    for (const rule of cfg.alerts.rules) {
      if (rule.enabled === false) continue;
      for (const a of batch) {
        const v = a.verdict;
        const score = v.score ?? 0;
        const thr = v.threshold ?? 0;
        const group = groupOf(rule, v);
        const key = `${rule.name}:${group}`;
        let severity: Severity;
        let windowCount = 1;
        if (rule.type === 'score') {
          if (!(score > (rule.minScore ?? thr))) continue;
          severity = rule.severity === 'auto' ? autoSeverity(score, thr, v.threat_type) : rule.severity;
        } else {
          const horizon = a.ts - rule.windowSeconds * 1000;
          let w = this.windows.get(key);
          if (!w) {
            w = [];
            this.windows.set(key, w);
            if (this.windows.size > MAX_KEYS) this.windows.delete(this.windows.keys().next().value as string);
          }
          w.push(a.ts);
          // The newest k decide whether k fall within the window: keep no more (bounded memory).
          if (w.length > rule.k) w.splice(0, w.length - rule.k);
          let drop = 0;
          while (drop < w.length && w[drop] <= horizon) drop++;
          if (drop) w.splice(0, drop);
          if (w.length < rule.k) continue;
          severity = rule.severity;
          windowCount = w.length;
        }
        const g = groups.get(key);
        if (!g)
          groups.set(key, {
            rule,
            key,
            group,
            top: a,
            count: 1,
            firstSeen: a.ts,
            lastSeen: a.ts,
            severity,
            windowCount,
          });
        else {
          g.count++;
          g.firstSeen = Math.min(g.firstSeen, a.ts);
          g.lastSeen = Math.max(g.lastSeen, a.ts);
          g.severity = maxSeverity(g.severity, severity);
          g.windowCount = Math.max(g.windowCount, windowCount);
          if (score > (g.top.verdict.score ?? 0)) g.top = a;
        }
      }
    }
    for (const g of groups.values()) await this.raise(g, cfg);
  }

  private async raise(g: Group, cfg: ServiceConfig): Promise<void> {
    const { rule, key, group, severity, windowCount } = g;
    const v = g.top.verdict;
    const now = g.lastSeen;
    const since = now - cfg.alerts.suppressSeconds * 1000;
    let cur = this.active.get(key) ?? null;
    if (cur && (cur.lastSeen < since || cur.status === 'resolved')) cur = null;
    if (!cur) cur = await this.store.findActiveAlert(key, since);
    const score = v.score ?? 0;
    if (cur) {
      const patch = {
        count: cur.count + g.count,
        lastSeen: Math.max(cur.lastSeen, now),
        score: Math.max(cur.score, score),
        severity: maxSeverity(cur.severity, severity),
      };
      // Folded counts are written at most once a second per alert (see flushUpdates).
      this.dirty.set(cur.id, patch);
      this.remember({ ...cur, ...patch });
      return;
    }
    const flow = {
      src_ip: v.src_ip,
      src_port: v.src_port,
      dst_ip: v.dst_ip,
      dst_port: v.dst_port,
      protocol: v.protocol,
      flow_id: v.flow_id,
    };
    const proto = v.protocol === null ? '' : ` ${protocolName(v.protocol)}`;
    const what = v.threat_type && v.threat_type !== 'BENIGN' ? v.threat_type : 'Anomalous flow';
    const route = v.flow_id?.startsWith('series:')
      ? v.flow_id.slice(7)
      : `${endpoint(v.src_ip, v.src_port) ?? '?'} → ${endpoint(v.dst_ip, v.dst_port) ?? '?'}${proto}`;
    const why = whyText(v.contributions);
    const summary =
      rule.type === 'count'
        ? `${windowCount} anomalies for ${group} within ${rule.windowSeconds} s (top: ${what} ${route})`
        : `${what} ${route}: score ${formatValue(score)} > threshold ${formatValue(v.threshold ?? 0)}`;
    const input: AlertInput = {
      rule: rule.name,
      key,
      severity,
      status: 'open',
      firstSeen: g.firstSeen,
      lastSeen: now,
      count: g.count,
      score,
      threshold: v.threshold ?? 0,
      model: v.model,
      summary,
      details: {
        rule,
        group,
        why,
        contributions: v.contributions ?? [],
        flow,
        threat_type: v.threat_type,
        prediction_id: v.id,
        model: v.model,
        threshold: v.threshold,
        score,
        window_count: rule.type === 'count' ? windowCount : undefined,
        features: g.top.features ?? undefined,
      },
    };
    const id = await this.store.insertAlert(input);
    const alert: Alert = { ...input, id, statusChangedAt: null };
    this.remember(alert);
    this.metrics.alerts.inc({ rule: rule.name, severity });
    this.emit(alert);
    const p = this.dispatch(alert, false);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private remember(a: Alert): void {
    this.active.delete(a.key);
    this.active.set(a.key, a);
    if (this.active.size > MAX_KEYS) this.active.delete(this.active.keys().next().value as string);
  }

  private channels(): ChannelConfig[] {
    return this.config()
      .alerts.channels.filter((c) => c.enabled !== false)
      .map((c) => (c.type === 'log' ? { ...c, path: resolve(this.dataDir, c.path) } : c)) as ChannelConfig[];
  }

  /** Sends an alert through every enabled channel; each attempt is stored (unless a test). */
  async dispatch(alert: Alert, test: boolean): Promise<DeliveryOutcome[]> {
    const retry = this.config().alerts.retry;
    return Promise.all(
      this.channels().map(async (ch) => {
        const outcome = await deliver(ch, { alert, test }, retry, async (d) => {
          if (test) return;
          try {
            await this.store.insertDelivery({ ...d, alertId: alert.id });
          } catch (e) {
            this.log.error(`storing a delivery of alert ${alert.id} failed: ${(e as Error).message}`);
          }
        });
        this.metrics.deliveries.inc({
          channel: ch.name,
          kind: ch.type,
          outcome: outcome.ok ? 'ok' : 'failed',
        });
        if (!outcome.ok)
          this.log.warn(
            `alert ${alert.id} not delivered to ${ch.name} after ${outcome.attempts} attempt(s): ${outcome.detail}`,
          );
        return outcome;
      }),
    );
  }

  /** `POST /test-alert`: a made-up alert through every channel, outcomes returned, nothing stored. */
  testAlert(): Promise<DeliveryOutcome[]> {
    const now = Date.now();
    const alert: Alert = {
      id: 0,
      rule: 'test',
      key: 'test',
      severity: 'info',
      status: 'open',
      firstSeen: now,
      lastSeen: now,
      count: 1,
      score: 1,
      threshold: 0.5,
      model: null,
      summary: 'Test alert from NADIR: if you can read this, the channel works',
      details: {
        why: 'a test: Flow Bytes/s 1e6 (typical 1200, 80%)',
        contributions: [{ feature: 'Flow Bytes/s', value: 1e6, typical: 1200, share: 0.8 }],
        flow: { src_ip: '192.0.2.1', src_port: 40000, dst_ip: '198.51.100.7', dst_port: 443, protocol: 6 },
      },
      statusChangedAt: null,
    };
    return this.dispatch(alert, true);
  }
}
