/**
 * RecordDecoder on the fields a flow record may carry besides features: identity, label, origin
 * and the collector's `exporter` (accepted and ignored, never an error or a crash).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecordDecoder, sniffRecordLines } from '../src/ingest/json-records.js';
import { tmp, writeFile } from './helpers.js';

describe('RecordDecoder', () => {
  const layout = { numericNames: ['Flow Duration', 'Fwd IP Bytes'], stringNames: ['Protocol'], key: 't' };

  it('decodes a collected flow record (exporter, origin, identity) without problems', () => {
    const d = new RecordDecoder(layout).decode(
      [
        {
          srcIp: '10.0.0.1',
          srcPort: 1234,
          dstIp: '10.0.0.2',
          dstPort: 443,
          protocol: 6,
          exporter: '192.0.2.1:2055/0',
          origin: { file: 'x', line: 3 },
          features: { 'Flow Duration': 5, 'Fwd IP Bytes': 400, Protocol: 6 },
        },
      ],
      '',
    );
    assert.deepEqual(d.problems, []);
    assert.deepEqual(Array.from(d.rows.numeric), [5, 400]);
    assert.deepEqual(d.rows.strings, [['6']]);
    assert.equal(d.ids.srcIp[0], '10.0.0.1');
    assert.equal(d.ids.dstPort[0], 443);
  });

  it('reports a field it does not know, with its path', () => {
    const d = new RecordDecoder(layout).decode(
      [{ features: { 'Flow Duration': 1, 'Fwd IP Bytes': 2 }, bogus: 1 }],
      '/records',
    );
    assert.ok(d.problems.some((p) => p.path === '/records/0/bogus'));
  });

  it('sniffs JSON lines of flow records, and not other JSON', () => {
    const dir = tmp();
    assert.equal(sniffRecordLines(writeFile(dir, 'a.jsonl', '\n{"features":{"Flow Duration":1}}\n')), true);
    assert.equal(
      sniffRecordLines(writeFile(dir, 'b.jsonl', '{"Flow Duration":1,"Total Fwd Packet":2,"Dst Port":80}\n')),
      true,
    );
    assert.equal(
      sniffRecordLines(writeFile(dir, 'c.jsonl', '{"ts":1,"uid":"C1","id.orig_h":"1.2.3.4"}\n')),
      false,
    );
    assert.equal(sniffRecordLines(writeFile(dir, 'd.csv', 'a,b\n1,2\n')), false);
  });
});
