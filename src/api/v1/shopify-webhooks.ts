// POST /v1/webhooks/shopify/{systemId}: webhooks of a Shopify-compatible shop. The route is
// public to API keys (a shop cannot send a bearer token) and authenticates every request by its
// signature instead: `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body under the
// system's `credentials.webhookSecret`, compared in constant time before the body is read. A bad
// or missing signature is a 401 and nothing is stored. A verified body of a taken topic becomes
// one canonical event, accepted durably under the webhook id (`X-Shopify-Webhook-Id`, which the
// shop keeps when it retries) as idempotency key.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { EventData, EventName } from '../../canonical/index.js';
import { ACCESS } from '../auth/roles.js';
import { isValidIdempotencyKey, requestHashOf } from '../idempotency.js';
import { formatFieldPath, ProblemError } from '../problem.js';
import {
  acceptIngressEvent,
  answerAccepted,
  problemRef,
  type IngressDeps,
} from './orders-intake.js';

export const SHOPIFY_SIGNATURE_HEADER = 'x-shopify-hmac-sha256';

/** What the shop's own settings tell the mapping (see the connector's `ShopContext`). */
export interface ShopifyShopContext {
  systemId: string;
  region: string;
  returnLocation: string;
}

/** A Shopify-compatible system of the estate config, as this route needs it. */
export interface ShopifyWebhookShop {
  context: ShopifyShopContext;
  /** `credentials.webhookSecret` (resolved); undefined when the system has none. */
  webhookSecret: string | undefined;
  /** `settings.shopDomain`, when configured: webhooks naming another shop are refused. */
  shopDomain?: string;
}

/** What a verified webhook body is (the connector's `WebhookInterpretation`). */
export type WebhookReading =
  | { outcome: 'event'; event: EventName; data: unknown; occurredAt: string }
  | { outcome: 'ignored'; reason: string }
  | { outcome: 'malformed'; reason: string }
  | { outcome: 'rejected'; issues: Array<{ path: string; message: string }> };

export interface ShopifyWebhookDeps extends IngressDeps {
  /** The estate's Shopify-compatible systems by id. */
  shops: ReadonlyMap<string, ShopifyWebhookShop>;
  /** Constant-time check of `X-Shopify-Hmac-Sha256` over the raw body. */
  verify: (secret: string, rawBody: Buffer, header: string | undefined) => boolean;
  /** Reads a verified body of a topic (ids exact) and maps it to its canonical event. */
  interpret: (topic: string, rawBody: Buffer, shop: ShopifyShopContext) => WebhookReading;
}

export function webhookSource(systemId: string): string {
  return `/middlemart/webhooks/shopify/${systemId}`;
}

