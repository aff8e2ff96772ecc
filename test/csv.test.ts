import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import {
  CsvTokenizer,
  decodeText,
  MAX_QUOTED_LINES,
  NUM_EMPTY,
  NUM_INVALID,
  NUM_OK,
  numStatus,
  parseNumber,
} from '../src/ingest/csv.js';

function tokenize(chunks: Buffer[]): { line: number; fields: string[]; terminated: boolean }[] {
  const out: { line: number; fields: string[]; terminated: boolean }[] = [];
  const t = new CsvTokenizer((v) => {
    const fields: string[] = [];
    for (let i = 0; i < v.n; i++) fields.push(decodeText(v.buf, v.starts[i], v.ends[i], v.quoted[i]));
    out.push({ line: v.line, fields, terminated: v.terminated });
  });
  for (const c of chunks) t.push(c);
  t.end();
  return out;
}

describe('CSV tokenizer', () => {
  const text = 'a,b,c\r\n1,"x, y",3\n"multi\nline",,"say ""hi"""\n\nlast,row,no-newline';

  it('splits fields, honours quotes, CRLF, embedded newlines and counts physical lines', () => {
    const recs = tokenize([Buffer.from(text)]);
    assert.deepEqual(
      recs.map((r) => r.fields),
      [
        ['a', 'b', 'c'],
        ['1', 'x, y', '3'],
        ['multi\nline', '', 'say "hi"'],
        [''],
        ['last', 'row', 'no-newline'],
      ],
    );
    assert.deepEqual(
      recs.map((r) => r.line),
      [1, 2, 3, 5, 6],
    );
    assert.deepEqual(
      recs.map((r) => r.terminated),
      [true, true, true, true, false],
    );
  });

  it('gives the same records whatever the chunk boundaries', () => {
    const whole = tokenize([Buffer.from(text)]);
    const bytes = Buffer.from(text);
    for (let size = 1; size <= 7; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      assert.deepEqual(tokenize(chunks), whole, `chunk size ${size}`);
    }
  });

  it('cuts a record with a stray unclosed quote at its line end and resumes on the next line', () => {
    const lines = ['a,b', '1,"2', ...Array.from({ length: MAX_QUOTED_LINES + 5 }, (_, i) => `${i},x`)];
    const bytes = Buffer.from(`${lines.join('\n')}\n`);
    const seen: { line: number; n: number; stray: number }[] = [];
    const t = new CsvTokenizer((v) => seen.push({ line: v.line, n: v.n, stray: v.unclosedQuote }));
    // Fed in small chunks, so the quote stays open across many pushes.
    for (let i = 0; i < bytes.length; i += 5) t.push(bytes.subarray(i, i + 5));
    t.end();
    assert.equal(seen.length, lines.length, 'every physical line is a record again');
    assert.deepEqual(seen[1], { line: 2, n: 2, stray: 1 });
    assert.ok(
      seen.slice(2).every((r, i) => r.line === i + 3 && r.n === 2 && r.stray === -1),
      'lines after the stray quote are read normally, with their own line numbers',
    );
    // A quote still open at the end of input: the same treatment.
    const tail = tokenize([Buffer.from('a,b\n1,"2\n3,4\n')]);
    assert.deepEqual(
      tail.map((r) => r.fields),
      [
        ['a', 'b'],
        ['1', '"2'],
        ['3', '4'],
      ],
    );
  });

  it('reports a record longer than the limit once and goes on at the next line', () => {
    const sizes: number[] = [];
    const lines: number[] = [];
    const t = new CsvTokenizer(
      (v) => lines.push(v.line),
      44,
      (line) => sizes.push(line),
    );
    t.maxRecordBytes = 64;
    t.push(Buffer.from('a,b\n'));
    for (let i = 0; i < 10; i++) t.push(Buffer.from('9'.repeat(50)));
    t.push(Buffer.from(',1\n3,4\n'));
    t.end();
    assert.deepEqual(sizes, [2]);
    assert.deepEqual(lines, [1, 3]);
  });

  it('decodes invalid UTF-8 as Windows-1252 (the 0x96 en dash of CIC-IDS2017 labels)', () => {
    const b = Buffer.from([0x57, 0x65, 0x62, 0x20, 0x96, 0x20, 0x58]);
    assert.equal(decodeText(b, 0, b.length, 0), 'Web \u2013 X');
    const u = Buffer.from('Web \u2013 X', 'utf8');
    assert.equal(decodeText(u, 0, u.length, 0), 'Web \u2013 X');
  });
});

describe('parseNumber', () => {
  const parse = (s: string): [number, number] => {
    const b = Buffer.from(s, 'latin1');
    const v = parseNumber(b, 0, b.length);
    return [v, numStatus];
  };

  it('agrees exactly with Number() on random decimals, exponents and long mantissas', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 20000; i++) {
      const mag = 10 ** (rng.int(40) - 20);
      const x = (rng.next() - 0.5) * mag;
      const forms = [
        String(x),
        x.toFixed(rng.int(10)),
        x.toExponential(rng.int(16)),
        x.toPrecision(1 + rng.int(20)),
      ];
      for (const s of forms) {
        const [v, st] = parse(s);
        assert.equal(st, NUM_OK, s);
        assert.ok(Object.is(v, Number(s)), `${s}: got ${v}, Number() gives ${Number(s)}`);
      }
    }
  });

  it('reads the spellings CIC and other exports use for missing and non-finite values', () => {
    assert.deepEqual(parse('Infinity'), [Number.POSITIVE_INFINITY, NUM_OK]);
    assert.deepEqual(parse('-Infinity'), [Number.NEGATIVE_INFINITY, NUM_OK]);
    assert.deepEqual(parse('inf'), [Number.POSITIVE_INFINITY, NUM_OK]);
    assert.ok(Number.isNaN(parse('NaN')[0]) && parse('NaN')[1] === NUM_OK);
    assert.equal(parse('')[1], NUM_EMPTY);
    assert.equal(parse('   ')[1], NUM_EMPTY);
    assert.deepEqual(parse(' 42 '), [42, NUM_OK]);
    assert.deepEqual(parse('"12.5"'), [12.5, NUM_OK]);
    assert.deepEqual(parse('51885.0'), [51885, NUM_OK]);
    assert.deepEqual(parse('1E-05'), [1e-5, NUM_OK]);
  });

  it('rejects text that is not a number', () => {
    for (const s of ['abc', '1.2.3', '12a', '0x10', '--1', 'e5', '.', '1e', 'TCP'])
      assert.equal(parse(s)[1], NUM_INVALID, s);
  });
});
