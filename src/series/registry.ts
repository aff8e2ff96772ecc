/**
 * The per-series model registry on disk: one directory holds every version of a set of series
 * models (one model per key and metric), each version immutable once written:
 *
 *   <dir>/v1/manifest.json   what was trained: detector, options, data, counts, skipped series
 *   <dir>/v1/models.jsonl    one trained series per line (parameters and streaming state)
 *   <dir>/v2/…               a retrain, or `series detect --update` (state advanced; `parent` 1)
 *   <dir>/LATEST             the newest version's number
 *
 * Writes go to a temporary directory renamed into place, so a crash never leaves half a version.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/diagnostics.js';
import { NADIR_VERSION } from '../core/version.js';
import type { SeriesDetectorKind } from './detectors.js';
import type { SavedSeriesModel } from './model.js';

export const SERIES_FORMAT = 'nadir-series/1';

export interface SkippedSeries {
  key: string;
  metric: string;
  reason: string;
}

export interface SeriesManifest {
  format: string;
  version: number;
  /** The version this one continued from (`series detect --update`). */
  parent: number | null;
  nadirVersion: string;
  createdAt: string;
  detector: SeriesDetectorKind;
  options: Record<string, unknown>;
  data: {
    files: string[];
    format: 'long' | 'wide';
    timeColumn: string;
    keyColumns: string[];
    metrics: string[];
    /** sha256 of the trained series' values, so a retrain on the same data is recognisable. */
    fingerprint: string;
  };
  series: number;
  skipped: SkippedSeries[];
  /** Seconds spent training. */
  seconds: number;
}

export interface SeriesSet {
  manifest: SeriesManifest;
  models: SavedSeriesModel[];
  path: string;
}

export function seriesId(key: string, metric: string): string {
  return `${key}\u0000${metric}`;
}

export function fingerprintOf(
  parts: Iterable<{ key: string; metric: string; values: Float64Array }>,
): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p.key);
    h.update('\u0000');
    h.update(p.metric);
    h.update(new Uint8Array(p.values.buffer, p.values.byteOffset, p.values.byteLength));
  }
  return h.digest('hex').slice(0, 16);
}

/** Versions present under `dir`, ascending. */
export function seriesVersions(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => /^v(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && existsSync(join(dir, m[0], 'manifest.json')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Writes a new version; returns its number and path. */
export function saveSeriesSet(
  dir: string,
  manifest: Omit<SeriesManifest, 'format' | 'version' | 'nadirVersion' | 'createdAt'>,
  models: Iterable<SavedSeriesModel>,
): { version: number; path: string } {
  mkdirSync(dir, { recursive: true });
  const versions = seriesVersions(dir);
  const version = (versions.at(-1) ?? 0) + 1;
  const path = join(dir, `v${version}`);
  const tmp = join(dir, `.v${version}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const lines: string[] = [];
  for (const m of models) lines.push(JSON.stringify(m));
  writeFileSync(join(tmp, 'models.jsonl'), lines.length ? `${lines.join('\n')}\n` : '');
  // The computed fields win over any a caller's manifest still carries (a copy of an older one).
  const full: SeriesManifest = {
    ...manifest,
    format: SERIES_FORMAT,
    version,
    nadirVersion: NADIR_VERSION,
    createdAt: new Date().toISOString(),
  };
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(full, null, 2)}\n`);
  renameSync(tmp, path);
  writeFileSync(join(dir, 'LATEST'), `${version}\n`);
  return { version, path };
}

/** Loads a version (default: the latest). */
export function loadSeriesSet(dir: string, version?: number): SeriesSet {
  const versions = seriesVersions(dir);
  if (!versions.length)
    throw new UserError(
      `no series models in ${dir}`,
      `train them first: nadir series train --data FILE --key COLUMN --out ${dir}`,
    );
  const v = version ?? versions.at(-1) ?? 1;
  if (!versions.includes(v))
    throw new UserError(`${dir} has no version ${v}`, `versions there: ${versions.join(', ')}`);
  const path = join(dir, `v${v}`);
  const manifest = JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8')) as SeriesManifest;
  if (manifest.format !== SERIES_FORMAT)
    throw new UserError(`${path}: format '${manifest.format}', this NADIR reads '${SERIES_FORMAT}'`);
  const models: SavedSeriesModel[] = [];
  const text = readFileSync(join(path, 'models.jsonl'), 'utf8');
  for (const line of text.split('\n')) if (line.trim()) models.push(JSON.parse(line) as SavedSeriesModel);
  return { manifest, models, path };
}
