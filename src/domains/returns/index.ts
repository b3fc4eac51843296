// Returns: a customer brings goods back against an original order, maybe in another channel
// than the one it was bought in (an online order returned in a store). The process reconciles
// the original order across its identifiers, checks refund eligibility, and then, each as its
// own delivery or event: books the ERP credit, restocks the return location (or writes damaged
// goods off), takes back the loyalty points and adds the CRM timeline entry. The return
// completes when the ERP acknowledges the credit. A return is processed once per return id;
// an ineligible one is rejected with its reasons, stored and readable.
import { ReturnV1, makeEvent } from '../../canonical/index.js';
import type { ErpCredit } from '../../ports/erp.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { SystemAcknowledgement, SystemAction } from '../../ports/system-actions.js';
import {
  PermanentError,
  type HandlerTx,
  type MessageHandler,
  type QueuedMessage,
} from '../../runtime/index.js';
import { acknowledgeMovement, requestReversal, type LoyaltyRule } from '../loyalty/index.js';
import { findOrderByIdentifier, type OrderRecord } from '../orders/record.js';

type Condition = 'new' | 'opened' | 'used' | 'damaged' | 'defective';

export interface ReturnSettings {
  windowDays: number;
  finalSaleSkus: readonly string[];
  refusedConditions: readonly Condition[];
  writeOffConditions: readonly Condition[];
  loyalty: LoyaltyRule;
  systems: { crm?: string };
}

export const RETURN_MIGRATIONS = [
  {
    version: 4100,
    name: 'returns: return process, returned quantities, sync steps, restock sequence',
    sql: `
CREATE TABLE return_processes (
  return_id TEXT PRIMARY KEY,
  order_ref TEXT NOT NULL,
  order_id TEXT,
  state TEXT NOT NULL,
  reason TEXT,
  return_json TEXT NOT NULL,
  currency TEXT NOT NULL,
  refund_total_minor BIGINT,
  erp_system TEXT,
  erp_credit_id TEXT,
  restocked_json TEXT,
  written_off_json TEXT,
  loyalty_points INTEGER,
  traceparent TEXT,
  requested_at BIGINT NOT NULL,
  completed_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX return_processes_order ON return_processes (order_id);
CREATE TABLE return_lines (
  return_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  order_line_id TEXT NOT NULL,
  sku TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  refund_minor BIGINT NOT NULL,
  disposition TEXT NOT NULL,
  PRIMARY KEY (return_id, order_line_id)
);
CREATE INDEX return_lines_order ON return_lines (order_id, order_line_id);
CREATE TABLE return_sync (
  return_id TEXT NOT NULL,
  step TEXT NOT NULL,
  system TEXT NOT NULL,
  action TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  status TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  acknowledged_at BIGINT,
  PRIMARY KEY (return_id, step)
);
CREATE TABLE return_stock_sequences (
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (sku, location)
)`,
  },
] as const;

/** The source system named on restock adjustments the return process emits. */
export const RETURNS_SOURCE_SYSTEM = 'middlemart-returns';
const SOURCE = '/middlemart/returns';
const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

function dataOf(message: QueuedMessage): unknown {
  const p = message.payload as Record<string, unknown> | null;
  if (p && typeof p === 'object' && 'specversion' in p && 'data' in p) return p.data;
  return p;
}

interface PlannedLine {
  orderLineId: string;
  sku: string;
  erpItemId?: string;
  quantity: number;
  refundMinor: number;
  disposition: 'restock' | 'write-off';
}

const BOOKED = new Set(['posted', 'partially_fulfilled', 'fulfilled', 'closed']);

