// POST /v1/returns: a canonical return (web, app, contact centre, store) accepted durably as
// `return.requested`, partitioned by the original order id so it queues behind that order's
// events. Idempotency-Key required, with the same semantics as /v1/events and /v1/orders.
import type { FastifyPluginAsync } from 'fastify';
import { ReturnV1 } from '../../canonical/index.js';
import { ACCESS } from '../auth/roles.js';
import { requestHashOf } from '../idempotency.js';
import {
  acceptIngressEvent,
  answerAccepted,
  idempotentHeadersSchema,
  parseCanonicalBody,
  problemRef,
  requiredIdempotencyKey,
  type IngressDeps,
} from './orders-intake.js';

export const RETURNS_SOURCE = '/middlemart/api/returns';

const acceptedReturnSchema = {
  type: 'object',
  description: 'The return request is committed; the returns process will decide on it.',
  required: ['id', 'returnId', 'orderId', 'traceId', 'acceptedAt'],
  properties: {
    id: { type: 'string', description: 'The message id of the accepted return.requested event' },
    returnId: { type: 'string' },
    orderId: { type: 'string', description: 'The original order the return is queued behind' },
    traceId: { type: 'string' },
    acceptedAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** `POST /v1/returns`. */
export function returnsIntakeRoutes(deps: IngressDeps): FastifyPluginAsync {
  return async (server) => {
    server.post(
      '/v1/returns',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['ingest'],
          summary: 'Request a return (canonical Return.v1)',
          description:
            'Accepted as `return.requested`, partitioned by `orderId` (the original order), answered 202 once committed. Eligibility (window, quantities, final sale, condition) is decided by the returns process, not here.',
          headers: idempotentHeadersSchema,
          body: { type: 'object', description: 'A canonical Return.v1' },
          response: {
            202: acceptedReturnSchema,
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
        const ret = parseCanonicalBody(ReturnV1, request.body, 'return (Return.v1)');
        const { result } = await acceptIngressEvent(deps, {
          event: 'return.requested',
          data: ret,
          source: RETURNS_SOURCE,
          idempotencyKey,
          requestHash: requestHashOf(request),
          traceparent: request.traceparent,
          time: ret.requestedAt,
        });
        request.log.info(
          { outcome: result.outcome, returnId: ret.id, orderId: ret.orderId, idempotencyKey },
          'return intake',
        );
        return {
          ...answerAccepted(request, reply, result, idempotencyKey),
          returnId: ret.id,
          orderId: ret.orderId,
        };
      },
    );
  };
}
