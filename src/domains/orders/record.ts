// The persisted order process: one row per order (state, routing, sync bookkeeping), its
// transitions, the per-system sync steps and the exception list.
import type { OrderV1 } from '../../canonical/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { OrderState } from './states.js';

export interface OrderRecord {
  orderId: string;
  state: OrderState;
  /** What the process waits for besides events: `items`, `tax`, `erp`, `stock`. */
  waitingFor: string | null;
  channel: string;
  region: string;
  country: string | null;
  currency: string;
  /** Goods value after discounts, before tax and shipping (the loyalty basis). */
  netTotalMinor: number;
  customerId: string | null;
  customerProvisional: boolean;
  loyaltyMemberId: string | null;
  erpSystem: string | null;
  erpRule: string | null;
  erpReason: string | null;
  erpOrderId: string | null;
  fulfilmentMethod: 'ship' | 'pickup' | 'store_sale';
  fulfilmentLocation: string | null;
  commerceSystem: string | null;
  commerceOrderId: string | null;
  expectedDate: string | null;
  order: OrderV1;
  tax: unknown;
  /** Shipped quantity per order line id. */
  shipped: Record<string, number>;
  traceparent: string | null;
  acceptedAt: number;
  postedAt: number | null;
  updatedAt: number;
  version: number;
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function parse(text: unknown): unknown {
  return typeof text === 'string' && text !== '' ? (JSON.parse(text) as unknown) : null;
}

export function toRecord(r: Record<string, unknown>): OrderRecord {
  return {
    orderId: String(r.order_id),
    state: r.state as OrderState,
    waitingFor: str(r.waiting_for),
    channel: String(r.channel),
    region: String(r.region),
    country: str(r.country),
    currency: String(r.currency),
    netTotalMinor: Number(r.net_total_minor),
    customerId: str(r.customer_id),
    customerProvisional: Number(r.customer_provisional) === 1,
    loyaltyMemberId: str(r.loyalty_member_id),
    erpSystem: str(r.erp_system),
    erpRule: str(r.erp_rule),
    erpReason: str(r.erp_reason),
    erpOrderId: str(r.erp_order_id),
    fulfilmentMethod: r.fulfilment_method as OrderRecord['fulfilmentMethod'],
    fulfilmentLocation: str(r.fulfilment_location),
    commerceSystem: str(r.commerce_system),
    commerceOrderId: str(r.commerce_order_id),
    expectedDate: str(r.expected_date),
    order: parse(r.order_json) as OrderV1,
    tax: parse(r.tax_json),
    shipped: (parse(r.shipped_json) as Record<string, number> | null) ?? {},
    traceparent: str(r.traceparent),
    acceptedAt: Number(r.accepted_at),
    postedAt: num(r.posted_at),
    updatedAt: Number(r.updated_at),
    version: Number(r.version),
  };
}

export async function loadOrder(sql: SqlRunner, orderId: string): Promise<OrderRecord | undefined> {
  const [row] = await sql.query('SELECT * FROM order_processes WHERE order_id = ?', [orderId]);
  return row ? toRecord(row) : undefined;
}

export async function insertOrder(sql: SqlRunner, rec: OrderRecord): Promise<void> {
  await sql.execute(
    `INSERT INTO order_processes (order_id, state, waiting_for, channel, region, country, currency,
       net_total_minor, customer_id, customer_provisional, loyalty_member_id, erp_system, erp_rule,
       erp_reason, erp_order_id, fulfilment_method, fulfilment_location, commerce_system,
       commerce_order_id, expected_date, order_json, tax_json, shipped_json, traceparent,
       accepted_at, posted_at, updated_at, version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      rec.orderId,
      rec.state,
      rec.waitingFor,
      rec.channel,
      rec.region,
      rec.country,
      rec.currency,
      rec.netTotalMinor,
      rec.customerId,
      rec.customerProvisional ? 1 : 0,
      rec.loyaltyMemberId,
      rec.erpSystem,
      rec.erpRule,
      rec.erpReason,
      rec.erpOrderId,
      rec.fulfilmentMethod,
      rec.fulfilmentLocation,
      rec.commerceSystem,
      rec.commerceOrderId,
      rec.expectedDate,
      JSON.stringify(rec.order),
      rec.tax === null || rec.tax === undefined ? null : JSON.stringify(rec.tax),
      JSON.stringify(rec.shipped),
      rec.traceparent,
      rec.acceptedAt,
      rec.postedAt,
      rec.updatedAt,
      rec.version,
    ],
  );
}

export async function saveOrder(sql: SqlRunner, rec: OrderRecord): Promise<void> {
  await sql.execute(
    `UPDATE order_processes SET state = ?, waiting_for = ?, customer_id = ?,
       customer_provisional = ?, loyalty_member_id = ?, erp_system = ?, erp_rule = ?,
       erp_reason = ?, erp_order_id = ?, fulfilment_location = ?, expected_date = ?,
       order_json = ?, tax_json = ?, shipped_json = ?, posted_at = ?, updated_at = ?,
       version = ?
     WHERE order_id = ?`,
    [
      rec.state,
      rec.waitingFor,
      rec.customerId,
      rec.customerProvisional ? 1 : 0,
      rec.loyaltyMemberId,
      rec.erpSystem,
      rec.erpRule,
      rec.erpReason,
      rec.erpOrderId,
      rec.fulfilmentLocation,
      rec.expectedDate,
      JSON.stringify(rec.order),
      rec.tax === null || rec.tax === undefined ? null : JSON.stringify(rec.tax),
      JSON.stringify(rec.shipped),
      rec.postedAt,
      rec.updatedAt,
      rec.version,
      rec.orderId,
    ],
  );
}

export interface SyncStep {
  step: string;
  system: string;
  action: string;
  idempotencyKey: string;
  status: 'pending' | 'done' | 'refused';
  requestedAt: number;
  acknowledgedAt: number | null;
}

export async function syncSteps(sql: SqlRunner, orderId: string): Promise<SyncStep[]> {
  const rows = await sql.query(
    'SELECT * FROM order_sync WHERE order_id = ? ORDER BY requested_at, step',
    [orderId],
  );
  return rows.map((r) => ({
    step: String(r.step),
    system: String(r.system),
    action: String(r.action),
    idempotencyKey: String(r.idempotency_key),
    status: r.status as SyncStep['status'],
    requestedAt: Number(r.requested_at),
    acknowledgedAt: num(r.acknowledged_at),
  }));
}

export interface OrderException {
  id: string;
  orderId: string;
  kind: string;
  reason: string;
  detail: unknown;
  status: 'open' | 'resolved';
  createdAt: number;
  resolvedAt: number | null;
}

export function toException(r: Record<string, unknown>): OrderException {
  return {
    id: String(r.id),
    orderId: String(r.order_id),
    kind: String(r.kind),
    reason: String(r.reason),
    detail: parse(r.detail),
    status: r.status as OrderException['status'],
    createdAt: Number(r.created_at),
    resolvedAt: num(r.resolved_at),
  };
}

/**
 * Opens (or re-opens) the order's exception of `kind`. True when it was not open before, so
 * the caller counts each parking once.
 */
export async function openException(
  sql: SqlRunner,
  orderId: string,
  kind: string,
  reason: string,
  detail: unknown,
  now: number,
): Promise<boolean> {
  const [existing] = await sql.query<{ status: string }>(
    'SELECT status FROM order_exceptions WHERE order_id = ? AND kind = ?',
    [orderId, kind],
  );
  const detailJson = detail === undefined ? null : JSON.stringify(detail);
  if (!existing) {
    await sql.execute(
      `INSERT INTO order_exceptions (id, order_id, kind, reason, detail, status, created_at)
       VALUES (?, ?, ?, ?, ?, 'open', ?)`,
      [`${orderId}/${kind}`, orderId, kind, reason, detailJson, now],
    );
    return true;
  }
  await sql.execute(
    `UPDATE order_exceptions SET reason = ?, detail = ?, status = 'open', resolved_at = NULL
     WHERE order_id = ? AND kind = ?`,
    [reason, detailJson, orderId, kind],
  );
  return existing.status !== 'open';
}

export async function resolveException(
  sql: SqlRunner,
  orderId: string,
  kind: string,
  now: number,
): Promise<void> {
  await sql.execute(
    `UPDATE order_exceptions SET status = 'resolved', resolved_at = ?
     WHERE order_id = ? AND kind = ? AND status = 'open'`,
    [now, orderId, kind],
  );
}

export async function exceptionsOf(sql: SqlRunner, orderId: string): Promise<OrderException[]> {
  const rows = await sql.query(
    'SELECT * FROM order_exceptions WHERE order_id = ? ORDER BY created_at, kind',
    [orderId],
  );
  return rows.map(toException);
}

/** Records an identifier of the order in another system (channel, ERP, POS receipt). */
export async function recordIdentifier(
  sql: SqlRunner,
  system: string,
  externalId: string,
  orderId: string,
): Promise<void> {
  await sql.execute(
    `INSERT INTO order_identifiers (system, external_id, order_id) VALUES (?, ?, ?)
     ON CONFLICT (system, external_id) DO NOTHING`,
    [system, externalId, orderId],
  );
}

/**
 * The order an identifier names: a Middlemart order id, or an id of the order in any system
 * (commerce order number, ERP sales order, POS receipt), optionally of a named system.
 */
export async function findOrderByIdentifier(
  sql: SqlRunner,
  id: string,
  system?: string,
): Promise<OrderRecord | undefined> {
  const direct = await loadOrder(sql, id);
  if (direct) return direct;
  const rows = await sql.query<{ order_id: string }>(
    system
      ? 'SELECT order_id FROM order_identifiers WHERE external_id = ? AND system = ?'
      : 'SELECT order_id FROM order_identifiers WHERE external_id = ? ORDER BY system',
    system ? [id, system] : [id],
  );
  const first = rows[0];
  return first ? loadOrder(sql, first.order_id) : undefined;
}
