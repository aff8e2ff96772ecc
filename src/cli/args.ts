/** Option parsers shared by the CLI's commands (commander callbacks). */
import { InvalidArgumentError } from 'commander';

/** Splits repeated and comma-separated values: `--drop a,b --drop c` → [a, b, c]. */
export function list(value: string, previous: string[] = []): string[] {
  return previous.concat(
    value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
      throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

export function intAtLeast(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0 && Number.isFinite(n))) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

export function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n >= 0 && Number.isFinite(n))) throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
    return n;
  };
}

/** Comma-separated layer widths, e.g. 64,32,16. */
export function widths(v: string): number[] {
  const w = v.split(',').map((s) => Number(s.trim()));
  if (w.length === 0 || w.some((n) => !Number.isInteger(n) || n < 1))
    throw new InvalidArgumentError('--layers takes positive integers separated by commas, e.g. 64,32,16');
  return w;
}

export function fraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be in [0, 1)`);
    return n;
  };
}
