/**
 * Picks and opens the store: PostgreSQL when a database URL is given (or `DATABASE_URL` is set and
 * the options name none), otherwise DuckDB in a data directory (default `./nadir-data`, created if
 * missing). Problems a user can fix come back as `UserError`s that say how.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/diagnostics.js';
import { DuckDbStore } from './duckdb.js';
import { PostgresStore } from './postgres.js';
import type { Store } from './store.js';

export const DEFAULT_DATA_DIR = './nadir-data';
export const DUCKDB_FILE = 'nadir.duckdb';

export interface OpenStoreOptions {
  /** DuckDB data directory (default `./nadir-data`). */
  dataDir?: string;
  /** PostgreSQL URL; `process.env.DATABASE_URL` when undefined; `''` forces DuckDB. */
  databaseUrl?: string;
  /** PostgreSQL schema to use (created if missing). */
  schema?: string;
}

export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  const url = opts.databaseUrl ?? process.env.DATABASE_URL;
  if (url) return PostgresStore.open(url, { schema: opts.schema });
  const dir = opts.dataDir ?? DEFAULT_DATA_DIR;
  prepareDataDir(dir);
  return DuckDbStore.open(join(dir, DUCKDB_FILE));
}

/** Creates the data directory if needed and checks that it is a writable directory. */
function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST' || err.code === 'ENOTDIR')
      throw new UserError(`data directory ${dir} is not a directory; move that file away or use --data-dir`);
    throw new UserError(
      `cannot create data directory ${dir} (${err.code ?? err.message}); create it, fix its permissions or use --data-dir`,
    );
  }
  if (!statSync(dir).isDirectory())
    throw new UserError(`data directory ${dir} is not a directory; move that file away or use --data-dir`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`data directory ${dir} is not writable; fix its permissions or use --data-dir`);
  }
}
