// The loyalty domain: the points rule, and the movements Middlemart asked the loyalty programme
// for. One accrual per order and one reversal per return (their idempotency keys), and a
// reversal never takes back more than the order earned: however often an order or a return is
// processed, a member's balance moves once.
import { ISO_4217_MINOR_UNITS } from '../../canonical/index.js';
import type { SystemAction } from '../../ports/system-actions.js';
import type { HandlerTx } from '../../runtime/index.js';
import type { SqlRunner } from '../../ports/sql.js';

export interface LoyaltyRule {
  /** Points per whole currency unit spent (after discounts). */
  pointsPerCurrencyUnit: number;
}

/** Points earned for `amountMinor` of `currency` under `rule` (rounded down). */
export function pointsFor(amountMinor: number, currency: string, rule: LoyaltyRule): number {
  if (amountMinor <= 0 || rule.pointsPerCurrencyUnit <= 0) return 0;
  const digits = (ISO_4217_MINOR_UNITS as Record<string, number>)[currency] ?? 2;
  const units = amountMinor / 10 ** digits;
  return Math.floor(units * rule.pointsPerCurrencyUnit + 1e-9);
}

export const LOYALTY_MIGRATIONS = [
  {
    version: 4200,
    name: 'loyalty: movements asked of the loyalty programme',
    sql: `
CREATE TABLE loyalty_movements (
  idempotency_key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  system TEXT NOT NULL,
  member_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  return_id TEXT,
  points INTEGER NOT NULL,
  amount_minor BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  acknowledged_at BIGINT
);
CREATE INDEX loyalty_movements_order ON loyalty_movements (order_id, kind)`,
  },
] as const;

export function accrualKey(orderId: string): string {
  return `loyalty/accrue/${orderId}`;
}

export function reversalKey(returnId: string): string {
  return `loyalty/reverse/${returnId}`;
}

export interface LoyaltyMovement {
  idempotencyKey: string;
  kind: 'accrue' | 'reverse';
  system: string;
  memberId: string;
  orderId: string;
  returnId: string | null;
  points: number;
  amountMinor: number;
  currency: string;
  status: 'requested' | 'acknowledged';
  requestedAt: number;
  acknowledgedAt: number | null;
}

function toMovement(r: Record<string, unknown>): LoyaltyMovement {
  return {
    idempotencyKey: String(r.idempotency_key),
    kind: r.kind as LoyaltyMovement['kind'],
    system: String(r.system),
    memberId: String(r.member_id),
    orderId: String(r.order_id),
    returnId: r.return_id === null ? null : String(r.return_id),
    points: Number(r.points),
    amountMinor: Number(r.amount_minor),
    currency: String(r.currency),
    status: r.status as LoyaltyMovement['status'],
    requestedAt: Number(r.requested_at),
    acknowledgedAt: r.acknowledged_at === null ? null : Number(r.acknowledged_at),
  };
}

/** The movements of an order (its accrual and the reversals of its returns). */
export async function movementsOfOrder(
  sql: SqlRunner,
  orderId: string,
): Promise<LoyaltyMovement[]> {
  const rows = await sql.query(
    'SELECT * FROM loyalty_movements WHERE order_id = ? ORDER BY requested_at, idempotency_key',
    [orderId],
  );
  return rows.map(toMovement);
}

/**
 * Asks the loyalty programme to credit the order's points, once per order. Returns the
 * movement, or undefined when the order earns nothing or was already credited.
 */
