import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Diagnostics, type Problem } from '../src/core/diagnostics.js';
import type { FlowBatch } from '../src/core/records.js';
import { batchRow } from '../src/core/records.js';
import { FlowReader, type IngestOptions } from '../src/ingest/table.js';
import {
  datasets,
  IMPROVED_HEADER,
  MLCVE_HEADER,
  NO_DATASETS,
  row,
  TRAFFIC_LABELLING_HEADER,
  tmp,
  writeFile,
} from './helpers.js';

async function readAll(paths: string[], opts: IngestOptions = {}) {
  const problems: Problem[] = [];
  const diag = new Diagnostics((p) => problems.push(p), 1000);
  const reader = new FlowReader(paths, opts, diag);
  const batches: FlowBatch[] = [];
  for await (const b of reader.batches()) batches.push(b);
  const rows = batches.flatMap((b) => Array.from({ length: b.n }, (_, i) => batchRow(b, i)));
  return { reader, batches, rows, problems, diag };
}

describe('CIC CSV ingest: original MachineLearningCVE flavour', async () => {
  const dir = tmp();
  const header = MLCVE_HEADER;
  const cols = header.split(',').length;
  const good = row(header, (i) => i + 1, 'BENIGN');
  // Flow Bytes/s = Infinity, Flow Packets/s = NaN, Flow IAT Mean empty.
  const nonFinite = row(
    header,
    (i, n) =>
      n === 'Flow Bytes/s' ? 'Infinity' : n === 'Flow Packets/s' ? 'NaN' : n === 'Flow IAT Mean' ? '' : i,
    'DoS Hulk',
  );
  const bytes = Buffer.concat([
    Buffer.from(`${header}\n${good}\n${nonFinite}\n`),
    Buffer.from(`${row(header, () => 1, 'Web Attack ')}`, 'latin1'),
    Buffer.from([0x96]),
    Buffer.from(' Brute Force\n'),
    Buffer.from(`${','.repeat(cols - 1)}\n\n`),
    Buffer.from(`${row(header, () => 2, 'PortScan')}\n`),
  ]);
  const file = writeFile(dir, 'mlcve.csv', bytes);
  const r = await readAll([file]);

  it('maps the leading-space names onto canonical ones and drops the duplicated Fwd Header Length', () => {
    const plan = r.batches[0].plan;
    assert.ok(plan.numericNames.includes('Total Fwd Packet'));
    assert.ok(plan.numericNames.includes('Fwd Header Length'));
    assert.ok(!plan.numericNames.includes('Fwd Header Length.1'));
    assert.match(plan.roles['Fwd Header Length.1'], /duplicate/);
    assert.equal(plan.roles['Dst Port'], 'identifier');
    assert.equal(plan.labelName, 'Label');
  });

  it('keeps rows with Infinity, NaN and empty cells, as non-finite values', () => {
    const f = r.rows[1].features;
    assert.equal(f['Flow Bytes/s'], Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(f['Flow Packets/s']));
    assert.ok(Number.isNaN(f['Flow IAT Mean']));
    assert.equal(f['Flow Duration'], 1); // 0-based position in the header
  });

  it('decodes the cp1252 label byte, canonicalises the label and keeps the raw text', () => {
    const web = r.rows[2];
    assert.equal(web.label, 'Web Attack - Brute Force');
    assert.equal(web.rawLabel, 'Web Attack \u2013 Brute Force');
    const enc = r.problems.find((p) => p.reason === 'encoding');
    assert.ok(enc, 'an encoding warning is reported');
    assert.equal(enc.line, 4);
    assert.equal(enc.column, 'Label');
    assert.equal(enc.severity, 'warning');
  });

  it('skips rows that are entirely empty and blank lines, counting them', () => {
    assert.equal(r.rows.length, 4);
    assert.equal(r.rows[3].label, 'PortScan');
    assert.equal(r.rows[3].origin?.line, 7);
    assert.equal(r.reader.files[0].empty, 2);
    assert.equal(r.reader.files[0].rejected, 0);
  });
});

