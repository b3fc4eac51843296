// Amendments of an order whose stock is held or whose sale is booked: lines cancelled or reduced
// at the channel (`order.updated` with smaller quantities, `order.cancelled` with line ids). Each
// is recorded once (`order_amendments`, migration 4001) with what it took off; the ERP is asked
// to keep the remaining quantities (`erp.cancel-sales-order` with lines) as soon as the sale is
// booked, and the loyalty points of the value taken off are reversed once the accrual stands.
import type { SqlRunner } from '../../ports/sql.js';

export interface LineReduction {
  lineId: string;
  sku: string;
  erpItemId?: string;
  /** Quantity before the amendment. */
  from: number;
  /** Quantity after it (0: the line is cancelled). */
  to: number;
}

export interface Amendment {
  seq: number;
  reductions: LineReduction[];
  /** Goods value after discounts taken off the order (the loyalty basis). */
  removedNetMinor: number;
  reason: string;
  /** `waiting` for the ERP's booking, `requested` from the ERP. */
  status: 'waiting' | 'requested';
  createdAt: number;
}

function toAmendment(r: Record<string, unknown>): Amendment {
  const body = JSON.parse(String(r.lines_json)) as {
    reductions: LineReduction[];
    removedNetMinor: number;
  };
  return {
    seq: Number(r.seq),
    reductions: body.reductions,
    removedNetMinor: Number(body.removedNetMinor ?? 0),
    reason: r.reason === null || r.reason === undefined ? '' : String(r.reason),
    status: r.status as Amendment['status'],
    createdAt: Number(r.created_at),
  };
}

export async function nextAmendment(sql: SqlRunner, orderId: string): Promise<number> {
  const [row] = await sql.query<{ seq: number | null }>(
    'SELECT MAX(seq) AS seq FROM order_amendments WHERE order_id = ?',
    [orderId],
  );
  return Number(row?.seq ?? 0) + 1;
}

export async function recordAmendment(
  sql: SqlRunner,
  a: {
    orderId: string;
    seq: number;
    reductions: readonly LineReduction[];
    removedNetMinor: number;
    reason: string;
    status: Amendment['status'];
    messageId: string;
    at: number;
  },
): Promise<void> {
  await sql.execute(
    `INSERT INTO order_amendments (order_id, seq, lines_json, reason, status, message_id, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [
      a.orderId,
      a.seq,
      JSON.stringify({ reductions: a.reductions, removedNetMinor: a.removedNetMinor }),
      a.reason.slice(0, 500),
      a.status,
      a.messageId,
      a.at,
    ],
  );
}

/** Every amendment of the order, oldest first. */
export async function amendedLines(sql: SqlRunner, orderId: string): Promise<Amendment[]> {
  const rows = await sql.query('SELECT * FROM order_amendments WHERE order_id = ? ORDER BY seq', [
    orderId,
  ]);
  return rows.map(toAmendment);
}

/** Amendments made before the ERP booked the sale. */
export async function waitingAmendments(sql: SqlRunner, orderId: string): Promise<Amendment[]> {
  return (await amendedLines(sql, orderId)).filter((a) => a.status === 'waiting');
}

export async function markAmendments(
  sql: SqlRunner,
  orderId: string,
  seqs: readonly number[],
  status: Amendment['status'],
): Promise<void> {
  for (const seq of seqs) {
    await sql.execute('UPDATE order_amendments SET status = ? WHERE order_id = ? AND seq = ?', [
      status,
      orderId,
      seq,
    ]);
  }
}
