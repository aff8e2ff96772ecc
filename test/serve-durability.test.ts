/**
 * "Nothing accepted is lost": the real `nadir serve` (a child process, embedded DuckDB) takes a
 * sustained load of /detect and /ingest batches from 8 concurrent clients, is killed with SIGKILL
 * mid-stream, and restarted on the same data directory. Every record of every request that got a
 * 2xx must then be in the store under the id the response gave it: /detect verdicts in /logs,
 * /ingest rows in the ingested table (read directly after a clean SIGTERM stop, which must exit 0).
 * The restarted server must still have its model active.
 *
 * The records are made up under the corrected CICFlowMeter header (IMPROVED_HEADER), each with a
 * unique `Flow ID` (`k-<n>`) to find it again, so this test needs no shared dataset.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '../src/store/open.js';
import { CLI, IMPROVED_HEADER, tmp, writeFile } from './helpers.js';

const KEY = 'durability-test-key-0123456789';
const COLUMNS = IMPROVED_HEADER.split(',');
const CLIENTS = 8;
const LOAD_MS = 2000;

/** Deterministic pseudo-random integer in [0, m) for record n, column c. */
function rnd(n: number, c: number, m: number): number {
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(c + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) % m;
}

/** A made-up benign flow under the corrected CIC header; `Flow ID` is `k-<n>`. */
function record(n: number): Record<string, string | number> {
  const r: Record<string, string | number> = {};
  COLUMNS.forEach((name, c) => {
    switch (name) {
      case 'id':
        r[name] = n;
        break;
      case 'Flow ID':
        r[name] = `k-${n}`;
        break;
      case 'Src IP':
        r[name] = `10.0.${rnd(n, c, 4)}.${1 + rnd(n, c + 99, 250)}`;
        break;
      case 'Dst IP':
        r[name] = `192.168.10.${1 + rnd(n, c, 20)}`;
        break;
      case 'Src Port':
        r[name] = 1024 + rnd(n, c, 60000);
        break;
      case 'Dst Port':
        r[name] = [53, 80, 443][rnd(n, c, 3)];
        break;
      case 'Protocol':
        r[name] = 6;
        break;
      case 'Timestamp':
        r[name] = `2017-07-03 09:${String(rnd(n, c, 60)).padStart(2, '0')}:00.000000`;
        break;
      case 'Label':
        r[name] = 'BENIGN';
        break;
      case 'Attempted Category':
        r[name] = -1;
        break;
      default:
        // Every third column small counts, the rest durations/rates with a fraction.
        r[name] = c % 3 === 0 ? rnd(n, c, 40) : rnd(n, c, 100_000) / 7;
    }
  });
  return r;
}

/** The server's environment: never PostgreSQL (a developer's DATABASE_URL would redirect it). */
function serverEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  return env;
}