/** Why a return is not refunded (empty when it is), and how each line is refunded. */
export async function checkEligibility(
  sql: SqlRunner,
  ret: ReturnV1,
  order: OrderRecord,
  settings: ReturnSettings,
): Promise<{ reasons: string[]; lines: PlannedLine[] }> {
  const reasons: string[] = [];
  const lines: PlannedLine[] = [];
  if (!BOOKED.has(order.state)) {
    reasons.push(`order ${order.orderId} is not booked yet (state ${order.state})`);
  }
  if (ret.currency !== order.currency) {
    reasons.push(`the return is in ${ret.currency} but the order was paid in ${order.currency}`);
  }
  const placed = Date.parse(order.order.placedAt);
  const requested = Date.parse(ret.requestedAt);
  const days = Math.floor((requested - placed) / DAY_MS);
  if (requested - placed > settings.windowDays * DAY_MS) {
    reasons.push(
      `requested ${days} days after the order was placed (${order.order.placedAt.slice(0, 10)}); the return window is ${settings.windowDays} days`,
    );
  }
  for (const l of ret.lines) {
    const line = order.order.lines.find((x) => x.lineId === l.orderLineId);
    if (!line) {
      reasons.push(`line ${l.orderLineId} is not on order ${order.orderId}`);
      continue;
    }
    if (line.sku !== l.sku) {
      reasons.push(`line ${l.orderLineId} sold ${line.sku}, not ${l.sku}`);
      continue;
    }
    if (settings.finalSaleSkus.includes(l.sku)) {
      reasons.push(`${l.sku} was sold as final sale`);
      continue;
    }
    if (l.condition && settings.refusedConditions.includes(l.condition)) {
      reasons.push(`${l.sku} came back ${l.condition}, which is not refunded`);
      continue;
    }
    const [prior] = await sql.query<{ q: number | null }>(
      `SELECT SUM(rl.quantity) AS q FROM return_lines rl
       JOIN return_processes rp ON rp.return_id = rl.return_id
       WHERE rl.order_id = ? AND rl.order_line_id = ? AND rp.state <> 'rejected'`,
      [order.orderId, l.orderLineId],
    );
    const already = Number(prior?.q ?? 0);
    if (already + l.quantity > line.quantity) {
      reasons.push(
        `line ${l.orderLineId} (${l.sku}): ${l.quantity} returned now, ${already} returned before, ${line.quantity} bought`,
      );
      continue;
    }
    const lineValue =
      line.quantity * line.unitPrice.amount -
      line.discounts.reduce((a, d) => a + d.amount.amount, 0) +
      (order.order.pricesIncludeTax ? 0 : line.taxes.reduce((a, t) => a + t.amount.amount, 0));
    const refund = Math.round((lineValue * l.quantity) / line.quantity);
    const damaged =
      l.condition !== undefined
        ? settings.writeOffConditions.includes(l.condition)
        : l.reason === 'damaged' || l.reason === 'defective';
    lines.push({
      orderLineId: l.orderLineId,
      sku: l.sku,
      ...(line.erpItemId ? { erpItemId: line.erpItemId } : {}),
      quantity: l.quantity,
      refundMinor: refund,
      disposition: damaged ? 'write-off' : 'restock',
    });
  }
  return { reasons, lines };
}

export interface ReturnView {
  id: string;
  orderRef: string;
  orderId: string | null;
  state: string;
  reason: string | null;
  currency: string;
  refundTotalMinor: number | null;
  erp: { system: string | null; creditId: string | null };
  restocked: unknown;
  writtenOff: unknown;
  loyaltyPointsReversed: number | null;
  requestedAt: string;
  completedAt: string | null;
  sync: Array<{ step: string; system: string; action: string; status: string }>;
}

