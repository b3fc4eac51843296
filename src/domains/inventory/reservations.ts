// Reservations: stock held for an order until fulfilment consumes it, or cancellation or expiry
// releases it. A reservation is taken by one conditional UPDATE of the position, checked by its
// change count, so no interleaving of transactions (SQLite's single writer, or PostgreSQL's row
// lock with its re-check of the WHERE clause) can promise the same unit twice. Every call runs
// inside the caller's transaction and is idempotent by reservation id.
import type { ReservationStatus } from '../../canonical/index.js';
import {
  channelAvailable,
  channelServesLocation,
  safetyStockFor,
  type AvailabilityRules,
} from './availability.js';
import {
  AvailabilityLedger,
  ensurePosition,
  readPosition,
  type AppliedAdjustment,
  type StockPosition,
} from './ledger.js';
import { num, numOrNull, type InventorySql } from './sql.js';

/** Source system under which Middlemart records its own stock movements (fulfilment). */
export const MIDDLEMART_SOURCE = 'middlemart';

export interface ReserveStockRequest {
  reservationId: string;
  sku: string;
  location: string;
  quantity: number;
  orderId: string;
  lineId?: string;
  channel: string;
  expiresAt: Date | string | number;
}

export type StoredReservationStatus = ReservationStatus | 'refused';

export interface ReservationRecord {
  id: string;
  sku: string;
  location: string;
  quantity: number;
  orderId: string;
  lineId: string | null;
  channel: string;
  status: StoredReservationStatus;
  /** For a refused reservation: what the channel could have had at that moment. */
  availableAtDecision: number;
  createdAt: number;
  expiresAt: number;
  closedAt: number | null;
}

export type RefusalReason = 'insufficient_stock' | 'channel_not_allowed';

export type ReserveStockResult =
  | {
      outcome: 'reserved';
      reservation: ReservationRecord;
      /** The position after this reservation (on a replay: as it is now). */
      position: StockPosition;
      /** True when this answers a retry of an earlier call. */
      replayed: boolean;
    }
  | {
      outcome: 'refused';
      reason: RefusalReason;
      /** What the channel may still promise of this sku@location. */
      available: number;
      reservation: ReservationRecord;
      replayed: boolean;
    }
  | {
      /** The reservation id is taken by a reservation for another sku, location or quantity. */
      outcome: 'conflict';
      reservation: ReservationRecord;
    };

export interface ReservationOptions {
  rules?: AvailabilityRules;
  now?: () => number;
}

function toMillis(t: Date | string | number): number {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : t;
  if (!Number.isFinite(ms)) throw new RangeError(`invalid time ${String(t)}`);
  return ms;
}

function toReservation(r: Record<string, unknown>): ReservationRecord {
  return {
    id: String(r.id),
    sku: String(r.sku),
    location: String(r.location),
    quantity: num(r.quantity),
    orderId: String(r.order_id),
    lineId: r.line_id === null || r.line_id === undefined ? null : String(r.line_id),
    channel: String(r.channel),
    status: String(r.status) as StoredReservationStatus,
    availableAtDecision: num(r.available_at_decision),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    closedAt: numOrNull(r.closed_at),
  };
}

export async function readReservation(
  db: InventorySql,
  reservationId: string,
): Promise<ReservationRecord | undefined> {
  const rows = await db.query('SELECT * FROM inventory_reservations WHERE id = ?', [reservationId]);
  return rows[0] ? toReservation(rows[0]) : undefined;
}

/** What `channel` may promise of a sku@location now. */
export async function channelAvailableAt(
  db: InventorySql,
  sku: string,
  location: string,
  channel: string,
  rules: AvailabilityRules = {},
): Promise<number> {
  const p = await readPosition(db, sku, location);
  return channelAvailable(p?.available ?? 0, location, rules.channels?.[channel]);
}