describe('CIC CSV ingest: TrafficLabelling and corrected flavours', () => {
  it('reads identifiers as text and keeps them out of the features', async () => {
    const dir = tmp();
    const file = writeFile(
      dir,
      'tl.csv',
      `${TRAFFIC_LABELLING_HEADER}\r\n${row(TRAFFIC_LABELLING_HEADER, (i, n) => (n.endsWith(' IP') ? '10.0.0.1' : n === 'Timestamp' ? '7/7/2017 3:30' : i), 'BENIGN')}\r\n`,
    );
    const r = await readAll([file], { withIds: true });
    const plan = r.batches[0].plan;
    assert.deepEqual(plan.stringNames.sort(), [
      'Dst IP',
      'Dst Port',
      'Flow ID',
      'Protocol',
      'Src IP',
      'Src Port',
      'Timestamp',
    ]);
    assert.ok(!plan.numericNames.includes('Dst Port'));
    assert.equal(r.rows[0].srcIp, '10.0.0.1');
    assert.equal(r.rows[0].timestamp, '7/7/2017 3:30');
  });

  it('drops Attempted Category (derived from the label) in the corrected release', async () => {
    const dir = tmp();
    const file = writeFile(
      dir,
      'imp.csv',
      `${IMPROVED_HEADER}\n${row(IMPROVED_HEADER, (i, n) => (n.endsWith(' IP') ? '1.2.3.4' : n === 'Timestamp' ? '2017-07-06 12:39:01' : i), 'Portscan')}\n`,
    );
    const r = await readAll([file]);
    const plan = r.batches[0].plan;
    assert.match(plan.roles['Attempted Category'], /label/);
    assert.equal(plan.roles.id, 'identifier');
    assert.equal(plan.numericNames.length, 81); // 91 less 7 identifiers, Protocol, Label, Attempted Category
    assert.equal(r.rows[0].label, 'PortScan');
  });
});

describe('bad input is counted, located, and the rest is used', () => {
  const header = 'dur,bytes,proto,Label';
  it('reports wrong field counts, non-numeric cells and a truncated last line with file:line:column', async () => {
    const dir = tmp();
    const file = writeFile(
      dir,
      'bad.csv',
      [
        header, // line 1
        '1,100,tcp,BENIGN',
        '2,200,udp', // line 3: a field short
        '3,abc,tcp,BENIGN', // line 4: text in a numeric column
        '4,400,tcp,', // line 5: empty label
        ...Array.from({ length: 10 }, (_, i) => `5,${500 + i},tcp,attack`), // lines 6-15
        '6,6', // line 16: cut short, no newline
      ].join('\n'),
    );
    const r = await readAll([file]);
    assert.deepEqual(
      r.rows.map((x) => x.features.dur),
      [1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
    );
    const byReason = Object.fromEntries(
      r.problems.filter((p) => p.severity === 'error').map((p) => [p.reason, p]),
    );
    assert.equal(byReason['field-count'].line, 3);
    assert.match(byReason['field-count'].message, /expected 4 fields, found 3/);
    assert.equal(byReason['non-numeric'].line, 4);
    assert.equal(byReason['non-numeric'].column, 'bytes');
    assert.equal(byReason['non-numeric'].columnIndex, 2);
    assert.match(byReason['non-numeric'].message, /"abc" is not a number/);
    assert.equal(byReason['empty-label'].line, 5);
    assert.equal(byReason.truncated.line, 16);
    assert.equal(r.reader.files[0].rejected, 4);
    assert.equal(r.reader.files[0].used, 11);
    assert.equal(r.diag.count('error'), 4);
  });

  it('warns once per file when there is no label column, and still reads the rows', async () => {
    const dir = tmp();
    const file = writeFile(dir, 'nolabel.csv', 'a,b\n1,2\n3,4\n');
    const r = await readAll([file]);
    assert.equal(r.rows.length, 2);
    assert.equal(r.rows[0].label, undefined);
    const w = r.problems.filter((p) => p.reason === 'no-label');
    assert.equal(w.length, 1);
    assert.equal(w[0].line, 1);
    assert.match(w[0].message, /--label/);
  });

  it('reads UTF-16 with a BOM and gzip-compressed files; refuses binary data with a clear message', async () => {
    const dir = tmp();
    const text = 'a,b,Label\n1,2,BENIGN\n3,4,DDoS\n';
    const u16 = writeFile(
      dir,
      'u16.csv',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
    );
    const gz = writeFile(dir, 'z.csv.gz', gzipSync(Buffer.from(text)));
    const bin = writeFile(
      dir,
      'bin.csv',
      Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0x14, 0, 0x08, 0, 0, 0x21, 0x00, 0x00, 0x01]),
    );
    const r = await readAll([u16, gz, bin]);
    assert.deepEqual(
      r.rows.map((x) => `${x.features.a}/${x.label}`),
      ['1/BENIGN', '3/DDoS', '1/BENIGN', '3/DDoS'],
    );
    assert.equal(r.reader.files[0].encoding, 'utf-16le');
    const enc = r.problems.find((p) => p.reason === 'encoding');
    assert.ok(enc);
    assert.equal(enc.file, bin);
    assert.match(enc.message, /unknown encoding/);
  });
});