export async function requestAccrual(
  tx: HandlerTx,
  req: {
    system: string;
    memberId: string;
    orderId: string;
    amountMinor: number;
    currency: string;
    rule: LoyaltyRule;
    now: number;
  },
): Promise<{ idempotencyKey: string; points: number } | undefined> {
  const points = pointsFor(req.amountMinor, req.currency, req.rule);
  if (points <= 0) return undefined;
  const key = accrualKey(req.orderId);
  const inserted = await tx.execute(
    `INSERT INTO loyalty_movements (idempotency_key, kind, system, member_id, order_id, points,
       amount_minor, currency, status, requested_at)
     VALUES (?, 'accrue', ?, ?, ?, ?, ?, ?, 'requested', ?)
     ON CONFLICT (idempotency_key) DO NOTHING`,
    [key, req.system, req.memberId, req.orderId, points, req.amountMinor, req.currency, req.now],
  );
  if (inserted.changes === 0) return undefined;
  const action: SystemAction = {
    action: 'loyalty.accrue',
    correlation: { process: 'order', id: req.orderId },
    memberId: req.memberId,
    points,
    orderId: req.orderId,
    amountMinor: req.amountMinor,
    currency: req.currency,
  };
  await tx.deliver({ destination: req.system, payload: action, idempotencyKey: key });
  return { idempotencyKey: key, points };
}

/**
 * Asks the loyalty programme to take back the points of a return's refund, once per return and
 * never more than the order earned minus what earlier returns took back. Undefined when the
 * order earned nothing, or nothing is left to take back, or the return was already reversed.
 */
export async function requestReversal(
  tx: HandlerTx,
  req: {
    orderId: string;
    /** The return's id; for an order's own cancellation, `cancel-<order id>` and the like. */
    returnId: string;
    /** The refund's value; `'all'`: whatever the order earned and kept (a cancelled order). */
    refundMinor: number | 'all';
    currency: string;
    rule: LoyaltyRule;
    now: number;
    /** Who hears the acknowledgement (default: the return). */
    correlation?: { process: string; id: string };
  },
): Promise<{ idempotencyKey: string; points: number; system: string } | undefined> {
  const movements = await movementsOfOrder(tx, req.orderId);
  const accrual = movements.find((m) => m.kind === 'accrue');
  if (!accrual) return undefined;
  const key = reversalKey(req.returnId);
  if (movements.some((m) => m.idempotencyKey === key)) return undefined;
  const reversed = movements.filter((m) => m.kind === 'reverse').reduce((a, m) => a + m.points, 0);
  const points = Math.min(
    req.refundMinor === 'all' ? accrual.points : pointsFor(req.refundMinor, req.currency, req.rule),
    accrual.points - reversed,
  );
  if (points <= 0) return undefined;
  await tx.execute(
    `INSERT INTO loyalty_movements (idempotency_key, kind, system, member_id, order_id, return_id,
       points, amount_minor, currency, status, requested_at)
     VALUES (?, 'reverse', ?, ?, ?, ?, ?, ?, ?, 'requested', ?)`,
    [
      key,
      accrual.system,
      accrual.memberId,
      req.orderId,
      req.returnId,
      points,
      req.refundMinor === 'all' ? accrual.amountMinor : req.refundMinor,
      req.currency,
      req.now,
    ],
  );
  const action: SystemAction = {
    action: 'loyalty.reverse',
    correlation: req.correlation ?? { process: 'return', id: req.returnId },
    memberId: accrual.memberId,
    points,
    orderId: req.orderId,
    returnId: req.returnId,
  };
  await tx.deliver({ destination: accrual.system, payload: action, idempotencyKey: key });
  return { idempotencyKey: key, points, system: accrual.system };
}

/** Marks a movement acknowledged by the programme (idempotent). */
export async function acknowledgeMovement(
  tx: SqlRunner,
  idempotencyKey: string,
  at: number,
): Promise<boolean> {
  const r = await tx.execute(
    `UPDATE loyalty_movements SET status = 'acknowledged', acknowledged_at = ?
     WHERE idempotency_key = ? AND status = 'requested'`,
    [at, idempotencyKey],
  );
  return r.changes > 0;
}

/** The order's accrual movement, when one was asked for. */
export async function accrualOf(
  sql: SqlRunner,
  orderId: string,
): Promise<LoyaltyMovement | undefined> {
  return (await movementsOfOrder(sql, orderId)).find((m) => m.kind === 'accrue');
}