interface Running {
  child: ChildProcess;
  base: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `nadir serve --port 0` and resolves with its base URL once it listens. */
function serve(dataDir: string, extra: string[] = []): Promise<Running> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--api-key',
      KEY,
      '--rate-limit',
      '100000000',
      '--log-level',
      'warn',
      ...extra,
    ],
    { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  return new Promise<Running>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nadir serve did not start in 20 s:\n${err}`));
    }, 20_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      err += s;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1], stderr: () => err, exited });
        started.push(child);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`nadir serve exited (${code ?? signal}) before listening:\n${err}`));
    });
  });
}

/** Servers started by this file, stopped at the end whatever happens. */
const started: ChildProcess[] = [];

const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

interface Accepted {
  kind: 'detect' | 'ingest';
  flowIds: string[];
  /** Store ids of the records, in order (verdict ids, or first_id…last_id). */
  ids: number[];
}

/** Connection-level failure codes (the server died under the request). */
function failureCode(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

describe('nadir serve durability', () => {
  it('loses nothing it acknowledged when killed with SIGKILL under load', { timeout: 60_000 }, async () => {
    const t0 = performance.now();
    const dir = tmp('nadir-durability-');
    const dataDir = join(dir, 'data');
    try {
      // A small iforest on made-up benign flows.
      const csv = [IMPROVED_HEADER];
      for (let n = 0; n < 600; n++) {
        const r = record(1_000_000 + n);
        csv.push(COLUMNS.map((c) => r[c]).join(','));
      }
      const data = writeFile(dir, 'train.csv', `${csv.join('\n')}\n`);
      const tr = spawnSync(
        process.execPath,
        [CLI, 'train', '--data', data, '--out', join(dir, 'model'), '--split', 'none', '--quiet'],
        { encoding: 'utf8' },
      );
      assert.equal(tr.status, 0, tr.stderr);

      // Every verdict stored (the default today; stated so the test does not depend on it).
      const config = writeFile(
        dir,
        'serve.json',
        JSON.stringify({ config: { detection: { storeNormal: true } } }),
      );
      const first = await serve(dataDir, ['--model', join(dir, 'model'), '--config', config]);
      const accepted: Accepted[] = [];
      const rejected: string[] = [];
      const failures: string[] = [];
      let next = 0;
      let inFlight = 0;
      let killed = false;
      let inFlightAtKill = 0;

      const client = async (c: number) => {
        for (let iter = 0; !killed; iter++) {
          const kind = (c + iter) % 2 === 0 ? 'detect' : 'ingest';
          const size = 20 + rnd(c, iter, 81);
          const records = Array.from({ length: size }, () => record(next++));
          const flowIds = records.map((r) => r['Flow ID'] as string);
          inFlight++;
          try {
            const res = await fetch(`${first.base}/api/v1/${kind}`, {
              method: 'POST',
              headers: auth,
              body: JSON.stringify({ records }),
            });
            const text = await res.text();
            if (res.status < 200 || res.status > 299) {
              rejected.push(`${kind} ${res.status}: ${text.slice(0, 300)}`);
              continue;
            }
            const body = JSON.parse(text);
            if (kind === 'detect') {
              accepted.push({ kind, flowIds, ids: body.verdicts.map((v: { id: number }) => v.id) });
            } else {
              assert.equal(body.accepted, size);
              assert.equal(body.last_id - body.first_id + 1, size, 'ingest ids are one run');
              accepted.push({
                kind,
                flowIds,
                ids: Array.from({ length: size }, (_, j) => body.first_id + j),
              });
            }
          } catch (e) {
            failures.push(failureCode(e));
            return;
          } finally {
            inFlight--;
          }
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
      await new Promise((r) => setTimeout(r, LOAD_MS));
      inFlightAtKill = inFlight;
      first.child.kill('SIGKILL');
      killed = true;
      const death = await first.exited;
      await Promise.all(clients);
      assert.equal(death.signal, 'SIGKILL');
      assert.deepEqual(rejected, [], 'no request was refused before the kill');
      assert.ok(inFlightAtKill > 0, 'requests were in flight when the server was killed');
      assert.ok(failures.length > 0, 'some requests failed with a connection error');
      const detects = accepted.filter((a) => a.kind === 'detect');
      const ingests = accepted.filter((a) => a.kind === 'ingest');
      assert.ok(detects.length >= 5 && ingests.length >= 5, `too little load: ${accepted.length} accepted`);

      // Restart on the same data directory, without --model: the registry keeps the active one.
      const second = await serve(dataDir);
      const ready = await fetch(`${second.base}/api/v1/ready`);
      const st = (await ready.json()) as { mode: string; model: string | null };
      assert.equal(ready.status, 200, JSON.stringify(st));
      assert.equal(st.mode, 'detecting', 'the restarted server still has its model');
      assert.ok(st.model, 'an active model');

      const logged = new Map<number, string | null>();
      let cursor: number | null = null;
      do {
        const q: string = cursor === null ? '' : `&cursor=${cursor}`;
        const res = await fetch(`${second.base}/api/v1/logs?limit=1000${q}`, { headers: auth });
        assert.equal(res.status, 200);
        const page = (await res.json()) as {
          items: { id: number; flow_id: string | null }[];
          next_cursor: number | null;
        };
        for (const it of page.items) logged.set(it.id, it.flow_id);
        cursor = page.next_cursor;
      } while (cursor !== null);

      const lostDetect: string[] = [];
      let detectRecords = 0;
      for (const a of detects)
        a.flowIds.forEach((f, j) => {
          detectRecords++;
          const id = a.ids[j];
          if (typeof id !== 'number' || logged.get(id) !== f) lostDetect.push(`${f} (id ${id})`);
        });
      assert.deepEqual(lostDetect.slice(0, 20), [], `${lostDetect.length} acknowledged verdicts missing`);

      // Ids go on after the highest committed one: nothing acknowledged is ever overwritten.
      const post = async (kind: string, n: number) => {
        const records = Array.from({ length: n }, () => record(next++));
        const res = await fetch(`${second.base}/api/v1/${kind}`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ records }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        return res.json();
      };
      const after = (await post('detect', 5)) as { verdicts: { id: number }[] };
      const maxDetect = Math.max(...detects.flatMap((a) => a.ids));
      assert.ok(
        after.verdicts.every((v) => v.id > maxDetect),
        'new verdict ids follow the committed ones',
      );
      const afterIngest = (await post('ingest', 5)) as { first_id: number };
      const maxIngest = Math.max(...ingests.flatMap((a) => a.ids));
      assert.ok(afterIngest.first_id > maxIngest, 'new ingest ids follow the committed ones');

      second.child.kill('SIGTERM');
      const stop = await second.exited;
      assert.equal(stop.code, 0, `SIGTERM exit ${stop.code ?? stop.signal}:\n${second.stderr()}`);

      const store = await openStore({ dataDir, databaseUrl: '' });
      const stored = new Map<number, unknown>();
      try {
        for (let after = 0; ; ) {
          const rows = await store.readIngested(after, 10_000);
          if (!rows.length) break;
          for (const r of rows) stored.set(r.id, r.record['Flow ID']);
          after = rows[rows.length - 1].id;
        }
      } finally {
        await store.close();
      }
      const lostIngest: string[] = [];
      let ingestRecords = 0;
      for (const a of ingests)
        a.flowIds.forEach((f, j) => {
          ingestRecords++;
          if (stored.get(a.ids[j]) !== f) lostIngest.push(`${f} (id ${a.ids[j]})`);
        });
      assert.deepEqual(
        lostIngest.slice(0, 20),
        [],
        `${lostIngest.length} acknowledged ingested rows missing`,
      );

      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `durability: accepted before SIGKILL: ${detects.length} /detect (${detectRecords} verdicts, ${logged.size} in /logs), ` +
          `${ingests.length} /ingest (${ingestRecords} rows, ${stored.size} stored); ` +
          `${inFlightAtKill} in flight at the kill, ${failures.length} failed (${[...new Set(failures)].join(', ')}); ${seconds} s`,
      );
    } finally {
      for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