describe('resources and edge cases', () => {
  it('closes every file it opens, also after sniffing files larger than the sniff window', async () => {
    if (!existsSync('/proc/self/fd')) return;
    const dir = tmp();
    const body = Array.from({ length: 120_000 }, (_, i) => `${i},${i % 97},BENIGN`).join('\n');
    const files = Array.from({ length: 6 }, (_, k) => writeFile(dir, `big${k}.csv`, `a,b,Label\n${body}\n`));
    const before = readdirSync('/proc/self/fd').length;
    const r = await readAll(files);
    assert.equal(r.rows.length, 6 * 120_000);
    await new Promise((res) => setTimeout(res, 50));
    const after = readdirSync('/proc/self/fd').length;
    assert.ok(after <= before, `file descriptors: ${before} before, ${after} after`);
  });

  it('warns about a header-only file; keeps unlabelled rows when asked (detection)', async () => {
    const dir = tmp();
    const empty = writeFile(dir, 'header-only.csv', 'a,b,Label\n');
    const r = await readAll([empty]);
    assert.equal(r.rows.length, 0);
    assert.ok(r.problems.some((p) => p.reason === 'no-rows' && p.file === empty));
    const partly = writeFile(dir, 'partly.csv', 'a,b,Label\n1,2,BENIGN\n3,4,\n');
    assert.equal((await readAll([partly])).rows.length, 1);
    const kept = await readAll([partly], { keepUnlabelled: true });
    assert.deepEqual(
      kept.rows.map((x) => x.label),
      ['BENIGN', ''],
    );
  });

  it('a file the consumer gives up on stops being read and counts as not used', async () => {
    const dir = tmp();
    const body = Array.from({ length: 50_000 }, (_, i) => `${i},1,BENIGN`).join('\n');
    const a = writeFile(dir, 'a.csv', `a,b,Label\n${body}\n`);
    const b = writeFile(dir, 'b.csv', 'a,b,Label\n1,2,BENIGN\n');
    const reader = new FlowReader([a, b], { batchSize: 1000 }, new Diagnostics());
    const seen = [0, 0];
    for await (const batch of reader.batches()) {
      seen[batch.fileIndex] += batch.n;
      if (batch.fileIndex === 0) reader.skipFile(0, 'missing columns');
    }
    assert.equal(seen[0], 1000, 'one batch, then the file is dropped');
    assert.equal(seen[1], 1);
    assert.equal(reader.files[0].used, 0);
    assert.equal(reader.files[0].skipped, 'missing columns');
    assert.equal(reader.files[1].used, 1);
  });
});

