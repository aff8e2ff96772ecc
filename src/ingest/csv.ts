/**
 * A byte-level, streaming CSV tokenizer (RFC 4180 quoting, LF or CRLF) and number/text
 * decoding straight from the bytes. Fields are reported as offsets into the input buffer, so a
 * numeric cell becomes a float without a string ever being made for it. Memory stays constant:
 * only the unfinished tail of a chunk is carried to the next one.
 */
import { isUtf8 } from 'node:buffer';

const LF = 10;
const CR = 13;
const QUOTE = 34;

export interface CsvRecordView {
  buf: Uint8Array;
  /** Number of fields. */
  n: number;
  /** Field i spans bytes [starts[i], ends[i]) of buf, quotes included. */
  starts: Int32Array;
  ends: Int32Array;
  /** 1 when field i was quoted. */
  quoted: Uint8Array;
  /** 1-based physical line where the record starts. */
  line: number;
  /** Record bytes [start, end), without the line terminator. */
  start: number;
  end: number;
  /** False for a last record that had no line terminator. */
  terminated: boolean;
  /**
   * Index of a field whose opening quote is never closed (within `MAX_QUOTED_LINES` lines or
   * before the end of input), else -1. Such a record ends at its first line break and reading
   * resumes on the next line, so one stray quote cannot swallow the rest of a file.
   */
  unclosedQuote: number;
}

/** Line breaks a quoted field may span before its quote is taken to be stray. */
export const MAX_QUOTED_LINES = 64;

export class CsvTokenizer {
  private carry: Buffer | null = null;
  /** True while discarding the rest of an oversize record up to its line break. */
  private skipping = false;
  private line = 1;
  private cap = 128;
  private readonly view: CsvRecordView;
  /** Bytes of a single record above which it is rejected as runaway (an unclosed quote, binary data). */
  maxRecordBytes = 16 * 1024 * 1024;

  constructor(
    private readonly onRecord: (r: CsvRecordView) => void,
    private readonly delimiter = 44,
    private readonly onOversize: (line: number, bytes: number) => void = () => {},
  ) {
    this.view = {
      buf: new Uint8Array(0),
      n: 0,
      starts: new Int32Array(this.cap),
      ends: new Int32Array(this.cap),
      quoted: new Uint8Array(this.cap),
      line: 1,
      start: 0,
      end: 0,
      terminated: true,
      unclosedQuote: -1,
    };
  }

  push(chunk: Buffer): void {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    let pos = 0;
    if (this.skipping) {
      const nl = buf.indexOf(LF);
      if (nl < 0) return;
      this.skipping = false;
      this.line++;
      pos = nl + 1;
    }
    while (pos < buf.length) {
      const next = this.parseRecord(buf, pos, false);
      if (next < 0) {
        if (buf.length - pos > this.maxRecordBytes) {
          // Skip to the next newline: the record can never complete within limits.
          const nl = buf.indexOf(LF, pos);
          this.onOversize(this.line, this.maxRecordBytes);
          if (nl < 0) {
            // The line goes on in later chunks: drop bytes until its end, reporting it once.
            this.skipping = true;
            return;
          }
          this.line += countLf(buf, pos, nl + 1);
          pos = nl + 1;
          continue;
        }
        this.carry = buf.subarray(pos);
        return;
      }
      pos = next;
    }
  }

  end(): void {
    this.skipping = false;
    let buf = this.carry;
    this.carry = null;
    let pos = 0;
    // A stray quote at the end resumes parsing at the next line, so several records may remain.
    while (buf && pos < buf.length) {
      pos = this.parseRecord(buf, pos, true);
      if (pos < 0) buf = null;
    }
  }

