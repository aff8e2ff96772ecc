import { readFileSync } from 'node:fs';

/** The package version, read once from package.json. */
export const NADIR_VERSION: string = (() => {
  try {
    const url = new URL('../../../package.json', import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
})();
