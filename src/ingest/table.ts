/**
 * Streaming flow-table ingest: CIC CSVs in both header flavours and any other tabular flow
 * dataset, read in constant memory into typed-array `FlowBatch`es.
 *
 * Per file: the first MiB is sniffed (encoding, delimiter, header, a sample of rows for column
 * type inference), a `ColumnPlan` is decided, then the file is streamed through the byte-level
 * tokenizer. Bad rows are counted and reported with file:line and column, and skipped.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TextDecoder } from 'node:util';
import { type Diagnostics, UserError } from '../core/diagnostics.js';
import { hashBytes } from '../core/hash.js';
import { LabelPolicy } from '../core/labels.js';
import type { ColumnPlan, FlowBatch } from '../core/records.js';
import { maybeGunzip } from '../core/streams.js';
import {
  CIC_CATEGORICAL,
  canonicalColumn,
  columnKey,
  isKnownCicColumn,
  isLabelMeta,
  isNumericId,
  LABEL_CANDIDATES,
  looksLikeId,
} from './columns.js';
import {
  type CsvRecordView,
  CsvTokenizer,
  decodeText,
  NUM_INVALID,
  numStatus,
  parseNumber,
  textWasCp1252,
} from './csv.js';

export interface IngestOptions {
  /** Label column; default: the first of Label, label, class, attack_cat, ... present. */
  label?: string;
  /** The user named `label` on the command line: a file without that column is a usage error. */
  labelRequired?: boolean;
  /** Raw label values meaning normal traffic (default: BENIGN, normal, 0, ...). */
  benign?: string[];
  /** Columns never used as features. */
  drop?: string[];
  /** Identifier columns (Flow ID, IPs, ports, Timestamp) to keep as features. */
  keep?: string[];
  /** Columns to treat as categorical. */
  categorical?: string[];
  /** `none`: the file has no header row; columns are named c1, c2, ... */
  header?: 'auto' | 'none';
  /** Column kinds a model expects; they override inference so a model sees what it was fitted on. */
  kinds?: Record<string, 'numeric' | 'categorical'>;
  /** Decode identifier columns as text (for output). Off for training, which never needs them. */
  withIds?: boolean;
  /** Keep rows whose label cell is empty (label ''), instead of rejecting them. For detection. */
  keepUnlabelled?: boolean;
  /** Seed mixed into row hashes (train/test split). */
  seed?: number;
  batchSize?: number;
}

export interface FileSummary {
  file: string;
  bytes: number;
  sha256: string;
  /** Data records seen (header excluded). */
  records: number;
  /** Rows delivered in batches. */
  used: number;
  rejected: number;
  /** Blank lines and rows whose every cell is empty. */
  empty: number;
  labelColumn: string | null;
  /** Set when the whole file was skipped, with the reason. */
  skipped?: string;
  encoding: string;
}

const SNIFF_BYTES = 1 << 20;
const SAMPLE_ROWS = 1000;
const CSV_EXT = /\.(csv|tsv)(\.gz)?$/i;

/** Expands directories to the CSV files inside (sorted); checks that every path exists. */
export function expandPaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!existsSync(p))
      throw new UserError(`no such file or directory: ${p}`, 'check the path given to --data');
    if (statSync(p).isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => CSV_EXT.test(f))
        .sort()
        .map((f) => join(p, f));
      if (files.length === 0) throw new UserError(`directory ${p} holds no .csv/.tsv/.csv.gz files`);
      out.push(...files);
    } else out.push(p);
  }
  return out;
}

interface Sniffed {
  encoding: string;
  delimiter: number;
  header: string[];
  sample: string[][];
  headerLine: number;
}

export class FlowReader {
  readonly paths: string[];
  readonly files: FileSummary[] = [];
  readonly totalBytes: number;
  private readonly labels: LabelPolicy;
  private readonly batchSize: number;
  /** Files a consumer gave up on (columns a model needs are missing): reading them stops. */
  private readonly given = new Set<number>();