export async function returnView(
  sql: SqlRunner,
  returnId: string,
): Promise<ReturnView | undefined> {
  const [r] = await sql.query('SELECT * FROM return_processes WHERE return_id = ?', [returnId]);
  if (!r) return undefined;
  const steps = await sql.query<{ step: string; system: string; action: string; status: string }>(
    'SELECT step, system, action, status FROM return_sync WHERE return_id = ? ORDER BY requested_at, step',
    [returnId],
  );
  const parse = (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as unknown) : null);
  return {
    id: String(r.return_id),
    orderRef: String(r.order_ref),
    orderId: r.order_id === null ? null : String(r.order_id),
    state: String(r.state),
    reason: r.reason === null ? null : String(r.reason),
    currency: String(r.currency),
    refundTotalMinor: r.refund_total_minor === null ? null : Number(r.refund_total_minor),
    erp: {
      system: r.erp_system === null ? null : String(r.erp_system),
      creditId: r.erp_credit_id === null ? null : String(r.erp_credit_id),
    },
    restocked: parse(r.restocked_json) ?? [],
    writtenOff: parse(r.written_off_json) ?? [],
    loyaltyPointsReversed: r.loyalty_points === null ? null : Number(r.loyalty_points),
    requestedAt: iso(Number(r.requested_at)),
    completedAt: r.completed_at === null ? null : iso(Number(r.completed_at)),
    sync: steps,
  };
}

export class ReturnProcess {
  private readonly now: () => number;