async function replay(
  db: InventorySql,
  existing: ReservationRecord,
  req: ReserveStockRequest,
  rules: AvailabilityRules,
): Promise<ReserveStockResult> {
  if (
    existing.sku !== req.sku ||
    existing.location !== req.location ||
    existing.quantity !== req.quantity ||
    existing.orderId !== req.orderId
  ) {
    return { outcome: 'conflict', reservation: existing };
  }
  if (existing.status === 'refused') {
    const allowed = channelServesLocation(rules.channels?.[existing.channel], existing.location);
    return {
      outcome: 'refused',
      reason: allowed ? 'insufficient_stock' : 'channel_not_allowed',
      available: existing.availableAtDecision,
      reservation: existing,
      replayed: true,
    };
  }
  const position = (await readPosition(db, existing.sku, existing.location))!;
  return { outcome: 'reserved', reservation: existing, position, replayed: true };
}

/**
 * Reserves stock for an order line: succeeds atomically or is refused with what the channel may
 * still have. A retry with the same reservation id returns the original outcome.
 */
export async function reserveStock(
  db: InventorySql,
  req: ReserveStockRequest,
  opts: ReservationOptions = {},
): Promise<ReserveStockResult> {
  if (!Number.isInteger(req.quantity) || req.quantity <= 0) {
    throw new RangeError('quantity must be a positive integer');
  }
  const rules = opts.rules ?? {};
  const now = (opts.now ?? Date.now)();
  const expiresAt = toMillis(req.expiresAt);
  // Claim the id first: a concurrent call with the same id waits here (PostgreSQL) or is
  // serialised (SQLite), then finds the first call's row.
  const claimed = await db.execute(
    `INSERT INTO inventory_reservations (id, sku, location, quantity, order_id, line_id, channel, status,
       created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)
     ON CONFLICT (id) DO NOTHING`,
    [
      req.reservationId,
      req.sku,
      req.location,
      req.quantity,
      req.orderId,
      req.lineId ?? null,
      req.channel,
      now,
      expiresAt,
    ],
  );
  if (claimed.changes === 0) {
    const existing = await readReservation(db, req.reservationId);
    if (!existing) throw new Error(`reservation ${req.reservationId} vanished`);
    return replay(db, existing, req, rules);
  }
  // Checked after the replay: a retry answers the original outcome even once expired. Throwing
  // here rolls back the caller's transaction, the claim with it.
  if (expiresAt <= now) throw new RangeError('expiresAt must be after now');
  const allocation = rules.channels?.[req.channel];
  let taken = 0;
  let reason: RefusalReason = 'insufficient_stock';
  if (!channelServesLocation(allocation, req.location)) {
    reason = 'channel_not_allowed';
  } else if (allocation?.cap === undefined || req.quantity <= allocation.cap) {
    const percent = allocation?.percent ?? 100;
    const r = await db.execute(
      `UPDATE inventory_positions SET reserved = reserved + ?, version = version + 1, updated_at = ?
       WHERE sku = ? AND location = ? AND on_hand - reserved - safety_stock >= ?
         AND (on_hand - reserved - safety_stock) * ? >= ?`,
      [req.quantity, now, req.sku, req.location, req.quantity, percent, req.quantity * 100],
    );
    taken = r.changes;
  }
  if (taken === 1) {
    const reservation = (await readReservation(db, req.reservationId))!;
    const position = (await readPosition(db, req.sku, req.location))!;
    return { outcome: 'reserved', reservation, position, replayed: false };
  }
  const available =
    reason === 'channel_not_allowed'
      ? 0
      : await channelAvailableAt(db, req.sku, req.location, req.channel, rules);
  await db.execute(
    `UPDATE inventory_reservations SET status = 'refused', available_at_decision = ?, closed_at = ?
     WHERE id = ?`,
    [available, now, req.reservationId],
  );
  const reservation = (await readReservation(db, req.reservationId))!;
  return { outcome: 'refused', reason, available, reservation, replayed: false };
}

export type CloseReservationResult =
  | {
      outcome: 'closed';
      reservation: ReservationRecord;
      position: StockPosition;
      /** For a consumed reservation: the fulfilment movement in the adjustment log. */
      adjustment?: AppliedAdjustment;
    }
  /** Already committed, released, expired or refused: nothing changed. */
  | { outcome: 'unchanged'; reservation: ReservationRecord }
  | { outcome: 'unknown' };