  constructor(
    paths: string[],
    private readonly opts: IngestOptions,
    private readonly diag: Diagnostics,
    private readonly onProgress: (bytes: number) => void = () => {},
  ) {
    this.paths = expandPaths(paths);
    this.totalBytes = this.paths.reduce((s, p) => s + statSync(p).size, 0);
    this.labels = new LabelPolicy(opts.benign);
    this.batchSize = opts.batchSize ?? 8192;
  }

  /**
   * Stops reading file `fileIndex` (the consumer cannot use it) and records why in its summary;
   * its rows count as not used.
   */
  skipFile(fileIndex: number, reason: string): void {
    this.given.add(fileIndex);
    const f = this.files[fileIndex];
    if (f) {
      f.skipped = reason;
      f.used = 0;
    }
  }

  async *batches(): AsyncGenerator<FlowBatch> {
    let done = 0;
    for (let fi = 0; fi < this.paths.length; fi++) {
      const file = this.paths[fi];
      const summary: FileSummary = {
        file,
        bytes: statSync(file).size,
        sha256: '',
        records: 0,
        used: 0,
        rejected: 0,
        empty: 0,
        labelColumn: null,
        encoding: 'utf-8',
      };
      this.files.push(summary);
      try {
        yield* this.readFile(file, fi, summary, (b) => this.onProgress(done + b));
      } catch (err) {
        if (err instanceof UserError) throw err;
        const msg = (err as Error).message;
        if (summary.records === 0) summary.skipped = msg;
        const where = summary.records ? `after record ${summary.records} (rows before it were used)` : 'file';
        this.diag.report({
          severity: 'error',
          reason: 'read',
          file,
          line: 0,
          message: `cannot read ${where}: ${msg}`,
        });
      }
      if (summary.records === 0 && !summary.skipped)
        this.diag.report({
          severity: 'warning',
          reason: 'no-rows',
          file,
          line: 0,
          message: 'the file has a header but no data rows',
        });
      done += summary.bytes;
      this.onProgress(done);
    }
  }

