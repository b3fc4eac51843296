// The inventory API: availability read from Middlemart's own ledger (never from the ERP per
// request), stock adjustments pushed by systems (accepted durably into the engine), and
// reservations that succeed atomically or are refused with what is still available.
//
//   GET  /v1/availability?sku=…&location=…&channel=…   one SKU (all locations, or one)
//   POST /v1/availability/query                        many SKUs in one call (up to 1,000)
//   POST /v1/inventory/adjustments                     one adjustment, or { adjustments: [...] }
//   POST /v1/reservations                              an order's lines, all or none
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { eventByName, InventoryAdjustmentReason, makeEvent } from '../../canonical/index.js';
import {
  channelAvailable,
  createStockReservations,
  positionsForReconciliation,
  TransactionBatcher,
  type AvailabilityRules,
  type InventoryStore,
  type StockPosition,
  type AcceptInTransaction,
} from '../../domains/inventory/index.js';
import type { AcceptRequest, AcceptResult } from '../../runtime/types.js';
import { ACCESS } from '../auth/roles.js';
import {
  IDEMPOTENT_REPLAYED_HEADER,
  readIdempotencyKey,
  requestHashOf,
  sha256Hex,
} from '../idempotency.js';
import { instanceOf, PROBLEM_TYPE_BASE, ProblemError, type FieldError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;
const ADJUSTED = eventByName('inventory.adjusted');

/** Most SKUs in one availability query, and most adjustments in one batch. */
export const MAX_BATCH = 1000;

export interface InventoryRoutesDeps {
  store: InventoryStore;
  accept: (req: AcceptRequest) => Promise<AcceptResult>;
  rules: AvailabilityRules;
  /** Channels whose pending availability is kept for the channel push. */
  channels: readonly string[];
  reservationTtlMs: number;
  now?: () => number;
  /** Called after a transaction of these routes committed a change of availability. */
  onCommitted?: () => void;
  /** Accepts `inventory.availability_changed` inside a reservation's transaction. */
  acceptInTransaction?: AcceptInTransaction;
}

const SKU = { type: 'string', minLength: 1, maxLength: 64, pattern: '^\\S+$' } as const;
const LOCATION = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\s@]+$' } as const;
const CHANNEL = { type: 'string', minLength: 1, maxLength: 64 } as const;

const locationAvailabilitySchema = {
  type: 'object',
  required: ['location', 'onHand', 'reserved', 'safetyStock', 'available', 'version'],
  properties: {
    location: { type: 'string' },
    onHand: { type: 'integer' },
    reserved: { type: 'integer' },
    safetyStock: { type: 'integer' },
    available: {
      type: 'integer',
      description:
        'What may be promised here (after the channel’s allocation rule when a channel is named).',
    },
    version: { type: 'integer', description: 'Rises with every change of the position.' },
    asOf: {
      type: ['string', 'null'],
      format: 'date-time',
      description: 'Source time of the newest movement behind the figure.',
    },
  },
} as const;

const skuAvailabilitySchema = {
  type: 'object',
  required: ['sku', 'available', 'locations'],
  properties: {
    sku: { type: 'string' },
    channel: { type: 'string' },
    available: { type: 'integer', description: 'Sum over the locations listed.' },
    locations: { type: 'array', items: locationAvailabilitySchema },
  },
} as const;

const adjustmentProperties = {
  sku: SKU,
  location: LOCATION,
  reason: { type: 'string', enum: [...InventoryAdjustmentReason.options] },
  delta: { type: 'integer', description: 'Change of on-hand (+ in, − out); or count.' },
  count: { type: 'integer', minimum: 0, description: 'Absolute on-hand (stock take); or delta.' },
  sourceSystem: { type: 'string', minLength: 1, maxLength: 64 },
  sourceSequence: { type: 'integer', minimum: 0 },
  sourceTimestamp: {
    type: 'string',
    description: 'RFC 3339 date-time in UTC (…Z), when the movement happened at its source.',
  },
} as const;