  /** Parses one record at pos; returns the position after it, or -1 when more bytes are needed. */
  private parseRecord(buf: Buffer, pos: number, final: boolean): number {
    const d = this.delimiter;
    const len = buf.length;
    let nf = 0;
    let fieldStart = pos;
    let quoted = 0;
    let inQuote = false;
    let innerLines = 0;
    let firstInnerLf = -1;
    let i = pos;
    for (; i < len; i++) {
      const c = buf[i];
      if (inQuote) {
        if (c === QUOTE) {
          if (i + 1 < len && buf[i + 1] === QUOTE) i++;
          else if (i + 1 >= len && !final) return -1;
          else inQuote = false;
        } else if (c === LF) {
          if (innerLines === 0) firstInnerLf = i;
          if (++innerLines > MAX_QUOTED_LINES) return this.stray(buf, pos, nf, fieldStart, firstInnerLf);
        }
        continue;
      }
      if (c === d) {
        nf = this.field(nf, fieldStart, i, quoted);
        fieldStart = i + 1;
        quoted = 0;
      } else if (c === LF) {
        break;
      } else if (c === QUOTE && i === fieldStart) {
        inQuote = true;
        quoted = 1;
      }
    }
    if (i >= len && !final) return -1;
    if (inQuote && firstInnerLf >= 0) return this.stray(buf, pos, nf, fieldStart, firstInnerLf);
    let end = i;
    if (end > pos && buf[end - 1] === CR) end--;
    nf = this.field(nf, fieldStart, Math.max(fieldStart, end), quoted);
    const v = this.view;
    v.buf = buf;
    v.n = nf;
    v.line = this.line;
    v.start = pos;
    v.end = end;
    v.terminated = i < len;
    v.unclosedQuote = inQuote ? nf - 1 : -1;
    this.line += 1 + innerLines;
    this.onRecord(v);
    return i + 1;
  }

  /** Emits a record whose quote in field `nf` never closes, cut at its first line break `lf`. */
  private stray(buf: Buffer, pos: number, nf: number, fieldStart: number, lf: number): number {
    let end = lf;
    if (end > pos && buf[end - 1] === CR) end--;
    const n = this.field(nf, fieldStart, Math.max(fieldStart, end), 1);
    const v = this.view;
    v.buf = buf;
    v.n = n;
    v.line = this.line;
    v.start = pos;
    v.end = end;
    v.terminated = true;
    v.unclosedQuote = nf;
    this.line++;
    this.onRecord(v);
    return lf + 1;
  }

  private field(nf: number, s: number, e: number, quoted: number): number {
    if (nf >= this.cap) this.grow();
    this.view.starts[nf] = s;
    this.view.ends[nf] = e;
    this.view.quoted[nf] = quoted;
    return nf + 1;
  }

  private grow(): void {
    this.cap *= 2;
    const v = this.view;
    const s = new Int32Array(this.cap);
    s.set(v.starts);
    const e = new Int32Array(this.cap);
    e.set(v.ends);
    const q = new Uint8Array(this.cap);
    q.set(v.quoted);
    v.starts = s;
    v.ends = e;
    v.quoted = q;
  }
}

function countLf(buf: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e; i++) if (buf[i] === LF) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Numbers

/** Outcome of the last parseNumber call. */
export const NUM_OK = 0;
export const NUM_EMPTY = 1;
export const NUM_INVALID = 2;
export let numStatus = NUM_OK;

const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
  1e20, 1e21, 1e22,
];

/** Spellings of missing and non-finite values, lower-cased. */
const SPECIAL = new Map<string, number>([
  ['nan', Number.NaN],
  ['-nan', Number.NaN],
  ['na', Number.NaN],
  ['n/a', Number.NaN],
  ['null', Number.NaN],
  ['none', Number.NaN],
  ['inf', Number.POSITIVE_INFINITY],
  ['+inf', Number.POSITIVE_INFINITY],
  ['infinity', Number.POSITIVE_INFINITY],
  ['+infinity', Number.POSITIVE_INFINITY],
  ['-inf', Number.NEGATIVE_INFINITY],
  ['-infinity', Number.NEGATIVE_INFINITY],
]);

/**
 * Parses a decimal number from bytes [s, e) without allocating (Clinger's fast path: at most 15
 * significant digits and a power of ten up to 22 give a correctly rounded result in one operation;
 * anything else goes through Number()). Sets `numStatus`: empty cells give NaN with NUM_EMPTY,
 * unparseable text NaN with NUM_INVALID. `NaN`, `Infinity`, `inf`, `NA`, `null` are accepted.
 */
