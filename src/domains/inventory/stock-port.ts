// The stock reservation port (src/ports/stock.ts) over the availability ledger: an order's lines
// are reserved all or none, inside the caller's transaction. Each line is one reservation whose
// id derives from the order id and SKU (`order/<orderId>/<sku>`), so a second call for the same
// order finds the first call's reservations and answers them again. A refused order holds
// nothing and leaves nothing behind: the lines reserved before the short one are taken back in
// the same transaction, so a later call (after a restock) decides afresh.
//
// Lines are reserved in SKU order, so two orders with overlapping SKUs lock positions in the
// same order on PostgreSQL and cannot deadlock each other.
import type { ReserveOutcome, StockRequestLine, StockReservationPort } from '../../ports/stock.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { HandlerTx } from '../../runtime/index.js';
import type { AvailabilityRules } from './availability.js';
import {
  publishAvailability,
  publishAvailabilityOutside,
  type AcceptInTransaction,
  type InventoryHandlerOptions,
} from './handlers.js';
import { AvailabilityLedger, readPosition, type StockPosition } from './ledger.js';
import {
  MIDDLEMART_SOURCE,
  consumeReservation,
  expireReservations,
  releaseReservation,
  reserveStock,
  type ReservationRecord,
} from './reservations.js';
import { num, type InventorySql, type InventoryStore } from './sql.js';

export interface StockPortOptions {
  rules?: AvailabilityRules;
  /** Channels whose pending availability is kept for the channel push. */
  channels?: readonly string[];
  /** The sales channel of a request that names none (default `web`). */
  defaultChannel?: string;
  /** How long a reservation holds when the request gives no expiry (default 30 min). */
  reservationTtlMs?: number;
  /**
   * Accepts `inventory.availability_changed` inside a transaction that is not a handler's (API
   * reservations); without it such changes are only recorded for the channel pushers.
   */
  accept?: AcceptInTransaction;
  /** See InventoryHandlerOptions.onRecorded. */
  onRecorded?: (messageId: string | undefined) => void;
  now?: () => number;
}

/**
 * The reservation id of an order's line for `sku`; `round` > 1 names a reservation taken again
 * after the order released its first one (a rejected order booked after all).
 */
export function orderReservationId(orderId: string, sku: string, round = 1): string {
  return round > 1 ? `order/${orderId}/${sku}/r${round}` : `order/${orderId}/${sku}`;
}

function isHandlerTx(tx: SqlRunner): tx is SqlRunner & HandlerTx {
  return typeof (tx as Partial<HandlerTx>).emit === 'function' && 'message' in tx;
}

/** Sums the lines per SKU (an order may list a SKU twice), in SKU order. */
export function linesBySku(lines: readonly StockRequestLine[]): StockRequestLine[] {
  const bySku = new Map<string, number>();
  for (const l of lines) {
    if (typeof l.sku !== 'string' || l.sku.length === 0) throw new RangeError('sku is required');
    if (!Number.isInteger(l.quantity) || l.quantity <= 0) {
      throw new RangeError(`quantity of ${l.sku} must be a positive integer`);
    }
    bySku.set(l.sku, (bySku.get(l.sku) ?? 0) + l.quantity);
  }
  return [...bySku.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, quantity]) => ({ sku, quantity }));
}

async function orderReservations(db: InventorySql, orderId: string): Promise<ReservationRecord[]> {
  const rows = await db.query(
    `SELECT id, sku, location, quantity, status FROM inventory_reservations
     WHERE order_id = ? ORDER BY id`,
    [orderId],
  );
  return rows
    .filter((r) => String(r.id).startsWith(`order/${orderId}/`))
    .map(
      (r) =>
        ({
          id: String(r.id),
          sku: String(r.sku),
          location: String(r.location),
          quantity: num(r.quantity),
          status: String(r.status),
        }) as ReservationRecord,
    );
}

/**
 * Creates the stock reservation port. Positions that change are published (an
 * `inventory.availability_changed` event when the caller's transaction is a handler's, and the
 * channels' pending availability in any case).
 */