  private async *readFile(
    file: string,
    fileIndex: number,
    summary: FileSummary,
    progress: (bytes: number) => void,
  ): AsyncGenerator<FlowBatch> {
    const sniffed = await this.sniff(file);
    if (!sniffed) {
      summary.skipped = 'unreadable';
      return;
    }
    summary.encoding = sniffed.encoding;
    const plan = this.plan(file, sniffed);
    summary.labelColumn = plan.labelName;
    if (plan.labelPos < 0 && this.opts.label && this.opts.labelRequired) {
      const cols = sniffed.header.map((h) => h.trim()).filter(Boolean);
      throw new UserError(
        `--label ${this.opts.label}: ${basename(file)} has no such column`,
        `its columns are: ${cols.slice(0, 30).join(', ')}${cols.length > 30 ? ', …' : ''}`,
        2,
      );
    }
    if (plan.labelPos < 0) {
      const looked = this.opts.label ? `'${this.opts.label}'` : LABEL_CANDIDATES.join(', ');
      this.diag.report({
        severity: 'warning',
        reason: 'no-label',
        file,
        line: sniffed.headerLine,
        message: `no label column (looked for ${looked}); rows are unlabelled. Name one with --label COLUMN`,
      });
    }

    const nCols = plan.names.length;
    const nNum = plan.numericNames.length;
    const stringSlots = plan.stringNames.length;
    const withLabel = plan.labelPos >= 0;
    const seed = this.opts.seed ?? 0;
    const bs = this.batchSize;
    const diag = this.diag;
    const labels = this.labels;
    const ready: FlowBatch[] = [];
    let batch = newBatch(plan, fileIndex, bs, nNum, stringSlots, withLabel);
    let row = 0;
    let skipHeader = this.opts.header !== 'none';

    const flush = (): void => {
      if (row === 0) return;
      ready.push(trimBatch(batch, row, nNum));
      summary.used += row;
      batch = newBatch(plan, fileIndex, bs, nNum, stringSlots, withLabel);
      row = 0;
    };

    const reject = (v: CsvRecordView, reason: string, message: string, col?: number): void => {
      summary.rejected++;
      diag.report({
        severity: 'error',
        reason,
        file,
        line: v.line,
        column: col === undefined ? undefined : plan.names[col],
        columnIndex: col === undefined ? undefined : col + 1,
        message,
      });
    };

    const onRecord = (v: CsvRecordView): void => {
      if (skipHeader) {
        skipHeader = false;
        return;
      }
      summary.records++;
      const buf = v.buf;
      if (allEmpty(v)) {
        summary.empty++;
        diag.report({
          severity: 'info',
          reason: 'empty-row',
          file,
          line: v.line,
          message: 'empty row skipped',
        });
        return;
      }
      if (v.unclosedQuote >= 0) {
        reject(
          v,
          'unclosed-quote',
          `a quote opened in field ${v.unclosedQuote + 1} is never closed; row skipped, reading resumes on the next line`,
          v.unclosedQuote < nCols ? v.unclosedQuote : undefined,
        );
        return;
      }
      if (v.n !== nCols) {
        if (!v.terminated)
          reject(
            v,
            'truncated',
            `last line is incomplete (no newline at end of file): ${v.n} of ${nCols} fields; row skipped`,
          );
        else reject(v, 'field-count', `expected ${nCols} fields, found ${v.n}; row skipped`);
        return;
      }
      const base = row * nNum;
      for (let j = 0; j < nNum; j++) {
        const pos = plan.numericPos[j];
        const x = parseNumber(buf, v.starts[pos], v.ends[pos]);
        if (numStatus === NUM_INVALID) {
          const text = decodeText(buf, v.starts[pos], v.ends[pos], v.quoted[pos]);
          reject(v, 'non-numeric', `${JSON.stringify(clip(text))} is not a number; row skipped`, pos);
          return;
        }
        batch.numeric[base + j] = x;
      }
      if (withLabel) {
        const lp = plan.labelPos;
        const raw = decodeText(buf, v.starts[lp], v.ends[lp], v.quoted[lp]).trim();
        if (raw === '' && !this.opts.keepUnlabelled) {
          reject(v, 'empty-label', 'label cell is empty; row skipped', lp);
          return;
        }
        if (textWasCp1252)
          diag.report({
            severity: 'warning',
            reason: 'encoding',
            file,
            line: v.line,
            column: plan.names[lp],
            columnIndex: lp + 1,
            message: `not valid UTF-8; decoded as Windows-1252: ${JSON.stringify(raw)}`,
          });
        batch.rawLabels![row] = raw;
        batch.labels![row] = raw === '' ? '' : labels.canonical(raw);
      }
      for (let s = 0; s < stringSlots; s++) {
        const pos = plan.stringPos[s];
        batch.strings[s][row] = decodeText(buf, v.starts[pos], v.ends[pos], v.quoted[pos]).trim();
      }
      batch.lines[row] = v.line;
      batch.rowHash[row] = hashBytes(buf, v.start, v.end, seed);
      row++;
      if (row === bs) flush();
    };

    const tok = new CsvTokenizer(onRecord, sniffed.delimiter, (line, bytes) => {
      summary.records++;
      summary.rejected++;
      diag.report({
        severity: 'error',
        reason: 'oversize',
        file,
        line,
        message: `record longer than ${bytes} bytes (binary data or a runaway field?); skipped to the next line`,
      });
    });
    try {
      for await (const chunk of decodedChunks(file, summary, progress)) {
        tok.push(chunk);
        while (ready.length && !this.given.has(fileIndex)) yield ready.shift()!;
        if (this.given.has(fileIndex)) return;
      }
      tok.end();
    } finally {
      // Rows read before a read error (a truncated .gz, an I/O error) are still delivered.
      if (!this.given.has(fileIndex)) {
        flush();
        while (ready.length && !this.given.has(fileIndex)) yield ready.shift()!;
      }
    }
  }

