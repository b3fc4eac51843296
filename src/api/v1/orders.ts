// Order and return status for channels and operators: `GET /v1/orders/{id}` (state, which
// systems are in sync and which pending, exceptions, transitions), `GET /v1/orders/exceptions`
// (the exception list: parked orders, backorders, unknown customers) and `GET /v1/returns/{id}`
// (a return's state, refund and, when refused, the reason).
import type { FastifyPluginAsync } from 'fastify';
import { isExceptionCursor, listExceptions, orderView } from '../../domains/orders/index.js';
import { returnView } from '../../domains/returns/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import { ACCESS } from '../auth/roles.js';
import { ProblemError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

const exceptionSchema = {
  type: 'object',
  required: ['id', 'orderId', 'kind', 'reason', 'status', 'createdAt'],
  properties: {
    id: { type: 'string' },
    orderId: { type: 'string' },
    kind: {
      type: 'string',
      description: 'invalid_sku_mapping, unknown_customer, backorder, no_erp, no_fulfilment_node …',
    },
    reason: { type: 'string', description: 'What is wrong, for people' },
    status: { type: 'string', enum: ['open', 'resolved'] },
    detail: { description: 'Machine-readable detail (SKUs, shortages …)' },
    createdAt: { type: 'string', format: 'date-time' },
    resolvedAt: nullableTime,
  },
} as const;

const orderSchema = {
  type: 'object',
  required: ['id', 'state', 'channel', 'sync', 'inSync', 'pending', 'exceptions', 'transitions'],
  properties: {
    id: { type: 'string' },
    state: {
      type: 'string',
      enum: [
        'received',
        'validated',
        'reserved',
        'backordered',
        'parked',
        'posted',
        'partially_fulfilled',
        'fulfilled',
        'closed',
        'rejected',
        'cancelled',
      ],
    },
    waitingFor: { ...nullableString, description: 'items, tax, erp or stock' },
    channel: { type: 'string' },
    region: { type: 'string' },
    customer: {
      type: 'object',
      properties: { id: nullableString, provisional: { type: 'boolean' } },
    },
    erp: {
      type: 'object',
      description: 'The ERP the routing rules chose, and its sales document once booked',
      properties: {
        system: nullableString,
        rule: nullableString,
        reason: nullableString,
        orderId: nullableString,
      },
    },
    fulfilment: {
      type: 'object',
      properties: {
        method: { type: 'string', enum: ['ship', 'pickup', 'store_sale'] },
        location: nullableString,
        expectedDate: nullableString,
      },
    },
    commerceOrderId: nullableString,
    traceId: nullableString,
    acceptedAt: { type: 'string', format: 'date-time' },
    postedAt: nullableTime,
    updatedAt: { type: 'string', format: 'date-time' },
    sync: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          step: { type: 'string' },
          system: { type: 'string' },
          action: { type: 'string' },
          status: { type: 'string', enum: ['pending', 'done', 'refused'] },
          requestedAt: { type: 'string', format: 'date-time' },
          acknowledgedAt: nullableTime,
        },
      },
    },
    inSync: { type: 'array', items: { type: 'string' }, description: 'Systems fully in sync' },
    pending: { type: 'array', items: { type: 'string' }, description: 'Systems still pending' },
    refused: {
      type: 'array',
      items: { type: 'string' },
      description:
        'Systems that refused an action permanently (dead-lettered: an operator replays it once the system side is fixed)',
    },
    exceptions: { type: 'array', items: exceptionSchema },
    transitions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          from: nullableString,
          to: { type: 'string' },
          reason: nullableString,
          at: { type: 'string', format: 'date-time' },
        },
      },
    },
    loyalty: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ['accrue', 'reverse'] },
          points: { type: 'integer' },
          status: { type: 'string' },
          returnId: nullableString,
        },
      },
    },
    identifiers: {
      type: 'array',
      items: {
        type: 'object',
        properties: { system: { type: 'string' }, id: { type: 'string' } },
      },
    },
  },
} as const;

const returnSchema = {
  type: 'object',
  required: ['id', 'orderRef', 'state', 'currency', 'requestedAt'],
  properties: {
    id: { type: 'string' },
    orderRef: { type: 'string', description: 'The order reference the return named' },
    orderId: { ...nullableString, description: 'The Middlemart order it was reconciled to' },
    state: { type: 'string', enum: ['approved', 'completed', 'rejected'] },
    reason: { ...nullableString, description: 'Why a rejected return is not refunded' },
    currency: { type: 'string' },
    refundTotalMinor: { type: ['integer', 'null'] },
    erp: {
      type: 'object',
      properties: { system: nullableString, creditId: nullableString },
    },
    restocked: { type: 'array', items: { type: 'object', additionalProperties: true } },
    writtenOff: { type: 'array', items: { type: 'object', additionalProperties: true } },
    loyaltyPointsReversed: { type: ['integer', 'null'] },
    requestedAt: { type: 'string', format: 'date-time' },
    completedAt: nullableTime,
    sync: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          step: { type: 'string' },
          system: { type: 'string' },
          action: { type: 'string' },
          status: { type: 'string' },
        },
      },
    },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

/** The order and return read routes over the process tables. */
export function orderRoutes(db: SqlRunner): FastifyPluginAsync {
  return async (server) => {
    server.get<{
      Querystring: {
        kind?: string;
        status?: 'open' | 'resolved' | 'all';
        limit?: number;
        cursor?: string;
      };
    }>(
      '/v1/orders/exceptions',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          summary: 'The order exception list, newest first',
          tags: ['orders'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              kind: { type: 'string', minLength: 1, maxLength: 64 },
              status: { type: 'string', enum: ['open', 'resolved', 'all'], default: 'open' },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
              cursor: { type: 'string', minLength: 1, maxLength: 320 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: {
                items: { type: 'array', items: exceptionSchema },
                nextCursor: { type: 'string' },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const q = request.query;
        if (q.cursor !== undefined && !isExceptionCursor(q.cursor)) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The cursor is not one this API gave out.',
            errors: [{ path: 'querystring.cursor', message: 'is not a valid cursor' }],
          });
        }
        const page = await listExceptions(db, {
          limit: q.limit ?? 50,
          ...(q.kind ? { kind: q.kind } : {}),
          ...(q.status ? { status: q.status } : {}),
          ...(q.cursor ? { cursor: q.cursor } : {}),
        });
        return { items: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
      },
    );

    server.get<{ Params: { id: string } }>(
      '/v1/orders/:id',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          summary: "An order's state, per-system sync status and exceptions",
          tags: ['orders'],
          params: idParams,
          response: { 200: orderSchema, 404: problemRef, ...denied },
        },
      },
      async (request) => {
        const view = await orderView(db, request.params.id);
        if (!view) {
          throw new ProblemError(404, 'not-found', {
            detail: `No order ${JSON.stringify(request.params.id)}.`,
          });
        }
        return view;
      },
    );

    server.get<{ Params: { id: string } }>(
      '/v1/returns/:id',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          summary: "A return's state, refund and (when refused) the reason",
          tags: ['orders'],
          params: idParams,
          response: { 200: returnSchema, 404: problemRef, ...denied },
        },
      },
      async (request) => {
        const view = await returnView(db, request.params.id);
        if (!view) {
          throw new ProblemError(404, 'not-found', {
            detail: `No return ${JSON.stringify(request.params.id)}.`,
          });
        }
        return view;
      },
    );
  };
}
