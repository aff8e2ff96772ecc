import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Diagnostics, UserError } from '../src/core/diagnostics.js';
import { FlowReader } from '../src/ingest/table.js';
import { Model } from '../src/model/bundle.js';
import { inTrainPart, parseSplit, quickFingerprint } from '../src/train/split.js';
import { train } from '../src/train/train.js';
import { tmp, writeFile } from './helpers.js';

/** A small labelled flow file: normal rows on a grid, attacks far out. */
function dataset(dir: string): string {
  const lines = ['duration,bytes,packets,proto,Label'];
  for (let i = 0; i < 600; i++)
    lines.push(`${100 + (i % 37)},${500 + ((i * 7) % 101)},${3 + (i % 5)},${i % 3 ? 6 : 17},BENIGN`);
  for (let i = 0; i < 60; i++) lines.push(`${90000 + i},${1e6 + i},${900 + i},6,DDoS`);
  return writeFile(dir, 'flows.csv', `${lines.join('\n')}\n`);
}

const base = {
  detector: 'iforest',
  detectorParams: {},
  split: { kind: 'ratio' as const, ratio: 0.8, seed: 7 },
  threshold: 'p99',
  calibrationFraction: 0.2,
  maxRows: 100000,
  seed: 7,
  ingest: {},
  features: {},
};

