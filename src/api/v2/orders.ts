// `GET /v2/orders/{id}`: the versioning policy's worked example (docs/api.md). The same domain
// read model as `/v1/orders/{id}` (`orderView` in src/domains/orders), mapped to a new response
// shape here, in the experience layer: systems keyed by id with their status and actions, the
// state with the time it was reached, and links. Adding this version touched no domain code; the
// `/v1` route stays as it is (it is not deprecated: both shapes are supported).
import type { FastifyPluginAsync } from 'fastify';
import { orderView, type OrderView } from '../../domains/orders/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import { ACCESS } from '../auth/roles.js';
import { ProblemError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const nullableString = { type: ['string', 'null'] } as const;

const systemSchema = {
  type: 'object',
  required: ['status', 'actions'],
  properties: {
    status: { type: 'string', enum: ['in_sync', 'pending'] },
    actions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['action', 'status', 'requestedAt', 'acknowledgedAt'],
        properties: {
          action: { type: 'string' },
          status: { type: 'string', enum: ['pending', 'done'] },
          requestedAt: { type: 'string', format: 'date-time' },
          acknowledgedAt: { ...nullableString, format: 'date-time' },
        },
      },
    },
  },
} as const;

export const orderV2Schema = {
  type: 'object',
  required: ['id', 'status', 'systems', 'erp', 'openExceptions', 'links'],
  properties: {
    id: { type: 'string' },
    status: {
      type: 'object',
      required: ['state', 'since', 'waitingFor'],
      properties: {
        state: { type: 'string' },
        since: { type: 'string', format: 'date-time', description: 'When the state was reached' },
        waitingFor: nullableString,
      },
    },
    systems: { type: 'object', additionalProperties: systemSchema },
    erp: {
      type: 'object',
      required: ['system', 'documentId'],
      properties: { system: nullableString, documentId: nullableString },
    },
    openExceptions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kind', 'reason'],
        properties: { kind: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    links: {
      type: 'object',
      required: ['self', 'v1'],
      properties: {
        self: { type: 'string' },
        v1: { type: 'string' },
        timeline: { type: 'string', description: 'The transaction timeline (operators)' },
      },
    },
  },
} as const;

/** The v2 shape of an order's read model. */
export function toOrderV2(view: OrderView) {
  const systems: Record<
    string,
    {
      status: 'in_sync' | 'pending';
      actions: Array<{
        action: string;
        status: string;
        requestedAt: string;
        acknowledgedAt: string | null;
      }>;
    }
  > = {};
  for (const s of view.sync) {
    const entry = (systems[s.system] ??= { status: 'in_sync', actions: [] });
    entry.actions.push({
      action: s.action,
      status: s.status,
      requestedAt: s.requestedAt,
      acknowledgedAt: s.acknowledgedAt,
    });
    if (s.status !== 'done') entry.status = 'pending';
  }
  const last = view.transitions[view.transitions.length - 1];
  const id = encodeURIComponent(view.id);
  return {
    id: view.id,
    status: { state: view.state, since: last?.at ?? view.updatedAt, waitingFor: view.waitingFor },
    systems,
    erp: { system: view.erp.system, documentId: view.erp.orderId },
    openExceptions: view.exceptions
      .filter((e) => e.status === 'open')
      .map((e) => ({ kind: e.kind, reason: e.reason })),
    links: {
      self: `/v2/orders/${id}`,
      v1: `/v1/orders/${id}`,
      ...(view.traceId ? { timeline: `/v1/transactions/${view.traceId}` } : {}),
    },
  };
}

export function orderV2Routes(db: SqlRunner): FastifyPluginAsync {
  return async (server) => {
    server.get<{ Params: { id: string } }>(
      '/v2/orders/:id',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          summary: 'An order: state, systems in sync and pending, ERP document (v2 shape)',
          tags: ['orders'],
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
          },
          response: {
            200: orderV2Schema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            404: problemRef,
            429: problemRef,
          },
        },
      },
      async (request) => {
        const view = await orderView(db, request.params.id);
        if (!view) {
          throw new ProblemError(404, 'not-found', {
            detail: `No order ${JSON.stringify(request.params.id)}.`,
          });
        }
        return toOrderV2(view);
      },
    );
  };
}
