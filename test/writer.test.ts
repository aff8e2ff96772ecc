/**
 * Group commit (src/store/writer.ts): rows handed over together go in one commit, each caller
 * gets its own ids, and a write made right as a drain finishes is never left behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchWriter } from '../src/store/writer.js';

function fakeStore() {
  let next = 0;
  const commits: number[][] = [];
  const commit = async (rows: number[]) => {
    await new Promise((r) => setTimeout(r, 2));
    commits.push(rows);
    return rows.map(() => ++next);
  };
  return { commit, commits };
}

describe('BatchWriter', () => {
  it('coalesces concurrent writes into one commit and hands each caller its ids', async () => {
    const s = fakeStore();
    const w = new BatchWriter(s.commit);
    const a = w.write([1, 2]);
    const b = w.write([3]);
    const c = w.write([4, 5, 6]);
    assert.deepEqual(await Promise.all([a, b, c]), [[1, 2], [3], [4, 5, 6]]);
    // Writes made in the same tick share one commit.
    assert.deepEqual(s.commits, [[1, 2, 3, 4, 5, 6]]);
    // Those made while a commit runs share the next one.
    const d = w.write([7]);
    await new Promise((r) => setTimeout(r, 0));
    const e = w.write([8]);
    const f = w.write([9]);
    assert.deepEqual(await Promise.all([d, e, f]), [[7], [8], [9]]);
    assert.deepEqual(s.commits.slice(1), [[7], [8, 9]]);
  });

  it('a write chained on a resolved write is committed (no write left without a drain)', async () => {
    const s = fakeStore();
    const w = new BatchWriter(s.commit);
    const second = await w.write([1]).then(() => w.write([2]));
    assert.deepEqual(second, [2]);
    await w.flush();
    assert.equal(w.pending, 0);
    assert.deepEqual(s.commits, [[1], [2]]);
  });

  it('a failed commit rejects its callers and the next write goes on', async () => {
    let fail = true;
    const w = new BatchWriter(async (rows: number[]) => {
      if (fail) {
        fail = false;
        throw new Error('disk full');
      }
      return rows.map((_, i) => i + 1);
    });
    await assert.rejects(w.write([1]), /disk full/);
    assert.deepEqual(await w.write([7]), [1]);
  });
});
