/**
 * Progress on stderr for long jobs: a bar appears only when stderr is a terminal and the job has
 * run for more than a second, so short jobs and pipelines stay quiet.
 */
import cliProgress from 'cli-progress';

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = performance.now();
  private phase = '';
  private value = 0;
  private total = 0;
  /** Counting steps (epochs) instead of bytes: the unit and a note shown instead of the rate. */
  private counting: { unit: string; note: string } | null = null;

  constructor(private readonly enabled: boolean) {}

  static forCli(quiet: boolean): Progress {
    return new Progress(!quiet && process.stderr.isTTY === true && !process.env.CI);
  }

  setPhase(phase: string): void {
    this.phase = phase;
    this.bar?.update(this.value, { phase: this.phase.padEnd(11) });
  }

  /** Progress in steps of a named unit (epochs), with a short note (the current loss). */
  count(value: number, total: number, unit: string, note = ''): void {
    this.counting = { unit, note };
    this.update(value, total, true);
  }

  update(value: number, total: number, counted = false): void {
    if (!counted) this.counting = null;
    this.value = value;
    this.total = total;
    if (!this.enabled) return;
    if (!this.bar) {
      if (performance.now() - this.started < 1000) return;
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: '{phase} |{bar}| {percentage}% | {done} of {all} | {rate} | ETA {eta_formatted}',
          barCompleteChar: '█',
          barIncompleteChar: '░',
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
          fps: 8,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, value, this.payload());
    }
    this.bar.setTotal(total);
    this.bar.update(value, this.payload());
  }

  private payload(): Record<string, string> {
    const secs = (performance.now() - this.started) / 1000;
    if (this.counting)
      return {
        phase: this.phase.padEnd(11),
        done: String(this.value),
        all: `${this.total} ${this.counting.unit}`,
        rate: this.counting.note,
      };
    return {
      phase: this.phase.padEnd(11),
      done: formatBytes(this.value),
      all: formatBytes(this.total),
      rate: `${formatBytes(this.value / Math.max(secs, 1e-3))}/s`,
    };
  }

  /** Removes the bar; call before printing results. */
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n.toFixed(0)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