describe('damaged compressed files', () => {
  it('keeps the rows read before a truncated .gz ends, and reports the read error', async () => {
    const dir = tmp();
    const lines = ['a,b,Label'];
    for (let i = 0; i < 20000; i++) lines.push(`${i},${(i * 7919) % 10007},BENIGN`);
    const gz = gzipSync(Buffer.from(`${lines.join('\n')}\n`));
    const file = writeFile(dir, 'cut.csv.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
    const r = await readAll([file]);
    const f = r.reader.files[0];
    assert.ok(f.used > 1000 && f.used < 20000, `${f.used} rows kept`);
    assert.deepEqual(
      r.rows.slice(0, 3).map((x) => x.features.a),
      [0, 1, 2],
    );
    const err = r.problems.find((p) => p.reason === 'read');
    assert.ok(err);
    assert.match(err.message, /after record \d+ .*unexpected end of file/);
  });
});

describe('generic CSV datasets', () => {
  it('takes --label, --benign, --drop and --categorical, and infers text columns as categories', async () => {
    const dir = tmp();
    const file = writeFile(
      dir,
      'unsw.csv',
      [
        'id,dur,proto,service,sbytes,note,attack_cat,label',
        '1,0.1,tcp,http,100,x,Normal,0',
        '2,0.2,udp,dns,200,y,Exploits,1',
        '3,0.3,tcp,-,300,z,Normal,0',
      ].join('\n'),
    );
    const r = await readAll([file], {
      label: 'attack_cat',
      benign: ['Normal'],
      drop: ['note'],
      categorical: ['service'],
    });
    const plan = r.batches[0].plan;
    assert.deepEqual(plan.numericNames, ['dur', 'sbytes']);
    assert.deepEqual(plan.stringNames, ['proto', 'service']);
    assert.equal(plan.roles.id, 'identifier');
    assert.match(plan.roles.label, /label/);
    assert.match(plan.roles.note, /--drop/);
    assert.deepEqual(
      r.rows.map((x) => x.label),
      ['BENIGN', 'Exploits', 'BENIGN'],
    );
    assert.equal(r.rows[1].rawLabel, 'Exploits');
  });

  it('reads files without a header row when told', async () => {
    const dir = tmp();
    const file = writeFile(dir, 'kdd.csv', '0,tcp,100,normal\n1,udp,5,neptune\n');
    const r = await readAll([file], { header: 'none', label: 'c4' });
    assert.equal(r.rows.length, 2);
    assert.deepEqual(r.batches[0].plan.numericNames, ['c1', 'c3']);
    assert.deepEqual(
      r.rows.map((x) => x.label),
      ['BENIGN', 'neptune'],
    );
  });
});

describe('the shared CIC-IDS2017 datasets', () => {
  const root = datasets();
  it('reads every file of the corrected release with the row count its file name states', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    const r = await readAll([join(root!, 'cicids2017_improved_sampled')]);
    assert.equal(r.problems.filter((p) => p.severity !== 'info').length, 0);
    for (const f of r.reader.files) {
      const expected = Number(/_(\d+)\.csv$/.exec(f.file)?.[1]);
      assert.equal(f.used, expected, f.file);
    }
    const labels = new Set(r.rows.map((x) => x.label));
    assert.equal(labels.size, 16);
    assert.ok(labels.has('Botnet') && labels.has('PortScan') && labels.has('Web Attack - SQL Injection'));
  });

  it('reads the original flavours with the class counts SOURCE.md gives', {
    skip: root ? false : NO_DATASETS,
  }, async () => {
    const count = (rows: { label?: string }[]) => {
      const m: Record<string, number> = {};
      for (const x of rows) m[x.label!] = (m[x.label!] ?? 0) + 1;
      return m;
    };
    const ml = await readAll([join(root!, 'cicids2017_mlcve_head1000')]);
    assert.deepEqual(count(ml.rows), {
      BENIGN: 6993,
      'Web Attack - Brute Force': 2,
      'Web Attack - XSS': 3,
      'Web Attack - SQL Injection': 2,
    });
    const web = await readAll([join(root!, 'cicids2017_webattacks_balanced')]);
    assert.deepEqual(count(web.rows), {
      BENIGN: 5087,
      'Web Attack - Brute Force': 1507,
      'Web Attack - XSS': 652,
      'Web Attack - SQL Injection': 21,
    });
  });
});
