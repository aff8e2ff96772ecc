/**
 * Prometheus metrics of the service (`GET /api/v1/metrics`, text format), on a registry of its
 * own so several services can live in one process (tests). Names follow Prometheus conventions:
 * `_total` counters, `_seconds` histograms.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestSeconds: Histogram<'method' | 'route'>;
  readonly flows: Counter<'source' | 'kind'>;
  readonly verdicts: Counter<'model'>;
  readonly anomalies: Counter<'model'>;
  readonly rejected: Counter<'reason'>;
  readonly alerts: Counter<'rule' | 'severity'>;
  readonly deliveries: Counter<'channel' | 'kind' | 'outcome'>;
  readonly storeSeconds: Histogram<'op'>;
  readonly storeRows: Counter<'table'>;
  readonly learning: Gauge;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'nadir_' });
    this.requests = new Counter({
      name: 'nadir_http_requests_total',
      help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'nadir_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.flows = new Counter({
      name: 'nadir_flows_total',
      help: 'Flow records accepted, by source and kind (detect | ingest)',
      labelNames: ['source', 'kind'],
      registers,
    });
    this.verdicts = new Counter({
      name: 'nadir_verdicts_total',
      help: 'Verdicts produced, by model',
      labelNames: ['model'],
      registers,
    });
    this.anomalies = new Counter({
      name: 'nadir_anomalies_total',
      help: 'Verdicts that were anomalies, by model',
      labelNames: ['model'],
      registers,
    });
    this.rejected = new Counter({
      name: 'nadir_rejected_requests_total',
      help: 'Requests refused, by reason (validation, auth, size, rate)',
      labelNames: ['reason'],
      registers,
    });
    this.alerts = new Counter({
      name: 'nadir_alerts_total',
      help: 'Alerts raised (new, not folded into an open one), by rule and severity',
      labelNames: ['rule', 'severity'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'nadir_alert_deliveries_total',
      help: 'Alert delivery outcomes (after retries), by channel',
      labelNames: ['channel', 'kind', 'outcome'],
      registers,
    });
    this.storeSeconds = new Histogram({
      name: 'nadir_store_write_duration_seconds',
      help: 'Store commit latency, by operation',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.storeRows = new Counter({
      name: 'nadir_store_rows_total',
      help: 'Rows committed to the store, by table',
      labelNames: ['table'],
      registers,
    });
    this.learning = new Gauge({
      name: 'nadir_learning_baseline_flows',
      help: 'Flows collected towards the learned baseline (0 when a model is active)',
      registers,
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
