// The narrow slice of the Store port the inventory domain needs, declared structurally: a
// handler's transaction (`HandlerTx`) and the Store's own transactions both fit it.
import type { HandlerTx } from '../../runtime/index.js';

/** SQL with `?` placeholders inside one transaction (or none). */
export type InventorySql = Pick<HandlerTx, 'dialect' | 'query' | 'execute'>;

/** A store that can run a function in one transaction (the Store port fits this). */
export interface InventoryStore extends InventorySql {
  /**
   * `relaxed`: the commit need not reach the disk before it resolves (the Store port's relaxed
   * transactions); only for bookkeeping whose loss is harmless.
   */
  transaction<T>(fn: (tx: InventorySql) => Promise<T>, opts?: { relaxed?: boolean }): Promise<T>;
}

/** Numbers come back from drivers as number, bigint or (for PostgreSQL NUMERIC) string. */
export function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' || typeof value === 'string') return Number(value);
  return 0;
}

export function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}
