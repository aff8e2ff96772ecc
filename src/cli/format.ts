/** Terminal rendering: tables, numbers, and the reports of train / evaluate / detect. */
import Table from 'cli-table3';
import type { CaptureSummary } from '../capture/inspect.js';
import type { Contribution } from '../core/records.js';
import type { FlowRow } from '../flow/meter.js';
import type { Model } from '../model/bundle.js';
import type { CaptureFlowsResult } from '../pipeline/capture-flows.js';
import type { DetectedFlow, DetectSummary } from '../pipeline/detect-files.js';
import type { EvaluationReport } from '../train/evaluate.js';

export function fmt(x: number, digits = 4): string {
  if (x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return x.toFixed(digits);
}

export function int(n: number): string {
  return n.toLocaleString('en-US');
}

/** Compact number for explanations: 3 significant digits, SI-ish exponent for big values. */
export function compact(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function table(head: string[], rows: (string | number)[][], align?: ('left' | 'right')[]): string {
  const t = new Table({
    head,
    style: { head: [], border: [], compact: true },
    colAligns: align ?? head.map((_, i) => (i === 0 ? 'left' : 'right')),
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function renderTrain(model: Model, out: string | undefined): string {
  const m = model.manifest;
  const f = m.features;
  const lines: string[] = [];
  lines.push(`Model ${m.id}${out ? ` saved to ${out}` : ''}`);
  lines.push(
    `  detector   ${m.detector.kind} ${Object.entries(m.detector.params)
      .filter(
        ([, v]) =>
          v !== undefined &&
          (v === null ||
            typeof v !== 'object' ||
            (Array.isArray(v) && v.every((x) => typeof x !== 'object'))),
      )
      .map(([k, v]) =>
        Array.isArray(v)
          ? v.length > 6
            ? `${k}=${v.length}`
            : `${k}=${v.map((x) => (typeof x === 'number' ? Number(x.toPrecision(4)) : x)).join(',')}`
          : `${k}=${v}`,
      )
      .join(' ')}`,
  );
  lines.push(
    `  features   ${f.inputs.length} input columns → ${f.outputs.length} dimensions (transform ${f.options.transform}, scaling ${f.options.scaling}, encoding ${f.options.encoding})`,
  );
  if (f.dropped.length)
    lines.push(
      `  dropped    ${f.dropped.map((d) => `${d.name} (${d.reason.replace(/ in training data.*/, '')})`).join(', ')}`,
    );
  const t = m.training;
  lines.push(
    `  training   ${int(t.fitRows)} ${t.supervised ? 'labelled' : 'benign'} rows fitted, ${int(t.calibrationRows)} held out for calibration (split ${t.split.kind === 'ratio' ? `${t.split.ratio} seed ${t.split.seed}` : 'none'})`,
  );
  const cal = m.detector.params.calibration as
    | { eceBefore: number; eceAfter: number; nllBefore: number; nllAfter: number }
    | null
    | undefined;
  if (cal && typeof cal.eceBefore === 'number')
    lines.push(
      `  calibrated temperature ${fmt(Number(m.detector.params.temperature), 3)}: held-out NLL ${fmt(cal.nllBefore, 4)} → ${fmt(cal.nllAfter, 4)}, ECE ${fmt(cal.eceBefore, 4)} → ${fmt(cal.eceAfter, 4)}`,
    );
  lines.push(`  threshold  ${m.threshold.method} = ${fmt(m.threshold.value)}`);
  lines.push(`  time       ${t.seconds.toFixed(2)} s`);
  return lines.join('\n');
}

export function renderEvaluation(r: EvaluationReport): string {
  const o = r.overall;
  const fprKeys = Object.keys(o.detectionAtFpr);
  const lines: string[] = [];
  lines.push(
    `Model ${r.model.id} (${r.model.detector}, threshold ${r.model.thresholdMethod} = ${fmt(r.model.threshold)})`,
  );
  lines.push(
    `Evaluated ${int(r.data.rows)} rows (${int(r.data.benign)} benign, ${int(r.data.attack)} attack) from ${r.data.files.length} file(s)` +
      (r.data.skippedTrainingRows
        ? `; ${int(r.data.skippedTrainingRows)} rows the model trained on left out`
        : ''),
  );
  lines.push('');
  lines.push(
    table(
      ['overall', 'AUROC', 'PR-AUC', ...fprKeys.map((k) => `DR@${k}FPR`)],
      [
        [
          'all attacks',
          fmt(o.auroc),
          fmt(o.prAuc),
          ...fprKeys.map((k) => fmt(o.detectionAtFpr[k].detectionRate, 3)),
        ],
      ],
    ),
  );
  const a = o.atThreshold;
  lines.push(
    `At the calibrated threshold ${fmt(a.threshold)}: precision ${fmt(a.precision, 3)}  recall ${fmt(a.recall, 3)}  F1 ${fmt(a.f1, 3)}  FPR ${fmt(a.fpr, 4)}  (TP ${int(a.tp)}  FP ${int(a.fp)}  TN ${int(a.tn)}  FN ${int(a.fn)})`,
  );
  lines.push('');
  const rows = r.perClass.map((c, i) => [
    c.label,
    int(c.rows),
    fmt(c.auroc),
    ...fprKeys.map((k) => fmt(c.detectionAtFpr[k], 3)),
    fmt(c.flaggedAtThreshold, 3),
    int(r.confusion.counts[i][0]),
    int(r.confusion.counts[i][1]),
  ]);
  lines.push(
    table(
      ['class', 'rows', 'AUROC', ...fprKeys.map((k) => `DR@${k}`), 'flagged', '→ normal', '→ anomaly'],
      rows,
    ),
  );
  lines.push('AUROC per class is class vs BENIGN. "flagged" is the share above the calibrated threshold');
  lines.push('(for BENIGN: the false-positive rate); → normal / → anomaly form the confusion matrix.');
  const c = r.classification;
  if (c) {
    lines.push('');
    lines.push(
      `Threat type (supervised model): accuracy ${fmt(c.accuracy)}, macro-F1 ${fmt(c.macroF1)}, ECE ${fmt(c.ece)}`,
    );
    lines.push(
      table(
        ['threat type', 'support', 'precision', 'recall', 'F1'],
        c.perClass.map((p) => [p.label, int(p.support), fmt(p.precision, 3), fmt(p.recall, 3), fmt(p.f1, 3)]),
      ),
    );
  }
  return lines.join('\n');
}

/** Top contributions as text; `exact` keeps values unrounded (CSV output is for machines too). */
export function why(cs: Contribution[] | undefined, k = 3, exact = false): string {
  if (!cs || cs.length === 0) return '';
  const show = exact ? (v: number | string) => String(v) : compact;
  return cs
    .slice(0, k)
    .map((c) => `${c.feature}=${show(c.value)} (typ ${show(c.typical)}, ${Math.round(c.share * 100)}%)`)
    .join('; ');
}

function endpoint(ip: string | undefined, port: number | undefined): string {
  if (!ip && port === undefined) return '';
  return `${ip ?? '?'}${port !== undefined && !Number.isNaN(port) ? `:${port}` : ''}`;
}

export function renderDetectTable(top: DetectedFlow[], s: DetectSummary, shown: number): string {
  const lines: string[] = [];
  const rows = top.map((d) => {
    const f = d.flow;
    const flow =
      f.srcIp || f.dstIp ? `${endpoint(f.srcIp, f.srcPort)} → ${endpoint(f.dstIp, f.dstPort)}` : '';
    return [
      `${f.origin?.file.split('/').pop()}:${f.origin?.line}`,
      flow,
      f.protocol ?? '',
      fmt(d.verdict.score),
      d.verdict.threatType ?? '',
      f.label ?? '',
      why(d.verdict.contributions),
    ];
  });
  if (rows.length) {
    const head = [
      'row',
      'flow',
      'proto',
      'score',
      'threat',
      'label',
      'why (top features: observed, typical, share)',
    ];
    const align: ('left' | 'right')[] = ['left', 'left', 'right', 'right', 'left', 'left', 'left'];
    // Leave out columns the data has nothing for (no addresses, protocol, labels or classifier).
    const keep = head.map((_, c) => c === 0 || c === 3 || c === 6 || rows.some((r) => r[c] !== ''));
    const pick = <T>(xs: T[]) => xs.filter((_, c) => keep[c]);
    lines.push(table(pick(head), rows.map(pick), pick(align)));
    if (s.anomalies > shown)
      lines.push(
        `(${int(shown)} highest-scoring of ${int(s.anomalies)} anomalies shown; --top N for more, --format json|csv for all)`,
      );
  }
  lines.push(
    `${int(s.rows)} flows scored in ${s.seconds.toFixed(2)} s: ${int(s.anomalies)} anomalous (${fmt((100 * s.anomalies) / Math.max(1, s.rows), 2)}%)`,
  );
  const labels = Object.entries(s.byLabel);
  if (labels.length) {
    lines.push('');
    lines.push(
      table(
        ['true label', 'rows', 'flagged', 'share'],
        labels.map(([l, c]) => [l, int(c.rows), int(c.anomalies), fmt(c.anomalies / c.rows, 3)]),
      ),
    );
  }
  return lines.join('\n');
}

const CSV_COLUMNS = [
  'file',
  'line',
  'flow_id',
  'src_ip',
  'src_port',
  'dst_ip',
  'dst_port',
  'protocol',
  'timestamp',
  'label',
  'score',
  'threshold',
  'is_anomaly',
  'threat_type',
  'top_features',
];

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvRow(d: DetectedFlow): string {
  const f = d.flow;
  const v = d.verdict;
  return [
    f.origin?.file,
    f.origin?.line,
    f.flowId,
    f.srcIp,
    f.srcPort,
    f.dstIp,
    f.dstPort,
    f.protocol,
    f.timestamp,
    f.label,
    v.score.toPrecision(6),
    v.threshold.toPrecision(6),
    v.isAnomaly ? 1 : 0,
    v.threatType,
    why(v.contributions, 5, true),
  ]
    .map(csvCell)
    .join(',');
}

export function jsonRow(d: DetectedFlow): string {
  const { features: _omit, ...flow } = d.flow;
  return JSON.stringify({ ...flow, ...d.verdict });
}

export function renderCaptureSummaries(rows: CaptureSummary[]): string {
  const lines: string[] = [];
  lines.push(
    table(
      ['file', 'format', 'packets', 'wire bytes', 'decoded', 'not decoded', 'cut at snaplen', 'status'],
      rows.map((r) => [
        r.file,
        r.format,
        int(r.packets),
        int(r.bytes),
        int(r.decoded),
        int(r.packets - r.decoded),
        int(r.truncated),
        r.error ? `stopped at byte ${int(r.error.offset)}: ${r.error.reason}` : 'ok',
      ]),
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'],
    ),
  );
  const reasons = new Map<string, number>();
  for (const r of rows)
    for (const u of r.undecodable) reasons.set(u.reason, (reasons.get(u.reason) ?? 0) + u.count);
  if (reasons.size) {
    lines.push('Not decoded, by reason:');
    lines.push(
      table(
        ['reason', 'packets'],
        [...reasons].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, int(v)]),
      ),
    );
  }
  const links = new Map<string, number>();
  for (const r of rows)
    for (const [k, v] of Object.entries(r.unsupportedLinkTypes)) links.set(k, (links.get(k) ?? 0) + v);
  if (links.size)
    lines.push(
      `Unsupported link types: ${[...links].map(([k, v]) => `${k} (${int(v)} packets)`).join(', ')}`,
    );
  return lines.join('\n');
}

/** One flow as a CSV row of the given FLOW_COLUMNS indices (identifiers as text, numbers exact). */
export function flowCsvRow(f: FlowRow, columns: number[]): string {
  const cells: string[] = [];
  for (const c of columns) {
    if (c === 0) cells.push(csvCell(f.flowId));
    else if (c === 1) cells.push(csvCell(f.srcIp));
    else if (c === 3) cells.push(csvCell(f.dstIp));
    else if (c === 6) cells.push(f.timestamp);
    else cells.push(String(f.values[c]));
  }
  return cells.join(',');
}

export function renderCaptureTotals(r: CaptureFlowsResult): string {
  const lines = [
    table(
      ['capture', 'format', 'packets', 'decoded', 'not decoded', 'status'],
      r.files.map((f) => [
        f.file,
        f.format,
        int(f.packets),
        int(f.decoded),
        f.undecodable.map((u) => `${u.reason}: ${int(u.count)}`).join('; ') || '0',
        f.error ? `stopped at byte ${int(f.error.offset)}: ${f.error.reason}` : 'ok',
      ]),
      ['left', 'left', 'right', 'right', 'left', 'left'],
    ),
    `${int(r.flows)} flows from ${int(r.packets)} packets in ${r.seconds.toFixed(2)} s (${int(Math.round(r.packets / Math.max(r.seconds, 1e-9)))} packets/s); at most ${int(r.peakFlows)} flows open at once${r.evicted ? `; ${int(r.evicted)} evicted early (--max-flows)` : ''}`,
  ];
  return lines.join('\n');
}
