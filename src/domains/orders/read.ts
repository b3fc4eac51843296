// What the read APIs and metrics ask of the order process: one order's state with its
// per-system sync status, transitions and exceptions; the exception list; orders by state.
import type { SqlRunner } from '../../ports/sql.js';
import { movementsOfOrder } from '../loyalty/index.js';
import { exceptionsOf, loadOrder, syncSteps, toException, type OrderException } from './record.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface OrderView {
  id: string;
  state: string;
  waitingFor: string | null;
  channel: string;
  region: string;
  customer: { id: string | null; provisional: boolean };
  erp: {
    system: string | null;
    rule: string | null;
    reason: string | null;
    orderId: string | null;
  };
  fulfilment: { method: string; location: string | null; expectedDate: string | null };
  commerceOrderId: string | null;
  traceId: string | null;
  acceptedAt: string;
  postedAt: string | null;
  updatedAt: string;
  /** Per system and action: pending until the system acknowledged. */
  sync: Array<{
    step: string;
    system: string;
    action: string;
    status: string;
    requestedAt: string;
    acknowledgedAt: string | null;
  }>;
  inSync: string[];
  pending: string[];
  /** Systems that refused an action permanently (dead-lettered; an operator replays it). */
  refused: string[];
  exceptions: ExceptionView[];
  transitions: Array<{ from: string | null; to: string; reason: string | null; at: string }>;
  loyalty: Array<{ kind: string; points: number; status: string; returnId: string | null }>;
  identifiers: Array<{ system: string; id: string }>;
}

export interface ExceptionView {
  id: string;
  orderId: string;
  kind: string;
  reason: string;
  status: string;
  detail: unknown;
  createdAt: string;
  resolvedAt: string | null;
}

function exceptionView(e: OrderException): ExceptionView {
  return {
    id: e.id,
    orderId: e.orderId,
    kind: e.kind,
    reason: e.reason,
    status: e.status,
    detail: e.detail ?? null,
    createdAt: iso(e.createdAt)!,
    resolvedAt: iso(e.resolvedAt),
  };
}

export async function orderView(sql: SqlRunner, orderId: string): Promise<OrderView | undefined> {
  const rec = await loadOrder(sql, orderId);
  if (!rec) return undefined;
  const steps = await syncSteps(sql, orderId);
  const transitions = await sql.query<{
    from_state: string | null;
    to_state: string;
    reason: string | null;
    at: number;
  }>(
    'SELECT from_state, to_state, reason, at FROM order_transitions WHERE order_id = ? ORDER BY seq',
    [orderId],
  );
  const ids = await sql.query<{ system: string; external_id: string }>(
    'SELECT system, external_id FROM order_identifiers WHERE order_id = ? ORDER BY system, external_id',
    [orderId],
  );
  const systemsDone = new Set<string>();
  const systemsPending = new Set<string>();
  const systemsRefused = new Set<string>();
  for (const s of steps) {
    (s.status === 'done'
      ? systemsDone
      : s.status === 'refused'
        ? systemsRefused
        : systemsPending
    ).add(s.system);
  }
  const traceId = rec.traceparent?.split('-')[1] ?? null;
  return {
    id: rec.orderId,
    state: rec.state,
    waitingFor: rec.waitingFor,
    channel: rec.channel,
    region: rec.region,
    customer: { id: rec.customerId, provisional: rec.customerProvisional },
    erp: {
      system: rec.erpSystem,
      rule: rec.erpRule,
      reason: rec.erpReason,
      orderId: rec.erpOrderId,
    },
    fulfilment: {
      method: rec.fulfilmentMethod,
      location: rec.fulfilmentLocation,
      expectedDate: rec.expectedDate,
    },
    commerceOrderId: rec.commerceOrderId,
    traceId,
    acceptedAt: iso(rec.acceptedAt)!,
    postedAt: iso(rec.postedAt),
    updatedAt: iso(rec.updatedAt)!,
    sync: steps.map((s) => ({
      step: s.step,
      system: s.system,
      action: s.action,
      status: s.status,
      requestedAt: iso(s.requestedAt)!,
      acknowledgedAt: iso(s.acknowledgedAt),
    })),
    inSync: [...systemsDone].filter((s) => !systemsPending.has(s) && !systemsRefused.has(s)).sort(),
    pending: [...systemsPending].sort(),
    refused: [...systemsRefused].sort(),
    exceptions: (await exceptionsOf(sql, orderId)).map(exceptionView),
    transitions: transitions.map((t) => ({
      from: t.from_state,
      to: t.to_state,
      reason: t.reason,
      at: iso(Number(t.at))!,
    })),
    loyalty: (await movementsOfOrder(sql, orderId)).map((m) => ({
      kind: m.kind,
      points: m.points,
      status: m.status,
      returnId: m.returnId,
    })),
    identifiers: ids.map((i) => ({ system: i.system, id: i.external_id })),
  };
}

