// POST /v1/events: the generic durable ingest of one canonical CloudEvent (structured JSON mode).
// The answer 202 is sent only after the engine committed the message (idempotent receiver: the
// same key and body are answered the same; the same key with another body is a 409).
import type { FastifyPluginAsync } from 'fastify';
import {
  childTraceparent,
  parseTraceparent,
  traceIdOf,
} from '../../observability/trace-context.js';
import {
  answerAccepted,
  isValidIdempotencyKey,
  readIdempotencyKey,
  requestHashOf,
} from '../idempotency.js';
import { ACCESS } from '../auth/roles.js';
import { ProblemError } from '../problem.js';
import type { ApiDeps } from '../types.js';

const TRACEPARENT_HEADER = 'traceparent';

/** The structured CloudEvents 1.0 envelope, as declared to Fastify (and to OpenAPI). */
export const cloudEventBodySchema = {
  type: 'object',
  description:
    'A canonical CloudEvent 1.0 in structured JSON mode. The event catalogue validates `type` and `data`.',
  required: ['specversion', 'id', 'source', 'type'],
  properties: {
    specversion: { const: '1.0' },
    id: { type: 'string', minLength: 1 },
    source: { type: 'string', minLength: 1 },
    type: { type: 'string', minLength: 1, examples: ['com.middlemart.order.created.v1'] },
    subject: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    datacontenttype: { type: 'string' },
    dataschema: { type: 'string' },
    data: {},
    traceparent: { type: 'string' },
    partitionkey: { type: 'string' },
    priority: { type: 'string', enum: ['critical', 'standard', 'deferrable'] },
  },
  additionalProperties: true,
} as const;

export const acceptedEventSchema = {
  type: 'object',
  description: 'The event is committed; it will be processed.',
  required: ['id', 'traceId', 'acceptedAt'],
  properties: {
    id: { type: 'string', description: 'The message id Middlemart gave the event' },
    traceId: { type: 'string', description: 'W3C trace id under which the event is processed' },
    acceptedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const eventHeadersSchema = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      description:
        '1–255 printable ASCII characters; defaults to the CloudEvent id. Scoped per event source.',
    },
    traceparent: { type: 'string', description: 'W3C trace context of the caller' },
  },
} as const;

const problemRef = { $ref: 'middlemart.problem#' } as const;

export interface AcceptedEventBody {
  id: string;
  traceId: string;
  acceptedAt: string;
}

/** The CloudEvent's own `traceparent` extension, when the body carries a valid one. */
function eventTraceparent(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>).traceparent;
  return typeof value === 'string' && parseTraceparent(value) ? value : undefined;
}

/** The `/events` routes (registered under the `/v1` prefix). */
export function eventsRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (server) => {
    server.post(
      '/events',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['ingest'],
          summary: 'Accept one canonical CloudEvent durably',
          description:
            'Answered 202 only after the event is committed. Send the same request again with the same Idempotency-Key to get the same answer (header Idempotent-Replayed: true).',
          headers: eventHeadersSchema,
          body: cloudEventBodySchema,
          response: {
            202: acceptedEventSchema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            429: problemRef,
          },
        },
        // The key is checked before the body, so a bad header is named even when the body is bad.
        preValidation: async (request) => {
          readIdempotencyKey(request);
        },
      },
      async (request, reply) => {
        const headerKey = readIdempotencyKey(request);
        const described = deps.describeEvent(request.body);
        if (!described.ok) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The body is not a valid canonical CloudEvent.',
            errors: described.errors,
          });
        }
        const body = request.body as { id: string };
        if (headerKey === undefined && !isValidIdempotencyKey(body.id)) {
          throw new ProblemError(400, 'invalid-idempotency-key', {
            detail:
              'Without an Idempotency-Key header the event id is the key, so it must be 1 to 255 printable ASCII characters; send an Idempotency-Key header.',
            errors: [{ path: 'id', message: 'cannot serve as the idempotency key' }],
          });
        }
        const idempotencyKey = headerKey ?? body.id;

        // Without a traceparent header, the event's own traceparent extension continues its trace.
        if (typeof request.headers[TRACEPARENT_HEADER] !== 'string') {
          const fromEvent = eventTraceparent(request.body);
          if (fromEvent) {
            request.traceparent = childTraceparent(fromEvent);
            request.traceId = traceIdOf(request.traceparent) ?? request.traceId;
            reply.header(TRACEPARENT_HEADER, request.traceparent);
          }
        }

        const result = await deps.accept({
          source: described.source,
          idempotencyKey,
          requestHash: requestHashOf(request),
          type: described.type,
          partitionKey: described.partitionKey,
          priority: described.priority,
          payload: request.body,
          traceparent: request.traceparent,
        });
        request.log.info(
          { outcome: result.outcome, eventType: described.type, idempotencyKey },
          'event ingest',
        );
        return answerAccepted(request, reply, result, idempotencyKey);
      },
    );
  };
}