describe('model bundle', () => {
  it('trains on benign rows of the training part only, and round-trips through save/load', async () => {
    const dir = tmp();
    const data = dataset(dir);
    const out = join(dir, 'model');
    const { model } = await train({ ...base, data: [data], out, diag: new Diagnostics() });
    const t = model.manifest.training;
    assert.equal(t.fitRows + t.calibrationRows, t.candidateRows);
    assert.ok(
      t.candidateRows > 400 && t.candidateRows < 560,
      `${t.candidateRows} of 600 benign in an 0.8 split`,
    );
    assert.deepEqual(Object.keys(t.labelCounts), ['BENIGN']);

    const loaded = Model.load(out);
    assert.deepEqual(loaded.manifest, JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')));
    const reader = new FlowReader([data], {}, new Diagnostics());
    for await (const b of reader.batches()) {
      const a = model.score(b).scores;
      const c = loaded.score(b).scores;
      assert.deepEqual(c, a);
      // Attacks score above the calibrated threshold, benign rows mostly below.
      let flaggedAttacks = 0;
      for (let i = 0; i < b.n; i++) if (b.labels![i] === 'DDoS' && c[i] > loaded.threshold) flaggedAttacks++;
      assert.equal(flaggedAttacks, 60);
    }
  });

  it('autoencoder: saves, loads with identical scores, explains by reconstruction error, stays small', async () => {
    const dir = tmp();
    const data = dataset(dir);
    const out = join(dir, 'ae');
    const { model } = await train({
      ...base,
      detector: 'autoencoder',
      detectorParams: { epochs: 30 },
      data: [data],
      out,
      diag: new Diagnostics(),
    });
    assert.equal(model.manifest.detector.kind, 'autoencoder');
    assert.ok(statSync(join(out, 'weights.bin')).size < 1 << 20, 'bundle under 1 MB');
    const loaded = Model.load(out);
    const reader = new FlowReader([data], {}, new Diagnostics());
    for await (const b of reader.batches()) {
      const { x, scores } = model.score(b);
      assert.deepEqual(loaded.score(b).scores, scores);
      let flagged = 0;
      for (let i = 0; i < b.n; i++) if (b.labels![i] === 'DDoS' && scores[i] > loaded.threshold) flagged++;
      assert.equal(flagged, 60, 'every far-out attack row is flagged');
      // The explanation is the per-feature squared error: it must add up to the score × width.
      const i = b.labels!.indexOf('DDoS');
      const credit = loaded.detector.explain(x, i);
      const sum = credit.reduce((a, v) => a + v, 0);
      assert.ok(Math.abs(sum / x.cols - scores[i]) <= 1e-4 * scores[i], `${sum / x.cols} vs ${scores[i]}`);
      const why = loaded.explain(x, b, i, 3);
      assert.ok(why.length > 0 && why[0].share > 0);
    }
  });

  it('is reproducible: same data and seed give the same trees', async () => {
    const dir = tmp();
    const data = dataset(dir);
    const a = await train({ ...base, data: [data], out: join(dir, 'a'), diag: new Diagnostics() });
    const b = await train({ ...base, data: [data], out: join(dir, 'b'), diag: new Diagnostics() });
    assert.deepEqual(
      readFileSync(join(dir, 'a', 'weights.bin')),
      readFileSync(join(dir, 'b', 'weights.bin')),
    );
    assert.equal(a.model.threshold, b.model.threshold);
  });

  it('refuses a corrupt or foreign bundle with a clear message', async () => {
    const dir = tmp();
    const out = join(dir, 'm');
    await train({ ...base, data: [dataset(dir)], out, diag: new Diagnostics() });
    const w = readFileSync(join(out, 'weights.bin'));
    w[10] ^= 0xff;
    writeFileSync(join(out, 'weights.bin'), w);
    assert.throws(() => Model.load(out), /checksum mismatch/);
    assert.throws(() => Model.load(dir), /not a model bundle/);
    writeFile(dir, 'manifest.json', '{"format":"other"}');
    assert.throws(() => Model.load(dir), /not a NADIR model/);
  });

  it('names what is missing in an incomplete bundle instead of failing with an internal error', async () => {
    const dir = tmp();
    const out = join(dir, 'm');
    await train({ ...base, data: [dataset(dir)], out, diag: new Diagnostics() });
    const manifest = readFileSync(join(out, 'manifest.json'), 'utf8');
    const edit = (f: (m: Record<string, any>) => void) => {
      const m = JSON.parse(manifest);
      f(m);
      writeFileSync(join(out, 'manifest.json'), JSON.stringify(m));
    };
    const damaged = (re: RegExp) =>
      assert.throws(
        () => Model.load(out),
        (e: unknown) =>
          e instanceof UserError && re.test(e.message) && /incomplete or damaged|corrupt/.test(e.message),
      );
    edit((m) => {
      m.detector.kind = 'no-such-detector';
    });
    damaged(/unknown detector 'no-such-detector'/);
    edit((m) => {
      delete m.features;
    });
    damaged(/./);
    edit((m) => {
      delete m.threshold;
    });
    damaged(/threshold/);
    edit(() => {});
    assert.ok(Model.load(out));
    rmSync(join(out, 'weights.bin'));
    damaged(/weights\.bin/);
  });

  it('trains on data with only categorical columns', async () => {
    const dir = tmp();
    const lines = ['proto,service,Label'];
    for (let i = 0; i < 400; i++)
      lines.push(`${i % 2 ? 'tcp' : 'udp'},${['http', 'dns', 'ssh'][i % 3]},BENIGN`);
    // A rare pair: isolation needs few splits, so it must score above every common row.
    for (let i = 0; i < 3; i++) lines.push('icmp,telnet,BENIGN');
    const data = writeFile(dir, 'cat.csv', `${lines.join('\n')}\n`);
    const { model } = await train({
      ...base,
      split: { kind: 'none' },
      data: [data],
      diag: new Diagnostics(),
      ingest: { categorical: ['proto', 'service'] },
    });
    assert.equal(model.pipeline.schema.inputs.length, 2);
    const reader = new FlowReader([data], { categorical: ['proto', 'service'] }, new Diagnostics());
    for await (const b of reader.batches()) {
      const { scores } = model.score(b);
      const rare = Math.min(...scores.subarray(b.n - 3));
      assert.ok(
        scores.subarray(0, b.n - 3).every((s) => s < rare),
        'the rare protocol/service pair scores highest',
      );
    }
  });

  it('recognises its training file again when it comes back gzipped or copied', async () => {
    const dir = tmp();
    const data = dataset(dir);
    const gz = writeFile(dir, 'copy.csv.gz', gzipSync(readFileSync(data)));
    assert.equal(quickFingerprint(gz), quickFingerprint(data));
    const other = writeFile(dir, 'other.csv', readFileSync(data, 'utf8').replace('100,', '101,'));
    assert.notEqual(quickFingerprint(other), quickFingerprint(data));
  });
});

describe('splits', () => {
  it('are deterministic per row hash and close to the asked ratio', () => {
    const split = parseSplit('0.8', 3);
    let inTrain = 0;
    for (let h = 0; h < 100000; h++) if (inTrainPart(Math.imul(h, 2654435761) >>> 0, split)) inTrain++;
    assert.ok(Math.abs(inTrain / 100000 - 0.8) < 0.01, String(inTrain));
    assert.equal(inTrainPart(12345, split), inTrainPart(12345, split));
    assert.deepEqual(parseSplit('80%', 1), { kind: 'ratio', ratio: 0.8, seed: 1 });
    assert.deepEqual(parseSplit('none', 1), { kind: 'none' });
    assert.throws(() => parseSplit('1.5', 1), /--split/);
  });
});