export function parseNumber(b: Uint8Array, s: number, e: number): number {
  while (s < e && (b[s] === 32 || b[s] === 9)) s++;
  while (e > s && (b[e - 1] === 32 || b[e - 1] === 9 || b[e - 1] === CR)) e--;
  if (e - s >= 2 && b[s] === QUOTE && b[e - 1] === QUOTE) {
    s++;
    e--;
    while (s < e && b[s] === 32) s++;
    while (e > s && b[e - 1] === 32) e--;
  }
  if (s === e) {
    numStatus = NUM_EMPTY;
    return Number.NaN;
  }
  let i = s;
  let neg = false;
  let c = b[i];
  if (c === 45) {
    neg = true;
    i++;
  } else if (c === 43) i++;
  let mant = 0;
  let sig = 0;
  let exp = 0;
  let digits = 0;
  /** Significant digits beyond the 15 that fit exactly: the value needs Number(). */
  let overflow = false;
  while (i < e) {
    const dgt = b[i] - 48;
    if (dgt < 0 || dgt > 9) break;
    if (sig > 0 || dgt !== 0) {
      if (sig < 15) {
        mant = mant * 10 + dgt;
        sig++;
      } else {
        overflow = true;
        exp++;
      }
    }
    digits++;
    i++;
  }
  if (i < e && b[i] === 46) {
    i++;
    while (i < e) {
      const dgt = b[i] - 48;
      if (dgt < 0 || dgt > 9) break;
      if (sig > 0 || dgt !== 0) {
        if (sig < 15) {
          mant = mant * 10 + dgt;
          sig++;
          exp--;
        } else overflow = true;
      } else exp--;
      digits++;
      i++;
    }
  }
  if (digits === 0) return special(b, s, e);
  if (i < e && (b[i] === 101 || b[i] === 69)) {
    i++;
    let eneg = false;
    c = b[i];
    if (c === 45) {
      eneg = true;
      i++;
    } else if (c === 43) i++;
    let ev = 0;
    let ed = 0;
    while (i < e) {
      const dgt = b[i] - 48;
      if (dgt < 0 || dgt > 9) break;
      if (ev < 100000) ev = ev * 10 + dgt;
      ed++;
      i++;
    }
    if (ed === 0) return invalid();
    exp += eneg ? -ev : ev;
  }
  if (i !== e) return special(b, s, e);
  numStatus = NUM_OK;
  let v: number;
  if (overflow || exp > 22 || exp < -22) {
    // Valid decimal syntax that needs more than the exact fast path: let the engine round it.
    v = Number((b as Buffer).toString('latin1', s, e));
    return v;
  }
  if (mant === 0) v = 0;
  else if (exp === 0) v = mant;
  else if (exp > 0) v = mant * POW10[exp];
  else v = mant / POW10[-exp];
  return neg ? -v : v;
}

function invalid(): number {
  numStatus = NUM_INVALID;
  return Number.NaN;
}

/** Words for missing and non-finite values; anything else is invalid. */
function special(b: Uint8Array, s: number, e: number): number {
  if (e - s > 9) return invalid();
  const v = SPECIAL.get((b as Buffer).toString('latin1', s, e).toLowerCase());
  if (v === undefined) return invalid();
  numStatus = NUM_OK;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Text

/** Windows-1252 code points for bytes 0x80..0x9F (the rest of the code page equals Latin-1). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
];

/** Windows-1252 decoding (Node's TextDecoder treats windows-1252 as Latin-1, so it is done here). */
export function decodeCp1252(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out += String.fromCharCode(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] : b);
  }
  return out;
}

/** Outcome of the last decodeText call: true when the bytes were not UTF-8 and cp1252 was used. */
export let textWasCp1252 = false;

/**
 * Decodes a field as text: UTF-8 when the bytes are valid UTF-8 (ASCII fast path), otherwise
 * Windows-1252 (the encoding of the original CIC-IDS2017 labels), flagging `textWasCp1252`.
 * Quoted fields lose their quotes and `""` becomes `"`.
 */
export function decodeText(b: Uint8Array, s: number, e: number, quoted: number): string {
  if (quoted && e - s >= 2 && b[s] === QUOTE && b[e - 1] === QUOTE) {
    s++;
    e--;
  }
  textWasCp1252 = false;
  let ascii = true;
  for (let i = s; i < e; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  let out: string;
  if (ascii) out = (b as Buffer).toString('latin1', s, e);
  else {
    const view = Buffer.from(b.buffer, b.byteOffset + s, e - s);
    if (isUtf8(view)) out = view.toString('utf8');
    else {
      textWasCp1252 = true;
      out = decodeCp1252(view);
    }
  }
  return quoted ? out.replaceAll('""', '"') : out;
}
