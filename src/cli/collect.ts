/**
 * `nadir collect`: receive NetFlow v5/v9, IPFIX and sFlow exports and write the flows (NetFlow
 * feature set) to a CSV or JSON-lines file, for building datasets; per-exporter statistics on exit.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Collector, type CollectorStats } from '../collect/collector.js';
import type { InterfaceCounters } from '../collect/sflow.js';
import {
  EXPORT_ID_COLUMNS,
  type ExportRow,
  exportTimestamp,
  flowId,
  NETFLOW_FEATURES,
} from '../features/netflow.js';
import { csvCell, int, table } from './format.js';

export const COLLECT_PORTS = { netflow: 2055, ipfix: 4739, sflow: 6343 } as const;

/** Header of the CSV files `nadir collect` writes (identifiers, then the NetFlow feature set). */
export function exportCsvHeader(): string {
  return [...EXPORT_ID_COLUMNS, ...NETFLOW_FEATURES].join(',');
}

export function exportCsvRow(r: ExportRow): string {
  const ids = [
    flowId(r.srcIp, r.dstIp, r.srcPort, r.dstPort, r.protocol),
    r.srcIp,
    r.srcPort,
    r.dstIp,
    r.dstPort,
    exportTimestamp(r.startMs),
  ];
  return `${ids.map(csvCell).join(',')},${Array.from(r.values, (v) => (Number.isInteger(v) ? v : Number(v.toPrecision(10)))).join(',')}`;
}

export function exportJsonRow(r: ExportRow): string {
  const features: Record<string, number> = {};
  NETFLOW_FEATURES.forEach((c, i) => {
    features[c] = r.values[i];
  });
  return JSON.stringify({
    srcIp: r.srcIp,
    srcPort: r.srcPort,
    dstIp: r.dstIp,
    dstPort: r.dstPort,
    protocol: r.protocol,
    timestamp: exportTimestamp(r.startMs),
    exporter: r.source,
    features,
    ...(r.label !== undefined ? { label: r.label, rawLabel: r.rawLabel } : {}),
  });
}

