// A small reservation table behind the StockReservationPort, used while no inventory service
// is offered: on-hand per SKU and location (seeded, or read from the ERPs' stock levels outside
// any handler), minus what orders hold. All or nothing per order; idempotent per order id.
import type { SqlRunner } from '../../ports/sql.js';
import type { ReserveOutcome, StockRequestLine, StockReservationPort } from '../../ports/stock.js';

function merge(lines: readonly StockRequestLine[]): Map<string, number> {
  const bySku = new Map<string, number>();
  for (const l of lines) bySku.set(l.sku, (bySku.get(l.sku) ?? 0) + l.quantity);
  return bySku;
}

export class FallbackStockReservations implements StockReservationPort {
  constructor(private readonly now: () => number = Date.now) {}

  async reserve(
    tx: SqlRunner,
    req: { orderId: string; location: string; lines: readonly StockRequestLine[] },
  ): Promise<ReserveOutcome> {
    const held = await tx.query<{ sku: string }>(
      `SELECT sku FROM order_fallback_reservations WHERE order_id = ? AND status <> 'released'`,
      [req.orderId],
    );
    if (held.length > 0) {
      return { ok: true, reservationIds: held.map((h) => `${req.orderId}/${h.sku}`) };
    }
    const wanted = merge(req.lines);
    const short: Array<{ sku: string; requested: number; available: number }> = [];
    for (const [sku, quantity] of wanted) {
      const available = await this.available(tx, sku, req.location);
      if (available < quantity) short.push({ sku, requested: quantity, available });
    }
    if (short.length > 0) return { ok: false, short };
    const at = this.now();
    for (const [sku, quantity] of wanted) {
      await tx.execute(
        `INSERT INTO order_fallback_reservations (order_id, sku, location, quantity, status, created_at)
         VALUES (?, ?, ?, ?, 'held', ?)
         ON CONFLICT (order_id, sku, location) DO UPDATE SET quantity = excluded.quantity,
           status = 'held', created_at = excluded.created_at`,
        [req.orderId, sku, req.location, quantity, at],
      );
    }
    return { ok: true, reservationIds: [...wanted.keys()].map((sku) => `${req.orderId}/${sku}`) };
  }

  async release(tx: SqlRunner, orderId: string): Promise<void> {
    await tx.execute(
      `UPDATE order_fallback_reservations SET status = 'released' WHERE order_id = ? AND status = 'held'`,
      [orderId],
    );
  }

  /** Gives back part of what the order holds (lines cancelled or reduced). Idempotent per call. */
  async releaseLines(
    tx: SqlRunner,
    orderId: string,
    lines: readonly StockRequestLine[],
  ): Promise<void> {
    for (const [sku, quantity] of merge(lines)) {
      await tx.execute(
        `UPDATE order_fallback_reservations
         SET quantity = CASE WHEN quantity > ? THEN quantity - ? ELSE 0 END
         WHERE order_id = ? AND sku = ? AND status = 'held'`,
        [quantity, quantity, orderId, sku],
      );
      await tx.execute(
        `UPDATE order_fallback_reservations SET status = 'released'
         WHERE order_id = ? AND sku = ? AND status = 'held' AND quantity = 0`,
        [orderId, sku],
      );
    }
  }

  async consume(tx: SqlRunner, orderId: string): Promise<void> {
    const held = await tx.query<{ sku: string; location: string; quantity: number }>(
      `SELECT sku, location, quantity FROM order_fallback_reservations
       WHERE order_id = ? AND status = 'held'`,
      [orderId],
    );
    for (const h of held) {
      await tx.execute(
        `UPDATE order_fallback_stock SET on_hand = on_hand - ?, updated_at = ?
         WHERE sku = ? AND location = ?`,
        [Number(h.quantity), this.now(), h.sku, h.location],
      );
    }
    await tx.execute(
      `UPDATE order_fallback_reservations SET status = 'consumed' WHERE order_id = ? AND status = 'held'`,
      [orderId],
    );
  }

  private async available(tx: SqlRunner, sku: string, location: string): Promise<number> {
    const [row] = await tx.query<{ on_hand: number }>(
      'SELECT on_hand FROM order_fallback_stock WHERE sku = ? AND location = ?',
      [sku, location],
    );
    if (!row) return 0;
    const [held] = await tx.query<{ held: number | null }>(
      `SELECT SUM(quantity) AS held FROM order_fallback_reservations
       WHERE sku = ? AND location = ? AND status = 'held'`,
      [sku, location],
    );
    return Number(row.on_hand) - Number(held?.held ?? 0);
  }
}

/** Sets on-hand figures of the fallback table (tests, and the ERP stock refresh). */
export async function setFallbackStock(
  sql: SqlRunner,
  levels: ReadonlyArray<{ sku: string; location: string; onHand: number }>,
  at: number = Date.now(),
): Promise<void> {
  for (const l of levels) {
    await sql.execute(
      `INSERT INTO order_fallback_stock (sku, location, on_hand, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at`,
      [l.sku, l.location, l.onHand, at],
    );
  }
}