  constructor(
    private readonly settings: ReturnSettings,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  handlers(): Record<string, MessageHandler> {
    return { 'com.middlemart.return.requested.v1': (m, tx) => this.returnRequested(m, tx) };
  }

  private async returnRequested(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = ReturnV1.safeParse(dataOf(message));
    if (!parsed.success) {
      throw new PermanentError(
        `return.requested: not a canonical return: ${parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')}`,
      );
    }
    const ret = parsed.data;
    const [seen] = await tx.query('SELECT state FROM return_processes WHERE return_id = ?', [
      ret.id,
    ]);
    if (seen) return; // the same return again: no second effect
    const now = this.now();
    const order = await findOrderByIdentifier(tx, ret.orderId);
    const base = {
      returnId: ret.id,
      orderRef: ret.orderId,
      json: JSON.stringify(ret),
      currency: ret.currency,
      traceparent: message.traceparent ?? null,
      requestedAt: Date.parse(ret.requestedAt),
    };
    if (!order) {
      await this.insert(tx, base, null, 'rejected', now, {
        reason: `original order ${ret.orderId} not found by Middlemart id, commerce order number, ERP sales order or POS receipt`,
      });
      return;
    }
    const { reasons, lines } = await checkEligibility(tx, ret, order, this.settings);
    if (reasons.length > 0) {
      await this.insert(tx, base, order.orderId, 'rejected', now, { reason: reasons.join('; ') });
      return;
    }
    const refundTotal = lines.reduce((a, l) => a + l.refundMinor, 0);
    const restock = lines.filter((l) => l.disposition === 'restock');
    const writeOff = lines.filter((l) => l.disposition === 'write-off');
    const location = ret.returnLocation.location;
    await this.insert(tx, base, order.orderId, 'approved', now, {
      refundTotal,
      erpSystem: order.erpSystem,
      restocked: restock.map((l) => ({ sku: l.sku, quantity: l.quantity, location })),
      writtenOff: writeOff.map((l) => ({ sku: l.sku, quantity: l.quantity })),
    });
    for (const l of lines) {
      await tx.execute(
        `INSERT INTO return_lines (return_id, order_id, order_line_id, sku, quantity, refund_minor, disposition)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [ret.id, order.orderId, l.orderLineId, l.sku, l.quantity, l.refundMinor, l.disposition],
      );
    }

    // ERP credit: critical, to the ERP that booked the sale, once per return id.
    const credit: ErpCredit = {
      externalReference: ret.id,
      ...(order.erpOrderId ? { erpOrderId: order.erpOrderId } : {}),
      orderExternalReference: order.orderId,
      currency: ret.currency,
      ...(order.customerId ? { party: { customerId: order.customerId } } : {}),
      lines: lines.map((l) => ({
        sku: l.sku,
        ...(l.erpItemId ? { erpItemId: l.erpItemId } : {}),
        quantity: l.quantity,
        unitPriceMinor: Math.round(l.refundMinor / l.quantity),
      })),
      reason: ret.lines.map((l) => l.reason).join(', '),
    };
    await this.requestStep(
      tx,
      ret.id,
      'erp',
      order.erpSystem!,
      { action: 'erp.post-credit', correlation: { process: 'return', id: ret.id }, credit },
      true,
    );

    // Restock the return location: one canonical adjustment per line, sequenced per SKU there.
    for (const l of restock) {
      const seq = await this.nextSequence(tx, l.sku, location);
      await tx.emit({
        type: 'com.middlemart.inventory.adjusted.v1',
        partitionKey: `${l.sku}@${location}`,
        idempotencyKey: `return/${ret.id}/restock/${l.orderLineId}`,
        priority: 'standard',
        payload: makeEvent(
          'inventory.adjusted',
          {
            sku: l.sku,
            location,
            reason: 'return',
            delta: l.quantity,
            sourceSystem: RETURNS_SOURCE_SYSTEM,
            sourceSequence: seq,
            sourceTimestamp: ret.requestedAt,
          },
          {
            source: SOURCE,
            id: `return/${ret.id}/restock/${l.orderLineId}`,
            ...(message.traceparent ? { traceparent: message.traceparent } : {}),
          },
        ),
      });
    }

    // Loyalty: take back the points the refunded value earned (never more than were earned).
    const reversal = await requestReversal(tx, {
      orderId: order.orderId,
      returnId: ret.id,
      refundMinor: refundTotal,
      currency: ret.currency,
      rule: this.settings.loyalty,
      now,
    });
    if (reversal) {
      await this.recordStep(
        tx,
        ret.id,
        'loyalty:reverse',
        reversal.system,
        'loyalty.reverse',
        reversal.idempotencyKey,
      );
      await tx.execute('UPDATE return_processes SET loyalty_points = ? WHERE return_id = ?', [
        reversal.points,
        ret.id,
      ]);
    }

    const crm = this.settings.systems.crm;
    if (crm) {
      await this.requestStep(tx, ret.id, 'crm', crm, {
        action: 'crm.timeline-entry',
        correlation: { process: 'return', id: ret.id },
        ...(order.customerId ? { customerId: order.customerId } : {}),
        ...(order.order.customer.email ? { email: order.order.customer.email } : {}),
        kind: 'return',
        summary: `Return ${ret.id} of order ${order.commerceOrderId ?? order.orderId} at ${location}: ${lines
          .map((l) => `${l.quantity} × ${l.sku}`)
          .join(', ')}`,
        orderId: order.orderId,
        amountMinor: refundTotal,
        currency: ret.currency,
        at: ret.requestedAt,
      });
    }
  }

  /** Acknowledgements of the return's actions (partitioned by return id). */
  async acknowledged(ack: SystemAcknowledgement, tx: HandlerTx): Promise<void> {
    const returnId = ack.correlation.id;
    const [step] = await tx.query<{ step: string; status: string }>(
      'SELECT step, status FROM return_sync WHERE return_id = ? AND idempotency_key = ?',
      [returnId, ack.idempotencyKey],
    );
    if (!step || step.status === 'done') return;
    const at = Date.parse(ack.at);
    const ackAt = Number.isFinite(at) ? at : this.now();
    await tx.execute(
      `UPDATE return_sync SET status = 'done', acknowledged_at = ? WHERE return_id = ? AND step = ?`,
      [ackAt, returnId, step.step],
    );
    if (ack.action === 'loyalty.reverse') await acknowledgeMovement(tx, ack.idempotencyKey, ackAt);
    if (ack.action === 'erp.post-credit') await this.creditBooked(tx, returnId, ack, ackAt);
  }

  private async creditBooked(
    tx: HandlerTx,
    returnId: string,
    ack: SystemAcknowledgement,
    at: number,
  ): Promise<void> {
    const [r] = await tx.query<{
      state: string;
      return_json: string;
      order_id: string;
      refund_total_minor: number;
    }>(
      'SELECT state, return_json, order_id, refund_total_minor FROM return_processes WHERE return_id = ?',
      [returnId],
    );
    if (!r || r.state !== 'approved') return;
    const creditId = (ack.result as { erpCreditId?: unknown } | undefined)?.erpCreditId;
    await tx.execute(
      `UPDATE return_processes SET state = 'completed', erp_credit_id = ?, completed_at = ?, updated_at = ?
       WHERE return_id = ?`,
      [typeof creditId === 'string' ? creditId : null, at, this.now(), returnId],
    );
    const ret = JSON.parse(r.return_json) as ReturnV1;
    const lines = await tx.query<{ order_line_id: string; refund_minor: number }>(
      'SELECT order_line_id, refund_minor FROM return_lines WHERE return_id = ?',
      [returnId],
    );
    const refunds = new Map(lines.map((l) => [l.order_line_id, Number(l.refund_minor)]));
    const completedAt = new Date(Math.max(at, Date.parse(ret.requestedAt))).toISOString();
    const completed: ReturnV1 = {
      ...ret,
      orderId: r.order_id,
      status: 'completed',
      lines: ret.lines.map((l) => ({
        ...l,
        refundAmount: { amount: refunds.get(l.orderLineId) ?? 0, currency: ret.currency },
      })),
      refundTotal: { amount: Number(r.refund_total_minor), currency: ret.currency },
      completedAt,
    };
    const id = `return/${returnId}/completed`;
    await tx.emit({
      type: 'com.middlemart.return.completed.v1',
      partitionKey: r.order_id,
      idempotencyKey: id,
      payload: makeEvent('return.completed', completed, { source: SOURCE, id }),
    });
  }

  private async insert(
    tx: HandlerTx,
    base: {
      returnId: string;
      orderRef: string;
      json: string;
      currency: string;
      traceparent: string | null;
      requestedAt: number;
    },
    orderId: string | null,
    state: 'approved' | 'rejected',
    now: number,
    more: {
      reason?: string;
      refundTotal?: number;
      erpSystem?: string | null;
      restocked?: unknown;
      writtenOff?: unknown;
    },
  ): Promise<void> {
    await tx.execute(
      `INSERT INTO return_processes (return_id, order_ref, order_id, state, reason, return_json,
         currency, refund_total_minor, erp_system, restocked_json, written_off_json, traceparent,
         requested_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        base.returnId,
        base.orderRef,
        orderId,
        state,
        more.reason ?? null,
        base.json,
        base.currency,
        more.refundTotal ?? null,
        more.erpSystem ?? null,
        more.restocked === undefined ? null : JSON.stringify(more.restocked),
        more.writtenOff === undefined ? null : JSON.stringify(more.writtenOff),
        base.traceparent,
        base.requestedAt,
        now,
      ],
    );
  }

  private async nextSequence(tx: SqlRunner, sku: string, location: string): Promise<number> {
    await tx.execute(
      `INSERT INTO return_stock_sequences (sku, location, seq) VALUES (?, ?, 1)
       ON CONFLICT (sku, location) DO UPDATE SET seq = return_stock_sequences.seq + 1`,
      [sku, location],
    );
    const [row] = await tx.query<{ seq: number }>(
      'SELECT seq FROM return_stock_sequences WHERE sku = ? AND location = ?',
      [sku, location],
    );
    return Number(row?.seq ?? 1);
  }

  private async recordStep(
    tx: HandlerTx,
    returnId: string,
    step: string,
    system: string,
    action: string,
    key: string,
  ): Promise<boolean> {
    const r = await tx.execute(
      `INSERT INTO return_sync (return_id, step, system, action, idempotency_key, status, requested_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (return_id, step) DO NOTHING`,
      [returnId, step, system, action, key, this.now()],
    );
    return r.changes > 0;
  }

  private async requestStep(
    tx: HandlerTx,
    returnId: string,
    step: string,
    system: string,
    action: SystemAction,
    critical = false,
  ): Promise<void> {
    const key = `return/${returnId}/${step}`;
    if (!(await this.recordStep(tx, returnId, step, system, action.action, key))) return;
    await tx.deliver({
      destination: system,
      payload: action,
      idempotencyKey: key,
      ...(critical ? { priority: 'critical' as const } : {}),
    });
  }
}
