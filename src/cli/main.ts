/**
 * The `nadir` command. Results go to stdout; progress, warnings and errors to stderr, so output
 * can be piped. Exit codes: 0 success, 1 nothing usable / failed job, 2 usage error, 70 internal.
 */

import { once } from 'node:events';
import { createWriteStream, existsSync, statSync, type WriteStream, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { type CaptureSummary, inspectCapture } from '../capture/inspect.js';
import { sniffCaptureFormat } from '../capture/pcap.js';
import { Diagnostics, formatProblem, UserError } from '../core/diagnostics.js';
import { NADIR_VERSION } from '../core/version.js';
import { parseThresholdMethod } from '../detect/calibration.js';
import { detectorKinds } from '../detect/detector.js';
import { type FeatureOptions, MissingColumnsError } from '../features/pipeline.js';
import { flowHeader } from '../flow/features.js';
import type { FlowMeterOptions } from '../flow/meter.js';
import { sniffFlowLog } from '../ingest/flow-logs.js';
import { sniffRecordLines } from '../ingest/json-records.js';
import type { FileSummary, FlowReader, IngestOptions } from '../ingest/table.js';
import { Model } from '../model/bundle.js';
import { captureFlows } from '../pipeline/capture-flows.js';
import {
  type DetectedFlow,
  type DetectSummary,
  detectCaptures,
  detectFiles,
  detectFlowLogs,
  detectRecordFiles,
  FlowScorer,
} from '../pipeline/detect-files.js';
import { LiveCapture } from '../pipeline/live.js';
import { evaluate } from '../train/evaluate.js';
import { renderEvaluationSvg } from '../train/plots.js';
import { parseSplit } from '../train/split.js';
import { train } from '../train/train.js';
import {
  fraction,
  intAtLeast,
  list,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  widths,
} from './args.js';
import { addCollectCommand } from './collect.js';
import {
  csvCell,
  csvHeader,
  csvRow,
  flowCsvRow,
  int,
  jsonRow,
  renderCaptureSummaries,
  renderCaptureTotals,
  renderDetectTable,
  renderEvaluation,
  renderTrain,
  table,
} from './format.js';
import { Progress } from './progress.js';
import { addSeriesCommand } from './series.js';
import { addServeCommand } from './serve.js';

interface CommonOpts {
  quiet?: boolean;
  label?: string;
  benign?: string[];
  drop?: string[];
  keep?: string[];
  categorical?: string[];
  header?: 'auto' | 'none';
}

function ingestOptions(o: CommonOpts): IngestOptions {
  const out: IngestOptions = {};
  if (o.label) {
    out.label = o.label;
    out.labelRequired = true;
  }
  if (o.benign?.length) out.benign = o.benign;
  if (o.drop?.length) out.drop = o.drop;
  if (o.keep?.length) out.keep = o.keep;
  if (o.categorical?.length) out.categorical = o.categorical;
  if (o.header && o.header !== 'auto') out.header = o.header;
  return out;
}

function addIngestOptions(cmd: Command): Command {
  return cmd
    .option('--label <column>', 'label column (default: Label, label, class or attack_cat, whichever exists)')
    .option(
      '--benign <values>',
      'label value(s) meaning normal traffic, comma-separated (default: BENIGN, normal, 0)',
      list,
    )
    .option('--drop <columns>', 'columns never used as features, comma-separated', list)
    .option(
      '--keep <columns>',
      'identifier columns (Flow ID, IPs, ports, Timestamp) to use as features',
      list,
    )
    .option('--categorical <columns>', 'columns to treat as categories, comma-separated', list)
    .addOption(
      new Option('--header <mode>', 'whether the first row names the columns')
        .choices(['auto', 'none'])
        .default('auto'),
    );
}

/** Diagnostics printing located warnings and errors to stderr (infos are only counted). */
function cliDiagnostics(progress: Progress, quiet: boolean): Diagnostics {
  return new Diagnostics((p) => {
    if (p.severity === 'info' || (quiet && p.severity === 'warning')) return;
    progress.stop();
    process.stderr.write(`${formatProblem(p)}\n`);
  }, 10);
}

function printIngestSummary(diag: Diagnostics, files: FileSummary[], quiet: boolean, always = false): void {
  const problems = diag.count('error') + diag.count('warning');
  for (const line of diag.suppressedSummary())
    if (!line.includes("'empty-row'")) process.stderr.write(`  (${line})\n`);
  if (files.length === 0 || (!always && (quiet || (problems === 0 && files.every((f) => f.empty === 0)))))
    return;
  process.stderr.write(
    `${table(
      ['file', 'records', 'used', 'rejected', 'empty', 'label'],
      files.map((f) => [
        f.file.split('/').pop() ?? f.file,
        int(f.records),
        int(f.used),
        int(f.rejected),
        int(f.empty),
        f.skipped ? `skipped: ${f.skipped.slice(0, 40)}` : (f.labelColumn ?? '(none)'),
      ]),
      ['left', 'right', 'right', 'right', 'right', 'left'],
    )}\n`,
  );
}

/** The flow meter's options, shared by every command that turns packets into flows. */
function withMeterOptions(cmd: Command): Command {
  return cmd
    .option(
      '--flow-timeout <s>',
      'a packet this long after its flow began starts a new flow',
      positiveNumber('--flow-timeout'),
      120,
    )
    .option(
      '--idle-timeout <s>',
      'a flow without packets this long is emitted (default: the flow timeout)',
      positiveNumber('--idle-timeout'),
    )
    .option(
      '--activity-timeout <s>',
      'gap separating active and idle periods',
      positiveNumber('--activity-timeout'),
      5,
    )
    .option(
      '--max-flows <n>',
      'flows held at once; beyond it the least recently active is emitted early',
      positiveInt('--max-flows'),
      1 << 20,
    );
}

function meterOptions(o: {
  flowTimeout: number;
  idleTimeout?: number;
  activityTimeout: number;
  maxFlows: number;
}): Partial<FlowMeterOptions> {
  return {
    flowTimeoutUs: o.flowTimeout * 1e6,
    idleTimeoutUs: o.idleTimeout === undefined ? undefined : o.idleTimeout * 1e6,
    activityTimeoutUs: o.activityTimeout * 1e6,
    maxFlows: o.maxFlows,
  };
}

/** Fails early (exit 2), before any work, when `path` cannot be written as a file. */
function checkOutputFile(flag: string, path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UserError(`${flag} ${path}: directory ${dir} does not exist`, 'create it first', 2);
  if (existsSync(path) && statSync(path).isDirectory())
    throw new UserError(`${flag} ${path}: is a directory; give a file name`, undefined, 2);
}

/** Fails early (exit 2) when `path` exists and is not a directory. */
function checkOutputDir(flag: string, path: string): void {
  if (existsSync(path) && !statSync(path).isDirectory())
    throw new UserError(
      `${flag} ${path}: exists and is not a directory`,
      'choose a directory for the bundle',
      2,
    );
}

/** Awaits a job; when it fails, still prints the per-file figures so the user sees what was read. */
async function withFileSummary<T>(
  diag: Diagnostics,
  quiet: boolean,
  failed: { reader?: FlowReader },
  job: Promise<T>,
): Promise<T> {
  try {
    return await job;
  } catch (e) {
    if (failed.reader) printIngestSummary(diag, failed.reader.files, quiet, true);
    throw e;
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('nadir')
    .description(
      'NADIR: Network Anomaly Detection In Real time. Learns normal traffic, flags what is not, and says why.',
    )
    .version(NADIR_VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });

  const trainCmd = program
    .command('train')
    .description(
      'train an anomaly detector on flow data (CIC-IDS CSVs or any tabular flow export) and save a model bundle',
    )
    .requiredOption('-d, --data <paths...>', 'CSV files or directories of CSVs (.csv, .tsv, .csv.gz)')
    .addOption(
      new Option('--detector <kind>', 'detector to train').choices(detectorKinds()).default('iforest'),
    )
    .option('-o, --out <dir>', 'directory to write the model bundle to', 'models/latest')
    .addOption(
      new Option(
        '--features <set>',
        'feature set: cic (every column given) or netflow (what NetFlow/IPFIX/sFlow exports and Zeek/Suricata logs carry, mapped from CIC columns) — a netflow model scores router exports',
      )
        .choices(['cic', 'netflow'])
        .default('cic'),
    )
    .option(
      '--split <ratio|none>',
      'share of rows in the training part; the rest is left for `nadir evaluate`',
      '0.8',
    )
    .option('--seed <n>', 'seed for the split, sub-sampling and the detector', nonNegativeInt('--seed'), 42)
    .option('--threshold <method>', 'threshold calibration: p99, p99.5, fpr:0.01, mad or mad:K', 'p99')
    .option(
      '--calibration-fraction <f>',
      'share of training rows held out to calibrate the threshold',
      fraction('--calibration-fraction'),
      0.2,
    )
    .option(
      '--max-rows <n>',
      'cap on training rows kept in memory (seeded reservoir sample)',
      positiveInt('--max-rows'),
      200_000,
    )
    .option('--trees <n>', 'iforest: number of trees', positiveInt('--trees'), 100)
    .option('--members <kinds>', 'ensemble: member detectors, comma-separated (default iforest,ocsvm)')
    .option('--sample-size <n>', 'iforest: rows per tree (ψ)', intAtLeast('--sample-size', 2), 256)
    .option(
      '--layers <widths>',
      'neural detectors: layer widths; for autoencoders the encoder, whose last width is the code (defaults: 64,32,16; mlp 64,32)',
      widths,
    )
    .addOption(
      new Option('--activation <fn>', 'autoencoder: hidden activation (default relu)').choices([
        'relu',
        'leaky',
        'tanh',
        'sigmoid',
      ]),
    )
    .option('--residual', 'autoencoders: add a residual block after each hidden layer')
    .option(
      '--dropout <rate>',
      'neural detectors: dropout after hidden layers while training (default 0)',
      fraction('--dropout'),
    )
    .option(
      '--epochs <n>',
      'neural detectors: maximum epochs (default 100; stops early when validation loss stalls)',
      positiveInt('--epochs'),
    )
    .option(
      '--batch-size <n>',
      'neural detectors: rows per training step (default 256)',
      positiveInt('--batch-size'),
    )
    .option('--lr <rate>', 'neural detectors: Adam learning rate (default 0.001)', positiveNumber('--lr'))
    .option(
      '--noise <std>',
      'autoencoder: Gaussian input noise while training (denoising; default 0)',
      nonNegativeNumber('--noise'),
    )
    .option(
      '--weight-decay <w>',
      'neural detectors: AdamW weight decay (default 0)',
      nonNegativeNumber('--weight-decay'),
    )
    .option(
      '--cont-weight <w>',
      'hybrid-autoencoder: weight of the continuous reconstruction error (default 1)',
      nonNegativeNumber('--cont-weight'),
    )
    .option(
      '--cat-weight <w>',
      'hybrid-autoencoder: weight of the categorical cross-entropy (default 1)',
      nonNegativeNumber('--cat-weight'),
    )
    .addOption(
      new Option('--transform <mode>', 'heavy-tail transform of numeric columns')
        .choices(['auto', 'log', 'none'])
        .default('auto'),
    )
    .addOption(
      new Option('--scaling <mode>', 'numeric scaling')
        .choices(['robust', 'standard', 'none'])
        .default('robust'),
    )
    .addOption(
      new Option('--encoding <mode>', 'categorical encoding').choices(['onehot', 'index']).default('onehot'),
    )
    .option('--json', 'print the model manifest as JSON instead of a summary')
    .option('-q, --quiet', 'no progress bar or warnings');
  addIngestOptions(trainCmd);
  trainCmd.addHelpText(
    'after',
    `
Unsupervised detectors (iforest, autoencoder, hybrid-autoencoder) are fitted on BENIGN rows of the
training part only; supervised ones (mlp, ae-classifier) on every labelled row of it. Identifier
columns (Flow ID, IPs, ports, Timestamp) are dropped unless --keep names them.

Examples:
  nadir train --data ../shared/datasets/cicids2017_improved_sampled --out models/cic
  nadir train --data ../shared/datasets/cicids2017_improved_sampled --detector autoencoder --out models/ae
  nadir train --data ../shared/datasets/cicids2017_improved_sampled --features netflow --out models/nf
  nadir train --data labelled-flows/ --detector mlp --out models/threats
  nadir train --data monday.csv --split none --threshold fpr:0.001 --out models/monday
  nadir train --data UNSW_NB15_training-set.csv --label attack_cat --benign Normal \\
              --drop id,label --categorical proto,service,state --out models/unsw`,
  );
  trainCmd.action(async (o) => {
    const progress = Progress.forCli(o.quiet);
    const diag = cliDiagnostics(progress, o.quiet);
    parseThresholdMethod(o.threshold);
    checkOutputDir('--out', o.out);
    let split: ReturnType<typeof parseSplit>;
    try {
      split = parseSplit(o.split, o.seed);
    } catch (e) {
      throw new UserError((e as Error).message, undefined, 2);
    }
    const features: Partial<FeatureOptions> = {
      transform: o.transform,
      scaling: o.scaling,
      encoding: o.encoding,
    };
    const failed: { reader?: FlowReader } = {};
    const { model, reader } = await withFileSummary(
      diag,
      o.quiet,
      failed,
      train({
        data: o.data,
        detector: o.detector,
        detectorParams: {
          trees: o.trees,
          members: o.members,
          sampleSize: o.sampleSize,
          layers: o.layers,
          activation: o.activation,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          noise: o.noise,
          weightDecay: o.weightDecay,
          residual: o.residual,
          dropout: o.dropout,
          contWeight: o.contWeight,
          catWeight: o.catWeight,
        },
        split,
        threshold: o.threshold,
        calibrationFraction: o.calibrationFraction,
        maxRows: o.maxRows,
        seed: o.seed,
        ingest: ingestOptions(o),
        features,
        featureSet: o.features,
        out: o.out,
        diag,
        onProgress: (b, t) => progress.update(b, t),
        onPhase: (p) => progress.setPhase(p),
        onFitProgress: (d, t, note) => progress.count(d, t, 'epochs', note),
        onReader: (r) => {
          failed.reader = r;
        },
      }).finally(() => progress.stop()),
    );
    printIngestSummary(diag, reader.files, o.quiet);
    process.stdout.write(
      o.json ? `${JSON.stringify(model.manifest, null, 2)}\n` : `${renderTrain(model, o.out)}\n`,
    );
  });

  const evalCmd = program
    .command('evaluate')
    .description(
      'score labelled data with a model and report AUROC, PR-AUC, detection rate at fixed FPR, per-class figures',
    )
    .requiredOption('-m, --model <dir>', 'model bundle directory')
    .requiredOption('-d, --data <paths...>', 'labelled CSV files or directories')
    .option('--fpr <rates>', 'false-positive budgets for detection rates, comma-separated', list)
    .option('--include-training-rows', 'also score rows the model may have been trained on')
    .option('--plot <file.svg>', 'also draw ROC curves per class and score distributions to an SVG file')
    .option('--json', 'print the report as JSON')
    .option('-q, --quiet', 'no progress bar or warnings');
  addIngestOptions(evalCmd);
  evalCmd.addHelpText(
    'after',
    `
Rows the model was trained or calibrated on are left out automatically when a training file is
given again (recognised by content), so train and evaluate can take the same --data.

Examples:
  nadir evaluate --model models/cic --data ../shared/datasets/cicids2017_improved_sampled
  nadir evaluate --model models/cic --data tuesday.csv --json > report.json
  nadir evaluate --model models/cic --data tuesday.csv --plot roc.svg`,
  );
  evalCmd.action(async (o) => {
    const progress = Progress.forCli(o.quiet);
    const diag = cliDiagnostics(progress, o.quiet);
    if (o.plot) checkOutputFile('--plot', o.plot);
    const model = Model.load(o.model);
    progress.setPhase('evaluating');
    const fprs = o.fpr?.map((s: string) => {
      const v = Number(s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : s);
      if (!(v > 0 && v < 1))
        throw new UserError(`--fpr ${s}: use a rate between 0 and 1, e.g. 0.01 or 1%`, undefined, 2);
      return v;
    });
    const failed: { reader?: FlowReader } = {};
    const { report, files, plot } = await withFileSummary(
      diag,
      o.quiet,
      failed,
      evaluate(model, {
        data: o.data,
        ingest: ingestOptions(o),
        includeTrainingRows: o.includeTrainingRows,
        plot: Boolean(o.plot),
        fprs,
        diag,
        onProgress: (b, t) => progress.update(b, t),
        onReader: (r) => {
          failed.reader = r;
        },
      }).finally(() => progress.stop()),
    );
    printIngestSummary(diag, files, o.quiet);
    if (plot) {
      writeFileSync(o.plot, renderEvaluationSvg(plot));
      if (!o.quiet) process.stderr.write(`plot written to ${o.plot}\n`);
    }
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderEvaluation(report)}\n`);
  });

  const detectCmd = program
    .command('detect')
    .description(
      'score flow files, packet captures or flow logs (Zeek, Suricata, JSON lines) with a model and list the anomalies, with the features that made them stand out',
    )
    .requiredOption('-m, --model <dir>', 'model bundle directory')
    .requiredOption(
      '-d, --data <paths...>',
      'flow CSV files or directories, pcap/pcapng captures (metered into flows first), Zeek conn.logs, Suricata eve.json or JSON lines of flow records (told apart by content)',
    )
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'),
    )
    .option('--all', 'output every flow, not only anomalies (json, csv)')
    .option('--top <n>', 'table: how many of the highest-scoring anomalies to show', positiveInt('--top'), 20)
    .option('--features <n>', 'contributing features to report per anomaly', positiveInt('--features'), 5)
    .option('-o, --output <file>', 'write results to a file instead of stdout')
    .option('-q, --quiet', 'no progress bar or warnings');
  addIngestOptions(detectCmd);
  // Packet captures are metered into flows first.
  withMeterOptions(detectCmd);
  detectCmd.addHelpText(
    'after',
    `
json writes one JSON object per line (NDJSON): the flow's identity, score, threshold,
is_anomaly and the contributing features with observed and typical values.

Examples:
  nadir detect --model models/cic --data capture_flows.csv
  nadir detect --model models/cic --data day.csv --format csv --output anomalies.csv
  nadir detect --model models/cic --data capture.pcapng
  nadir detect --model models/nf --data conn.log          # a --features netflow model
  nadir detect --model models/nf --data eve.json --format json
  nadir detect --model models/nf --data flows.jsonl      # nadir collect -f jsonl, or API records
  nadir detect --model models/cic --data day.csv --format json --all | jq .score`,
  );
  detectCmd.action(async (o) => {
    const progress = Progress.forCli(o.quiet);
    const diag = cliDiagnostics(progress, o.quiet);
    if (o.output) checkOutputFile('--output', o.output);
    const model = Model.load(o.model);
    progress.setPhase('detecting');
    const out: WriteStream | NodeJS.WriteStream = o.output ? createWriteStream(o.output) : process.stdout;
    let writeError: Error | null = null;
    out.on('error', (e: Error) => {
      writeError ??= e;
    });
    const top: DetectedFlow[] = [];
    const keepTop = (d: DetectedFlow) => {
      top.push(d);
      if (top.length > o.top * 4) {
        top.sort((a, b) => b.verdict.score - a.verdict.score);
        top.length = o.top;
      }
    };
    let pending = '';
    const write = (line: string) => {
      pending += `${line}\n`;
      if (pending.length > 1 << 16) {
        out.write(pending);
        pending = '';
      }
    };
    if (o.format === 'csv') write(csvHeader());
    const onFlow = (d: DetectedFlow) => {
      if (o.format === 'table') keepTop(d);
      else write(o.format === 'csv' ? csvRow(d) : jsonRow(d));
    };
    // Packet captures go through the flow meter; flow files through the CSV reader.
    const captures = (o.data as string[]).filter(
      (p) => existsSync(p) && statSync(p).isFile() && sniffCaptureFormat(p) !== null,
    );
    let summary: DetectSummary;
    const logs = (o.data as string[]).filter(
      (p) => existsSync(p) && statSync(p).isFile() && sniffFlowLog(p) !== null,
    );
    const recordFiles = (o.data as string[]).filter(
      (p) => existsSync(p) && statSync(p).isFile() && !logs.includes(p) && sniffRecordLines(p),
    );
    if (recordFiles.length > 0) {
      if (recordFiles.length !== o.data.length)
        throw new UserError(
          'give JSON-lines flow records and other inputs to separate `nadir detect` runs',
          `JSON lines: ${recordFiles.join(', ')}`,
          2,
        );
      const total = recordFiles.reduce((t, f) => t + statSync(f).size, 0);
      const rs = await detectRecordFiles(model, recordFiles, {
        all: o.format !== 'table' && o.all,
        topFeatures: o.features,
        onFlow,
        diag,
        onProgress: (b) => progress.update(b, total),
      }).finally(() => progress.stop());
      if (!o.quiet && rs.rejected)
        process.stderr.write(`${int(rs.rejected)} lines rejected (see the messages above)\n`);
      summary = {
        rows: rs.rows,
        anomalies: rs.anomalies,
        byLabel: rs.byLabel,
        files: [],
        seconds: rs.seconds,
      };
    } else if (logs.length > 0) {
      if (logs.length !== o.data.length)
        throw new UserError(
          'give flow logs (Zeek, Suricata) and other inputs to separate `nadir detect` runs',
          `logs: ${logs.join(', ')}`,
          2,
        );
      const total = logs.reduce((t, f) => t + statSync(f).size, 0);
      let ls: Awaited<ReturnType<typeof detectFlowLogs>>;
      try {
        ls = await detectFlowLogs(model, logs, {
          all: o.format !== 'table' && o.all,
          topFeatures: o.features,
          onFlow,
          diag,
          onProgress: (b) => progress.update(b, total),
        }).finally(() => progress.stop());
      } catch (e) {
        if (e instanceof MissingColumnsError)
          throw new UserError(
            `${model.id} cannot score flow logs: ${e.message}`,
            'Zeek and Suricata logs carry the NetFlow feature set; train a model for them with `nadir train --features netflow`',
          );
        throw e;
      }
      if (!o.quiet)
        for (const l of ls.logs)
          process.stderr.write(
            `${l.file}: ${l.format}, ${int(l.rows)} flows${l.rejected ? `, ${int(l.rejected)} rejected` : ''}${l.labelled ? `, ${int(l.labelled)} labelled by alerts` : ''}\n`,
          );
      summary = {
        rows: ls.rows,
        anomalies: ls.anomalies,
        byLabel: ls.byLabel,
        files: [],
        seconds: ls.seconds,
      };
    } else if (captures.length > 0) {
      if (captures.length !== o.data.length)
        throw new UserError(
          'give packet captures and flow files to separate `nadir detect` runs',
          `captures: ${captures.join(', ')}`,
          2,
        );
      const total = captures.reduce((t, f) => t + statSync(f).size, 0);
      progress.setPhase('metering');
      const cs = await detectCaptures(model, captures, {
        all: o.format !== 'table' && o.all,
        topFeatures: o.features,
        onFlow,
        meter: meterOptions(o),
        onProgress: (b) => progress.update(b, total),
      }).finally(() => progress.stop());
      if (!o.quiet) process.stderr.write(`${renderCaptureTotals(cs.capture)}\n`);
      summary = {
        rows: cs.rows,
        anomalies: cs.anomalies,
        byLabel: cs.byLabel,
        files: [],
        seconds: cs.seconds,
      };
    } else {
      summary = await detectFiles(model, {
        data: o.data,
        ingest: ingestOptions(o),
        all: o.format !== 'table' && o.all,
        topFeatures: o.features,
        diag,
        onProgress: (b, t) => progress.update(b, t),
        onFlow,
      }).finally(() => progress.stop());
      printIngestSummary(diag, summary.files, o.quiet);
    }
    if (summary.rows === 0)
      throw new UserError(
        'no flows could be scored (see the messages above)',
        'check the files and the model',
      );
    if (o.format === 'table') {
      top.sort((a, b) => b.verdict.score - a.verdict.score);
      const shown = Math.min(o.top, top.length);
      write(renderDetectTable(top.slice(0, shown), summary, shown));
    } else if (!o.quiet) {
      process.stderr.write(
        `${int(summary.rows)} flows scored: ${int(summary.anomalies)} anomalous${o.output ? `, written to ${o.output}` : ''}\n`,
      );
    }
    out.write(pending);
    if (o.output)
      await new Promise<void>((res, rej) =>
        (out as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())),
      ).catch((e: Error) => {
        writeError ??= e;
      });
    if (writeError)
      throw new UserError(`--output ${o.output}: cannot write (${(writeError as Error).message})`);
  });

  withMeterOptions(program.command('flows'))
    .description('turn packet captures into CIC flow records (a CICFlowMeter replacement) as CSV')
    .argument(
      '<captures...>',
      'pcap / pcapng files (gzip-compressed too), read in the order given; - for stdin',
    )
    .option('-o, --output <file.csv>', 'write the flows here instead of stdout')
    .addOption(
      new Option('--cic-compat <names>', 'column names: corrected CICFlowMeter or MachineLearningCVE')
        .choices(['improved', 'original'])
        .default('improved'),
    )
    .option('-q, --quiet', 'no progress bar or per-file totals')
    .addHelpText(
      'after',
      `
Bidirectional flows (the first packet sets the forward direction) with the corrected CICFlowMeter
features, named as in cicids2017_improved, so models trained on CIC-IDS2017 score the output
directly. Every feature's definition: docs/features.md. Per-file totals go to stderr.

Examples:
  nadir flows capture.pcap -o flows.csv
  nadir flows day1.pcapng.gz day2.pcapng.gz --cic-compat original -o flows.csv
  tcpdump -i eth0 -w - | nadir flows - -o flows.csv`,
    )
    .action(async (files: string[], o) => {
      for (const f of files) if (f !== '-' && !existsSync(f)) throw new UserError(`${f}: no such file`);
      if (o.output) checkOutputFile('--output', o.output);
      const progress = Progress.forCli(o.quiet || files.includes('-'));
      const total = files.reduce((s, f) => s + (f === '-' ? 0 : statSync(f).size), 0);
      const out: WriteStream | NodeJS.WriteStream = o.output ? createWriteStream(o.output) : process.stdout;
      const header = flowHeader(o.cicCompat);
      let pending = `${header.names.map(csvCell).join(',')}\n`;
      progress.setPhase('metering');
      const result = await captureFlows(
        files,
        (f) => {
          pending += `${flowCsvRow(f, header.columns)}\n`;
        },
        meterOptions(o),
        (b) => progress.update(b, total),
        // After each chunk of packets: write what finished, waiting while the output is full.
        async () => {
          if (!pending) return;
          const ok = out.write(pending);
          pending = '';
          if (!ok) await once(out, 'drain');
        },
      ).finally(() => progress.stop());
      out.write(pending);
      if (o.output) await new Promise<void>((res) => (out as WriteStream).end(() => res()));
      const failed = result.files.some((f) => f.error);
      // The totals say where a damaged capture stopped, so they are shown then even with --quiet.
      if (!o.quiet || failed) process.stderr.write(`${renderCaptureTotals(result)}\n`);
      if (failed)
        throw new UserError(
          'some captures could not be read to their end (see the table above); their flows up to that point were written',
        );
    });

  withMeterOptions(program.command('capture'))
    .description('capture live traffic (tcpdump) and write flows, or anomalies with --model, as they finish')
    .requiredOption('-i, --interface <name>', 'network interface to capture on')
    .option('--bpf <filter>', 'BPF capture filter, e.g. "tcp or udp"')
    .option('-m, --model <dir>', 'score flows with this model and print anomalies instead of flows')
    .addOption(
      new Option('-f, --format <format>', 'output format with --model')
        .choices(['json', 'csv'])
        .default('json'),
    )
    .option('--all', 'with --model: every flow, not only anomalies')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option(
      '--duration <s>',
      'stop after this many seconds (default: until Ctrl-C)',
      positiveNumber('--duration'),
    )
    .option('-q, --quiet', 'no totals at the end')
    .addHelpText(
      'after',
      `
Runs \`tcpdump -U -w -\` (capturing needs root or CAP_NET_RAW) and meters the stream. Flows are
written as they finish (FIN/RST, idle, timeout); Ctrl-C (SIGINT) stops tcpdump and flushes every
open flow before exiting.

Examples:
  sudo nadir capture -i eth0 -o live-flows.csv
  sudo nadir capture -i eth0 --bpf "not port 22" --model models/cic --format json`,
    )
    .action(async (o) => {
      if (o.output) checkOutputFile('--output', o.output);
      const model = o.model ? Model.load(o.model) : null;
      const out: WriteStream | NodeJS.WriteStream = o.output ? createWriteStream(o.output) : process.stdout;
      const live = new LiveCapture();
      const stop = () => live.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const timer = o.duration ? setTimeout(stop, o.duration * 1000) : null;
      const meter = meterOptions(o);
      let announced = false;
      const onListening = () => {
        if (!announced && !o.quiet) process.stderr.write(`capturing on ${o.interface}; Ctrl-C to stop\n`);
        announced = true;
      };
      let pending = '';
      const flushOut = async () => {
        if (pending) {
          out.write(pending);
          pending = '';
        }
      };
      let result: Awaited<ReturnType<LiveCapture['run']>>;
      let scored = { rows: 0, anomalies: 0 };
      try {
        if (model) {
          if (o.format === 'csv') pending += `${csvHeader()}\n`;
          const scorer = new FlowScorer(
            model,
            {
              all: o.all,
              onFlow: (d: DetectedFlow) => {
                pending += `${o.format === 'csv' ? csvRow(d) : jsonRow(d)}\n`;
              },
            },
            `live:${o.interface}`,
            // Live: score every flow as soon as a chunk of packets has been read.
            1,
          );
          result = await live.run(scorer.add, {
            iface: o.interface,
            bpf: o.bpf,
            meter,
            onListening,
            afterChunk: async () => {
              await scorer.drain(true);
              await flushOut();
            },
          });
          scored = scorer.summary;
        } else {
          const header = flowHeader('improved');
          pending += `${header.names.map(csvCell).join(',')}\n`;
          result = await live.run(
            (f) => {
              pending += `${flowCsvRow(f, header.columns)}\n`;
            },
            { iface: o.interface, bpf: o.bpf, meter, afterChunk: flushOut, onListening },
          );
        }
      } finally {
        if (timer) clearTimeout(timer);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      await flushOut();
      if (o.output) await new Promise<void>((res) => (out as WriteStream).end(() => res()));
      if (result.error) throw new UserError(`capture on ${o.interface} failed: ${result.error.reason}`);
      if (!o.quiet)
        process.stderr.write(
          `${int(result.packets)} packets (${int(result.decoded)} decoded), ${int(result.flows)} flows${model ? `, ${int(scored.anomalies)} anomalous` : ''}\n`,
        );
    });

  program
    .command('capinfo')
    .description('read packet captures (pcap, pcapng, gzip-compressed) and print per-file totals')
    .argument('<captures...>', 'capture files')
    .option('--json', 'print the totals as JSON lines')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText(
      'after',
      `
For each file: format, packets, bytes on the wire, packets cut at snaplen, how many decode to
IP/TCP/UDP/ICMP, why the others do not (by reason), and where a damaged file stops (byte offset).
Exits 1 when a file could not be read to its end.

Example:
  nadir capinfo ../shared/datasets/pcap_ddos_stopddos/captures/*.pcap*`,
    )
    .action(async (files: string[], o) => {
      const progress = Progress.forCli(o.quiet);
      const total = files.reduce((s, f) => {
        if (!existsSync(f)) throw new UserError(`${f}: no such file`, undefined, 1);
        return s + statSync(f).size;
      }, 0);
      let done = 0;
      const rows: CaptureSummary[] = [];
      progress.setPhase('reading');
      try {
        for (const f of files) {
          rows.push(await inspectCapture(f, (b) => progress.update(done + b, total)));
          done += statSync(f).size;
        }
      } finally {
        progress.stop();
      }
      if (o.json) for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${renderCaptureSummaries(rows)}\n`);
      if (rows.some((r) => r.error))
        return Promise.reject(new UserError('some captures could not be read to their end (see above)'));
    });

  program
    .command('export')
    .description('write a model in a portable format (ONNX) for serving elsewhere')
    .requiredOption('-m, --model <dir>', 'model bundle directory')
    .requiredOption('--onnx <file.onnx>', 'write the ONNX graph here')
    .addHelpText(
      'after',
      `
The graph takes "features" [N, d]: rows after the bundle's feature pipeline (described under
"features" in manifest.json: column order, transform, centre and scale of each input), and gives
"score" [N] (compare with the threshold in manifest.json) and "feature_error" [N, d].

Example:
  nadir export --model models/ae --onnx ae.onnx`,
    )
    .action((o) => {
      checkOutputFile('--onnx', o.onnx);
      const model = Model.load(o.model);
      const det = model.detector as { onnx?: () => Uint8Array };
      if (typeof det.onnx !== 'function')
        throw new UserError(
          `${model.manifest.detector.kind} models have no ONNX form`,
          'ONNX export covers the neural detectors (autoencoder)',
        );
      const bytes = det.onnx();
      writeFileSync(o.onnx, bytes);
      process.stdout.write(
        `${o.onnx}: ONNX graph of ${model.id} (${int(bytes.length)} bytes), input features [N, ${model.pipeline.width}], threshold ${model.threshold}\n`,
      );
    });

  addServeCommand(program);
  addCollectCommand(program);
  addSeriesCommand(program);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  // `nadir detect … | head`: the reader went away; stop quietly instead of crashing on EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      // commander has printed its message already.
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      return ok ? 0 : 2;
    }
    if (e instanceof UserError) {
      process.stderr.write(`nadir: ${e.message}\n`);
      if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
      return e.exitCode;
    }
    process.stderr.write(`nadir: internal error: ${(e as Error).stack ?? e}\n`);
    process.stderr.write('This is a bug in NADIR; please report it with the command you ran.\n');
    return 70;
  }
}
