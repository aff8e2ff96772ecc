import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Diagnostics } from '../src/core/diagnostics.js';
import { Rng } from '../src/core/rng.js';
import { FlowReader } from '../src/ingest/table.js';
import { datasets, MLCVE_HEADER, row, tmp, writeFile } from './helpers.js';

/** Seed input: a real slice when the shared datasets are present, else a made-up CIC file. */
function seedInput(): Buffer {
  const root = datasets();
  if (root) return readFileSync(join(root, 'cicids2017_mlcve_head1000', 'th1.csv')).subarray(0, 60_000);
  const rows = [MLCVE_HEADER];
  for (let i = 0; i < 200; i++)
    rows.push(row(MLCVE_HEADER, (j) => (i * 31 + j) % 1000, i % 7 ? 'BENIGN' : 'DDoS'));
  return Buffer.from(`${rows.join('\n')}\n`);
}

function mutate(input: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(input);
  const kind = rng.int(6);
  const n = 1 + rng.int(20);
  switch (kind) {
    case 0: // bit flips
      for (let i = 0; i < n; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    case 1: // truncation anywhere
      return b.subarray(0, rng.int(b.length));
    case 2: // bytes that matter to a CSV parser
      for (let i = 0; i < n; i++)
        b[rng.int(b.length)] = [0x22, 0x2c, 0x0a, 0x0d, 0x00, 0xff, 0x96][rng.int(7)];
      return b;
    case 3: {
      // duplicated or removed spans (bogus lengths)
      const s = rng.int(b.length);
      const e = Math.min(b.length, s + rng.int(5000));
      return rng.next() < 0.5
        ? Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)])
        : Buffer.concat([b.subarray(0, s), b.subarray(e)]);
    }
    case 4: // random garbage block
      return Buffer.concat([
        b.subarray(0, rng.int(b.length)),
        Buffer.from(Array.from({ length: 200 }, () => rng.int(256))),
      ]);
    default: // a lone opening quote: the rest of the file becomes one field
      b[rng.int(b.length)] = 0x22;
      return b;
  }
}

describe('fuzzing the flow reader with mutated captures of CSV data', () => {
  it('never throws, never hangs, and accounts for every record', async () => {
    const input = seedInput();
    const rng = new Rng(2024);
    const dir = tmp();
    for (let iter = 0; iter < 400; iter++) {
      const file = writeFile(dir, `m${iter}.csv`, mutate(input, rng));
      const diag = new Diagnostics(() => {}, 0);
      const reader = new FlowReader([file], {}, diag);
      let used = 0;
      for await (const batch of reader.batches()) {
        used += batch.n;
        for (let i = 0; i < batch.n; i++) assert.ok(batch.lines[i] >= 2, 'data rows start after the header');
      }
      const f = reader.files[0];
      assert.equal(used, f.used);
      if (!f.skipped) assert.equal(f.used + f.rejected + f.empty, f.records, `iteration ${iter}`);
    }
  });
});