  /** Reads the start of a file: encoding, delimiter, header and a sample of rows. */
  private async sniff(file: string): Promise<Sniffed | null> {
    const scratch: FileSummary = {
      file,
      bytes: 0,
      sha256: '',
      records: 0,
      used: 0,
      rejected: 0,
      empty: 0,
      labelColumn: null,
      encoding: 'utf-8',
    };
    const chunks: Buffer[] = [];
    let size = 0;
    let complete = false;
    try {
      for await (const c of decodedChunks(file, scratch, () => {}, false)) {
        chunks.push(c);
        size += c.length;
        if (size >= SNIFF_BYTES) break;
      }
      complete = size < SNIFF_BYTES;
    } catch (e) {
      // A damaged file (truncated gzip, say): sniff what could be read; the main pass reports it.
      if (size === 0) throw e;
    }
    if (scratch.skipped) {
      this.diag.report({ severity: 'error', reason: 'encoding', file, line: 0, message: scratch.skipped });
      return null;
    }
    const head = Buffer.concat(chunks);
    if (head.length === 0) {
      this.diag.report({ severity: 'error', reason: 'empty-file', file, line: 0, message: 'file is empty' });
      return null;
    }
    const firstNl = head.indexOf(10);
    const firstLine = head.subarray(0, firstNl < 0 ? head.length : firstNl);
    const delimiter = pickDelimiter(firstLine);
    const rows: string[][] = [];
    let headerLine = 1;
    const tok = new CsvTokenizer((v) => {
      if (rows.length > SAMPLE_ROWS) return;
      const cells: string[] = [];
      for (let i = 0; i < v.n; i++) cells.push(decodeText(v.buf, v.starts[i], v.ends[i], v.quoted[i]));
      if (rows.length === 0) headerLine = v.line;
      rows.push(cells);
    }, delimiter);
    tok.push(head);
    if (complete) tok.end();
    if (rows.length === 0) {
      this.diag.report({ severity: 'error', reason: 'empty-file', file, line: 0, message: 'no records' });
      return null;
    }
    let header: string[];
    let sample: string[][];
    if (this.opts.header === 'none') {
      header = rows[0].map((_, i) => `c${i + 1}`);
      sample = rows;
    } else {
      header = rows[0];
      sample = rows.slice(1);
    }
    return { encoding: scratch.encoding, delimiter, header, sample, headerLine };
  }

