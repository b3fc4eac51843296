// What the order process asks of inventory: hold stock for an order's lines atomically (all or
// none), release it on cancellation, consume it on fulfilment. Runs inside the caller's handler
// transaction so the reservation commits with the order's state. `src/domains/inventory`
// implements it over the availability ledger.
import type { SqlRunner } from './sql.js';

export interface StockRequestLine {
  sku: string;
  quantity: number;
}

export type ReserveOutcome =
  | { ok: true; reservationIds: string[] }
  /** Nothing was reserved; `short` lists what was missing. */
  | { ok: false; short: Array<{ sku: string; requested: number; available: number }> };

export interface StockReservationPort {
  /**
   * Reserves every line at `location` for `orderId`, or none. Idempotent per order id: a second
   * call for the same order returns the first outcome's reservations.
   */
  reserve(
    tx: SqlRunner,
    req: {
      orderId: string;
      location: string;
      channel?: string;
      lines: readonly StockRequestLine[];
      expiresAt?: Date;
    },
  ): Promise<ReserveOutcome>;
  /** Releases what the order still holds (cancellation, rejection). Idempotent. */
  release(tx: SqlRunner, orderId: string, reason: string): Promise<void>;
  /**
   * Gives back part of what the order holds (lines cancelled or reduced): `lines` are the
   * quantities cut per SKU. Call it once per cut (the caller records cuts once).
   */
  releaseLines?(
    tx: SqlRunner,
    orderId: string,
    lines: readonly StockRequestLine[],
    reason: string,
  ): Promise<void>;
  /** Consumes the order's reservations (shipped / sold). Idempotent. */
  consume(tx: SqlRunner, orderId: string, lines?: readonly StockRequestLine[]): Promise<void>;
}
