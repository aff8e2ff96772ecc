/**
 * `nadir series train|detect|features` as a user runs them: a long CSV of three keys (one with an
 * injected spike and an outage, one too short to train, rows out of order and duplicated), a
 * training stretch given by --until, detection over the whole file, the per-point output, the
 * summary table, --update continuing the stream, and errors that say what to do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { CLI, tmp, writeFile } from './helpers.js';

function nadir(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const H = 3_600_000;
const T0 = Date.parse('2024-03-04T00:00:00Z');
const SPIKE = T0 + (24 * 24 + 14) * H; // day 25, 14:00
const OUTAGE = T0 + (26 * 24 + 3) * H; // day 27, 03:00–08:00

function dataset(dir: string): string {
  const r = new Rng(12);
  const lines = ['timestamp,country,metric,value'];
  const body: string[] = [];
  for (const [country, base] of [
    ['CZ', 5000],
    ['SK', 800],
  ] as const)
    for (let i = 0; i < 28 * 24; i++) {
      const t = T0 + i * H;
      let v = base * (1.6 + Math.sin((2 * Math.PI * ((i % 24) - 6)) / 24)) * (1 + 0.03 * r.normal());
      if (country === 'CZ' && t === SPIKE) v *= 4;
      if (country === 'CZ' && t >= OUTAGE && t < OUTAGE + 6 * H) v = 0;
      body.push(`${new Date(t).toISOString()},${country},flows,${Math.round(v)}`);
    }
  // Out of order: swap two rows; a duplicate of one row; a key with 4 points only.
  [body[10], body[11]] = [body[11], body[10]];
  body.push(body[20]);
  for (let i = 0; i < 4; i++) body.push(`${new Date(T0 + i * H).toISOString()},PL,flows,${100 + i}`);
  return writeFile(dir, 'traffic.csv', `${[...lines, ...body].join('\n')}\n`);
}

describe('nadir series', () => {
  const dir = tmp();
  const data = dataset(dir);
  const models = join(dir, 'models');

  it('trains one model per key, reports what import fixed and which series it skipped', () => {
    const r = nadir(
      'series',
      'train',
      '-d',
      data,
      '--key',
      'country',
      '--until',
      '2024-03-25T00:00:00Z',
      '-o',
      models,
    );
    assert.equal(r.code, 0, r.stderr);
    // Two descents in CZ: the swapped pair, and the duplicate appended at the end of the file.
    assert.match(r.stderr, /2 points out of time order \(sorted\)/);
    assert.match(r.stderr, /1 duplicate timestamps/);
    assert.match(r.stdout, /Trained 2 series \(baseline 2\)/);
    assert.match(r.stdout, /CZ flows .* 1d /);
    assert.match(
      r.stdout,
      /Skipped 1 series:\n {2}PL flows: too short for the baseline: 4 points, it needs at least 10/,
    );
    assert.ok(existsSync(join(models, 'v1', 'models.jsonl')));
  });

  it('detects the spike and the outage on the right key, and nothing on the quiet one', () => {
    const out = join(dir, 'anomalies.csv');
    const r = nadir('series', 'detect', '-m', models, '-d', data, '-o', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Scored \d[\d,]* points of 2 series \(model v1\)/);
    assert.match(r.stdout, /points at or before the end of training skipped/);
    assert.match(r.stdout, /series without a model: PL flows/);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(rows[0], 'time,key,metric,value,expected,lower,upper,score,anomaly,direction');
    const recs = rows.slice(1).map((l) => l.split(','));
    const spike = recs.find((f) => f[0] === new Date(SPIKE).toISOString());
    assert.ok(spike, `no row at the spike:\n${rows.join('\n')}`);
    assert.equal(spike[1], 'CZ');
    assert.equal(spike[9], 'spike');
    assert.ok(Number(spike[3]) > Number(spike[6]), 'the value lies above the band');
    const outage = recs.filter(
      (f) =>
        f[1] === 'CZ' && f[9] === 'drop' && Date.parse(f[0]) >= OUTAGE && Date.parse(f[0]) < OUTAGE + 6 * H,
    );
    assert.ok(outage.length >= 1, 'the outage is flagged');
    const other = recs.filter((f) => f[1] === 'SK');
    assert.ok(other.length <= 2, `${other.length} false alarms on SK`);
    assert.match(r.stdout, /│ CZ flows/);
  });

  it('--all writes every point as JSON lines; --update saves v2 and the next run continues from it', () => {
    const out = join(dir, 'points.jsonl');
    const r = nadir(
      'series',
      'detect',
      '-m',
      models,
      '-d',
      data,
      '--all',
      '-f',
      'jsonl',
      '-o',
      out,
      '--update',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.savedVersion, 2);
    const points = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // 7 days (03-25 to 03-31) × 24 h × 2 keys after --until.
    assert.equal(points.length, 7 * 24 * 2);
    assert.ok(points.every((p) => 'expected' in p && 'lower' in p && 'upper' in p && 'score' in p));
    const again = nadir('series', 'detect', '-m', models, '-d', data, '--json');
    assert.equal(again.code, 0, again.stderr);
    const s2 = JSON.parse(again.stdout);
    assert.equal(s2.scored, 0, 'v2 has learned every point already');
    assert.equal(s2.alreadyLearned, 28 * 24 * 2);
  });

  it('arima and a fixed threshold from the command line', () => {
    const r = nadir(
      'series',
      'train',
      '-d',
      data,
      '-k',
      'country',
      '--detector',
      'arima',
      '--threshold',
      '5',
      '--until',
      '2024-03-25',
      '-o',
      join(dir, 'arima'),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /arima 2/);
    assert.match(r.stdout, /5\.00/);
  });

  it('features: calendar, rolling and decomposition columns for every step', () => {
    const out = join(dir, 'features.csv');
    const r = nadir('series', 'features', '-d', data, '-k', 'country', '--windows', '6,24', '-o', out, '-q');
    assert.equal(r.code, 0, r.stderr);
    const rows = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(
      rows[0],
      'Timestamp,key,metric,value,weekday,hour,segment,weekend,holiday,mean_6,std_6,robust_z_6,mean_24,std_24,robust_z_24,trend,seasonal,remainder',
    );
    assert.equal(rows.length - 1, 28 * 24 * 2 + 4);
    assert.match(rows[1], /^2024-03-04T00:00:00.000Z,CZ,flows,\d+,Mon,0,night,0,0,/);
  });

  it('clear errors: unknown key column, bad threshold, missing model directory', () => {
    const a = nadir('series', 'train', '-d', data, '-k', 'region', '-o', join(dir, 'x'));
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /no key column 'region'/);
    assert.match(a.stderr, /timestamp, country, metric, value/);
    const b = nadir(
      'series',
      'train',
      '-d',
      data,
      '-k',
      'country',
      '--threshold',
      'p200',
      '-o',
      join(dir, 'x'),
    );
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /--threshold 'p200'/);
    const c = nadir('series', 'detect', '-m', join(dir, 'none'), '-d', data);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /no series models in .*none[\s\S]*nadir series train/);
  });
});