function singleHeader(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function headerProblem(name: string, message: string, detail: string): ProblemError {
  return new ProblemError(400, 'validation-error', {
    detail,
    errors: [{ path: formatFieldPath(['headers', name]), message }],
  });
}

const acceptedWebhookSchema = {
  type: 'object',
  description: 'The webhook is verified and its canonical event committed.',
  required: ['id', 'event', 'subject', 'traceId', 'acceptedAt'],
  properties: {
    id: { type: 'string', description: 'The message id of the accepted event' },
    event: { type: 'string', description: 'Canonical event name, e.g. order.created' },
    subject: { type: 'string', description: 'The entity: order, return or customer id' },
    traceId: { type: 'string' },
    acceptedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const ignoredWebhookSchema = {
  type: 'object',
  description: 'A verified webhook of a topic Middlemart does not take: acknowledged, not stored.',
  required: ['status', 'topic', 'reason'],
  properties: {
    status: { type: 'string', const: 'ignored' },
    topic: { type: 'string' },
    reason: { type: 'string' },
  },
} as const;

/** `POST /v1/webhooks/shopify/:systemId`. */
export function shopifyWebhookRoutes(deps: ShopifyWebhookDeps): FastifyPluginAsync {
  return async (server) => {
    server.post<{ Params: { systemId: string } }>(
      '/v1/webhooks/shopify/:systemId',
      {
        // Public to API keys: authenticated by the HMAC signature of each request instead.
        config: { access: ACCESS.public, signature: SHOPIFY_SIGNATURE_HEADER },
        schema: {
          tags: ['ingest'],
          summary: 'Receive a Shopify webhook (signed with the shop’s webhook secret)',
          description:
            'Topics taken: orders/create → order.created, orders/updated → order.updated, orders/cancelled → order.cancelled, refunds/create → return.requested, customers/create → customer.created, customers/update → customer.updated. Other topics are acknowledged (200, status ignored) and stored nowhere. X-Shopify-Hmac-Sha256 must be the base64 HMAC-SHA256 of the raw body under the system’s webhook secret (401 otherwise); X-Shopify-Webhook-Id is the idempotency key. A body that cannot be mapped is refused with 422 naming every Shopify field at fault.',
          params: {
            type: 'object',
            required: ['systemId'],
            properties: {
              systemId: {
                type: 'string',
                minLength: 1,
                maxLength: 64,
                description: 'The shop’s system id in the estate config',
              },
            },
          },
          headers: {
            type: 'object',
            properties: {
              'x-shopify-topic': { type: 'string' },
              'x-shopify-hmac-sha256': { type: 'string' },
              'x-shopify-webhook-id': { type: 'string' },
              'x-shopify-shop-domain': { type: 'string' },
              traceparent: { type: 'string' },
            },
          },
          body: { description: 'The webhook body as the shop sends it (JSON)' },
          response: {
            200: ignoredWebhookSchema,
            202: acceptedWebhookSchema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            404: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            422: problemRef,
            429: problemRef,
          },
        },
      },
      async (request, reply) => {
        const { systemId } = request.params;
        const shop = deps.shops.get(systemId);
        if (!shop) {
          throw new ProblemError(404, 'not-found', {
            detail: `No Shopify-compatible system ${JSON.stringify(systemId)} in the estate config.`,
          });
        }
        // The signature first: nothing of an unverified request is read or stored.
        const raw = request.rawBody ?? Buffer.alloc(0);
        const signature = singleHeader(request, SHOPIFY_SIGNATURE_HEADER);
        if (!shop.webhookSecret) {
          request.log.error({ systemId }, 'shopify system has no credentials.webhookSecret');
        }
        if (!shop.webhookSecret || !deps.verify(shop.webhookSecret, raw, signature)) {
          throw new ProblemError(401, 'unauthorized', {
            detail:
              signature === undefined
                ? 'Send X-Shopify-Hmac-Sha256: the base64 HMAC-SHA256 of the raw body under the shop’s webhook secret.'
                : `X-Shopify-Hmac-Sha256 does not match the body signed with the webhook secret of ${systemId}.`,
          });
        }
        const domain = singleHeader(request, 'x-shopify-shop-domain');
        if (shop.shopDomain && domain !== shop.shopDomain) {
          throw new ProblemError(403, 'forbidden', {
            detail: `The webhook names shop ${JSON.stringify(domain ?? '')}; system ${systemId} is ${shop.shopDomain}.`,
          });
        }
        const topic = singleHeader(request, 'x-shopify-topic');
        if (!topic) {
          throw headerProblem(
            'x-shopify-topic',
            'is required',
            'Send X-Shopify-Topic, e.g. orders/create.',
          );
        }
        const webhookId = singleHeader(request, 'x-shopify-webhook-id');
        if (webhookId === undefined || !isValidIdempotencyKey(webhookId)) {
          throw headerProblem(
            'x-shopify-webhook-id',
            webhookId === undefined ? 'is required' : 'must be 1 to 255 printable ASCII characters',
            'X-Shopify-Webhook-Id is the idempotency key of a webhook: the shop keeps it when it retries.',
          );
        }

        const reading = deps.interpret(topic, raw, shop.context);
        switch (reading.outcome) {
          case 'ignored':
            request.log.info({ systemId, topic, webhookId }, 'shopify webhook ignored');
            return reply.code(200).send({ status: 'ignored', topic, reason: reading.reason });
          case 'malformed':
            throw new ProblemError(400, 'malformed-json', { detail: reading.reason });
          case 'rejected':
            request.log.warn(
              { systemId, topic, webhookId, issues: reading.issues },
              'shopify webhook refused',
            );
            throw new ProblemError(422, 'validation-error', {
              detail: `The ${topic} webhook cannot be mapped to a canonical event; every field at fault is listed.`,
              errors: reading.issues.map((i) => ({
                path: i.path === '' ? 'body' : i.path,
                message: i.message,
              })),
              extensions: { topic, webhookId },
            });
          case 'event':
            break;
        }
        const { result, event } = await acceptIngressEvent(deps, {
          event: reading.event,
          data: reading.data as EventData<EventName>,
          source: webhookSource(systemId),
          idempotencyKey: webhookId,
          requestHash: requestHashOf(request),
          traceparent: request.traceparent,
          time: reading.occurredAt,
        });
        request.log.info(
          { outcome: result.outcome, systemId, topic, webhookId, eventType: event.type },
          'shopify webhook',
        );
        return {
          ...answerAccepted(request, reply, result, webhookId),
          event: reading.event,
          subject: event.subject ?? event.partitionkey,
        };
      },
    );
  };
}