async function closeActive(
  db: InventorySql,
  reservationId: string,
  status: 'committed' | 'released' | 'expired',
  now: number,
): Promise<ReservationRecord | CloseReservationResult> {
  const r = await db.execute(
    `UPDATE inventory_reservations SET status = ?, closed_at = ? WHERE id = ? AND status = 'active'`,
    [status, now, reservationId],
  );
  const reservation = await readReservation(db, reservationId);
  if (!reservation) return { outcome: 'unknown' };
  if (r.changes === 0) return { outcome: 'unchanged', reservation };
  return reservation;
}

/**
 * Fulfilment: the reserved units leave the shelf. Reserved and on-hand both fall by the
 * reservation's quantity; the movement is logged in the ledger under the `middlemart` source.
 */
export async function consumeReservation(
  db: InventorySql,
  reservationId: string,
  opts: ReservationOptions = {},
): Promise<CloseReservationResult> {
  const now = (opts.now ?? Date.now)();
  const closed = await closeActive(db, reservationId, 'committed', now);
  if ('outcome' in closed) return closed;
  await db.execute(
    `UPDATE inventory_positions SET reserved = reserved - ?, version = version + 1, updated_at = ?
     WHERE sku = ? AND location = ?`,
    [closed.quantity, now, closed.sku, closed.location],
  );
  const moved = (await readPosition(db, closed.sku, closed.location))!;
  const ledger = new AvailabilityLedger({ rules: opts.rules ?? {}, now: () => now });
  const adjustment = await ledger.applyAdjustment(db, {
    sku: closed.sku,
    location: closed.location,
    reason: 'sale',
    delta: -closed.quantity,
    sourceSystem: MIDDLEMART_SOURCE,
    // The position's version is unique per sku@location and rises: a sequence of our own.
    sourceSequence: moved.version,
    // It happens after every movement the ledger has seen, whatever the clocks say.
    sourceTimestamp: Math.max(now, (moved.sourceTimestamp ?? 0) + 1),
  });
  return { outcome: 'closed', reservation: closed, position: adjustment.after, adjustment };
}

/** Cancellation (or expiry): the reserved units become available again. */
export async function releaseReservation(
  db: InventorySql,
  reservationId: string,
  opts: ReservationOptions & { reason?: 'released' | 'expired' } = {},
): Promise<CloseReservationResult> {
  const now = (opts.now ?? Date.now)();
  const closed = await closeActive(db, reservationId, opts.reason ?? 'released', now);
  if ('outcome' in closed) return closed;
  await db.execute(
    `UPDATE inventory_positions SET reserved = reserved - ?, version = version + 1, updated_at = ?
     WHERE sku = ? AND location = ?`,
    [closed.quantity, now, closed.sku, closed.location],
  );
  const position = (await readPosition(db, closed.sku, closed.location))!;
  return { outcome: 'closed', reservation: closed, position };
}

/**
 * Expires active reservations whose time has come, oldest first, at most `limit` of them; call
 * again while it returns a full batch.
 */
export async function expireReservations(
  db: InventorySql,
  now: number,
  limit = 500,
): Promise<Array<{ reservation: ReservationRecord; position: StockPosition }>> {
  const due = await db.query(
    `SELECT id FROM inventory_reservations WHERE status = 'active' AND expires_at <= ?
     ORDER BY expires_at, id LIMIT ?`,
    [now, limit],
  );
  const expired: Array<{ reservation: ReservationRecord; position: StockPosition }> = [];
  for (const row of due) {
    const r = await releaseReservation(db, String(row.id), { reason: 'expired', now: () => now });
    if (r.outcome === 'closed') expired.push({ reservation: r.reservation, position: r.position });
  }
  return expired;
}

/** Creates an empty position so reservations against unknown stock are refused, not errors. */
export async function ensureStockPosition(
  db: InventorySql,
  sku: string,
  location: string,
  rules: AvailabilityRules = {},
  now = Date.now(),
): Promise<void> {
  await ensurePosition(db, sku, location, safetyStockFor(rules.safetyStock, sku, location), now);
}
