// Group commit for stock work that arrives concurrently (reservations over the API): requests
// that wait while a transaction runs are taken together into the next one, so a flash sale pays
// one commit (one fsync on SQLite, one round of locks on PostgreSQL) per batch instead of per
// request. Each request runs in the shared transaction on its own; a request that throws fails
// the batch's transaction, and then every request of that batch runs again in a transaction of
// its own, so one bad request never fails another.
import type { InventorySql, InventoryStore } from './sql.js';

interface Waiting<Req, Res> {
  req: Req;
  resolve: (res: Res) => void;
  reject: (err: unknown) => void;
}

export class TransactionBatcher<Req, Res> {
  private readonly waiting: Array<Waiting<Req, Res>> = [];
  private running = 0;

  constructor(
    private readonly store: InventoryStore,
    private readonly work: (tx: InventorySql, req: Req) => Promise<Res>,
    private readonly opts: { maxBatch?: number; concurrency?: number } = {},
  ) {}

  /** Runs `req` in a (shared) transaction; resolves once that transaction committed. */
  run(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    const concurrency = this.opts.concurrency ?? (this.store.dialect === 'sqlite' ? 1 : 4);
    while (this.running < concurrency && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.opts.maxBatch ?? 200);
      this.running++;
      void this.commit(batch).finally(() => {
        this.running--;
        this.drain();
      });
    }
  }

  private async commit(batch: Array<Waiting<Req, Res>>): Promise<void> {
    let results: Res[];
    try {
      results = await this.store.transaction(async (tx) => {
        const out: Res[] = [];
        for (const w of batch) out.push(await this.work(tx, w.req));
        return out;
      });
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One of them failed: each again on its own.
      await Promise.all(
        batch.map(async (w) => {
          try {
            w.resolve(await this.store.transaction((tx) => this.work(tx, w.req)));
          } catch (e) {
            w.reject(e);
          }
        }),
      );
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }
}
