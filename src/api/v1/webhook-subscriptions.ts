// Outbound webhook subscriptions (`/v1/webhook-subscriptions`): register a URL for canonical
// event types, list, read and delete them. The signing secret is in the answer to the creation
// only. A channel key manages its own subscriptions; an admin sees every one.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { catalogue } from '../../canonical/index.js';
import type { KeyStore } from '../auth/api-keys.js';
import { appendAudit, auditActorOf } from '../auth/audit.js';
import { ACCESS, holds } from '../auth/roles.js';
import { ProblemError } from '../problem.js';
import {
  createSubscription,
  deleteSubscription,
  findSubscription,
  listSubscriptions,
  publicView,
  type StoredSubscription,
} from '../webhooks/subscriptions.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;
const EVENT_NAMES = catalogue.map((e) => e.name);

const subscriptionSchema = {
  type: 'object',
  required: ['id', 'url', 'eventTypes', 'description', 'region', 'owner', 'createdAt', 'deletedAt'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    eventTypes: { type: 'array', items: { type: 'string' } },
    description: { type: ['string', 'null'] },
    region: { type: ['string', 'null'] },
    owner: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    deletedAt: { type: ['string', 'null'] },
  },
} as const;

export interface WebhookRoutesDeps {
  db: KeyStore;
  /** May subscribers use loopback and private-network URLs? (Tests and laptops; never in production.) */
  allowPrivateNetworks: boolean;
  /** Called after a subscription is created or deleted (senders and policies follow). */
  changed(): Promise<void>;
  now?: () => number;
}

const PRIVATE_V4 = [
  /^10\./,
  /^127\./,
  /^169\.254\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^0\./,
];

/** Why `raw` is not an acceptable subscriber URL, or undefined. */
export function subscriberUrlProblem(raw: string, allowPrivate: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url is not an absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'url must be http or https';
  if (url.username || url.password) return 'url must not carry credentials';
  if (url.hash) return 'url must not have a fragment';
  if (allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const loopbackName = host === 'localhost' || host.endsWith('.localhost');
  const privateV4 = isIP(host) === 4 && PRIVATE_V4.some((re) => re.test(host));
  const privateV6 =
    isIP(host) === 6 &&
    (host === '::1' || host.startsWith('fc') || host.startsWith('fd') || host.startsWith('fe80'));
  if (loopbackName || privateV4 || privateV6) {
    return 'url points at a loopback or private-network address (webhooks.allowPrivateNetworks is off)';
  }
  if (url.protocol !== 'https:') return 'url must be https';
  return undefined;
}

function ownerOf(request: FastifyRequest): string {
  return request.principal?.keyPrefix ?? 'unknown';
}

/** The subscription when the caller may see it; a 404 problem otherwise (never a 403: no probing). */
async function visible(
  db: KeyStore,
  request: FastifyRequest,
  id: string,
): Promise<StoredSubscription> {
  const sub = await findSubscription(db, id);
  const admin = holds(request.principal, ['admin']);
  if (!sub || sub.deletedAt !== null || (!admin && sub.owner !== ownerOf(request))) {
    throw new ProblemError(404, 'not-found', { detail: `no webhook subscription ${id}` });
  }
  return sub;
}

export function webhookSubscriptionRoutes(deps: WebhookRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now;
  return async (server) => {
    server.post<{
      Body: { url: string; eventTypes: string[]; description?: string; region?: string };
    }>(
      '/v1/webhook-subscriptions',
      {
        config: { access: ACCESS.ingest },
        schema: {
          summary: 'Subscribe a URL to canonical events (Standard Webhooks signatures)',
          tags: ['webhooks'],
          body: {
            type: 'object',
            required: ['url', 'eventTypes'],
            additionalProperties: false,
            properties: {
              url: { type: 'string', minLength: 1, maxLength: 2048 },
              eventTypes: {
                type: 'array',
                minItems: 1,
                maxItems: 64,
                items: { type: 'string', enum: ['*', ...EVENT_NAMES] },
              },
              description: { type: 'string', maxLength: 500 },
              region: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' },
            },
          },
          response: {
            201: {
              ...subscriptionSchema,
              required: [...subscriptionSchema.required, 'secret'],
              properties: {
                ...subscriptionSchema.properties,
                secret: {
                  type: 'string',
                  description: 'The signing secret (whsec_…); shown this once only',
                },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const problem = subscriberUrlProblem(request.body.url, deps.allowPrivateNetworks);
        if (problem) {
          throw new ProblemError(400, 'validation-error', {
            detail: problem,
            errors: [{ path: '/url', message: problem }],
          });
        }
        const sub = await deps.db.transaction(async (tx) =>
          createSubscription(
            tx,
            {
              url: request.body.url,
              eventTypes: request.body.eventTypes,
              owner: ownerOf(request),
              ...(request.body.description !== undefined
                ? { description: request.body.description }
                : {}),
              ...(request.body.region !== undefined ? { region: request.body.region } : {}),
            },
            now(),
          ),
        );
        await appendAudit(
          deps.db,
          {
            ...auditActorOf(request),
            action: 'webhook-subscription.create',
            target: sub.id,
            detail: { url: sub.url, eventTypes: sub.eventTypes },
          },
          now(),
        );
        await deps.changed();
        return reply
          .code(201)
          .header('location', `/v1/webhook-subscriptions/${sub.id}`)
          .send({ ...publicView(sub), secret: sub.secret });
      },
    );

    server.get(
      '/v1/webhook-subscriptions',
      {
        config: { access: ACCESS.ingest },
        schema: {
          summary: "List webhook subscriptions (a channel's own; all for an admin)",
          tags: ['webhooks'],
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: { items: { type: 'array', items: subscriptionSchema } },
            },
            ...denied,
          },
        },
      },
      async (request) => {
        const admin = holds(request.principal, ['admin']);
        const subs = await listSubscriptions(deps.db, admin ? {} : { owner: ownerOf(request) });
        return { items: subs.map(publicView) };
      },
    );

    const idParams = {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { id: { type: 'string', pattern: '^whsub_[0-9a-f]{32}$' } },
    } as const;

    server.get<{ Params: { id: string } }>(
      '/v1/webhook-subscriptions/:id',
      {
        config: { access: ACCESS.ingest },
        schema: {
          summary: 'One webhook subscription (without its secret)',
          tags: ['webhooks'],
          params: idParams,
          response: { 200: subscriptionSchema, 400: problemRef, 404: problemRef, ...denied },
        },
      },
      async (request) => publicView(await visible(deps.db, request, request.params.id)),
    );

    server.delete<{ Params: { id: string } }>(
      '/v1/webhook-subscriptions/:id',
      {
        config: { access: ACCESS.ingest, noBody: true },
        schema: {
          summary: 'Delete a webhook subscription (events already queued for it are dropped)',
          tags: ['webhooks'],
          params: idParams,
          response: { 204: { type: 'null' }, 400: problemRef, 404: problemRef, ...denied },
        },
      },
      async (request, reply) => {
        const sub = await visible(deps.db, request, request.params.id);
        await deps.db.transaction((tx) => deleteSubscription(tx, sub.id, now()));
        await appendAudit(
          deps.db,
          { ...auditActorOf(request), action: 'webhook-subscription.delete', target: sub.id },
          now(),
        );
        await deps.changed();
        return reply.code(204).send();
      },
    );
  };
}
