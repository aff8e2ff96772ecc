/**
 * Reproducible train/test splits. Each row's side is decided by a seeded hash of its bytes, so
 * the same row always lands on the same side (duplicates never straddle the split), the split
 * needs no second pass, and `evaluate` can recompute it without storing row lists.
 * "By file" splits need nothing here: train on some files, evaluate on others.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
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

/** Decoded bytes that identify a file. */
const FINGERPRINT_BYTES = 256 * 1024;

/**
 * SHA-256 of the first 256 KiB of a file's *content* (gunzipped when compressed), so a training
 * file is recognised again when it comes back gzipped or copied. Files that share their first
 * 256 KiB are taken for the same file; that is safe, because evaluate then only drops the rows
 * whose own hash put them in the training part.
 */
export function quickFingerprint(path: string): string {
  const fd = openSync(path, 'r');
  let head: Buffer;
  try {
    const raw = Buffer.alloc(Math.min(fstatSync(fd).size, 2 * FINGERPRINT_BYTES));
    head = raw.subarray(0, readSync(fd, raw, 0, raw.length, 0));
  } finally {
    closeSync(fd);
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    try {
      // A prefix of a gzip stream: inflate what is there without demanding the end.
      head = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 64 << 20 });
    } catch {
      // Not inflatable (damaged, or a decompression bomb): recognise it by its raw bytes.
    }
  }
  const h = createHash('sha256').update(head.subarray(0, FINGERPRINT_BYTES));
  return `c:${h.digest('hex').slice(0, 32)}`;
}
