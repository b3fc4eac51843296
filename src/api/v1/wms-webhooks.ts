// POST /v1/webhooks/wms/{systemId}: shipment confirmations a warehouse system pushes, signed per
// Standard Webhooks. The route is public (no API key): the signature authenticates the sender.
// An unknown system id is 404, a missing or wrong signature 401 (nothing stored), a payload that
// does not map to a canonical Shipment 422 naming the field. A valid confirmation is accepted
// durably as `shipment.confirmed` (partitioned by order id, idempotency key per shipment), and
// only then answered 202: a redelivery of the same shipment is a duplicate, answered the same.
//
// The verification and native → canonical mapping belong to the WMS connector; the composition
// root hands them in as a `WmsWebhookReceiver` per configured WMS system.
import type { FastifyPluginAsync } from 'fastify';
import { traceIdOf } from '../../observability/trace-context.js';
import type { AcceptRequest, AcceptResult } from '../../runtime/types.js';
import { ACCESS } from '../auth/roles.js';
import { IDEMPOTENT_REPLAYED_HEADER, sha256Hex } from '../idempotency.js';
import { ProblemError } from '../problem.js';

export interface WmsWebhookInput {
  headers: { id: string | undefined; timestamp: string | undefined; signature: string | undefined };
  rawBody: Buffer;
  body: unknown;
}

/** A received webhook turned into the canonical event to accept, or why it was refused. */
export type WmsWebhookReceipt =
  | {
      ok: true;
      /** The complete canonical CloudEvent (deterministic for one shipment). */
      event: { type: string; id: string } & Record<string, unknown>;
      type: string;
      partitionKey: string;
      idempotencyKey: string;
    }
  | {
      ok: false;
      status: 400 | 401 | 422;
      detail: string;
      errors?: Array<{ path: string; message: string }>;
    };

export interface WmsWebhookReceiver {
  receive(input: WmsWebhookInput): WmsWebhookReceipt;
}

export interface WmsWebhookDeps {
  /** Receivers by WMS system id (from the estate config). */
  receivers: ReadonlyMap<string, WmsWebhookReceiver>;
  accept: (req: AcceptRequest) => Promise<AcceptResult>;
}

const problemRef = { $ref: 'middlemart.problem#' } as const;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function wmsWebhookRoutes(deps: WmsWebhookDeps): FastifyPluginAsync {
  return async (server) => {
    server.post<{ Params: { systemId: string } }>(
      '/v1/webhooks/wms/:systemId',
      {
        config: { access: ACCESS.public, signature: 'webhook-signature' },
        schema: {
          tags: ['webhooks'],
          summary: 'Receive a signed shipment confirmation from a warehouse system',
          description:
            "Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature) keyed with the system's webhook secret. Accepted durably as the canonical shipment.confirmed event; redeliveries of the same shipment are answered the same.",
          params: {
            type: 'object',
            required: ['systemId'],
            properties: { systemId: { type: 'string', description: 'The WMS system id' } },
          },
          headers: {
            type: 'object',
            properties: {
              'webhook-id': { type: 'string' },
              'webhook-timestamp': { type: 'string' },
              'webhook-signature': { type: 'string' },
            },
          },
          body: {
            type: 'object',
            description: 'The WMS notification: { type: "shipment.confirmed", timestamp, data }.',
            properties: {
              type: { type: 'string', examples: ['shipment.confirmed'] },
              timestamp: { type: 'string' },
              data: { type: 'object', additionalProperties: true },
            },
            additionalProperties: true,
          },
          response: {
            202: {
              type: 'object',
              required: ['id', 'traceId', 'acceptedAt', 'event'],
              properties: {
                id: { type: 'string', description: 'The message id Middlemart gave the event' },
                traceId: { type: 'string' },
                acceptedAt: { type: 'string', format: 'date-time' },
                event: { type: 'string', description: 'The canonical event type accepted' },
              },
            },
            400: problemRef,
            401: problemRef,
            404: problemRef,
            409: problemRef,
            415: problemRef,
            422: problemRef,
            503: problemRef,
          },
        },
      },
      async (request, reply) => {
        const { systemId } = request.params;
        const receiver = deps.receivers.get(systemId);
        if (!receiver) {
          throw new ProblemError(404, 'not-found', {
            detail: `No warehouse system ${JSON.stringify(systemId)} receives webhooks here.`,
            errors: [{ path: 'systemId', message: 'not a configured WMS system' }],
          });
        }
        const receipt = receiver.receive({
          headers: {
            id: header(request.headers['webhook-id']),
            timestamp: header(request.headers['webhook-timestamp']),
            signature: header(request.headers['webhook-signature']),
          },
          rawBody: request.rawBody ?? Buffer.alloc(0),
          body: request.body,
        });
        if (!receipt.ok) {
          if (receipt.status === 401) {
            request.log.warn({ systemId, reason: receipt.detail }, 'WMS webhook refused');
            throw new ProblemError(401, 'unauthorized', { detail: receipt.detail });
          }
          throw new ProblemError(receipt.status, 'validation-error', {
            detail: receipt.detail,
            ...(receipt.errors ? { errors: receipt.errors } : {}),
          });
        }
        const payloadJson = JSON.stringify(receipt.event);
        const result = await deps.accept({
          source: `wms:${systemId}`,
          idempotencyKey: receipt.idempotencyKey,
          requestHash: sha256Hex(payloadJson),
          type: receipt.type,
          partitionKey: receipt.partitionKey,
          priority: 'critical',
          payload: receipt.event,
          payloadJson,
          traceparent: request.traceparent,
        });
        switch (result.outcome) {
          case 'accepted':
          case 'duplicate':
            if (result.outcome === 'duplicate') reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
            reply.code(202);
            return {
              id: result.messageId,
              traceId: traceIdOf(result.traceparent) ?? request.traceId,
              acceptedAt: result.acceptedAt,
              event: receipt.type,
            };
          case 'conflict':
            throw new ProblemError(409, 'idempotency-key-reused', {
              detail: `Shipment ${receipt.idempotencyKey} was already confirmed with different contents.`,
              extensions: { messageId: result.messageId },
            });
          case 'backpressure': {
            const seconds = Math.max(1, Math.ceil(result.retryAfterSeconds));
            throw new ProblemError(503, 'service-unavailable', {
              detail: `Middlemart is shedding load; deliver again after ${seconds} s.`,
              headers: { 'retry-after': String(seconds) },
            });
          }
        }
      },
    );
  };
}
