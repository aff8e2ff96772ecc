/**
 * Reproducible train/test splits. Each row's side is decided by a seeded hash of its bytes, so
 * the same row always lands on the same side (duplicates never straddle the split), the split
 * needs no second pass, and `evaluate` can recompute it without storing row lists.
 * "By file" splits need nothing here: train on some files, evaluate on others.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { rehash, unitInterval } from '../core/hash.js';
import type { SplitSpec } from '../model/bundle.js';

/** True when a row belongs to the training part of a ratio split. */
export function inTrainPart(rowHash: number, split: SplitSpec): boolean {
  if (split.kind === 'none') return true;
  return unitInterval(rehash(rowHash, split.seed)) < split.ratio;
}

/** True when a training row is held out for threshold calibration (independent of the split draw). */
export function inCalibration(rowHash: number, fraction: number, seed: number): boolean {
  return unitInterval(rehash(rowHash, seed ^ 0x5bd1e995)) < fraction;
}

export function parseSplit(spec: string, seed: number): SplitSpec {
  const s = spec.trim().toLowerCase();
  if (s === 'none' || s === 'all' || s === '1') return { kind: 'none' };
  const m = /^(?:ratio:)?(0?\.\d+|\d+%)$/.exec(s);
  if (m) {
    const ratio = m[1].endsWith('%') ? Number(m[1].slice(0, -1)) / 100 : Number(m[1]);
    if (ratio > 0 && ratio < 1) return { kind: 'ratio', ratio, seed };
  }
  throw new Error(`bad --split '${spec}': use a ratio such as 0.8 (or 80%), or 'none' to train on every row`);
}

/** Size plus SHA-256 of the first and last MiB: enough to recognise a file without reading it all. */
export function quickFingerprint(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const h = createHash('sha256');
    h.update(String(size));
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    readSync(fd, chunk, 0, chunk.length, 0);
    h.update(chunk);
    if (size > chunk.length) {
      readSync(fd, chunk, 0, chunk.length, size - chunk.length);
      h.update(chunk);
    }
    return `${size}:${h.digest('hex').slice(0, 32)}`;
  } finally {
    closeSync(fd);
  }
}
