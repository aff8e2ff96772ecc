/**
 * Counted, located problems found in input. Nothing is thrown past a reader for bad input:
 * each problem is counted by reason, the first few of each reason are logged with a precise
 * location (file:line, column), and processing goes on.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface Problem {
  severity: Severity;
  /** Stable machine-readable reason, e.g. `field-count`, `non-numeric`, `encoding`. */
  reason: string;
  file: string;
  /** 1-based physical line where the record starts; 0 for file-level problems. */
  line: number;
  /** Column name, when the problem is in one cell. */
  column?: string;
  /** 1-based column position, when known. */
  columnIndex?: number;
  message: string;
}

export interface ReasonCount {
  reason: string;
  severity: Severity;
  count: number;
}

export type ProblemSink = (p: Problem) => void;

export class Diagnostics {
  private readonly counts = new Map<string, ReasonCount>();
  private readonly logged = new Map<string, number>();
  readonly problems: Problem[] = [];

  /**
   * @param sink where located messages go (stderr in the CLI)
   * @param perReasonLimit how many messages of one reason are passed to the sink before only counting
   */
  constructor(
    private readonly sink: ProblemSink = () => {},
    private readonly perReasonLimit = 10,
  ) {}

  report(p: Problem): void {
    const key = `${p.severity}:${p.reason}`;
    const c = this.counts.get(key);
    if (c) c.count++;
    else this.counts.set(key, { reason: p.reason, severity: p.severity, count: 1 });
    const n = this.logged.get(key) ?? 0;
    if (n < this.perReasonLimit) {
      this.logged.set(key, n + 1);
      this.problems.push(p);
      this.sink(p);
    }
  }

  count(severity?: Severity, reason?: string): number {
    let total = 0;
    for (const c of this.counts.values()) {
      if (
        (severity === undefined || c.severity === severity) &&
        (reason === undefined || c.reason === reason)
      )
        total += c.count;
    }
    return total;
  }

  summary(): ReasonCount[] {
    return [...this.counts.values()].sort((a, b) => b.count - a.count);
  }

  /** Lines telling how many messages of each reason were not printed. */
  suppressedSummary(): string[] {
    const out: string[] = [];
    for (const [key, c] of this.counts) {
      const shown = this.logged.get(key) ?? 0;
      if (c.count > shown) out.push(`${c.count - shown} more ${c.severity}s of kind '${c.reason}' not shown`);
    }
    return out;
  }
}

export function formatProblem(p: Problem): string {
  const loc = p.line > 0 ? `${p.file}:${p.line}` : p.file;
  const col =
    p.column !== undefined
      ? ` column ${JSON.stringify(p.column)}${p.columnIndex ? ` (#${p.columnIndex})` : ''}`
      : '';
  return `${p.severity}: ${loc}${col}: ${p.message} [${p.reason}]`;
}

/** An error meant for the user: printed without a stack trace, with a hint of what to do next. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