export function createStockReservations(opts: StockPortOptions = {}): StockReservationPort {
  const now = opts.now ?? Date.now;
  const rules = opts.rules ?? {};
  const ttl = opts.reservationTtlMs ?? 30 * 60_000;
  const publishOpts: InventoryHandlerOptions = {
    rules,
    ...(opts.channels ? { channels: opts.channels } : {}),
    ...(opts.onRecorded ? { onRecorded: opts.onRecorded } : {}),
    now,
  };

  async function published(tx: SqlRunner, positions: StockPosition[]): Promise<void> {
    // One publication per position, its newest state.
    const latest = new Map<string, StockPosition>();
    for (const p of positions) {
      const k = `${p.sku}@${p.location}`;
      const seen = latest.get(k);
      if (!seen || seen.version < p.version) latest.set(k, p);
    }
    for (const p of latest.values()) {
      // A reservation changes availability now, whatever the stock's source time was.
      if (isHandlerTx(tx)) {
        await publishAvailability(tx, p, publishOpts, now());
      } else {
        await publishAvailabilityOutside(
          tx,
          p,
          { ...publishOpts, ...(opts.accept ? { accept: opts.accept } : {}) },
          now(),
        );
      }
    }
  }

  return {
    async reserve(tx, req) {
      if (typeof req.orderId !== 'string' || req.orderId.length === 0) {
        throw new RangeError('orderId is required');
      }
      const lines = linesBySku(req.lines);
      if (lines.length === 0) throw new RangeError('an order reserves at least one line');
      const existing = await orderReservations(tx, req.orderId);
      const held = existing.filter((r) => r.status === 'active' || r.status === 'committed');
      if (held.length > 0) return { ok: true, reservationIds: held.map((r) => r.id) };
      // Released or expired before (a refused order booked after all): reserve afresh, under
      // ids of a new round so the earlier reservations stay on record.
      const round =
        1 + new Set(existing.filter((r) => r.status !== 'refused').map((r) => roundOf(r.id))).size;
      const at = now();
      const expiresAt = req.expiresAt ?? new Date(at + ttl);
      const channel = req.channel ?? opts.defaultChannel ?? 'web';
      const taken: Array<{ id: string; sku: string; quantity: number }> = [];
      const short: Array<{ sku: string; requested: number; available: number }> = [];
      const changed: StockPosition[] = [];
      for (const line of lines) {
        const id = orderReservationId(req.orderId, line.sku, round);
        const r = await reserveStock(
          tx,
          {
            reservationId: id,
            sku: line.sku,
            location: req.location,
            quantity: line.quantity,
            orderId: req.orderId,
            channel,
            expiresAt,
          },
          { rules, now: () => at },
        );
        if (r.outcome === 'reserved') {
          taken.push({ id, sku: line.sku, quantity: line.quantity });
          changed.push(r.position);
        } else if (r.outcome === 'refused') {
          short.push({ sku: line.sku, requested: line.quantity, available: r.available });
          await tx.execute('DELETE FROM inventory_reservations WHERE id = ?', [id]);
        } else {
          throw new Error(`reservation ${id} is held for another request`);
        }
      }
      if (short.length === 0) {
        await published(tx, changed);
        return { ok: true, reservationIds: taken.map((t) => t.id) };
      }
      // All or none: give back what this call took, as if it had never been taken.
      for (const t of taken) {
        await tx.execute(
          `UPDATE inventory_positions SET reserved = reserved - ?, version = version + 1, updated_at = ?
           WHERE sku = ? AND location = ?`,
          [t.quantity, at, t.sku, req.location],
        );
        await tx.execute('DELETE FROM inventory_reservations WHERE id = ?', [t.id]);
      }
      return { ok: false, short } satisfies ReserveOutcome;
    },

    async release(tx, orderId) {
      const changed: StockPosition[] = [];
      for (const r of await orderReservations(tx, orderId)) {
        if (r.status !== 'active') continue;
        const closed = await releaseReservation(tx, r.id, { rules, now });
        if (closed.outcome === 'closed') changed.push(closed.position);
      }
      await published(tx, changed);
    },

    async releaseLines(tx, orderId, lines, _reason) {
      const changed: StockPosition[] = [];
      const active = (await orderReservations(tx, orderId)).filter((r) => r.status === 'active');
      for (const line of linesBySku(lines)) {
        const r = active.find((a) => a.sku === line.sku);
        if (!r) continue;
        if (line.quantity >= r.quantity) {
          const closed = await releaseReservation(tx, r.id, { rules, now });
          if (closed.outcome === 'closed') changed.push(closed.position);
        } else {
          changed.push(await releasePart(tx, r, line.quantity, now()));
        }
      }
      await published(tx, changed);
    },

    async consume(tx, orderId, lines) {
      const changed: StockPosition[] = [];
      const active = (await orderReservations(tx, orderId)).filter((r) => r.status === 'active');
      const wanted = lines ? linesBySku(lines) : undefined;
      for (const r of active) {
        const quantity = wanted ? wanted.find((l) => l.sku === r.sku)?.quantity : r.quantity;
        if (quantity === undefined) continue;
        if (quantity >= r.quantity) {
          const closed = await consumeReservation(tx, r.id, { rules, now });
          if (closed.outcome === 'closed') changed.push(closed.position);
        } else {
          changed.push(await consumePart(tx, r, quantity, rules, now()));
        }
      }
      await published(tx, changed);
    },
  };
}

