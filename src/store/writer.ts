/**
 * Group commit: concurrent writers hand rows to one `BatchWriter`; while a transaction is being
 * committed the next rows collect, and go in the following one. Each caller's promise resolves
 * (with its rows' ids) only when its rows are committed, so an HTTP handler can acknowledge
 * after `await write(...)` and nothing acknowledged is lost, while the store sees few, large
 * transactions under load (no timer: an idle writer commits at once).
 */
interface Pending<T> {
  rows: T[];
  resolve: (ids: number[]) => void;
  reject: (e: unknown) => void;
}

export class BatchWriter<T> {
  private queue: Pending<T>[] = [];
  private queued = 0;
  private running: Promise<void> | null = null;
  private active = false;
  /** Transactions committed and rows written, for metrics. */
  commits = 0;
  rows = 0;

  constructor(
    private readonly commit: (rows: T[]) => Promise<number[]>,
    /** Largest transaction; more waiting rows go in the next one. */
    private readonly maxRows = 20_000,
    private readonly onCommit?: (rows: number, seconds: number) => void,
  ) {}

  write(rows: T[]): Promise<number[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise<number[]>((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.queued += rows.length;
      if (!this.active) {
        this.active = true;
        this.running = this.drain();
      }
    });
  }

  /** Resolves when everything handed over so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  get pending(): number {
    return this.queued;
  }

  /**
   * Commits until the queue is empty; rows written while the last commit resolved its callers are
   * picked up by a new drain, so a `write` never queues rows that no drain will take.
   */
  private async drain(): Promise<void> {
    await null;
    try {
      await this.drainQueue();
    } finally {
      this.active = false;
      this.running = null;
      // Callers resumed by the last commit may have written before this point: drain again.
      if (this.queue.length) {
        this.active = true;
        this.running = this.drain();
      }
    }
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length) {
      const take: Pending<T>[] = [];
      let n = 0;
      while (this.queue.length && (n === 0 || n + this.queue[0].rows.length <= this.maxRows)) {
        const p = this.queue.shift() as Pending<T>;
        take.push(p);
        n += p.rows.length;
      }
      this.queued -= n;
      const all = take.length === 1 ? take[0].rows : take.flatMap((p) => p.rows);
      const t0 = performance.now();
      try {
        const ids = await this.commit(all);
        this.commits++;
        this.rows += n;
        this.onCommit?.(n, (performance.now() - t0) / 1000);
        let o = 0;
        for (const p of take) {
          p.resolve(ids.slice(o, o + p.rows.length));
          o += p.rows.length;
        }
      } catch (e) {
        for (const p of take) p.reject(e);
      }
    }
  }
}