  /** Decides each column's role for one file. */
  private plan(file: string, s: Sniffed): ColumnPlan {
    const o = this.opts;
    const keySet = (xs: string[] | undefined): Set<string> =>
      new Set((xs ?? []).flatMap((x) => [columnKey(x), columnKey(canonicalColumn(x))]));
    const drop = keySet(o.drop);
    const keep = keySet(o.keep);
    const categorical = keySet(o.categorical);
    const kinds = new Map(Object.entries(o.kinds ?? {}).map(([k, v]) => [columnKey(k), v]));
    const names: string[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < s.header.length; i++) {
      const raw = s.header[i].trim();
      let name = raw === '' ? `column_${i + 1}` : canonicalColumn(raw);
      const n = seen.get(name) ?? 0;
      seen.set(name, n + 1);
      if (n > 0) name = `${name}.${n}`;
      names.push(name);
    }
    // Label column.
    let labelPos = -1;
    if (o.label) {
      const k = columnKey(o.label);
      const kc = columnKey(canonicalColumn(o.label));
      labelPos = names.findIndex((n, i) => columnKey(n) === kc || columnKey(s.header[i]) === k);
    } else {
      for (const cand of LABEL_CANDIDATES) {
        labelPos = names.findIndex((n) => columnKey(n) === columnKey(cand));
        if (labelPos >= 0) break;
      }
    }
    const roles: Record<string, string> = {};
    const numericNames: string[] = [];
    const numericPos: number[] = [];
    const stringNames: string[] = [];
    const stringPos: number[] = [];
    const withIds = o.withIds ?? false;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const k = columnKey(name);
      const rawKey = columnKey(s.header[i]);
      const addNum = () => {
        numericNames.push(name);
        numericPos.push(i);
      };
      const addStr = () => {
        stringNames.push(name);
        stringPos.push(i);
      };
      if (i === labelPos) {
        roles[name] = 'label';
        continue;
      }
      if (drop.has(k) || drop.has(rawKey)) {
        roles[name] = 'dropped (--drop)';
        continue;
      }
      if (/\.\d+$/.test(name) && seen.get(name.replace(/\.\d+$/, '')) !== undefined) {
        roles[name] = 'dropped (duplicate column name)';
        continue;
      }
      if (isLabelMeta(name)) {
        roles[name] = 'dropped (derived from the label)';
        continue;
      }
      const kind = kinds.get(k);
      if (looksLikeId(name) && !keep.has(k) && !keep.has(rawKey)) {
        roles[name] = 'identifier';
        if (withIds) addStr();
        continue;
      }
      if (looksLikeId(name)) {
        // Kept identifier: numbers stay numbers, addresses become categories.
        if (withIds) addStr();
        if (kind === 'numeric' || (kind === undefined && isNumericId(name))) {
          roles[name] = 'numeric (kept identifier)';
          addNum();
        } else {
          roles[name] = 'categorical (kept identifier)';
          if (!withIds) addStr();
        }
        continue;
      }
      if (
        kind === 'categorical' ||
        categorical.has(k) ||
        categorical.has(rawKey) ||
        CIC_CATEGORICAL.has(name)
      ) {
        roles[name] = 'categorical';
        addStr();
        continue;
      }
      if (kind === 'numeric' || isKnownCicColumn(name)) {
        roles[name] = 'numeric';
        addNum();
        continue;
      }
      const inferred = inferKind(s.sample, i);
      if (inferred === 'numeric') {
        roles[name] = 'numeric (inferred)';
        addNum();
      } else if (inferred === 'identifier') {
        roles[name] = 'identifier (inferred: mostly distinct text)';
        if (withIds) addStr();
      } else {
        roles[name] = 'categorical (inferred: text values)';
        addStr();
      }
    }
    const key = `${names.join('\u0001')}|${numericNames.join('\u0001')}|${stringNames.join('\u0001')}|${labelPos}`;
    return {
      file,
      names,
      numericNames,
      numericPos: Int32Array.from(numericPos),
      stringNames,
      stringPos: Int32Array.from(stringPos),
      labelPos,
      labelName: labelPos >= 0 ? names[labelPos] : null,
      roles,
      key,
    };
  }
}

function inferKind(sample: string[][], col: number): 'numeric' | 'categorical' | 'identifier' {
  let nonEmpty = 0;
  let numeric = 0;
  const distinct = new Set<string>();
  for (const r of sample) {
    const v = r[col];
    if (v === undefined || v.trim() === '') continue;
    nonEmpty++;
    const b = Buffer.from(v, 'utf8');
    parseNumber(b, 0, b.length);
    if (numStatus !== NUM_INVALID) numeric++;
    else distinct.add(v);
  }
  // A few stray text cells in a numeric column are bad cells (reported per row), not a category.
  if (nonEmpty === 0 || numeric >= 0.9 * nonEmpty) return 'numeric';
  if (distinct.size > 100 && distinct.size > 0.5 * nonEmpty) return 'identifier';
  return 'categorical';
}

function pickDelimiter(line: Uint8Array): number {
  let comma = 0;
  let tab = 0;
  let semi = 0;
  for (const c of line) {
    if (c === 44) comma++;
    else if (c === 9) tab++;
    else if (c === 59) semi++;
  }
  if (tab > comma && tab >= semi) return 9;
  if (semi > comma) return 59;
  return 44;
}

