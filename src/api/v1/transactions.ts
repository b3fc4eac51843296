// `GET /v1/transactions/{traceId}`: the timeline of one business transaction, read back from the
// engine's own tables: every message accepted or emitted under the trace (channel entry, the
// order's events, acknowledgements) and every outbound delivery (ERP posting, fan-out), each
// with its attempts, plus the ERP the routing rules chose. Payloads are not shown (they carry
// personal data); the action a delivery performed is.
import type { FastifyPluginAsync } from 'fastify';
import { ordersOfTrace } from '../../domains/orders/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import { ACCESS } from '../auth/roles.js';
import { ProblemError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;
const PRIORITIES = ['critical', 'standard', 'deferrable'];

/** At most this many hops are shown (a trace with more is cut, and says so). */
export const MAX_HOPS = 2000;

const attemptSchema = {
  type: 'object',
  properties: {
    attempt: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    outcome: { type: 'string' },
    status: { type: ['integer', 'null'] },
    error: nullableString,
    latencyMs: { type: ['integer', 'null'] },
  },
} as const;

const hopSchema = {
  type: 'object',
  required: ['kind', 'id', 'at', 'status'],
  properties: {
    kind: { type: 'string', enum: ['message', 'delivery'] },
    id: { type: 'string' },
    at: {
      type: 'string',
      format: 'date-time',
      description: 'accepted (message) or written (delivery)',
    },
    type: { ...nullableString, description: 'message type' },
    source: nullableString,
    partitionKey: nullableString,
    priority: { type: 'string' },
    destination: { ...nullableString, description: 'the system a delivery went to' },
    action: { ...nullableString, description: 'the system action a delivery performed' },
    causedBy: { ...nullableString, description: 'the message whose handler wrote the delivery' },
    status: { type: 'string' },
    attempts: { type: 'integer' },
    completedAt: nullableTime,
    lastError: nullableString,
    lastStatus: { type: ['integer', 'null'] },
    tries: { type: 'array', items: attemptSchema },
  },
} as const;

const timelineSchema = {
  type: 'object',
  required: ['traceId', 'hops', 'truncated'],
  properties: {
    traceId: { type: 'string' },
    erp: {
      type: ['object', 'null'],
      description: 'The ERP chosen for the transaction',
      properties: { system: { type: 'string' }, rule: nullableString, reason: nullableString },
    },
    orders: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          state: { type: 'string' },
          erpSystem: nullableString,
          erpRule: nullableString,
          erpOrderId: nullableString,
        },
      },
    },
    startedAt: nullableTime,
    finishedAt: nullableTime,
    hops: { type: 'array', items: hopSchema },
    truncated: { type: 'boolean' },
  },
} as const;

const iso = (v: unknown): string | null =>
  v === null || v === undefined ? null : new Date(Number(v)).toISOString();
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Reads a stored payload (sealed at rest or not, ADR 0018); default: clear JSON only. */
export type PayloadReader = (stored: unknown) => unknown;

const clearPayload: PayloadReader = (stored) =>
  typeof stored === 'string' ? (JSON.parse(stored) as unknown) : null;

function actionOf(payload: unknown, read: PayloadReader): string | null {
  if (typeof payload !== 'string') return null;
  try {
    const p = read(payload) as { action?: unknown } | null;
    return p && typeof p.action === 'string' ? p.action : null;
  } catch {
    return null;
  }
}

interface Hop {
  kind: 'message' | 'delivery';
  id: string;
  atMs: number;
  at: string;
  type: string | null;
  source: string | null;
  partitionKey: string | null;
  priority: string;
  destination: string | null;
  action: string | null;
  causedBy: string | null;
  status: string;
  attempts: number;
  completedAt: string | null;
  lastError: string | null;
  lastStatus: number | null;
  tries: Array<Record<string, unknown>>;
}