/** The exception list, newest first, with a cursor (`<createdAt>:<id>`) for the next page. */
export async function listExceptions(
  sql: SqlRunner,
  q: { kind?: string; status?: 'open' | 'resolved' | 'all'; limit: number; cursor?: string },
): Promise<{ items: ExceptionView[]; nextCursor: string | null }> {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (q.kind) {
    where.push('kind = ?');
    params.push(q.kind);
  }
  const status = q.status ?? 'open';
  if (status !== 'all') {
    where.push('status = ?');
    params.push(status);
  }
  if (q.cursor) {
    const at = q.cursor.indexOf(':');
    const createdAt = Number(q.cursor.slice(0, at));
    const id = q.cursor.slice(at + 1);
    where.push('(created_at < ? OR (created_at = ? AND id < ?))');
    params.push(createdAt, createdAt, id);
  }
  const rows = await sql.query(
    `SELECT * FROM order_exceptions ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY created_at DESC, id DESC LIMIT ?`,
    [...params, q.limit + 1],
  );
  const items = rows.slice(0, q.limit).map((r) => exceptionView(toException(r)));
  const last = rows.length > q.limit ? rows[q.limit - 1] : undefined;
  return {
    items,
    nextCursor: last ? `${Number(last.created_at)}:${String(last.id)}` : null,
  };
}

/** Validates an exception-list cursor. */
export function isExceptionCursor(cursor: string): boolean {
  return /^\d{1,16}:.{1,300}$/.test(cursor);
}

export async function ordersByState(
  sql: SqlRunner,
): Promise<Array<{ state: string; count: number }>> {
  const rows = await sql.query<{ state: string; n: number }>(
    'SELECT state, COUNT(*) AS n FROM order_processes GROUP BY state',
  );
  return rows.map((r) => ({ state: r.state, count: Number(r.n) }));
}

/** Backordered orders due for an allocation retry (oldest first). */
export async function backorderedOrders(
  sql: SqlRunner,
  limit: number,
): Promise<Array<{ orderId: string; traceparent: string | null }>> {
  const rows = await sql.query<{ order_id: string; traceparent: string | null }>(
    `SELECT order_id, traceparent FROM order_processes WHERE state = 'backordered'
     ORDER BY updated_at LIMIT ?`,
    [limit],
  );
  return rows.map((r) => ({ orderId: r.order_id, traceparent: r.traceparent ?? null }));
}

/**
 * Orders waiting for the item cross-reference (and, with `parked`, the parked ones), last
 * touched before `updatedBefore`.
 */
export async function ordersAwaitingItems(
  sql: SqlRunner,
  limit: number,
  parked = false,
  updatedBefore = Number.MAX_SAFE_INTEGER,
): Promise<Array<{ orderId: string; traceparent: string | null }>> {
  const rows = await sql.query<{ order_id: string; traceparent: string | null }>(
    `SELECT order_id, traceparent FROM order_processes
     WHERE ((state = 'received' AND waiting_for = 'items')${parked ? " OR state = 'parked'" : ''})
       AND updated_at < ?
     ORDER BY updated_at LIMIT ?`,
    [updatedBefore, limit],
  );
  return rows.map((r) => ({ orderId: r.order_id, traceparent: r.traceparent ?? null }));
}

/** The orders processed under a W3C trace id (usually one). */
export async function ordersOfTrace(
  sql: SqlRunner,
  traceId: string,
): Promise<
  Array<{
    orderId: string;
    state: string;
    erpSystem: string | null;
    erpRule: string | null;
    erpReason: string | null;
    erpOrderId: string | null;
  }>
> {
  const rows = await sql.query(
    `SELECT order_id, state, erp_system, erp_rule, erp_reason, erp_order_id FROM order_processes
     WHERE traceparent LIKE ? ORDER BY accepted_at LIMIT 100`,
    [`00-${traceId}-%`],
  );
  const s = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return rows.map((r) => ({
    orderId: String(r.order_id),
    state: String(r.state),
    erpSystem: s(r.erp_system),
    erpRule: s(r.erp_rule),
    erpReason: s(r.erp_reason),
    erpOrderId: s(r.erp_order_id),
  }));
}
