// The item cross-reference: which ERP item each SKU is, per ERP. Handlers read it inside their
// transaction and never call an ERP; SKUs it does not know yet are queued for lookup, and a
// background round (outside any transaction) asks the ERP's `findItems` and writes the answers.
import type { ErpItem, ErpPort } from '../../ports/erp.js';
import type { SqlRunner } from '../../ports/sql.js';

export type ItemStatus = 'known' | 'inactive' | 'unknown';

export interface ItemMapping {
  sku: string;
  status: ItemStatus;
  erpItemId?: string;
}

/** A store that runs transactions (the composition root hands the real one over). */
export interface TransactionalSql extends SqlRunner {
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
}

/** The mappings the table holds for `skus` at `erpSystem` (SKUs never looked up are absent). */
export async function itemMappings(
  sql: SqlRunner,
  erpSystem: string,
  skus: readonly string[],
): Promise<Map<string, ItemMapping>> {
  const out = new Map<string, ItemMapping>();
  const unique = [...new Set(skus)];
  if (unique.length === 0) return out;
  const rows = await sql.query<{ sku: string; status: string; erp_item_id: string | null }>(
    `SELECT sku, status, erp_item_id FROM order_item_xref
     WHERE erp_system = ? AND sku IN (${unique.map(() => '?').join(', ')})`,
    [erpSystem, ...unique],
  );
  for (const r of rows) {
    out.set(r.sku, {
      sku: r.sku,
      status: r.status as ItemStatus,
      ...(r.erp_item_id ? { erpItemId: r.erp_item_id } : {}),
    });
  }
  return out;
}

/** Queues SKUs for the next lookup round. */
export async function requestItemLookups(
  sql: SqlRunner,
  erpSystem: string,
  skus: readonly string[],
  now: number,
): Promise<void> {
  for (const sku of new Set(skus)) {
    await sql.execute(
      `INSERT INTO order_item_lookups (erp_system, sku, requested_at) VALUES (?, ?, ?)
       ON CONFLICT (erp_system, sku) DO NOTHING`,
      [erpSystem, sku, now],
    );
  }
}

/**
 * Writes what an ERP answered for `asked`: SKUs it returned are known (or inactive), SKUs it
 * did not return are unknown to it. Tests seed the table with it too.
 */
export async function recordItemAnswers(
  sql: SqlRunner,
  erpSystem: string,
  asked: readonly string[],
  items: readonly ErpItem[],
  now: number,
): Promise<void> {
  const found = new Map(items.map((i) => [i.sku, i]));
  for (const sku of new Set([...asked, ...found.keys()])) {
    const item = found.get(sku);
    const status: ItemStatus = !item ? 'unknown' : item.active ? 'known' : 'inactive';
    await sql.execute(
      `INSERT INTO order_item_xref (erp_system, sku, erp_item_id, status, checked_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (erp_system, sku) DO UPDATE SET erp_item_id = excluded.erp_item_id,
         status = excluded.status, checked_at = excluded.checked_at`,
      [erpSystem, sku, item?.erpItemId ?? null, status, now],
    );
    await sql.execute('DELETE FROM order_item_lookups WHERE erp_system = ? AND sku = ?', [
      erpSystem,
      sku,
    ]);
  }
}

const LOOKUP_CHUNK = 100;

/**
 * One lookup round: asks each ERP for the SKUs queued for it (in chunks) and records the
 * answers. An ERP without a port, or one that fails, keeps its SKUs queued for the next round.
 * Returns how many SKUs were answered.
 */
export async function lookupQueuedItems(
  store: TransactionalSql,
  erps: ReadonlyMap<string, ErpPort>,
  now: () => number,
  signal?: AbortSignal,
): Promise<{ answered: number; failed: number }> {
  const queued = await store.query<{ erp_system: string; sku: string }>(
    'SELECT erp_system, sku FROM order_item_lookups ORDER BY requested_at LIMIT 5000',
  );
  const bySystem = new Map<string, string[]>();
  for (const q of queued) {
    const list = bySystem.get(q.erp_system) ?? [];
    list.push(q.sku);
    bySystem.set(q.erp_system, list);
  }
  let answered = 0;
  let failed = 0;
  for (const [system, skus] of bySystem) {
    const erp = erps.get(system);
    if (!erp) continue;
    for (let i = 0; i < skus.length; i += LOOKUP_CHUNK) {
      const chunk = skus.slice(i, i + LOOKUP_CHUNK);
      try {
        const items = await erp.findItems(chunk, signal ? { signal } : {});
        await store.transaction((tx) => recordItemAnswers(tx, system, chunk, items, now()));
        answered += chunk.length;
      } catch {
        failed += chunk.length;
      }
    }
  }
  return { answered, failed };
}

/** Queues every mapping older than `olderThan` for a fresh lookup (the periodic refresh). */
export async function queueStaleMappings(
  sql: SqlRunner,
  olderThan: number,
  now: number,
): Promise<number> {
  const r = await sql.execute(
    `INSERT INTO order_item_lookups (erp_system, sku, requested_at)
     SELECT erp_system, sku, ? FROM order_item_xref WHERE checked_at < ?
     ON CONFLICT (erp_system, sku) DO NOTHING`,
    [now, olderThan],
  );
  return r.changes;
}