/** Reads the timeline of `traceId` (32 lowercase hex digits) from the engine's tables. */
export async function transactionTimeline(
  db: SqlRunner,
  traceId: string,
  readPayload: PayloadReader = clearPayload,
) {
  const pattern = `00-${traceId}-%`;
  const messages = await db.query(
    `SELECT id, source, type, partition_key, priority, status, attempts, accepted_at, completed_at,
       last_error FROM messages WHERE traceparent LIKE ? ORDER BY seq LIMIT ?`,
    [pattern, MAX_HOPS + 1],
  );
  const deliveries = await db.query(
    `SELECT id, message_id, destination, priority, payload, status, attempts, created_at,
       completed_at, last_error, last_status FROM deliveries WHERE traceparent LIKE ? ORDER BY seq LIMIT ?`,
    [pattern, MAX_HOPS + 1],
  );
  const hops: Hop[] = [
    ...messages.map((m): Hop => ({
      kind: 'message',
      id: String(m.id),
      atMs: Number(m.accepted_at),
      at: iso(m.accepted_at)!,
      type: str(m.type),
      source: str(m.source),
      partitionKey: str(m.partition_key),
      priority: PRIORITIES[Number(m.priority)] ?? 'standard',
      destination: null,
      action: null,
      causedBy: null,
      status: String(m.status),
      attempts: Number(m.attempts),
      completedAt: iso(m.completed_at),
      lastError: str(m.last_error),
      lastStatus: null,
      tries: [],
    })),
    ...deliveries.map((d): Hop => ({
      kind: 'delivery',
      id: String(d.id),
      atMs: Number(d.created_at),
      at: iso(d.created_at)!,
      type: null,
      source: null,
      partitionKey: null,
      priority: PRIORITIES[Number(d.priority)] ?? 'standard',
      destination: str(d.destination),
      action: actionOf(d.payload, readPayload),
      causedBy: str(d.message_id),
      status: String(d.status),
      attempts: Number(d.attempts),
      completedAt: iso(d.completed_at),
      lastError: str(d.last_error),
      lastStatus:
        d.last_status === null || d.last_status === undefined ? null : Number(d.last_status),
      tries: [],
    })),
  ];
  const truncated = hops.length > MAX_HOPS;
  hops.sort((a, b) => a.atMs - b.atMs || (a.kind === b.kind ? 0 : a.kind === 'message' ? -1 : 1));
  const shown = hops.slice(0, MAX_HOPS);
  const byId = new Map(shown.map((h) => [h.id, h]));
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200);
    const rows = await db.query(
      `SELECT subject_id, attempt, at, outcome, status, error, latency_ms FROM attempts
       WHERE subject_id IN (${chunk.map(() => '?').join(', ')}) ORDER BY at, attempt`,
      chunk,
    );
    for (const r of rows) {
      byId.get(String(r.subject_id))?.tries.push({
        attempt: Number(r.attempt),
        at: iso(r.at),
        outcome: String(r.outcome),
        status: r.status === null ? null : Number(r.status),
        error: str(r.error),
        latencyMs: r.latency_ms === null ? null : Number(r.latency_ms),
      });
    }
  }
  const orders = await ordersOfTrace(db, traceId);
  const chosen = orders.find((o) => o.erpSystem);
  const posting = shown.find(
    (h) => h.action === 'erp.post-sales-order' || h.action === 'erp.post-credit',
  );
  const erp = chosen
    ? { system: chosen.erpSystem!, rule: chosen.erpRule, reason: chosen.erpReason }
    : posting?.destination
      ? { system: posting.destination, rule: null, reason: null }
      : null;
  const finished = shown
    .map((h) => (h.completedAt ? Date.parse(h.completedAt) : 0))
    .reduce((a, b) => Math.max(a, b), 0);
  return {
    traceId,
    erp,
    orders: orders.map((o) => ({
      id: o.orderId,
      state: o.state,
      erpSystem: o.erpSystem,
      erpRule: o.erpRule,
      erpOrderId: o.erpOrderId,
    })),
    startedAt: shown[0]?.at ?? null,
    finishedAt: finished > 0 ? new Date(finished).toISOString() : null,
    hops: shown.map(({ atMs: _atMs, ...h }) => h),
    truncated,
  };
}

/** The transaction timeline route (operators). */
export function transactionRoutes(
  db: SqlRunner,
  readPayload: PayloadReader = clearPayload,
): FastifyPluginAsync {
  return async (server) => {
    server.get<{ Params: { traceId: string } }>(
      '/v1/transactions/:traceId',
      {
        config: { access: ACCESS.traces },
        schema: {
          summary: 'The timeline of every hop of one transaction, by W3C trace id',
          tags: ['operations'],
          params: {
            type: 'object',
            required: ['traceId'],
            properties: {
              traceId: {
                type: 'string',
                pattern: '^[0-9a-f]{32}$',
                description: 'The 32 lowercase hex digits of a W3C trace id',
              },
            },
          },
          response: {
            200: timelineSchema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            404: problemRef,
            429: problemRef,
          },
        },
      },
      async (request) => {
        const { traceId } = request.params;
        if (/^0{32}$/.test(traceId)) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The all-zero trace id is invalid.',
            errors: [{ path: 'params.traceId', message: 'must not be all zeros' }],
          });
        }
        const timeline = await transactionTimeline(db, traceId, readPayload);
        if (timeline.hops.length === 0) {
          throw new ProblemError(404, 'not-found', {
            detail: `Nothing was processed under trace ${traceId} (or it is past retention).`,
          });
        }
        return timeline;
      },
    );
  };
}
