// POST /v1/orders: a canonical order from a mobile app or any other channel, accepted durably as
// `order.created` (idempotent receiver: Idempotency-Key required, same key and body → the same
// answer, same key with another body → 409; 202 only after the engine committed it). Also the
// accept helper every channel-native ingress route shares (orders, returns, webhooks, stores).
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { OrderV1, makeEvent, toValidationIssues } from '../../canonical/index.js';
import type { CloudEvent, EventData, EventName } from '../../canonical/index.js';
import type { AcceptRequest, AcceptResult, PriorityClass } from '../../runtime/types.js';
import { ACCESS } from '../auth/roles.js';
import {
  answerAccepted,
  IDEMPOTENCY_KEY_HEADER,
  readIdempotencyKey,
  requestHashOf,
} from '../idempotency.js';

export { answerAccepted, type AcceptedAnswer } from '../idempotency.js';
import { formatFieldPath, ProblemError } from '../problem.js';

/** What the ingress routes need of the engine and the estate config. */
export interface IngressDeps {
  /** The engine's idempotent accept (resolves once the message is committed). */
  accept: (req: AcceptRequest) => Promise<AcceptResult>;
  /** The priority class of a catalogue event (the estate's overrides, else the catalogue's). */
  priorityOf: (event: EventName) => PriorityClass;
}

export const problemRef = { $ref: 'middlemart.problem#' } as const;

export const idempotentHeadersSchema = {
  type: 'object',
  required: [IDEMPOTENCY_KEY_HEADER],
  properties: {
    [IDEMPOTENCY_KEY_HEADER]: {
      type: 'string',
      description:
        '1–255 printable ASCII characters, required. The same key with the same body gets the same answer; with another body, 409.',
    },
    traceparent: { type: 'string', description: 'W3C trace context of the caller' },
  },
} as const;

/** One canonical event to accept on behalf of a channel. */
export interface IngressEvent<N extends EventName = EventName> {
  event: N;
  data: EventData<N>;
  /** CloudEvents `source` and the idempotency scope, e.g. `/middlemart/api/orders`. */
  source: string;
  idempotencyKey: string;
  /** Hash of what the channel sent for this event (same key + other hash = conflict). */
  requestHash: string;
  traceparent: string;
  /** When it happened at the channel (RFC 3339 UTC). */
  time: string;
}

export interface IngressAccepted {
  result: AcceptResult;
  event: CloudEvent;
}

/**
 * Wraps canonical data into its CloudEvent (partition key and subject from the catalogue, the
 * configured priority, the caller's traceparent, the idempotency key as event id and extension)
 * and accepts it into the engine.
 */
export async function acceptIngressEvent<N extends EventName>(
  deps: IngressDeps,
  e: IngressEvent<N>,
): Promise<IngressAccepted> {
  const event = makeEvent(e.event, e.data, {
    source: e.source,
    id: e.idempotencyKey,
    time: e.time,
    traceparent: e.traceparent,
    idempotencyKey: e.idempotencyKey,
    priority: deps.priorityOf(e.event),
  }) as CloudEvent;
  const payloadJson = JSON.stringify(event);
  const result = await deps.accept({
    source: e.source,
    idempotencyKey: e.idempotencyKey,
    requestHash: e.requestHash,
    type: event.type,
    partitionKey: event.partitionkey,
    priority: event.priority,
    payload: event,
    payloadJson,
    traceparent: e.traceparent,
  });
  return { result, event };
}

/** The Idempotency-Key of a request that must carry one (400 naming the header otherwise). */
export function requiredIdempotencyKey(request: FastifyRequest): string {
  const key = readIdempotencyKey(request);
  if (key === undefined) {
    throw new ProblemError(400, 'invalid-idempotency-key', {
      detail:
        'This route needs an Idempotency-Key header (1 to 255 printable ASCII characters), so that a retry is never taken twice.',
      errors: [
        {
          path: formatFieldPath(['headers', IDEMPOTENCY_KEY_HEADER]),
          message: 'is required',
        },
      ],
    });
  }
  return key;
}

/** Validates a body against a canonical schema: the parsed value or a 400 naming every field. */
export function parseCanonicalBody<T>(
  schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: unknown[] } };
  },
  body: unknown,
  what: string,
): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = toValidationIssues(
    parsed.error.issues as Parameters<typeof toValidationIssues>[0],
  );
  throw new ProblemError(400, 'validation-error', {
    detail: `The body is not a valid canonical ${what}.`,
    errors: issues.map((i) => ({ path: i.path === '' ? 'body' : i.path, message: i.message })),
  });
}

const acceptedOrderSchema = {
  type: 'object',
  description: 'The order is committed; it will be processed.',
  required: ['id', 'orderId', 'traceId', 'acceptedAt'],
  properties: {
    id: { type: 'string', description: 'The message id of the accepted order.created event' },
    orderId: { type: 'string', description: 'The order id (the body’s id)' },
    traceId: { type: 'string', description: 'W3C trace id under which the order is processed' },
    acceptedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const ORDERS_SOURCE = '/middlemart/api/orders';

/** `POST /v1/orders`. */
export function ordersIntakeRoutes(deps: IngressDeps): FastifyPluginAsync {
  return async (server) => {
    server.post(
      '/v1/orders',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['ingest'],
          summary: 'Place a canonical order (mobile apps and other channels)',
          description:
            'The body is a canonical Order.v1 (schemas/json/order.v1.schema.json) without `status`. It is accepted as `order.created`, partitioned by the order id, in the critical class unless the estate config says otherwise. Answered 202 only after it is committed; the same Idempotency-Key with the same body gets the same answer (Idempotent-Replayed: true), with another body 409.',
          headers: idempotentHeadersSchema,
          body: { type: 'object', description: 'A canonical Order.v1' },
          response: {
            202: acceptedOrderSchema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            429: problemRef,
          },
        },
        preValidation: async (request) => {
          requiredIdempotencyKey(request);
        },
      },
      async (request, reply) => {
        const idempotencyKey = requiredIdempotencyKey(request);
        const order = parseCanonicalBody(OrderV1, request.body, 'order (Order.v1)');
        if (order.status !== undefined) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'A channel places an order without a status: Middlemart runs its lifecycle.',
            errors: [{ path: 'status', message: 'must be absent on intake' }],
          });
        }
        const { result } = await acceptIngressEvent(deps, {
          event: 'order.created',
          data: order,
          source: ORDERS_SOURCE,
          idempotencyKey,
          requestHash: requestHashOf(request),
          traceparent: request.traceparent,
          time: order.placedAt,
        });
        request.log.info(
          { outcome: result.outcome, orderId: order.id, idempotencyKey },
          'order intake',
        );
        return { ...answerAccepted(request, reply, result, idempotencyKey), orderId: order.id };
      },
    );
  };
}