function allEmpty(v: CsvRecordView): boolean {
  for (let i = 0; i < v.n; i++) {
    for (let j = v.starts[i]; j < v.ends[i]; j++) {
      const c = v.buf[j];
      if (c !== 32 && c !== 9 && c !== 13 && c !== 34) return false;
    }
  }
  return true;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function newBatch(
  plan: ColumnPlan,
  fileIndex: number,
  cap: number,
  nNum: number,
  nStr: number,
  withLabel: boolean,
): FlowBatch {
  return {
    plan,
    fileIndex,
    n: 0,
    numeric: new Float64Array(cap * nNum),
    strings: Array.from({ length: nStr }, () => new Array<string>(cap)),
    labels: withLabel ? new Array<string>(cap) : null,
    rawLabels: withLabel ? new Array<string>(cap) : null,
    lines: new Uint32Array(cap),
    rowHash: new Uint32Array(cap),
  };
}

function trimBatch(b: FlowBatch, n: number, nNum: number): FlowBatch {
  b.n = n;
  if (n * nNum < b.numeric.length) b.numeric = b.numeric.subarray(0, n * nNum);
  if (n < b.lines.length) {
    b.lines = b.lines.subarray(0, n);
    b.rowHash = b.rowHash.subarray(0, n);
    b.strings = b.strings.map((s) => s.slice(0, n));
    if (b.labels) b.labels = b.labels.slice(0, n);
    if (b.rawLabels) b.rawLabels = b.rawLabels.slice(0, n);
  }
  return b;
}

/**
 * The file's bytes as UTF-8 chunks: gunzips `.gz` (by magic number), strips a UTF-8 BOM,
 * transcodes UTF-16 (BOM, or NUL-byte pattern), and refuses binary data. Cells that are
 * not valid UTF-8 are decoded as Windows-1252 later, per cell.
 */
async function* decodedChunks(
  file: string,
  summary: FileSummary,
  progress: (bytes: number) => void,
  hash = true,
): AsyncGenerator<Buffer> {
  const sha = hash ? createHash('sha256') : null;
  let raw = 0;
  async function* rawChunks(): AsyncGenerator<Buffer> {
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) {
      const b = c as Buffer;
      sha?.update(b);
      raw += b.length;
      progress(raw);
      yield b;
    }
  }
  // Gunzipped when compressed; stopping early (sniffing) or failing tears the chain down.
  const source = maybeGunzip(rawChunks(), () => {
    summary.encoding = 'gzip+';
  });
  let decoder: TextDecoder | null = null;
  let started = false;
  for await (const chunk of source) {
    let c = chunk as Buffer;
    if (!started) {
      started = true;
      const enc = detectEncoding(c);
      summary.encoding = `${summary.encoding === 'gzip+' ? 'gzip+' : ''}${enc.name}`;
      if (enc.name === 'binary') {
        summary.skipped =
          'unknown encoding: the file holds NUL bytes and is neither UTF-8 nor UTF-16 text; convert it to UTF-8 CSV (e.g. iconv -f UTF-16 -t UTF-8)';
        return;
      }
      c = c.subarray(enc.bomLength);
      if (enc.name.startsWith('utf-16')) decoder = new TextDecoder(enc.name);
    }
    if (decoder) c = Buffer.from(decoder.decode(c, { stream: true }), 'utf8');
    yield c;
  }
  if (decoder) {
    const tail = decoder.decode();
    if (tail) yield Buffer.from(tail, 'utf8');
  }
  if (sha) summary.sha256 = sha.digest('hex');
}

function detectEncoding(b: Buffer): { name: string; bomLength: number } {
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf)
    return { name: 'utf-8', bomLength: 3 };
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return { name: 'utf-16le', bomLength: 2 };
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return { name: 'utf-16be', bomLength: 2 };
  const n = Math.min(b.length, 4096);
  let nulEven = 0;
  let nulOdd = 0;
  for (let i = 0; i < n; i++) {
    if (b[i] === 0) {
      if (i & 1) nulOdd++;
      else nulEven++;
    }
  }
  if (nulEven + nulOdd === 0) return { name: 'utf-8', bomLength: 0 };
  // UTF-16 without BOM: ASCII text leaves every other byte NUL.
  if (nulOdd > n * 0.4 && nulEven === 0) return { name: 'utf-16le', bomLength: 0 };
  if (nulEven > n * 0.4 && nulOdd === 0) return { name: 'utf-16be', bomLength: 0 };
  return { name: 'binary', bomLength: 0 };
}

/** Short display name of a file. */
export function shortName(file: string): string {
  return basename(file);
}