const adjustmentSchema = {
  type: 'object',
  description: 'A canonical inventory.adjusted (exactly one of delta and count).',
  properties: adjustmentProperties,
  additionalProperties: false,
} as const;

const reservationBodySchema = {
  type: 'object',
  required: ['orderId', 'location', 'lines'],
  additionalProperties: false,
  properties: {
    orderId: { type: 'string', minLength: 1, maxLength: 128 },
    location: LOCATION,
    channel: {
      ...CHANNEL,
      description: 'Sales channel whose allocation rule applies (default web).',
    },
    lines: {
      type: 'array',
      minItems: 1,
      maxItems: 500,
      items: {
        type: 'object',
        required: ['sku', 'quantity'],
        additionalProperties: false,
        properties: { sku: SKU, quantity: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
      },
    },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** The answer to a reservation: the order's reservations. */
export const reservationAnswerSchema = {
  type: 'object',
  required: ['orderId', 'reservations'],
  properties: {
    orderId: { type: 'string' },
    reservations: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'sku', 'location', 'quantity', 'status', 'expiresAt'],
        properties: {
          id: { type: 'string' },
          sku: { type: 'string' },
          location: { type: 'string' },
          quantity: { type: 'integer' },
          status: { type: 'string', enum: ['active', 'committed', 'released', 'expired'] },
          expiresAt: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
} as const;

type ReserveRequest = Parameters<ReturnType<typeof createStockReservations>['reserve']>[1];

interface ReservationBody {
  orderId: string;
  location: string;
  channel?: string;
  lines: Array<{ sku: string; quantity: number }>;
  expiresAt?: string;
}

function toLocation(p: StockPosition, channel: string | undefined, rules: AvailabilityRules) {
  return {
    location: p.location,
    onHand: p.onHand,
    reserved: p.reserved,
    safetyStock: p.safetyStock,
    available:
      channel === undefined
        ? p.available
        : channelAvailable(p.available, p.location, rules.channels?.[channel]),
    version: p.version,
    asOf: p.sourceTimestamp === null ? null : new Date(p.sourceTimestamp).toISOString(),
  };
}

function skuAvailability(
  sku: string,
  positions: readonly StockPosition[],
  location: string | undefined,
  channel: string | undefined,
  rules: AvailabilityRules,
) {
  const locations = positions
    .filter((p) => p.sku === sku && (location === undefined || p.location === location))
    .sort((a, b) => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0))
    .map((p) => toLocation(p, channel, rules));
  return {
    sku,
    ...(channel === undefined ? {} : { channel }),
    available: locations.reduce((s, l) => s + l.available, 0),
    locations,
  };
}

/** Validates adjustments against the catalogue; every failing field with its path. */
function validateAdjustments(
  items: readonly unknown[],
  prefix: string,
): { errors: FieldError[]; data: Array<ReturnType<typeof ADJUSTED.data.parse>> } {
  const errors: FieldError[] = [];
  const data: Array<ReturnType<typeof ADJUSTED.data.parse>> = [];
  items.forEach((item, i) => {
    const parsed = ADJUSTED.data.safeParse(item);
    const at = prefix === '' ? '' : `${prefix}[${i}]`;
    if (parsed.success) {
      data.push(parsed.data);
      return;
    }
    for (const issue of parsed.error.issues) {
      const path = [at, ...issue.path.map(String)].filter((s) => s !== '').join('.');
      errors.push({ path: path === '' ? '(body)' : path, message: issue.message });
    }
  });
  return { errors, data };
}

/** The body as received (before the schema step removed unknown members), when JSON. */
function rawBodyOf(request: FastifyRequest): Record<string, unknown> | undefined {
  try {
    const value: unknown = request.rawBody
      ? JSON.parse(request.rawBody.toString('utf8'))
      : undefined;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function unknownReservationFields(raw: Record<string, unknown> | undefined): string[] {
  if (!raw) return [];
  const top = Object.keys(reservationBodySchema.properties);
  const line = Object.keys(reservationBodySchema.properties.lines.items.properties);
  const out = Object.keys(raw).filter((k) => !top.includes(k));
  if (Array.isArray(raw.lines)) {
    raw.lines.forEach((l: unknown, i) => {
      if (l !== null && typeof l === 'object') {
        for (const k of Object.keys(l)) if (!line.includes(k)) out.push(`lines[${i}].${k}`);
      }
    });
  }
  return out;
}

function insufficientStock(
  request: FastifyRequest,
  reply: FastifyReply,
  short: Array<{ sku: string; requested: number; available: number }>,
) {
  const first = short[0]!;
  return reply
    .code(409)
    .header('content-type', 'application/problem+json')
    .send({
      type: `${PROBLEM_TYPE_BASE}insufficient-stock`,
      title: 'Not enough stock available',
      status: 409,
      detail: `Nothing was reserved: ${short
        .map((s) => `${s.sku} has ${s.available} available, ${s.requested} requested`)
        .join('; ')}.`,
      instance: instanceOf(request),
      available: first.available,
      short,
    });
}

/**
 * The inventory routes, under `/v1` (added here when the server registers module routes without
 * that prefix).
 */
export function inventoryRoutes(deps: InventoryRoutesDeps): FastifyPluginAsync {
  const routes = inventoryV1Routes(deps);
  return async (server) => {
    await server.register(routes, { prefix: server.prefix.endsWith('/v1') ? '' : '/v1' });
  };
}

function inventoryV1Routes(deps: InventoryRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now;
  const stock = createStockReservations({
    rules: deps.rules,
    channels: deps.channels,
    reservationTtlMs: deps.reservationTtlMs,
    ...(deps.acceptInTransaction ? { accept: deps.acceptInTransaction } : {}),
    now,
  });
  // Concurrent reservations share transactions (group commit); see batcher.ts.
  const desk = new TransactionBatcher(deps.store, async (tx, req: ReserveRequest) => {
    const held = await tx.query(
      `SELECT id FROM inventory_reservations WHERE order_id = ? AND status <> 'refused' LIMIT 1`,
      [req.orderId],
    );
    const result = await stock.reserve(tx, req);
    if (!result.ok) return { result, replayed: false, rows: [] };
    const rows = await tx.query(
      `SELECT id, sku, location, quantity, status, expires_at FROM inventory_reservations
       WHERE order_id = ? AND status <> 'refused' ORDER BY id`,
      [req.orderId],
    );
    return { result, replayed: held.length > 0, rows };
  });
  return async (server) => {
    server.get<{ Querystring: { sku: string; location?: string; channel?: string } }>(
      '/availability',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          tags: ['inventory'],
          summary: 'Availability of one SKU, from the ledger',
          description:
            'Per location: on hand, reserved, safety stock and what may be promised. With `channel`, `available` follows that channel’s allocation rule. A SKU the ledger has never seen has no locations and 0 available. For many SKUs use POST /v1/availability/query.',
          querystring: {
            type: 'object',
            required: ['sku'],
            additionalProperties: false,
            properties: { sku: SKU, location: LOCATION, channel: CHANNEL },
          },
          response: { 200: skuAvailabilitySchema, 400: problemRef, ...denied },
        },
      },
      async (request) => {
        const { sku, location, channel } = request.query;
        const positions = await positionsForReconciliation(deps.store, [sku]);
        return skuAvailability(sku, positions, location, channel, deps.rules);
      },
    );

    server.post<{ Body: { items: Array<{ sku: string; location?: string }>; channel?: string } }>(
      '/availability/query',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          tags: ['inventory'],
          summary: 'Availability of many SKUs in one call, from the ledger',
          description: `Up to ${MAX_BATCH} items, each a SKU and optionally one location. Answers in the order asked.`,
          body: {
            type: 'object',
            required: ['items'],
            additionalProperties: false,
            properties: {
              channel: CHANNEL,
              items: {
                type: 'array',
                minItems: 1,
                maxItems: MAX_BATCH,
                items: {
                  type: 'object',
                  required: ['sku'],
                  additionalProperties: false,
                  properties: { sku: SKU, location: LOCATION },
                },
              },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: {
                channel: { type: 'string' },
                items: {
                  type: 'array',
                  items: {
                    ...skuAvailabilitySchema,
                    properties: {
                      ...skuAvailabilitySchema.properties,
                      location: { type: 'string' },
                    },
                  },
                },
              },
            },
            400: problemRef,
            413: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const { items, channel } = request.body;
        const positions = await positionsForReconciliation(
          deps.store,
          items.map((i) => i.sku),
        );
        return {
          ...(channel === undefined ? {} : { channel }),
          items: items.map((i) => ({
            ...skuAvailability(i.sku, positions, i.location, channel, deps.rules),
            ...(i.location === undefined ? {} : { location: i.location }),
          })),
        };
      },
    );

    server.post<{ Body: Record<string, unknown> }>(
      '/inventory/adjustments',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['inventory'],
          summary: 'Accept stock adjustments durably',
          description: `One canonical inventory.adjusted as the body, or \`{ "adjustments": [...] }\` with up to ${MAX_BATCH}. Every adjustment is validated before any is accepted; answered 202 once all are committed. The ledger applies each SKU-location's adjustments in source order and recognises duplicates by source sequence. Idempotency-Key: the same key and body answer the same; the same key with another body is a 409.`,
          headers: {
            type: 'object',
            properties: { 'idempotency-key': { type: 'string' } },
          },
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...adjustmentProperties,
              adjustments: {
                type: 'array',
                minItems: 1,
                maxItems: MAX_BATCH,
                items: adjustmentSchema,
              },
            },
          },
          response: {
            202: {
              type: 'object',
              required: ['accepted', 'duplicates', 'items'],
              properties: {
                accepted: { type: 'integer', description: 'newly accepted' },
                duplicates: { type: 'integer', description: 'accepted before under this key' },
                items: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['id', 'outcome'],
                    properties: {
                      id: { type: 'string', description: 'message id' },
                      outcome: { type: 'string', enum: ['accepted', 'duplicate'] },
                    },
                  },
                },
              },
            },
            400: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            ...denied,
          },
        },
        preValidation: async (request) => {
          readIdempotencyKey(request);
        },
      },
      async (request, reply) => {
        const headerKey = readIdempotencyKey(request);
        // Validated from the bytes received: the schema step drops unknown members silently.
        const body = rawBodyOf(request) ?? request.body;
        const batch = Array.isArray(body.adjustments);
        if (batch && Object.keys(body).length > 1) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'Send either one adjustment or { adjustments: [...] }, not both.',
            errors: Object.keys(body)
              .filter((k) => k !== 'adjustments')
              .map((k) => ({ path: k, message: 'not allowed beside adjustments' })),
          });
        }
        const items = batch ? (body.adjustments as unknown[]) : [body];
        const { errors, data } = validateAdjustments(items, batch ? 'adjustments' : '');
        if (errors.length > 0) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'Nothing was accepted: fix the adjustments named in errors.',
            errors,
          });
        }
        const hash = headerKey === undefined ? undefined : requestHashOf(request);
        const out: Array<{ id: string; outcome: 'accepted' | 'duplicate' }> = [];
        // Accepted concurrently: the engine commits them together (group commit).
        const results = await Promise.all(
          data.map((a, i) => {
            const event = makeEvent('inventory.adjusted', a, {
              source: `/middlemart/api/inventory/${a.sourceSystem}`,
              time: new Date(now()),
              ...(request.traceparent ? { traceparent: request.traceparent } : {}),
            });
            const natural = `adjustment/${a.sku}@${a.location}/${a.sourceSequence}`;
            const payloadJson = JSON.stringify(event);
            return deps.accept({
              source: `inventory-api/${a.sourceSystem}`,
              idempotencyKey: headerKey === undefined ? natural : `${headerKey}#${i}`,
              requestHash: hash ?? sha256Hex(JSON.stringify(a)),
              type: ADJUSTED.type,
              partitionKey: ADJUSTED.partitionKey(a),
              priority: ADJUSTED.priority,
              payload: event,
              payloadJson,
              traceparent: request.traceparent,
            });
          }),
        );
        for (const r of results) {
          if (r.outcome === 'conflict') {
            throw new ProblemError(409, 'idempotency-key-reused', {
              detail: headerKey
                ? `Idempotency-Key ${JSON.stringify(headerKey)} was already used with a different body.`
                : 'An adjustment with this source system, SKU, location and sequence was already accepted with other content; send a new sourceSequence.',
              extensions: { messageId: r.messageId },
            });
          }
          if (r.outcome === 'backpressure') {
            const seconds = Math.max(1, Math.ceil(r.retryAfterSeconds));
            throw new ProblemError(429, 'backpressure', {
              detail: `Middlemart is shedding work; retry after ${seconds} s with the same Idempotency-Key.`,
              headers: { 'retry-after': String(seconds) },
            });
          }
          out.push({ id: r.messageId, outcome: r.outcome });
        }
        const duplicates = out.filter((o) => o.outcome === 'duplicate').length;
        if (duplicates === out.length) reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
        reply.code(202);
        return { accepted: out.length - duplicates, duplicates, items: out };
      },
    );

    server.post<{ Body: ReservationBody }>(
      '/reservations',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['inventory'],
          summary: 'Reserve an order’s lines at a location, all or none',
          description:
            'Succeeds atomically (201) or is refused (409 problem `insufficient-stock` with `available` and, per SKU, `short`); nothing is held after a refusal. Idempotent per orderId: the same order again answers its reservations (200, Idempotent-Replayed: true).',
          body: reservationBodySchema,
          response: {
            200: reservationAnswerSchema,
            201: reservationAnswerSchema,
            400: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const unknown = unknownReservationFields(rawBodyOf(request));
        if (unknown.length > 0) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The body has members a reservation does not take.',
            errors: unknown.map((path) => ({ path, message: 'unknown member' })),
          });
        }
        const at = now();
        let expiresAt: Date | undefined;
        if (body.expiresAt !== undefined) {
          expiresAt = new Date(body.expiresAt);
          if (!(expiresAt.getTime() > at)) {
            throw new ProblemError(400, 'validation-error', {
              detail: 'expiresAt must be in the future.',
              errors: [{ path: 'expiresAt', message: 'must be after now' }],
            });
          }
        }
        const lines = new Map<string, number>();
        for (const l of body.lines) lines.set(l.sku, (lines.get(l.sku) ?? 0) + l.quantity);
        const outcome = await desk.run({
          orderId: body.orderId,
          location: body.location,
          ...(body.channel === undefined ? {} : { channel: body.channel }),
          lines: body.lines,
          ...(expiresAt ? { expiresAt } : {}),
        });
        if (!outcome.result.ok) return insufficientStock(request, reply, outcome.result.short);
        if (!outcome.replayed) deps.onCommitted?.();
        if (outcome.replayed) reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
        reply.code(outcome.replayed ? 200 : 201);
        return {
          orderId: body.orderId,
          reservations: outcome.rows.map((r) => ({
            id: String(r.id),
            sku: String(r.sku),
            location: String(r.location),
            quantity: Number(r.quantity),
            status: String(r.status),
            expiresAt: new Date(Number(r.expires_at)).toISOString(),
          })),
        };
      },
    );
  };
}