/** The round of an order's reservation id (1 for the first). */
function roundOf(id: string): number {
  const m = /\/r(\d+)$/.exec(id);
  return m ? Number(m[1]) : 1;
}

/** Gives back part of an active reservation (a line cut): it keeps holding the rest. */
async function releasePart(
  tx: InventorySql,
  r: ReservationRecord,
  quantity: number,
  at: number,
): Promise<StockPosition> {
  await tx.execute(
    `UPDATE inventory_reservations SET quantity = quantity - ? WHERE id = ? AND status = 'active'`,
    [quantity, r.id],
  );
  await tx.execute(
    `UPDATE inventory_positions SET reserved = reserved - ?, version = version + 1, updated_at = ?
     WHERE sku = ? AND location = ?`,
    [quantity, at, r.sku, r.location],
  );
  return (await readPosition(tx, r.sku, r.location))!;
}

/** Ships part of an active reservation: it keeps holding the rest; the sale leaves on hand. */
async function consumePart(
  tx: InventorySql,
  r: ReservationRecord,
  quantity: number,
  rules: AvailabilityRules,
  at: number,
): Promise<StockPosition> {
  const moved = await releasePart(tx, r, quantity, at);
  const ledger = new AvailabilityLedger({ rules, now: () => at });
  const applied = await ledger.applyAdjustment(tx, {
    sku: r.sku,
    location: r.location,
    reason: 'sale',
    delta: -quantity,
    sourceSystem: MIDDLEMART_SOURCE,
    sourceSequence: moved.version,
    sourceTimestamp: Math.max(at, (moved.sourceTimestamp ?? 0) + 1),
  });
  return applied.after;
}

/** Expires due reservations (a bounded batch) and records the freed availability for channels. */
export async function expireDueReservations(
  store: InventoryStore,
  opts: {
    channels: readonly string[];
    rules: AvailabilityRules;
    now: number;
    limit?: number;
    /** Accepts `inventory.availability_changed` in the expiry's transaction. */
    accept?: AcceptInTransaction;
  },
): Promise<number> {
  return store.transaction(async (tx) => {
    const expired = await expireReservations(tx, opts.now, opts.limit ?? 500);
    const latest = new Map<string, StockPosition>();
    for (const e of expired) latest.set(`${e.position.sku}@${e.position.location}`, e.position);
    for (const p of latest.values()) {
      const fresh = (await readPosition(tx, p.sku, p.location)) ?? p;
      await publishAvailabilityOutside(
        tx,
        fresh,
        {
          channels: opts.channels,
          rules: opts.rules,
          now: () => opts.now,
          ...(opts.accept ? { accept: opts.accept } : {}),
        },
        opts.now,
      );
    }
    return expired.length;
  });
}