/** Per-exporter table for the terminal. */
export function renderCollectorStats(s: CollectorStats): string {
  const rows = s.exporters.map((e) => [
    `${e.address}/${e.domain}`,
    e.protocol,
    int(e.datagrams),
    int(e.records),
    int(e.lost),
    int(e.bad),
    int(e.templates),
    int(e.sampling),
  ]);
  const head = ['exporter', 'protocol', 'datagrams', 'records', 'lost', 'bad', 'templates', 'sampling'];
  const problems = Object.entries(s.problems)
    .map(([r, n]) => `${r} ${int(n)}`)
    .join(', ');
  const buffers = Object.entries(s.receiveBuffer)
    .map(([k, v]) => `${k} ${int(v)} B`)
    .join(', ');
  return [
    rows.length ? table(head, rows) : 'no exporter has sent anything',
    `${int(s.datagrams)} datagrams, ${int(s.records)} records → ${int(s.rows)} flows (${int(s.mapper.paired / 2)} paired, ${int(s.mapper.unpaired)} one-way, ${int(s.mapper.biflows)} biflow)${s.refused ? `, ${int(s.refused)} datagrams refused (not in --allow)` : ''}`,
    problems ? `problems: ${problems}` : 'problems: none',
    buffers ? `socket receive buffers: ${buffers}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

function port(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new InvalidArgumentError(`${name} must be a UDP port 0–65535 (0 = any free port)`);
    return n;
  };
}

/** Collector flags shared by `collect` and `serve`. */
export function collectorOptions(o: Record<string, unknown>, all: boolean) {
  const any = o.netflow !== undefined || o.ipfix !== undefined || o.sflow !== undefined;
  const pick = (k: keyof typeof COLLECT_PORTS) =>
    o[k] !== undefined ? (o[k] as number) : all && !any ? COLLECT_PORTS[k] : undefined;
  return {
    netflow: pick('netflow'),
    ipfix: pick('ipfix'),
    sflow: pick('sflow'),
    host: (o.collectHost as string | undefined) ?? '0.0.0.0',
    allow: (o.allow as string[] | undefined) ?? [],
    receiveBuffer: (o.receiveBuffer as number | undefined) ?? 32 << 20,
    mapper: { pairing: o.pairing !== false },
  };
}

export function withCollectorFlags(cmd: Command, what: string): Command {
  return cmd
    .option(
      '--netflow <port>',
      `NetFlow v5/v9 UDP port (usually ${COLLECT_PORTS.netflow})${what}`,
      port('--netflow'),
    )
    .option('--ipfix <port>', `IPFIX UDP port (usually ${COLLECT_PORTS.ipfix})`, port('--ipfix'))
    .option('--sflow <port>', `sFlow v5 UDP port (usually ${COLLECT_PORTS.sflow})`, port('--sflow'))
    .option('--collect-host <addr>', 'address the collectors listen on (:: for IPv6 and IPv4)', '0.0.0.0')
    .option(
      '--allow <ips>',
      'only accept exports from these exporter IPs, comma-separated (default: any)',
      (v: string, prev: string[] = []) =>
        prev.concat(
          v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ),
    )
    .option('--no-pairing', 'keep one-way records as they come instead of pairing both directions of a flow')
    .option(
      '--receive-buffer <bytes>',
      'UDP socket receive buffer to ask for (the kernel caps it at net.core.rmem_max)',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 65536)
          throw new InvalidArgumentError('--receive-buffer must be ≥ 65536');
        return n;
      },
    );
}

export function addCollectCommand(program: Command): void {
  const cmd = program
    .command('collect')
    .description(
      'receive NetFlow v5/v9, IPFIX and sFlow exports and write the flows to a file (dataset building)',
    );
  withCollectorFlags(cmd, '; with no port flag all three listen on their usual ports')
    .option('-o, --output <file>', 'write flows here instead of stdout')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .option(
      '--counters <file.jsonl>',
      'also write sFlow interface counter samples (interface time series) here',
    )
    .option('--duration <seconds>', 'stop after this many seconds', (v: string) => {
      const n = Number(v);
      if (!(n > 0)) throw new InvalidArgumentError('--duration must be a positive number of seconds');
      return n;
    })
    .option('-q, --quiet', 'no status lines or exporter table')
    .addHelpText(
      'after',
      `
Flows are written in the NetFlow feature set (docs/features.md#netflow-feature-set): a model
trained with \`nadir train --features netflow\` scores them, and \`nadir train --features netflow
--data flows.csv\` learns from them. Stop with Ctrl-C: flows still waiting for their reverse
direction are written, then a table per exporter (datagrams, records, lost by sequence number,
bad datagrams, templates, sampling interval).

Examples:
  nadir collect -o flows.csv                              # 2055 NetFlow, 4739 IPFIX, 6343 sFlow
  nadir collect --ipfix 4739 --allow 192.0.2.1 -f jsonl -o flows.jsonl
  nadir collect --sflow 6343 --counters ifcounters.jsonl --duration 3600 -o flows.csv
  softflowd -r capture.pcap -n 127.0.0.1:2055 -v 9 -d      # a test exporter`,
    )
    .action(async (o) => {
      const out: WriteStream | NodeJS.WriteStream = o.output ? createWriteStream(o.output) : process.stdout;
      const counters = o.counters ? createWriteStream(o.counters) : null;
      let written = 0;
      let pending = '';
      const write = (s: string) => {
        pending += s;
        if (pending.length > 1 << 16) {
          out.write(pending);
          pending = '';
        }
      };
      if (o.format === 'csv') write(`${exportCsvHeader()}\n`);
      const onRow = (r: ExportRow) => {
        written++;
        write(`${o.format === 'csv' ? exportCsvRow(r) : exportJsonRow(r)}\n`);
      };
      const options = collectorOptions(o, true);
      const collector = new Collector(onRow, {
        ...options,
        log: o.quiet
          ? undefined
          : (p) =>
              process.stderr.write(
                `warning: ${p.exporter} ${p.protocol} ${p.reason} at byte ${p.offset}${p.template !== undefined ? ` (template ${p.template})` : ''}: ${p.message}\n`,
              ),
        counters: counters ? (c: InterfaceCounters) => counters.write(`${JSON.stringify(c)}\n`) : undefined,
      });
      await collector.start();
      const ports = Object.entries(collector.ports)
        .map(([k, v]) => `${k} udp/${v}`)
        .join(', ');
      if (!o.quiet) {
        process.stderr.write(
          `collecting on ${o.collectHost}: ${ports}${o.output ? ` → ${o.output}` : ''} (Ctrl-C to stop)\n`,
        );
        const s = collector.stats();
        for (const [k, v] of Object.entries(s.receiveBuffer))
          if (v < options.receiveBuffer)
            process.stderr.write(
              `note: ${k} socket receive buffer is ${int(v)} bytes (asked for more); bursts may be dropped — raise it with: sysctl -w net.core.rmem_max=${options.receiveBuffer}\n`,
            );
      }
      const flushTimer = setInterval(() => {
        if (pending) {
          out.write(pending);
          pending = '';
        }
      }, 1000);
      const status = o.quiet
        ? null
        : setInterval(() => {
            const s = collector.stats();
            const lost = s.exporters.reduce((t, e) => t + e.lost, 0);
            process.stderr.write(
              `${new Date().toISOString().slice(11, 19)}  ${int(s.exporters.length)} exporters, ${int(s.datagrams)} datagrams, ${int(written)} flows written, ${int(lost)} lost\n`,
            );
          }, 10_000);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        if (o.duration) setTimeout(stop, o.duration * 1000).unref();
      });
      clearInterval(flushTimer);
      if (status) clearInterval(status);
      await collector.stop();
      out.write(pending);
      if (o.output) await new Promise<void>((r) => (out as WriteStream).end(() => r()));
      if (counters) await new Promise<void>((r) => counters.end(() => r()));
      if (!o.quiet)
        process.stderr.write(`${renderCollectorStats(collector.stats())}\n${int(written)} flows written\n`);
      if (written === 0 && collector.stats().datagrams === 0 && !o.quiet)
        process.stderr.write(
          'nothing was received: check the exporter points at this host and port, and that no firewall drops UDP\n',
        );
    });
}
