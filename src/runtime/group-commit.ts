// Group commit: work items (accepts, delivery outcomes) gathered into batches, each written by
// one store transaction, so concurrent callers share one commit and one fsync.

/** An item whose caller waits for its commit. */
export interface GroupItem {
  reject(e: unknown): void;
}

export interface GroupCommitOptions<T extends GroupItem> {
  /** Items per batch at most. */
  maxBatch: number;
  /** Batches being committed at once at most. */
  maxInFlight: number;
  /**
   * How long a forming batch may wait for more items while each turn of the event loop still
   * brings some (0: the batch is what the first turn gathered).
   */
  gatherMs: number;
  /**
   * Writes one batch, settling each item's own promise. Should it reject, every item of the
   * batch is rejected with its error (an item settled already stays as it was).
   */
  commit(batch: T[]): Promise<void>;
}

/**
 * Items added during one turn of the event loop are committed together in its check phase. While
 * each later turn still brings more (under load: the callers the previous commit answered,
 * coming back with their next item), the batch waits one more turn, up to `gatherMs` after its
 * first item; a turn that brings none, a full batch or the deadline starts the commit. That makes
 * one commit of what would otherwise be two halves: fewer commits, fsyncs and index page writes
 * per item. A lone item is committed in the first turn.
 */
export class GroupCommit<T extends GroupItem> {
  private pending: T[] = [];
  private scheduled = false;
  /** The forming batch's size at the last look, and when it stops waiting for more. */
  private seen = 0;
  private until = 0;
  /** The batches being committed. */
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly opts: GroupCommitOptions<T>) {}

  add(item: T): void {
    this.pending.push(item);
    this.schedule();
  }

  /**
   * Starts commits for everything still gathering, and waits for every commit under way,
   * including those of items added meanwhile.
   */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.running.size > 0) {
      while (this.pending.length > 0) this.start();
      await Promise.allSettled([...this.running]);
    }
  }

  private schedule(): void {
    if (this.pending.length === 0 || this.running.size >= this.opts.maxInFlight) return;
    if (this.pending.length >= this.opts.maxBatch) {
      this.start();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.seen = this.pending.length;
    this.until = performance.now() + this.opts.gatherMs;
    setImmediate(this.gathered);
  }

  private readonly gathered = (): void => {
    if (
      this.pending.length > this.seen &&
      this.pending.length < this.opts.maxBatch &&
      performance.now() < this.until
    ) {
      this.seen = this.pending.length;
      setImmediate(this.gathered);
      return;
    }
    this.scheduled = false;
    if (this.running.size < this.opts.maxInFlight) this.start();
  };

  private start(): void {
    const batch = this.pending.splice(0, this.opts.maxBatch);
    if (batch.length === 0) return;
    const p = this.opts
      .commit(batch)
      .catch((err: unknown) => {
        for (const item of batch) item.reject(err);
      })
      .finally(() => {
        this.running.delete(p);
        this.schedule();
      });
    this.running.add(p);
  }
}
